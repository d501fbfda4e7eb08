using System.Diagnostics.Metrics;
using FileCache;
using FileCache.Wasmtime;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers <see cref="WasmtimeModuleCache"/> over a cache.</summary>
public static class WasmtimeBuilderExtensions
{
    /// <summary>Registers a <see cref="WasmtimeModuleCache"/> singleton over this builder's cache
    /// (keyed like the cache when the builder is keyed).</summary>
    /// <param name="builder">The cache builder.</param>
    /// <returns>The builder.</returns>
    public static IWasmCodeCacheBuilder AddWasmtime(this IWasmCodeCacheBuilder builder) => builder.AddWasmtime(null);

    /// <summary>Registers a <see cref="WasmtimeModuleCache"/> singleton over this builder's cache
    /// (keyed like the cache when the builder is keyed), with options validated at start.</summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="configure">Configures the loader (for example <see cref="WasmtimeModuleCacheOptions.LiveModuleBudget"/>); optional.</param>
    /// <returns>The builder.</returns>
    public static IWasmCodeCacheBuilder AddWasmtime(this IWasmCodeCacheBuilder builder, Action<WasmtimeModuleCacheOptions>? configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        string name = builder.Name;
        var options = builder.Services.AddOptions<WasmtimeModuleCacheOptions>(name)
            .Validate(static o => o.LiveModuleBudget >= 0 && o.CompileLockTimeout >= TimeSpan.Zero, "WasmtimeModuleCacheOptions.LiveModuleBudget and CompileLockTimeout must not be negative.")
            .Validate<IServiceProvider>(
                (_, sp) => !BytesInFrontOfFiles(name.Length == 0 ? sp.GetRequiredService<IWasmCodeCache>() : sp.GetRequiredKeyedService<IWasmCodeCache>(name)),
                MemoryInFrontOfDisk)
            .ValidateOnStart();
        ClosedOptionsServices.Add<WasmtimeModuleCacheOptions>(builder.Services);
        if (configure is not null)
        {
            options.Configure(configure);
        }

        if (name.Length == 0)
        {
            builder.Services.TryAddSingleton(static sp => new WasmtimeModuleCache(
                sp.GetRequiredService<IWasmCodeCache>(), sp.GetLogger<WasmtimeModuleCache>(), sp.GetService<IMeterFactory>(),
                sp.GetRequiredService<IOptionsMonitor<WasmtimeModuleCacheOptions>>().Get(Options.Options.DefaultName)));
        }
        else
        {
            builder.Services.TryAddKeyedSingleton(name, (sp, _) => new WasmtimeModuleCache(
                sp.GetRequiredKeyedService<IWasmCodeCache>(name), sp.GetLogger<WasmtimeModuleCache>(), sp.GetService<IMeterFactory>(),
                sp.GetRequiredService<IOptionsMonitor<WasmtimeModuleCacheOptions>>().Get(name)));
        }

        return builder;
    }

    private const string MemoryInFrontOfDisk =
        "AddWasmtime: UseMemory() in front of UseDisk() makes Wasmtime loads slower, not faster. A memory hit is a copy that Wasmtime deserializes from bytes "
        + "(about 14 ms for esbuild.wasm, measured), where the disk tier hands Wasmtime its verified file to map (about 0.3 ms); and loaded modules are kept in "
        + "process already (WasmtimeModuleCacheOptions.LiveModuleBudget). Remove UseMemory() from this cache (UseMemory() in front of UseDistributed() alone is fine).";

    /// <summary>Whether a tier that holds bytes in this process comes before a tier that hands out files (a memory tier before the disk tier).</summary>
    private static bool BytesInFrontOfFiles(IWasmCodeCache cache)
    {
        if (cache is not FileCache.Tiering.TieredCodeCache tiers)
        {
            return false;
        }

        bool bytesSeen = false;
        foreach (var tier in tiers.Tiers)
        {
            if (tier is ICacheEntryFileSource && bytesSeen)
            {
                return true;
            }

            bytesSeen |= tier is IProcessLocalWasmCodeCache;
        }

        return false;
    }
}
