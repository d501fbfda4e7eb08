using FileCache;
using FileCache.Diagnostics;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Microsoft.Extensions.DependencyInjection;

// The health check of a registered cache (services.AddHealthChecks().AddWasmCodeCache()).
public static partial class WasmCodeCacheServiceCollectionExtensions
{
    /// <summary>
    /// Adds a health check of the <see cref="IWasmCodeCache"/> registered with <c>AddWasmCodeCache</c>
    /// (or, with <paramref name="serviceKey"/>, with <c>AddKeyedWasmCodeCache</c>): every tier that has
    /// a probe is checked (disk directory usable and private; distributed store reachable and its circuit closed).
    /// </summary>
    /// <param name="builder">The health checks builder.</param>
    /// <param name="name">The check's name.</param>
    /// <param name="failureStatus">The status reported when a tier is unusable; <see langword="null"/> for <see cref="HealthStatus.Unhealthy"/>.</param>
    /// <param name="tags">Tags to filter checks by.</param>
    /// <param name="serviceKey">The key of a keyed cache; <see langword="null"/> for the default one.</param>
    /// <returns>The builder.</returns>
    public static IHealthChecksBuilder AddWasmCodeCache(this IHealthChecksBuilder builder, string name = "filecache", HealthStatus? failureStatus = null, IEnumerable<string>? tags = null, string? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrEmpty(name);
        return builder.Add(new HealthCheckRegistration(
            name,
            sp => new WasmCodeCacheHealthCheck(() => serviceKey is null ? sp.GetRequiredService<IWasmCodeCache>() : sp.GetRequiredKeyedService<IWasmCodeCache>(serviceKey)),
            failureStatus,
            tags));
    }
}
