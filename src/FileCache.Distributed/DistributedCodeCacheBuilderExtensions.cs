using System.Diagnostics.Metrics;
using FileCache;
using FileCache.Distributed;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the distributed tier to a cache builder.</summary>
public static class DistributedCodeCacheBuilderExtensions
{
    /// <summary>
    /// Adds a tier over the registered <see cref="IDistributedCache"/> (for example
    /// <c>services.AddStackExchangeRedisCache(...)</c>). Put it last: hits are promoted into the faster
    /// tiers before it, and adds write through to it.
    /// </summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="configure">Configures the tier; set <see cref="DistributedCodeCacheOptions.AuthenticationKey"/>.</param>
    /// <returns>The builder.</returns>
    public static IWasmCodeCacheBuilder UseDistributed(this IWasmCodeCacheBuilder builder, Action<DistributedCodeCacheOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        builder.AddTier<DistributedCodeCacheOptions, DistributedCodeCacheOptionsValidator>(static (sp, o) => new DistributedCodeCache(
            sp.GetService<IDistributedCache>() ?? throw new InvalidOperationException(
                "UseDistributed needs an IDistributedCache in the container, for example services.AddStackExchangeRedisCache(...)."),
            o,
            sp.GetService<IMeterFactory>(),
            sp.GetLogger<DistributedCodeCache>(),
            sp.GetService<TimeProvider>())).Configure(configure);
        return builder;
    }
}
