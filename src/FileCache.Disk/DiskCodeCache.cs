using System.Diagnostics.Metrics;
using FileCache.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace FileCache.Disk;

/// <summary>
/// A directory of compiled-code entries, one file per key named by the key's 64 lowercase hex
/// characters (as in wazero). Writes are atomic (unique temp file, flush, rename); every entry is
/// checked before it is read (a regular file that only this user or root can change, unless an
/// authentication key is set) and verified on read (length, XXH3 checksum, optional HMAC); a bad
/// one is a miss that is counted and removed. Safe for many threads and processes sharing the directory.
/// </summary>
/// <remarks>
/// <para>Construction does no I/O; the directory is created by the first Add. Hits return the verified
/// bytes in memory, so a reader is unaffected by later deletes, overwrites or eviction.</para>
/// <para>Without an authentication key the directory must be private (see <c>docs/security.md</c>):
/// otherwise every operation throws <see cref="InsecureCacheDirectoryException"/>.</para>
/// The class is split by job: reading and verifying (<c>DiskCodeCache.Read.cs</c>), writing
/// (<c>.Write.cs</c>), eviction (<c>.Trim.cs</c>), and the trust policy (<c>.Trust.cs</c>).
/// </remarks>
internal sealed partial class DiskCodeCache : IWasmCodeCache, IMeteredWasmCodeCache, ICacheEntrySource, ICacheEntryFileSource, IDisposable
{
    private readonly DiskCodeCacheOptions _options;
    private readonly byte[]? _authenticationKey;
    private readonly WasmCodeCacheMetrics _metrics;

    WasmCodeCacheMetrics IMeteredWasmCodeCache.Metrics => _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _disposed = new();

    /// <summary>Creates a cache over a directory. Does no I/O.</summary>
    /// <param name="options">The options; <see langword="null"/> for the defaults (the user cache folder).</param>
    /// <param name="meterFactory">Creates the meter; optional.</param>
    /// <param name="logger">Receives corrupt entries, evictions and warnings; optional.</param>
    /// <param name="timeProvider">The clock for use times and eviction; optional.</param>
    public DiskCodeCache(DiskCodeCacheOptions? options = null, IMeterFactory? meterFactory = null, ILogger<DiskCodeCache>? logger = null, TimeProvider? timeProvider = null)
    {
        _options = options ?? new DiskCodeCacheOptions();
        if (_options.AuthenticationKey is { Length: < 16 } shortKey)
        {
            throw new ArgumentException($"DiskCodeCacheOptions.AuthenticationKey has {shortKey.Length} bytes; at least 16 are required.", nameof(options));
        }

        if (_options.MaxEntrySize < 1 || _options.MaxEntrySize > MaxEntrySize)
        {
            throw new ArgumentException($"DiskCodeCacheOptions.MaxEntrySize is {_options.MaxEntrySize}; it must be between 1 and {MaxEntrySize} bytes.", nameof(options));
        }

        Directory = Path.GetFullPath(_options.Directory ?? DiskCodeCacheOptions.DefaultDirectory);
        _authenticationKey = _options.AuthenticationKey?.ToArray(); // later changes by the caller do not apply
        _metrics = new WasmCodeCacheMetrics(meterFactory, "disk");
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Creates a cache over <paramref name="directory"/> with default options.</summary>
    /// <param name="directory">The cache directory.</param>
    public DiskCodeCache(string directory)
        : this(new DiskCodeCacheOptions { Directory = directory })
    {
    }

    /// <summary>The cache directory's full path.</summary>
    public string Directory { get; }

    /// <summary>The path of the entry file for <paramref name="key"/>.</summary>
    /// <param name="key">The key.</param>
    /// <returns><see cref="Directory"/> joined with the key's 64 lowercase hex characters.</returns>
    public string GetPath(CacheKey key) => Path.Join(Directory, key.ToString());

    /// <summary>Stops background maintenance and waits for a running trim to end. Entries stay on disk.</summary>
    public void Dispose()
    {
        if (_disposed.IsCancellationRequested)
        {
            return;
        }

        _disposed.Cancel();
        // After Dispose nothing of this cache touches the directory (a test or an operator may remove it).
        if (_trimGate.Wait(TimeSpan.FromSeconds(10)))
        {
            _trimGate.Release();
        }
    }

    private void ThrowIfReadOnly(string operation, CacheKey key)
    {
        if (_options.ReadOnly)
        {
            throw new ReadOnlyWasmCodeCacheException($"Cannot {operation} key {key}: the disk cache at '{Directory}' is read-only.");
        }
    }

    private static bool IsEntryName(ReadOnlySpan<char> name) => name.Length == CacheKey.HexLength && CacheKey.TryParse(name, out var key) && name.SequenceEqual(key.ToString());
}
