using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace FileCache.Tiering;

/// <summary>
/// What a tier set knows about one tier, fixed when the set is built: the only place that looks at a
/// tier's type (as HybridCache type-tests its backend once, in its constructor). The lookup, add, lock
/// and health paths read these fields and test nothing.
/// </summary>
/// <param name="Cache">The tier.</param>
/// <param name="Locality">Who fills it: declared at registration, else from its markers.</param>
/// <param name="Owned">Whether disposing the set disposes the tier.</param>
/// <param name="Entries">Its typed lookup, when it has one (else the stream contract is read into bytes).</param>
/// <param name="Lock">Its compile lock, when it offers one.</param>
/// <param name="Probe">Its health probe, when it has one.</param>
/// <param name="HoldsFiles">Whether its hits are verified files a loader can map.</param>
/// <param name="Metrics">Its own metrics, when it is one of ours (a set counts its lookups instead).</param>
internal sealed record TierTraits(
    IWasmCodeCache Cache,
    WasmCodeCacheLocality Locality,
    bool Owned,
    ICacheEntrySource? Entries,
    ICompileLockSource? Lock,
    IHealthCheck? Probe,
    bool HoldsFiles,
    Diagnostics.WasmCodeCacheMetrics? Metrics)
{
    /// <summary>Describes <paramref name="cache"/> once.</summary>
    public static TierTraits Of(IWasmCodeCache cache, bool owned, WasmCodeCacheLocality? declared) => new(
        cache,
        declared ?? (cache is IProcessLocalWasmCodeCache ? WasmCodeCacheLocality.Process
            : cache is ISharedWasmCodeCache ? WasmCodeCacheLocality.Fleet
            : WasmCodeCacheLocality.Machine),
        owned,
        cache as ICacheEntrySource,
        cache as ICompileLockSource,
        cache as IHealthCheck,
        cache is ICacheEntryFileSource,
        (cache as Diagnostics.IMeteredWasmCodeCache)?.Metrics);

    /// <summary>The name its measurements carry: its backend's, else its type's.</summary>
    public string Name => Metrics?.Backend ?? Cache.GetType().Name;

    /// <summary>Whether another process can have filled it (what a caller re-asks after waiting).</summary>
    public bool OtherProcessesFill => Locality != WasmCodeCacheLocality.Process;
}
