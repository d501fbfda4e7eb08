using System.Diagnostics.CodeAnalysis;
using System.Diagnostics.Metrics;
using System.Runtime.ExceptionServices;
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
/// A tier that fails while reading is logged, counted (<c>filecache.tier_failures</c>) and skipped,
/// so a broken slow tier never fails a lookup. Add and Delete try every tier and then rethrow the
/// failure(s); a tier whose Add failed is also asked to delete the key so it cannot keep serving
/// an older value.
/// </remarks>
public sealed partial class TieredCodeCache : IWasmCodeCache, ICacheEntrySource, ICompileLockSource, Microsoft.Extensions.Diagnostics.HealthChecks.IHealthCheck, IDisposable, IAsyncDisposable
{
    private readonly IWasmCodeCache[] _tiers;

    // Tiers that refused a write as read-only (code shipped with the app): learned from their first
    // refusal and never offered a copy again, so a hit below them is not read only to be refused.
    private readonly bool[] _readOnly;
    private readonly bool _ownsTiers;
    private readonly ILogger _logger;
    private readonly WasmCodeCacheMetrics _metrics;

    /// <summary>Creates a tiered cache.</summary>
    /// <param name="tiers">The tiers, fastest first; at least one.</param>
    /// <param name="ownsTiers">Whether disposing this cache disposes the tiers.</param>
    /// <param name="logger">Receives tier failures; optional.</param>
    /// <param name="meterFactory">Creates the meter; optional.</param>
    public TieredCodeCache(IEnumerable<IWasmCodeCache> tiers, bool ownsTiers = false, ILogger<TieredCodeCache>? logger = null, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(tiers);
        _tiers = [.. tiers];
        _readOnly = new bool[_tiers.Length];
        if (_tiers.Length == 0)
        {
            throw new ArgumentException("A tiered cache needs at least one tier.", nameof(tiers));
        }

        for (int i = 0; i < _tiers.Length; i++)
        {
            if (_tiers[i] is null)
            {
                throw new ArgumentException($"Tier {i} is null.", nameof(tiers));
            }
        }

        _ownsTiers = ownsTiers;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _metrics = new WasmCodeCacheMetrics(meterFactory, "tiered");
    }

    /// <summary>The tiers, fastest first.</summary>
    public IReadOnlyList<IWasmCodeCache> Tiers => _tiers;

    /// <inheritdoc/>
    public bool TryGet(CacheKey key, [NotNullWhen(true)] out Stream? content)
    {
        for (int i = 0; i < _tiers.Length; i++)
        {
            try
            {
                if (!_tiers[i].TryGet(key, out var found))
                {
                    continue;
                }

                if (i == 0)
                {
                    content = found;
                    _metrics.Hit(0);
                    return true;
                }

                byte[] bytes;
                using (found)
                {
                    bytes = StreamBytes.ReadToEnd(found);
                }

                Promote(i, key, bytes);

                content = ReadOnly(bytes);
                _metrics.Hit(bytes.Length);
                return true;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                OnTierFailure(i, "get", key, e);
            }
        }

        content = null;
        _metrics.Miss();
        return false;
    }

    /// <inheritdoc/>
    public async ValueTask<Stream?> GetAsync(CacheKey key, CancellationToken cancellationToken = default)
    {
        for (int i = 0; i < _tiers.Length; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                var found = await _tiers[i].GetAsync(key, cancellationToken).ConfigureAwait(false);
                if (found is null)
                {
                    continue;
                }

                if (i == 0)
                {
                    _metrics.Hit(0);
                    return found;
                }

                byte[] bytes;
                await using (found.ConfigureAwait(false))
                {
                    bytes = await StreamBytes.ReadToEndAsync(found, cancellationToken).ConfigureAwait(false);
                }

                await PromoteAsync(i, key, bytes, cancellationToken).ConfigureAwait(false);

                _metrics.Hit(bytes.Length);
                return ReadOnly(bytes);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                OnTierFailure(i, "get", key, e);
            }
        }

        _metrics.Miss();
        return null;
    }

    /// <inheritdoc/>
    /// <remarks>Each tier is asked once, in the form it holds entries; a hit below the first tier is
    /// copied into the faster tiers (a file hit is read for that only when there is a faster tier).</remarks>
    public bool TryGetEntry(CacheKey key, CacheLookupScope scope, [NotNullWhen(true)] out CacheEntry? entry)
    {
        for (int i = 0; i < _tiers.Length; i++)
        {
            try
            {
                if (!_tiers[i].TryGetEntry(key, out var found, scope))
                {
                    continue;
                }

                if (WritableAbove(i))
                {
                    Promote(i, key, found.ReadBytes()); // a file hit is read once, and only when a faster tier takes it
                }

                _metrics.Hit(found.Length);
                entry = found;
                return true;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                OnTierFailure(i, "get", key, e);
            }
        }

        _metrics.Miss();
        entry = null;
        return false;
    }

    /// <inheritdoc/>
    public async ValueTask<CacheEntry?> GetEntryAsync(CacheKey key, CacheLookupScope scope, CancellationToken cancellationToken = default)
    {
        for (int i = 0; i < _tiers.Length; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                if (await _tiers[i].GetEntryAsync(key, scope, cancellationToken).ConfigureAwait(false) is not { } found)
                {
                    continue;
                }

                if (WritableAbove(i))
                {
                    await PromoteAsync(i, key, found.ReadBytes(), cancellationToken).ConfigureAwait(false);
                }

                _metrics.Hit(found.Length);
                return found;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                OnTierFailure(i, "get", key, e);
            }
        }

        _metrics.Miss();
        return null;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Takes the lock of every tier that offers one, in order (the machine's disk lock, then the
    /// fleet's): processes on one machine queue locally and one of them asks the fleet. All of them
    /// share one deadline, <paramref name="timeout"/> from now. A tier whose wait timed out is skipped; <see langword="null"/> only when every such tier timed out (or none offers one).
    /// </remarks>
    public IDisposable? TryAcquireCompileLock(CacheKey key, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var held = new List<IDisposable>();
        long deadline = Deadline(timeout);
        try
        {
            foreach (var tier in _tiers)
            {
                if (tier is ICompileLockSource source)
                {
                    if (source.TryAcquireCompileLock(key, Remaining(deadline), cancellationToken) is { } one)
                    {
                        held.Add(one);
                    }
                }
            }
        }
        catch
        {
            Release(held);
            throw;
        }

        return Combined(held);
    }

    /// <inheritdoc/>
    /// <remarks>As <see cref="TryAcquireCompileLock"/>, without holding a thread while waiting.</remarks>
    public async ValueTask<IDisposable?> TryAcquireCompileLockAsync(CacheKey key, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var held = new List<IDisposable>();
        long deadline = Deadline(timeout);
        try
        {
            foreach (var tier in _tiers)
            {
                if (tier is ICompileLockSource source)
                {
                    if (await source.TryAcquireCompileLockAsync(key, Remaining(deadline), cancellationToken).ConfigureAwait(false) is { } one)
                    {
                        held.Add(one);
                    }
                }
            }
        }
        catch
        {
            Release(held);
            throw;
        }

        return Combined(held);
    }

    /// <inheritdoc/>
    /// <remarks>Checks every tier that has a probe; the worst status wins.</remarks>
    public Task<Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult> CheckHealthAsync(Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckContext context, CancellationToken cancellationToken = default)
        => WasmCodeCacheHealthCheck.CombineAsync(_tiers, context, cancellationToken);

    // One deadline for every lock tier: the machine's wait and the fleet's together take at most the
    // timeout, not the timeout once per tier.
    private static long Deadline(TimeSpan timeout) => Environment.TickCount64 + (long)Math.Min(timeout.TotalMilliseconds, int.MaxValue);

    private static TimeSpan Remaining(long deadline) => TimeSpan.FromMilliseconds(Math.Max(0, deadline - Environment.TickCount64));

    private static IDisposable? Combined(List<IDisposable> held)
        => held.Count == 0 ? null : held.Count == 1 ? held[0] : new Locks(held);

    private static void Release(List<IDisposable> held)
    {
        for (int i = held.Count - 1; i >= 0; i--)
        {
            held[i].Dispose(); // the reverse order of taking
        }
    }

    private sealed class Locks(List<IDisposable> held) : IDisposable
    {
        public void Dispose() => Release(held);
    }


    /// <inheritdoc/>
    public void Add(CacheKey key, Stream content)
    {
        ArgumentNullException.ThrowIfNull(content);
        // Every tier reads the same bytes: rewind a seekable source, buffer any other.
        var source = content.CanSeek ? content : ReadOnly(StreamBytes.ReadToEnd(content));
        long start = source.Position;
        List<Exception>? failures = null;
        for (int i = 0; i < _tiers.Length; i++)
        {
            if (Volatile.Read(ref _readOnly[i]))
            {
                continue;
            }

            try
            {
                source.Position = start;
                _tiers[i].Add(key, source);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                OnTierFailure(i, "add", key, e);
                Collect(ref failures, e);
                TryDeleteAfterFailedAdd(i, key);
            }
        }

        ThrowIfFailed(failures, key, "add");
        _metrics.Added(source.Position - start);
    }

    /// <inheritdoc/>
    public async ValueTask AddAsync(CacheKey key, Stream content, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        cancellationToken.ThrowIfCancellationRequested();
        var source = content.CanSeek ? content : ReadOnly(await StreamBytes.ReadToEndAsync(content, cancellationToken).ConfigureAwait(false));
        long start = source.Position;
        List<Exception>? failures = null;
        for (int i = 0; i < _tiers.Length; i++)
        {
            if (Volatile.Read(ref _readOnly[i]))
            {
                continue;
            }

            try
            {
                source.Position = start;
                await _tiers[i].AddAsync(key, source, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                OnTierFailure(i, "add", key, e);
                Collect(ref failures, e);
                TryDeleteAfterFailedAdd(i, key);
            }
        }

        ThrowIfFailed(failures, key, "add");
        _metrics.Added(source.Position - start);
    }

    /// <inheritdoc/>
    public void Delete(CacheKey key)
    {
        List<Exception>? failures = null;
        for (int i = 0; i < _tiers.Length; i++)
        {
            try
            {
                _tiers[i].Delete(key);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                OnTierFailure(i, "delete", key, e);
                Collect(ref failures, e);
            }
        }

        ThrowIfFailed(failures, key, "delete");
        _metrics.Deleted();
    }

    /// <inheritdoc/>
    public async ValueTask DeleteAsync(CacheKey key, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        List<Exception>? failures = null;
        for (int i = 0; i < _tiers.Length; i++)
        {
            try
            {
                await _tiers[i].DeleteAsync(key, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                OnTierFailure(i, "delete", key, e);
                Collect(ref failures, e);
            }
        }

        ThrowIfFailed(failures, key, "delete");
        _metrics.Deleted();
    }

    /// <summary>
    /// Runs <paramref name="operation"/> on every tier that is not an <see cref="ISharedWasmCodeCache"/>;
    /// failures are logged and counted like any tier failure and then rethrown.
    /// </summary>
    internal void ForEachLocalTier(Action<IWasmCodeCache> operation, CacheKey key, string name)
    {
        List<Exception>? failures = null;
        for (int i = 0; i < _tiers.Length; i++)
        {
            if (_tiers[i] is ISharedWasmCodeCache)
            {
                continue;
            }

            try
            {
                operation(_tiers[i]);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                OnTierFailure(i, name, key, e);
                Collect(ref failures, e);
            }
        }

        ThrowIfFailed(failures, key, name);
    }

    /// <summary>Disposes the tiers when this cache owns them.</summary>
    public void Dispose()
    {
        if (_ownsTiers)
        {
            foreach (var tier in _tiers)
            {
                (tier as IDisposable)?.Dispose();
            }
        }
    }

    /// <summary>Disposes the tiers when this cache owns them.</summary>
    /// <returns>A task that completes when the tiers are disposed.</returns>
    public async ValueTask DisposeAsync()
    {
        if (_ownsTiers)
        {
            foreach (var tier in _tiers)
            {
                if (tier is IAsyncDisposable asyncDisposable)
                {
                    await asyncDisposable.DisposeAsync().ConfigureAwait(false);
                }
                else
                {
                    (tier as IDisposable)?.Dispose();
                }
            }
        }
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
    private void Promote(int found, CacheKey key, ReadOnlyMemory<byte> bytes)
    {
        for (int j = 0; j < found; j++)
        {
            if (Volatile.Read(ref _readOnly[j]))
            {
                continue;
            }

            try
            {
                _tiers[j].Add(key, ReadOnly(bytes));
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                OnTierFailure(j, "add", key, e);
            }
        }
    }

    private async ValueTask PromoteAsync(int found, CacheKey key, ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        for (int j = 0; j < found; j++)
        {
            if (Volatile.Read(ref _readOnly[j]))
            {
                continue;
            }

            try
            {
                await _tiers[j].AddAsync(key, ReadOnly(bytes), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                OnTierFailure(j, "add", key, e);
            }
        }
    }

    private void TryDeleteAfterFailedAdd(int tier, CacheKey key)
    {
        try
        {
            _tiers[tier].Delete(key);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            OnTierFailure(tier, "delete", key, e);
        }
    }

    private void OnTierFailure(int tier, string operation, CacheKey key, Exception e)
    {
        if (e is ReadOnlyWasmCodeCacheException)
        {
            Volatile.Write(ref _readOnly[tier], true); // not offered a copy again
            return; // a read-only tier (code shipped with the app) takes no writes: not a failure
        }

        _metrics.TierFailure(operation);
        LogTierFailed(_logger, tier, _tiers[tier].GetType().Name, operation, key, e);
    }

    /// <summary>Keeps a tier's failure for rethrowing; a read-only tier refusing a write is not one.</summary>
    private static void Collect(ref List<Exception>? failures, Exception e)
    {
        if (e is not ReadOnlyWasmCodeCacheException)
        {
            (failures ??= []).Add(e);
        }
    }

    private static void ThrowIfFailed(List<Exception>? failures, CacheKey key, string operation)
    {
        if (failures is null)
        {
            return;
        }

        if (failures.Count == 1)
        {
            ExceptionDispatchInfo.Capture(failures[0]).Throw();
        }

        throw new AggregateException($"The {operation} of cache key {key} failed on {failures.Count} tiers.", failures);
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "Cache tier {Tier} ({Backend}) failed to {Operation} key {Key}")]
    private static partial void LogTierFailed(ILogger logger, int tier, string backend, string operation, CacheKey key, Exception exception);
}
