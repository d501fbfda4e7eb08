namespace FileCache;

/// <summary>Options of a cache registered with <c>AddWasmCodeCache</c>.</summary>
public sealed class WasmCodeCacheOptions
{
    /// <summary>The tiers' factories, fastest first. Filled by the builder's <c>Use…</c> calls.</summary>
    internal List<Func<IServiceProvider, IWasmCodeCache>> Tiers { get; } = [];

    /// <summary>How many tiers are configured.</summary>
    public int TierCount => Tiers.Count;
}
