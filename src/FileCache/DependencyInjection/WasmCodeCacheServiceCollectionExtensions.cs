using System.Diagnostics.Metrics;
using FileCache;
using FileCache.Tiering;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers <see cref="IWasmCodeCache"/> in a service collection, adds its tiers and its health check.</summary>
public static partial class WasmCodeCacheServiceCollectionExtensions
{
    /// <summary>
    /// Registers the unkeyed <see cref="IWasmCodeCache"/> singleton and returns a builder that adds its
    /// tiers (<c>UseMemory</c>, <c>UseDisk</c>, ...). Calling it again returns a builder for the same cache.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <returns>The builder.</returns>
    public static IWasmCodeCacheBuilder AddWasmCodeCache(this IServiceCollection services)
        => AddCore(services, Options.Options.DefaultName, keyed: false);

    /// <summary>Registers the unkeyed <see cref="IWasmCodeCache"/> singleton and configures its tiers.</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Adds tiers, for example <c>c => c.UseMemory().UseDisk(dir)</c>.</param>
    /// <returns>The builder.</returns>
    public static IWasmCodeCacheBuilder AddWasmCodeCache(this IServiceCollection services, Action<IWasmCodeCacheBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        var builder = services.AddWasmCodeCache();
        configure(builder);
        return builder;
    }

    /// <summary>
    /// Registers a keyed <see cref="IWasmCodeCache"/> singleton (resolve it with
    /// <c>[FromKeyedServices(serviceKey)]</c>) for hosts that need more than one cache.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="serviceKey">The service key, also the options name of the cache's settings.</param>
    /// <param name="configure">Adds tiers; optional.</param>
    /// <returns>The builder.</returns>
    public static IWasmCodeCacheBuilder AddKeyedWasmCodeCache(this IServiceCollection services, string serviceKey, Action<IWasmCodeCacheBuilder>? configure = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceKey);
        var builder = AddCore(services, serviceKey, keyed: true);
        configure?.Invoke(builder);
        return builder;
    }

    private static WasmCodeCacheBuilder AddCore(IServiceCollection services, string name, bool keyed)
    {
        ArgumentNullException.ThrowIfNull(services);
        var builder = new WasmCodeCacheBuilder(services, name);
        if (!WasmCodeCacheRegistry.For(services).TryAddCache(name))
        {
            return builder; // already registered: a builder for the same cache
        }

        services.AddOptions();
        services.AddOptions<WasmCodeCacheOptions>(name).ValidateOnStart();
        ClosedOptionsServices.Add<WasmCodeCacheOptions>(services);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<WasmCodeCacheOptions>, WasmCodeCacheOptionsValidator>());
        if (keyed)
        {
            services.TryAddKeyedSingleton<IWasmCodeCache>(name, (sp, _) => Create(sp, name));
        }
        else
        {
            services.TryAddSingleton<IWasmCodeCache>(sp => Create(sp, name));
        }

        return builder;
    }

    private static IWasmCodeCache Create(IServiceProvider services, string name)
    {
        var options = services.GetRequiredService<IOptionsMonitor<WasmCodeCacheOptions>>().Get(name);
        var tiers = options.Tiers.ConvertAll(t => TierTraits.Of(t.Create(services), t.Owned, t.Locality));
        // One tier the container owns, with nothing declared, is served as it is; anything else (an
        // instance the caller owns, a declared locality, several tiers) is a set that keeps those facts.
        return tiers is [{ Owned: true } only] && options.Tiers[0].Locality is null
            ? only.Cache
            : new TieredCodeCache([.. tiers], services.GetLogger<TieredCodeCache>(), services.GetService<IMeterFactory>());
    }

    private sealed class WasmCodeCacheBuilder(IServiceCollection services, string name) : IWasmCodeCacheBuilder
    {
        public IServiceCollection Services { get; } = services;

        public string Name { get; } = name;
    }
}
