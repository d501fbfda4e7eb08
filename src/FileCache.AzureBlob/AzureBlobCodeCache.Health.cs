using System.Diagnostics;
using Azure;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Polly.CircuitBreaker;

namespace FileCache.AzureBlob;

// The health probe: reachability and the circuit's state.
internal sealed partial class AzureBlobCodeCache : IHealthCheck
{
    /// <inheritdoc/>
    /// <remarks>
    /// Degraded while the circuit is open (the store failed recently and is skipped) or writes are off
    /// after a 403; otherwise the record of a key that does not exist is asked for, bounded by
    /// <see cref="AzureBlobCodeCacheOptions.Timeout"/>, outside the circuit breaker so a probe never opens
    /// it. A store that does not answer is the registration's failure status.
    /// </remarks>
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        var data = new Dictionary<string, object> { ["circuit"] = _circuit.CircuitState.ToString(), ["readOnly"] = _readOnly };
        if (_circuit.CircuitState is CircuitState.Open or CircuitState.Isolated)
        {
            return HealthCheckResult.Degraded($"the store's circuit is open after recent failures: the tier is skipped for up to {_options.BreakDuration.TotalSeconds:F0} s", data: data);
        }

        long start = Stopwatch.GetTimestamp();
        try
        {
            await _container.GetBlobClient(_options.Prefix + "index/health-probe").ExistsAsync(cancellationToken).WaitAsync(_options.Timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsStoreFailure(e, cancellationToken) && e is not RequestFailedException { Status: 404 })
        {
            return new HealthCheckResult(context.Registration.FailureStatus, $"the store is not reachable: {e.GetType().Name}: {e.Message}", e, data);
        }

        var elapsed = Stopwatch.GetElapsedTime(start);
        data["ms"] = elapsed.TotalMilliseconds;
        return _readOnly && !_options.ReadOnly
            ? HealthCheckResult.Degraded($"the store answered in {elapsed.TotalMilliseconds:F1} ms but refused a write (403): this host only reads", data: data)
            : HealthCheckResult.Healthy($"the store answered in {elapsed.TotalMilliseconds:F1} ms; circuit {_circuit.CircuitState}", data);
    }
}
