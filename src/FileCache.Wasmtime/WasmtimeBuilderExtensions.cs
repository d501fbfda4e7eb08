using System.Diagnostics.Metrics;
using FileCache;
using FileCache.Wasmtime;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers <see cref="WasmtimeModuleCache"/> over a cache.</summary>
public static class WasmtimeBuilderExtensions
{
    /// <summary>Registers a <see cref="WasmtimeModuleCache"/> singleton over this builder's cache
    /// (keyed like the cache when the builder is keyed).</summary>
    /// <param name="builder">The cache builder.</param>
    /// <returns>The builder.</returns>
    public static IWasmCodeCacheBuilder AddWasmtime(this IWasmCodeCacheBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (builder.Name.Length == 0)
        {
            builder.Services.TryAddSingleton(static sp => new WasmtimeModuleCache(
                sp.GetRequiredService<IWasmCodeCache>(), sp.GetService<ILogger<WasmtimeModuleCache>>(), sp.GetService<IMeterFactory>()));
        }
        else
        {
            string key = builder.Name;
            builder.Services.TryAddKeyedSingleton(key, (sp, _) => new WasmtimeModuleCache(
                sp.GetRequiredKeyedService<IWasmCodeCache>(key), sp.GetService<ILogger<WasmtimeModuleCache>>(), sp.GetService<IMeterFactory>()));
        }

        return builder;
    }
}
