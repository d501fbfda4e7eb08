namespace FileCache;

/// <summary>Options of a cache registered with <c>AddWasmCodeCache</c>.</summary>
internal sealed class WasmCodeCacheOptions
{
    /// <summary>The tiers, fastest first. Filled by the builder's <c>Use…</c> calls.</summary>
    internal List<TierRegistration> Tiers { get; } = [];

    /// <summary>How many tiers are configured.</summary>
    public int TierCount => Tiers.Count;
}

/// <summary>One registered tier: how to create it, whether the container owns it, and its declared locality (else from its markers).</summary>
internal sealed record TierRegistration(Func<IServiceProvider, IWasmCodeCache> Create, bool Owned, WasmCodeCacheLocality? Locality);
