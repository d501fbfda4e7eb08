namespace FileCache.Wasmtime;

/// <summary>Options of <see cref="WasmtimeModuleCache"/>.</summary>
public sealed class WasmtimeModuleCacheOptions
{
    /// <summary>
    /// The most bytes of live modules (by serialized size) the loader keeps per process, across
    /// engines (default 256 MiB). A repeated load of a key on the same engine then shares the
    /// module instead of reading and deserializing it; 0 keeps none.
    /// </summary>
    public long LiveModuleBudget { get; set; } = 256L << 20;
}
