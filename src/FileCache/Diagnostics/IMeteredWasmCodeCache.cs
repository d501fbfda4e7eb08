namespace FileCache.Diagnostics;

/// <summary>
/// One of our tiers, which records its own measurements: a tier set reads this once when it is built and
/// counts the tier's lookups itself (<see cref="WasmCodeCacheMetrics.CountsLookups"/>).
/// </summary>
internal interface IMeteredWasmCodeCache
{
    /// <summary>The tier's metrics.</summary>
    WasmCodeCacheMetrics Metrics { get; }
}
