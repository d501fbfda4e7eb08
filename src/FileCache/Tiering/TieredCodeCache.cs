using System.Diagnostics.CodeAnalysis;
using System.Diagnostics.Metrics;
using FileCache.Diagnostics;
using FileCache.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace FileCache.Tiering;

/// <summary>
/// Composes several caches into one, fastest first: reads try each tier in order and promote a
/// hit into the faster tiers; adds and deletes go to every tier.
/// </summary>
/// <remarks>
/// <para>
/// What the set needs to know of each tier (its locality, typed lookup, compile lock, health probe,
/// whether it holds files) is read once, when the set is built (<c>TierTraits</c>); the lookup, add,
/// lock and health paths use that description and never test a tier's type again. See
/// <c>Internal/README.md</c> for one load and one add walked through the code.
/// </para>
/// <para>
/// A tier that fails while reading is logged, counted (<c>filecache.tier_failures</c>) and skipped,
/// so a broken slow tier never fails a lookup. Add and Delete try every tier and then rethrow the
/// failure(s); a tier whose Add failed is also asked to delete the key so it cannot keep serving
/// an older value.
/// </para>
/// </remarks>
internal sealed partial class TieredCodeCache : IWasmCodeCache, ICacheEntrySource, ICompileLockSource, Microsoft.Extensions.Diagnostics.HealthChecks.IHealthCheck, IDisposable, IAsyncDisposable
{
    private readonly TierTraits[] _tiers;
    private readonly IWasmCodeCache[] _caches;

    // Tiers that refused a write as read-only (code shipped with the app): learned from their first
    // refusal and never offered a copy again, so a hit below them is not read only to be refused.
    private readonly bool[] _readOnly;
    private readonly ILogger _logger;

    // A set of one tier is that tier: its own metrics say everything, so the set records none (a
    // loader wraps a lone backend in a set, and would otherwise count each lookup twice).
    private readonly WasmCodeCacheMetrics? _metrics;

    /// <summary>Creates a tiered cache.</summary>
    /// <param name="tiers">The tiers, fastest first; at least one. Each tier's locality comes from its
    /// markers (<see cref="IProcessLocalWasmCodeCache"/>, <see cref="ISharedWasmCodeCache"/>), otherwise
    /// <see cref="WasmCodeCacheLocality.Machine"/>.</param>
    /// <param name="ownsTiers">Whether disposing this cache disposes the tiers.</param>
    /// <param name="logger">Receives tier failures; optional.</param>
    /// <param name="meterFactory">Creates the meter; optional.</param>
    public TieredCodeCache(IEnumerable<IWasmCodeCache> tiers, bool ownsTiers = false, ILogger<TieredCodeCache>? logger = null, IMeterFactory? meterFactory = null)
        : this(Describe(tiers, ownsTiers), logger, meterFactory)
    {
    }

    /// <summary>Creates a tiered cache from tiers described at registration (DI: ownership and declared locality per tier).</summary>
    internal TieredCodeCache(TierTraits[] tiers, ILogger? logger, IMeterFactory? meterFactory)
    {
        if (tiers.Length == 0)
        {
            throw new ArgumentException("A tiered cache needs at least one tier.", nameof(tiers));
        }

        _tiers = tiers;
        _caches = Array.ConvertAll(tiers, t => t.Cache);
        _readOnly = new bool[_tiers.Length];
        _logger = logger ?? NullLogger.Instance;
        _metrics = tiers.Length > 1 ? new WasmCodeCacheMetrics(meterFactory, "tiered") : null;
        if (_metrics is not null)
        {
            // One lookup is one hit or miss, counted here with the tier that answered; a tier's own
            // events (corrupt entries, evictions, adds) stay its own.
            foreach (var tier in tiers)
            {
                tier.Metrics?.CountsLookups = false;
            }
        }
    }

    /// <summary>The tiers, fastest first.</summary>
    public IReadOnlyList<IWasmCodeCache> Tiers => _caches;

    /// <summary>The locality of each tier, fastest first, as the set uses it.</summary>
    internal IEnumerable<WasmCodeCacheLocality> Localities => _tiers.Select(t => t.Locality);

    private static TierTraits[] Describe(IEnumerable<IWasmCodeCache> tiers, bool owned)
    {
        ArgumentNullException.ThrowIfNull(tiers);
        var list = tiers.ToList();
        for (int i = 0; i < list.Count; i++)
        {
            if (list[i] is null)
            {
                throw new ArgumentException($"Tier {i} is null.", nameof(tiers));
            }
        }

        return list.ConvertAll(t => TierTraits.Of(t, owned, declared: null)).ToArray();
    }

    /// <inheritdoc/>
    public bool TryGet(CacheKey key, [NotNullWhen(true)] out Stream? content)
    {
        content = Completed.Result(Get<Blocking>(key, CancellationToken.None));
        return content is not null;
    }

    /// <inheritdoc/>
    public ValueTask<Stream?> GetAsync(CacheKey key, CancellationToken cancellationToken = default) => Get<NonBlocking>(key, cancellationToken);

    /// <inheritdoc/>
    /// <remarks>Each tier is asked once, in the form it holds entries (a typed lookup, else its stream read
    /// into bytes). A hit in bytes below the first tier is copied into the faster tiers; a file hit is
    /// never read back only to fill a faster tier (a loader maps it; reading it would cost its whole length).</remarks>
    public bool TryGetEntry(CacheKey key, CacheLookupScope scope, [NotNullWhen(true)] out CacheEntry? entry)
    {
        entry = Completed.Result(GetEntry<Blocking>(key, scope, CancellationToken.None));
        return entry is not null;
    }

    /// <inheritdoc/>
    public ValueTask<CacheEntry?> GetEntryAsync(CacheKey key, CacheLookupScope scope, CancellationToken cancellationToken = default)
        => GetEntry<NonBlocking>(key, scope, cancellationToken);

    private async ValueTask<Stream?> Get<TMode>(CacheKey key, CancellationToken cancellationToken)
        where TMode : struct, IIoMode
    {
        for (int i = 0; i < _tiers.Length; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                var cache = _caches[i];
                var found = TMode.IsAsync
                    ? await cache.GetAsync(key, cancellationToken).ConfigureAwait(false)
                    : cache.TryGet(key, out var hit) ? hit : null;
                if (found is null)
                {
                    continue;
                }

                if (!WritableAbove(i))
                {
                    _metrics?.Hit(0, _tiers[i].Name);
                    return found;
                }

                byte[] bytes;
                using (found)
                {
                    // Read anyway for the caller, so the copy for the faster tiers is free.
                    bytes = TMode.IsAsync
                        ? await StreamBytes.ReadToEndAsync(found, cancellationToken).ConfigureAwait(false)
                        : StreamBytes.ReadToEnd(found);
                }

                await Promote<TMode>(i, key, bytes, cancellationToken).ConfigureAwait(false);
                _metrics?.Hit(bytes.Length, _tiers[i].Name);
                return ReadOnly(bytes);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                OnTierFailure(i, "get", key, e);
            }
        }

        _metrics?.Miss();
        return null;
    }

    private async ValueTask<CacheEntry?> GetEntry<TMode>(CacheKey key, CacheLookupScope scope, CancellationToken cancellationToken)
        where TMode : struct, IIoMode
    {
        for (int i = 0; i < _tiers.Length; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var tier = _tiers[i];
            if (scope == CacheLookupScope.SharedTiers && !tier.OtherProcessesFill)
            {
                continue;
            }

            try
            {
                if (tier.Entries is null && FileTierAbove(i) is int fileTier and >= 0)
                {
                    var filled = await FillFileTier<TMode>(i, fileTier, key, cancellationToken).ConfigureAwait(false);
                    if (filled is not null)
                    {
                        _metrics?.Hit(filled.Length, tier.Name);
                        return filled;
                    }

                    continue;
                }

                var found = (TMode.IsAsync, tier.Entries) switch
                {
                    (true, { } typed) => await typed.GetEntryAsync(key, scope, cancellationToken).ConfigureAwait(false),
                    (true, null) => await CacheEntryExtensions.ReadEntryAsync(tier.Cache, key, cancellationToken).ConfigureAwait(false),
                    (false, { } typed) => typed.TryGetEntry(key, scope, out var typedHit) ? typedHit : null,
                    (false, null) => CacheEntryExtensions.ReadEntry(tier.Cache, key, out var streamHit) ? streamHit : null,
                };
                if (found is null)
                {
                    continue;
                }

                if (found.File is null && WritableAbove(i))
                {
                    await Promote<TMode>(i, key, found.Bytes, cancellationToken).ConfigureAwait(false);
                }

                _metrics?.Hit(found.Length, tier.Name);
                return found;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                OnTierFailure(i, "get", key, e);
            }
        }

        _metrics?.Miss();
        return null;
    }

    /// <summary>The nearest faster tier that holds verified files and takes copies, or -1.</summary>
    private int FileTierAbove(int found)
    {
        for (int j = found - 1; j >= 0; j--)
        {
            if (_tiers[j].HoldsFiles && _tiers[j].Entries is not null && !Volatile.Read(ref _readOnly[j]))
            {
                return j;
            }
        }

        return -1;
    }

    /// <summary>
    /// A hit of a stream-only tier that streams (the blob tier) is written straight into the file tier
    /// above it and looked up there: the entry never sits in memory whole, and the loader maps the
    /// verified file; a hit already in memory (a Redis value) is served as bytes and promoted. A
    /// source that fails mid-read (a range that does not verify, a store error) is that tier's failure
    /// and the file tier keeps nothing; a file tier that fails by itself is skipped and the hit is read
    /// again as bytes. Faster tiers that hold bytes are not filled: a file hit never is.
    /// </summary>
    private async ValueTask<CacheEntry?> FillFileTier<TMode>(int found, int fileTier, CacheKey key, CancellationToken cancellationToken)
        where TMode : struct, IIoMode
    {
        var content = TMode.IsAsync
            ? await _caches[found].GetAsync(key, cancellationToken).ConfigureAwait(false)
            : _caches[found].TryGet(key, out var hit) ? hit : null;
        if (content is null)
        {
            return null;
        }

        if (CacheEntryExtensions.TryTakeBuffer(content, out var bytes))
        {
            // Already in memory whole (a Redis value): served from there and copied up as bytes.
            await Promote<TMode>(found, key, bytes, cancellationToken).ConfigureAwait(false);
            return CacheEntry.FromBytes(bytes);
        }

        var source = new WatchedStream(content);
        try
        {
            using (source)
            {
                if (TMode.IsAsync)
                {
                    await _caches[fileTier].AddAsync(key, source, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    _caches[fileTier].Add(key, source);
                }
            }

            var entries = _tiers[fileTier].Entries!;
            var entry = TMode.IsAsync
                ? await entries.GetEntryAsync(key, CacheLookupScope.All, cancellationToken).ConfigureAwait(false)
                : entries.TryGetEntry(key, CacheLookupScope.All, out var fileHit) ? fileHit : null;
            if (entry is not null)
            {
                return entry;
            }
        }
        catch (Exception e) when (e is not OperationCanceledException && !source.Faulted)
        {
            OnTierFailure(fileTier, "add", key, e);
        }

        return TMode.IsAsync
            ? await CacheEntryExtensions.ReadEntryAsync(_caches[found], key, cancellationToken).ConfigureAwait(false)
            : CacheEntryExtensions.ReadEntry(_caches[found], key, out var again) ? again : null;
    }

    private static MemoryStream ReadOnly(byte[] bytes) => new(bytes, 0, bytes.Length, writable: false, publiclyVisible: false);

    private static MemoryStream ReadOnly(ReadOnlyMemory<byte> bytes)
        => System.Runtime.InteropServices.MemoryMarshal.TryGetArray(bytes, out var segment)
            ? new(segment.Array!, segment.Offset, segment.Count, writable: false, publiclyVisible: false)
            : ReadOnly(bytes.ToArray());

    /// <summary>Whether a tier faster than <paramref name="found"/> may take a copy (is not known to be read-only).</summary>
    private bool WritableAbove(int found)
    {
        for (int j = 0; j < found; j++)
        {
            if (!Volatile.Read(ref _readOnly[j]))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Copies a hit from tier <paramref name="found"/> into every faster tier; a tier that fails is logged and skipped.</summary>
    private async ValueTask Promote<TMode>(int found, CacheKey key, ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
        where TMode : struct, IIoMode
    {
        for (int j = 0; j < found; j++)
        {
            if (Volatile.Read(ref _readOnly[j]))
            {
                continue;
            }

            try
            {
                if (TMode.IsAsync)
                {
                    await _caches[j].AddAsync(key, ReadOnly(bytes), cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    _caches[j].Add(key, ReadOnly(bytes));
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                OnTierFailure(j, "add", key, e);
            }
        }
    }
}
