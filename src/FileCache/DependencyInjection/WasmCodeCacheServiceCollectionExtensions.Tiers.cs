using System.Diagnostics.CodeAnalysis;
using FileCache;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

// Tiers: UseCache for any IWasmCodeCache, and AddTier/AddFirstTier for our own tier packages.
public static partial class WasmCodeCacheServiceCollectionExtensions
{
    /// <summary>
    /// Adds a tier after the ones already added (tiers are read fastest first, so add the fastest
    /// first). The factory runs once, when the cache is first resolved.
    /// </summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="factory">Creates the tier. It receives the service provider and the tier's
    /// options name (unique per tier, see the returned value).</param>
    /// <returns>The tier's options name, for registering the tier's own named options.</returns>
    internal static string AddTier(this IWasmCodeCacheBuilder builder, Func<IServiceProvider, string, IWasmCodeCache> factory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(factory);
        string tierName = WasmCodeCacheRegistry.For(builder.Services).NextTierName(builder.Name);
        builder.Services.Configure<WasmCodeCacheOptions>(builder.Name, o => o.Tiers.Add(new TierRegistration(sp => factory(sp, tierName), Owned: true, Locality: null)));
        return tierName;
    }

    /// <summary>
    /// Adds a tier in front of every other, whenever it is called (for a read-only tier of code that
    /// ships with the app: <c>UsePrecompiled()</c>). The factory runs once, when the cache is first resolved.
    /// </summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="factory">Creates the tier (see <see cref="AddTier"/>).</param>
    /// <returns>The tier's options name.</returns>
    internal static string AddFirstTier(this IWasmCodeCacheBuilder builder, Func<IServiceProvider, string, IWasmCodeCache> factory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(factory);
        string tierName = WasmCodeCacheRegistry.For(builder.Services).NextTierName(builder.Name);
        builder.Services.Configure<WasmCodeCacheOptions>(builder.Name, o => o.Tiers.Insert(0, new TierRegistration(sp => factory(sp, tierName), Owned: true, Locality: null)));
        return tierName;
    }

    /// <summary>
    /// Adds one of our tiers with its own named options, validated at start by <typeparamref name="TValidator"/>:
    /// the one way every <c>Use…</c> method registers a tier.
    /// </summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="factory">Creates the tier from the service provider and the tier's options.</param>
    /// <param name="first">In front of every other tier (<c>UsePrecompiled</c>), else after the ones added.</param>
    /// <returns>The tier's options, to configure.</returns>
    internal static OptionsBuilder<TOptions> AddTier<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] TOptions, [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TValidator>(this IWasmCodeCacheBuilder builder, Func<IServiceProvider, TOptions, IWasmCodeCache> factory, bool first = false)
        where TOptions : class
        where TValidator : class, IValidateOptions<TOptions>
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(factory);
        Func<IServiceProvider, string, IWasmCodeCache> create = (sp, name) => factory(sp, sp.GetRequiredService<IOptionsMonitor<TOptions>>().Get(name));
        string tierName = first ? builder.AddFirstTier(create) : builder.AddTier(create);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TOptions>, TValidator>());
        var options = builder.Services.AddOptions<TOptions>(tierName).ValidateOnStart();
        ClosedOptionsServices.Add<TOptions>(builder.Services);
        return options;
    }

    /// <summary>
    /// Adds an existing cache instance as the next tier, as it is: its typed lookup, compile lock, health
    /// probe and locality are kept (nothing wraps it). The instance is not disposed by the container.
    /// Its locality comes from its markers (a distributed tier is <see cref="WasmCodeCacheLocality.Fleet"/>),
    /// else it is <see cref="WasmCodeCacheLocality.Machine"/>; a third-party store that fleet hosts share
    /// should declare it with <see cref="UseCache(IWasmCodeCacheBuilder, IWasmCodeCache, WasmCodeCacheLocality)"/>.
    /// </summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="cache">The tier.</param>
    /// <returns>The builder.</returns>
    public static IWasmCodeCacheBuilder UseCache(this IWasmCodeCacheBuilder builder, IWasmCodeCache cache)
        => UseCache(builder, cache, null);

    /// <summary>
    /// Adds an existing cache instance as the next tier, declaring who shares its entries: a store that
    /// hosts of a fleet share must be <see cref="WasmCodeCacheLocality.Fleet"/>, so that a host whose
    /// engine cannot use an entry leaves it for the hosts that can. The instance is not disposed by the container.
    /// </summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="cache">The tier.</param>
    /// <param name="locality">Who fills and reads its entries.</param>
    /// <returns>The builder.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="locality"/> is not a defined value.</exception>
    public static IWasmCodeCacheBuilder UseCache(this IWasmCodeCacheBuilder builder, IWasmCodeCache cache, WasmCodeCacheLocality locality)
    {
        if (!Enum.IsDefined(locality))
        {
            throw new ArgumentOutOfRangeException(nameof(locality), locality, "Not a WasmCodeCacheLocality value: use Process, Machine or Fleet.");
        }

        return UseCache(builder, cache, (WasmCodeCacheLocality?)locality);
    }

    private static IWasmCodeCacheBuilder UseCache(IWasmCodeCacheBuilder builder, IWasmCodeCache cache, WasmCodeCacheLocality? locality)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(cache);
        WasmCodeCacheRegistry.For(builder.Services).NextTierName(builder.Name);
        builder.Services.Configure<WasmCodeCacheOptions>(builder.Name, o => o.Tiers.Add(new TierRegistration(_ => cache, Owned: false, locality)));
        return builder;
    }
}
