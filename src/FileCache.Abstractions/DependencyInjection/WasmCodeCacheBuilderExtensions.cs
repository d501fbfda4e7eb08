using FileCache;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Extension points for backend packages: adding a tier to a cache.</summary>
public static class WasmCodeCacheBuilderExtensions
{
    /// <summary>
    /// Adds a tier after the ones already added (tiers are read fastest first, so add the fastest
    /// first). The factory runs once, when the cache is first resolved.
    /// </summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="factory">Creates the tier. It receives the service provider and the tier's
    /// options name (unique per tier, see the returned value).</param>
    /// <returns>The tier's options name, for registering the tier's own named options.</returns>
    public static string AddTier(this IWasmCodeCacheBuilder builder, Func<IServiceProvider, string, IWasmCodeCache> factory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(factory);
        string tierName = WasmCodeCacheRegistry.For(builder.Services).NextTierName(builder.Name);
        builder.Services.Configure<WasmCodeCacheOptions>(builder.Name, o => o.Tiers.Add(sp => factory(sp, tierName)));
        return tierName;
    }

    /// <summary>
    /// Adds a tier in front of every other, whenever it is called (for a read-only tier of code that
    /// ships with the app: <c>UsePrecompiled()</c>). The factory runs once, when the cache is first resolved.
    /// </summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="factory">Creates the tier (see <see cref="AddTier"/>).</param>
    /// <returns>The tier's options name.</returns>
    public static string AddFirstTier(this IWasmCodeCacheBuilder builder, Func<IServiceProvider, string, IWasmCodeCache> factory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(factory);
        string tierName = WasmCodeCacheRegistry.For(builder.Services).NextTierName(builder.Name);
        builder.Services.Configure<WasmCodeCacheOptions>(builder.Name, o => o.Tiers.Insert(0, sp => factory(sp, tierName)));
        return tierName;
    }

    /// <summary>Adds an existing cache instance as the next tier. The instance is not disposed by the container.</summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="cache">The tier.</param>
    /// <returns>The builder.</returns>
    public static IWasmCodeCacheBuilder UseCache(this IWasmCodeCacheBuilder builder, IWasmCodeCache cache)
    {
        ArgumentNullException.ThrowIfNull(cache);
        builder.AddTier((_, _) => new NonOwnedTier(cache));
        return builder;
    }

    /// <summary>Hides IDisposable from the container for an instance the caller owns.</summary>
    private sealed class NonOwnedTier(IWasmCodeCache inner) : IWasmCodeCache
    {
        public bool TryGet(CacheKey key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Stream? content) => inner.TryGet(key, out content);

        public void Add(CacheKey key, Stream content) => inner.Add(key, content);

        public void Delete(CacheKey key) => inner.Delete(key);

        public ValueTask<Stream?> GetAsync(CacheKey key, CancellationToken cancellationToken = default) => inner.GetAsync(key, cancellationToken);

        public ValueTask AddAsync(CacheKey key, Stream content, CancellationToken cancellationToken = default) => inner.AddAsync(key, content, cancellationToken);

        public ValueTask DeleteAsync(CacheKey key, CancellationToken cancellationToken = default) => inner.DeleteAsync(key, cancellationToken);
    }
}
