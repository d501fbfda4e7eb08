using System.Diagnostics.Metrics;
using FileCache;
using FileCache.Memory;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the in-memory tier to a cache builder.</summary>
public static class MemoryCodeCacheBuilderExtensions
{
    /// <summary>Adds an in-process, size-bounded LRU tier (<see cref="MemoryCodeCache"/>).</summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="configure">Configures the tier's options; optional.</param>
    /// <returns>The builder.</returns>
    public static IWasmCodeCacheBuilder UseMemory(this IWasmCodeCacheBuilder builder, Action<MemoryCodeCacheOptions>? configure = null)
    {
        var options = builder.AddTier<MemoryCodeCacheOptions, MemoryCodeCacheOptionsValidator>(
            static (sp, o) => new MemoryCodeCache(o, sp.GetService<IMeterFactory>(), sp.GetLogger<MemoryCodeCache>()));
        if (configure is not null)
        {
            options.Configure(configure);
        }

        return builder;
    }
}
