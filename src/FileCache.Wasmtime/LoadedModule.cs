using Wasmtime;
using WasmModule = Wasmtime.Module; // System.Reflection.Module would clash

namespace FileCache.Wasmtime;

/// <summary>Where a loaded module's machine code came from.</summary>
public enum ModuleOrigin
{
    /// <summary>A verified disk entry, memory-mapped by Wasmtime (<c>Module.DeserializeFile</c>).</summary>
    MappedFile,

    /// <summary>A cache entry read into memory (<c>Module.Deserialize</c>).</summary>
    CacheHit,

    /// <summary>Compiled by this call (a miss).</summary>
    Compiled,

    /// <summary>Compiled by this call after the cached entry was unusable by this engine and was deleted.</summary>
    Recompiled,

    /// <summary>Another caller in this process was compiling the same key; this call used its result.</summary>
    SharedCompile,
}

/// <summary>A module from <see cref="WasmtimeModuleCache"/>, with how it was obtained.</summary>
public sealed class LoadedModule : IDisposable
{
    internal LoadedModule(WasmModule module, ModuleOrigin origin, CacheKey key, TimeSpan elapsed)
    {
        Module = module;
        Origin = origin;
        Key = key;
        Elapsed = elapsed;
    }

    /// <summary>The module; disposed with this object.</summary>
    public WasmModule Module { get; }

    /// <summary>Where its machine code came from.</summary>
    public ModuleOrigin Origin { get; }

    /// <summary>The cache key it was looked up under.</summary>
    public CacheKey Key { get; }

    /// <summary>How long the load took, including key derivation and any compile.</summary>
    public TimeSpan Elapsed { get; }

    /// <summary>Whether the machine code came from the cache.</summary>
    public bool IsHit => Origin is ModuleOrigin.MappedFile or ModuleOrigin.CacheHit;

    /// <summary>Disposes the module.</summary>
    public void Dispose() => Module.Dispose();
}
