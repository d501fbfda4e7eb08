using FileCache.Internal;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Polly.CircuitBreaker;

namespace FileCache.Distributed;

// The fleet compile lock and the health probe.
internal sealed partial class DistributedCodeCache
{
    /// <inheritdoc/>
    /// <remarks>
    /// Degraded while the circuit is open (the store failed recently and is skipped); otherwise the
    /// store is asked for a key that does not exist, bounded by <see cref="DistributedCodeCacheOptions.Timeout"/>,
    /// outside the circuit breaker so a probe never opens it. A store that does not answer is the
    /// registration's failure status.
    /// </remarks>
    public async Task<Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult> CheckHealthAsync(Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        var data = new Dictionary<string, object> { ["circuit"] = _circuit.CircuitState.ToString() };
        if (_circuit.CircuitState is CircuitState.Open or CircuitState.Isolated)
        {
            return Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Degraded($"the store's circuit is open after recent failures: the tier is skipped for up to {_options.BreakDuration.TotalSeconds:F0} s", data: data);
        }

        long start = Stopwatch.GetTimestamp();
        try
        {
            await _store.GetAsync(_options.KeyPrefix + "health-probe", cancellationToken).WaitAsync(_options.Timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsStoreFailure(e, cancellationToken))
        {
            return new Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult(context.Registration.FailureStatus, $"the store is not reachable: {e.GetType().Name}: {e.Message}", e, data);
        }

        var elapsed = Stopwatch.GetElapsedTime(start);
        data["ms"] = elapsed.TotalMilliseconds;
        return Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Healthy($"the store answered in {elapsed.TotalMilliseconds:F1} ms; circuit {_circuit.CircuitState}", data);
    }

    /// <inheritdoc/>
    /// <remarks>Waits for <see cref="TryAcquireCompileLockAsync"/> at the tier's one blocking point (see <see cref="TryGet"/>).</remarks>
    public IDisposable? TryAcquireCompileLock(CacheKey key, TimeSpan timeout, CancellationToken cancellationToken = default)
        => Completed.WaitForStore(TryAcquireCompileLockAsync(key, timeout, cancellationToken));

    /// <inheritdoc/>
    /// <remarks>
    /// Without <see cref="DistributedCodeCacheOptions.FleetCompileLock"/>, or when the store fails, a
    /// lock that holds nothing at once (compiling without it costs only a duplicate compile). Otherwise
    /// tries the store's lock every 100 ms until it is taken or <paramref name="timeout"/> passes; a
    /// holder that died stops blocking when its lock expires (<see cref="DistributedCodeCacheOptions.FleetCompileLockExpiry"/>).
    /// </remarks>
    public async ValueTask<IDisposable?> TryAcquireCompileLockAsync(CacheKey key, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        if (_options.FleetCompileLock is not { } fleet)
        {
            return NoLock.Instance;
        }

        string resource = _options.KeyPrefix + "compile-lock:" + key.ToString();
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (true)
        {
            try
            {
                if (await fleet.TryAcquireAsync(resource, _options.FleetCompileLockExpiry, cancellationToken).AsTask().WaitAsync(_options.Timeout, cancellationToken).ConfigureAwait(false) is { } held)
                {
                    return new FleetLock(held, this, key);
                }
            }
            catch (Exception e) when (IsStoreFailure(e, cancellationToken))
            {
                OnStoreFailure("lock", key, e);
                return NoLock.Instance;
            }

            if (Environment.TickCount64 >= deadline)
            {
                return null;
            }

            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>A lock that holds nothing: there is no fleet lock, or the store could not be asked.</summary>
    private sealed class NoLock : IDisposable
    {
        public static readonly NoLock Instance = new();

        public void Dispose()
        {
        }
    }

    /// <summary>Releases the store's lock without blocking the caller; if the release is lost, the lock expires.</summary>
    private sealed class FleetLock(IAsyncDisposable held, DistributedCodeCache owner, CacheKey key) : IDisposable
    {
        public void Dispose() => _ = Release();

        private async Task Release()
        {
            try
            {
                await held.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (IsStoreFailure(e, CancellationToken.None))
            {
                owner.OnStoreFailure("unlock", key, e);
            }
        }
    }
}
