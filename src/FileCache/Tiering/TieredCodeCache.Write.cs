using System.Runtime.ExceptionServices;
using FileCache.Internal;
using Microsoft.Extensions.Logging;

namespace FileCache.Tiering;

// Adds, deletes, the local-only operations of a loader, and the one failure policy of writes.
internal sealed partial class TieredCodeCache
{
    /// <inheritdoc/>
    public void Add(CacheKey key, Stream content) => Completed.Result(Add<Blocking>(key, content, CancellationToken.None));

    /// <inheritdoc/>
    public ValueTask AddAsync(CacheKey key, Stream content, CancellationToken cancellationToken = default)
        => Add<NonBlocking>(key, content, cancellationToken);

    /// <inheritdoc/>
    public void Delete(CacheKey key) => Completed.Result(Delete<Blocking>(key, CancellationToken.None));

    /// <inheritdoc/>
    public ValueTask DeleteAsync(CacheKey key, CancellationToken cancellationToken = default) => Delete<NonBlocking>(key, cancellationToken);

    private async ValueTask Add<TMode>(CacheKey key, Stream content, CancellationToken cancellationToken)
        where TMode : struct, IIoMode
    {
        ArgumentNullException.ThrowIfNull(content);
        cancellationToken.ThrowIfCancellationRequested();
        // Every tier reads the same bytes: rewind a seekable source, buffer any other.
        var source = content.CanSeek
            ? content
            : ReadOnly(TMode.IsAsync ? await StreamBytes.ReadToEndAsync(content, cancellationToken).ConfigureAwait(false) : StreamBytes.ReadToEnd(content));
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
                if (TMode.IsAsync)
                {
                    await _caches[i].AddAsync(key, source, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    _caches[i].Add(key, source);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                OnTierFailure(i, "add", key, e);
                Collect(ref failures, e);
                TryDeleteAfterFailedAdd(i, key);
            }
        }

        ThrowIfFailed(failures, key, "add");
        _metrics?.Added(source.Position - start);
    }

    private async ValueTask Delete<TMode>(CacheKey key, CancellationToken cancellationToken)
        where TMode : struct, IIoMode
    {
        cancellationToken.ThrowIfCancellationRequested();
        List<Exception>? failures = null;
        for (int i = 0; i < _tiers.Length; i++)
        {
            try
            {
                if (TMode.IsAsync)
                {
                    await _caches[i].DeleteAsync(key, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    _caches[i].Delete(key);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                OnTierFailure(i, "delete", key, e);
                Collect(ref failures, e);
            }
        }

        ThrowIfFailed(failures, key, "delete");
        _metrics?.Deleted();
    }

    /// <summary>
    /// Removes <paramref name="key"/> from the tiers this host owns (every tier whose locality is not
    /// <see cref="WasmCodeCacheLocality.Fleet"/>): for a loader whose engine cannot use the entry, which
    /// hosts of a fleet may still use.
    /// </summary>
    /// <param name="key">The key.</param>
    public void DeleteLocal(CacheKey key) => ForEachLocalTier(tier => tier.Delete(key), key, "delete");

    /// <summary>Stores <paramref name="content"/> in the tiers this host owns; fleet tiers keep what they hold.</summary>
    /// <param name="key">The key.</param>
    /// <param name="content">The content; read once per local tier, so it must be seekable when there are several.</param>
    public void AddLocal(CacheKey key, Stream content)
    {
        ArgumentNullException.ThrowIfNull(content);
        long start = content.CanSeek ? content.Position : 0;
        ForEachLocalTier(
            tier =>
            {
                if (content.CanSeek)
                {
                    content.Position = start;
                }

                tier.Add(key, content);
            },
            key,
            "add");
    }

    /// <summary>Runs <paramref name="operation"/> on every tier that is not fleet-wide; failures are logged, counted and rethrown.</summary>
    private void ForEachLocalTier(Action<IWasmCodeCache> operation, CacheKey key, string name)
    {
        List<Exception>? failures = null;
        for (int i = 0; i < _tiers.Length; i++)
        {
            if (_tiers[i].Locality == WasmCodeCacheLocality.Fleet || (name == "add" && Volatile.Read(ref _readOnly[i])))
            {
                continue;
            }

            try
            {
                operation(_caches[i]);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                OnTierFailure(i, name, key, e);
                Collect(ref failures, e);
            }
        }

        ThrowIfFailed(failures, key, name);
    }

    private void TryDeleteAfterFailedAdd(int tier, CacheKey key)
    {
        try
        {
            _caches[tier].Delete(key);
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

        _metrics?.TierFailure(operation);
        LogTierFailed(_logger, tier, _caches[tier].GetType().Name, operation, key, e);
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
