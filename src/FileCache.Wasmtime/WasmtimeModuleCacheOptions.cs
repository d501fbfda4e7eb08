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

    /// <summary>
    /// How long a load waits for another process on this machine that is compiling the same key
    /// (through the disk tier's compile lock) before compiling it too (default 60 s; zero turns the
    /// machine-wide lock off). A holder that dies releases the lock at once.
    /// </summary>
    public TimeSpan CompileLockTimeout { get; set; } = TimeSpan.FromSeconds(60);
}
