using System.Diagnostics;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace FileCache.Diagnostics;

/// <summary>
/// The health of a cache: asks the cache (and through <see cref="Tiering.TieredCodeCache"/> each tier)
/// that implements <see cref="IHealthCheck"/>: the disk tier checks that its directory is usable and
/// private, the distributed tier that its store answers and its circuit is closed. A cache without a
/// probe of its own (the memory tier) is healthy. Register it with
/// <c>services.AddHealthChecks().AddWasmCodeCache()</c>.
/// </summary>
/// <remarks>A failing cache never fails a load, so "unhealthy" here means "every load compiles", which an operator wants to know.</remarks>
internal sealed class WasmCodeCacheHealthCheck : IHealthCheck
{
    private readonly Func<IWasmCodeCache> _cache;

    /// <summary>Checks <paramref name="cache"/>.</summary>
    /// <param name="cache">The cache to check.</param>
    public WasmCodeCacheHealthCheck(IWasmCodeCache cache)
    {
        ArgumentNullException.ThrowIfNull(cache);
        _cache = () => cache;
    }

    /// <summary>Checks the cache <paramref name="resolve"/> returns, resolved at each check so that
    /// options that fail validation are reported, not thrown.</summary>
    internal WasmCodeCacheHealthCheck(Func<IWasmCodeCache> resolve) => _cache = resolve;

    /// <inheritdoc/>
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        IWasmCodeCache cache;
        try
        {
            cache = _cache();
        }
        catch (Microsoft.Extensions.Options.OptionsValidationException e)
        {
            return Task.FromResult(new HealthCheckResult(context.Registration.FailureStatus, $"the cache's options are invalid: {e.Message}", e));
        }

        return cache is IHealthCheck probe
            ? probe.CheckHealthAsync(context, cancellationToken)
            : Task.FromResult(HealthCheckResult.Healthy($"{cache.GetType().Name} needs no probe."));
    }

    /// <summary>Combines the checks of several tiers: the worst status wins; the description names every tier.</summary>
    /// <param name="tiers">The tiers, fastest first.</param>
    /// <param name="context">The check's context.</param>
    /// <param name="cancellationToken">Cancels the checks.</param>
    /// <returns>The combined result.</returns>
    internal static async Task<HealthCheckResult> CombineAsync(IReadOnlyList<Tiering.TierTraits> tiers, HealthCheckContext context, CancellationToken cancellationToken)
    {
        var status = HealthStatus.Healthy;
        var descriptions = new List<string>();
        var data = new Dictionary<string, object>();
        Exception? firstFailure = null;
        for (int i = 0; i < tiers.Count; i++)
        {
            string name = tiers[i].Cache.GetType().Name;
            if (tiers[i].Probe is not { } probe)
            {
                descriptions.Add($"tier {i} ({name}): no probe needed");
                continue;
            }

            long start = Stopwatch.GetTimestamp();
            HealthCheckResult result;
            try
            {
                result = await probe.CheckHealthAsync(context, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                result = new HealthCheckResult(context.Registration.FailureStatus, $"the probe threw {e.GetType().Name}: {e.Message}", e);
            }

            status = result.Status < status ? result.Status : status;
            firstFailure ??= result.Exception;
            descriptions.Add($"tier {i} ({name}): {result.Status}, {result.Description}");
            data[$"tier{i}.{name}.ms"] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            foreach (var (key, value) in result.Data)
            {
                data[$"tier{i}.{key}"] = value;
            }
        }

        return new HealthCheckResult(status, string.Join("; ", descriptions), firstFailure, data);
    }
}
