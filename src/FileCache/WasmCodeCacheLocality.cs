namespace FileCache;

/// <summary>
/// Who can fill and read a tier's entries: what a loader needs to know of a tier to decide whether to
/// ask it again after waiting, and whether it may remove an entry that its own engine cannot use.
/// </summary>
public enum WasmCodeCacheLocality
{
    /// <summary>Only this process (a memory tier): not asked again after waiting for another process.</summary>
    Process,

    /// <summary>The processes of this machine (the disk tier). Entries are this host's to replace.</summary>
    Machine,

    /// <summary>
    /// Hosts that may differ (other CPUs, Wasmtime versions, keys), such as a distributed or object-storage
    /// tier: an entry this host cannot use is left for the hosts that can, never removed or replaced.
    /// </summary>
    Fleet,
}
