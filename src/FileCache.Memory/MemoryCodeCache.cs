using System.Diagnostics.CodeAnalysis;
using System.Diagnostics.Metrics;
using FileCache.Diagnostics;
using FileCache.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace FileCache.Memory;

/// <summary>
/// An in-process <see cref="IWasmCodeCache"/> bounded by <see cref="MemoryCodeCacheOptions.SizeLimit"/>
/// with least-recently-used eviction. Entries are private copies, so later changes to a caller's
/// buffer never change them; a hit returns a read-only stream over the stored bytes without copying.
/// </summary>
/// <remarks>
/// Written by hand rather than on Microsoft.Extensions.Caching.Memory: <c>MemoryCache</c> refuses an
/// entry that would pass its size limit and compacts later on the thread pool, so an Add followed by
/// a TryGet could miss, and its eviction order mixes priority and age. A byte-bounded dictionary plus
/// an LRU list evicts exactly and synchronously, which the contract's "Add then hit" needs.
/// </remarks>
internal sealed partial class MemoryCodeCache : IWasmCodeCache, IMeteredWasmCodeCache, ICacheEntrySource, IProcessLocalWasmCodeCache, IDisposable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<CacheKey, LinkedListNode<Entry>> _entries = [];
    private readonly LinkedList<Entry> _lru = new(); // most recently used first
    private readonly long _sizeLimit;
    private readonly WasmCodeCacheMetrics _metrics;

    WasmCodeCacheMetrics IMeteredWasmCodeCache.Metrics => _metrics;
    private readonly ILogger _logger;
    private long _size;

    /// <summary>Creates an empty cache.</summary>
    /// <param name="options">The options; <see langword="null"/> for the defaults.</param>
    /// <param name="meterFactory">Creates the meter; optional.</param>
    /// <param name="logger">Receives evictions at debug level; optional.</param>
    /// <exception cref="ArgumentOutOfRangeException">The size limit is not positive.</exception>
    public MemoryCodeCache(MemoryCodeCacheOptions? options = null, IMeterFactory? meterFactory = null, ILogger<MemoryCodeCache>? logger = null)
    {
        _sizeLimit = options?.SizeLimit ?? MemoryCodeCacheOptions.DefaultSizeLimit;
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(_sizeLimit, "options.SizeLimit");
        _metrics = new WasmCodeCacheMetrics(meterFactory, "memory");
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>The payload bytes held now.</summary>
    public long Size
    {
        get
        {
            lock (_lock)
            {
                return _size;
            }
        }
    }

    /// <summary>The number of entries held now.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <inheritdoc/>
    public bool TryGet(CacheKey key, [NotNullWhen(true)] out Stream? content)
    {
        var bytes = Find(key);
        content = bytes is null ? null : new MemoryStream(bytes, 0, bytes.Length, writable: false, publiclyVisible: false);
        return bytes is not null;
    }

    /// <inheritdoc/>
    /// <remarks>The entry holds the stored bytes themselves, read-only: no copy.</remarks>
    public bool TryGetEntry(CacheKey key, CacheLookupScope scope, [NotNullWhen(true)] out CacheEntry? entry)
    {
        // Nothing outside this process can have added an entry here.
        var bytes = scope == CacheLookupScope.SharedTiers ? null : Find(key);
        entry = bytes is null ? null : CacheEntry.FromBytes(bytes);
        return bytes is not null;
    }

    /// <inheritdoc/>
    public ValueTask<CacheEntry?> GetEntryAsync(CacheKey key, CacheLookupScope scope, CancellationToken cancellationToken = default)
        => Completed.Synchronously(() => TryGetEntry(key, scope, out var entry) ? entry : null, cancellationToken);

    private byte[]? Find(CacheKey key)
    {
        byte[]? bytes = null;
        lock (_lock)
        {
            if (_entries.TryGetValue(key, out var node))
            {
                _lru.Remove(node);
                _lru.AddFirst(node);
                bytes = node.Value.Bytes;
            }
        }

        if (bytes is null)
        {
            _metrics.Miss();
        }
        else
        {
            _metrics.Hit(bytes.Length);
        }

        return bytes;
    }

    /// <inheritdoc/>
    public ValueTask<Stream?> GetAsync(CacheKey key, CancellationToken cancellationToken = default)
        => Completed.Synchronously(() => TryGet(key, out var content) ? content : null, cancellationToken);

    /// <inheritdoc/>
    public void Add(CacheKey key, Stream content) => Store(key, StreamBytes.ReadToEnd(content));

    /// <inheritdoc/>
    public async ValueTask AddAsync(CacheKey key, Stream content, CancellationToken cancellationToken = default)
    {
        var bytes = await StreamBytes.ReadToEndAsync(content, cancellationToken).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        Store(key, bytes);
    }

    /// <inheritdoc/>
    public void Delete(CacheKey key)
    {
        lock (_lock)
        {
            RemoveLocked(key);
        }

        _metrics.Deleted();
    }

    /// <inheritdoc/>
    public ValueTask DeleteAsync(CacheKey key, CancellationToken cancellationToken = default)
        => Completed.Synchronously(() => Delete(key), cancellationToken);

    /// <summary>Drops every entry.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _entries.Clear();
            _lru.Clear();
            _size = 0;
        }
    }

    private void Store(CacheKey key, byte[] bytes)
    {
        int evicted = 0;
        bool tooLarge = bytes.Length > _sizeLimit;
        lock (_lock)
        {
            // Replace semantics: the old value goes even when the new one cannot be kept.
            RemoveLocked(key);
            if (!tooLarge)
            {
                while (_size + bytes.Length > _sizeLimit && _lru.Last is { } oldest)
                {
                    RemoveLocked(oldest.Value.Key);
                    evicted++;
                }

                _entries[key] = _lru.AddFirst(new Entry(key, bytes));
                _size += bytes.Length;
            }
        }

        if (evicted > 0)
        {
            _metrics.Evicted(evicted);
            LogEvicted(_logger, evicted, _sizeLimit);
        }

        if (tooLarge)
        {
            _metrics.Rejected("TooLarge"); // declined, as the distributed tier counts it: an eviction is of a stored entry
            LogTooLarge(_logger, key, bytes.Length, _sizeLimit);
            return;
        }

        _metrics.Added(bytes.Length);
    }

    private void RemoveLocked(CacheKey key)
    {
        if (_entries.Remove(key, out var node))
        {
            _lru.Remove(node);
            _size -= node.Value.Bytes.Length;
        }
    }

    private sealed record Entry(CacheKey Key, byte[] Bytes);

    [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "Evicted {Count} least recently used entries to stay within {SizeLimit} bytes")]
    private static partial void LogEvicted(ILogger logger, int count, long sizeLimit);

    [LoggerMessage(EventId = 2, Level = LogLevel.Debug, Message = "Did not keep key {Key}: its {Length} bytes exceed the size limit of {SizeLimit} bytes")]
    private static partial void LogTooLarge(ILogger logger, CacheKey key, long length, long sizeLimit);
}
