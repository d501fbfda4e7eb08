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

    /// <summary>Already loaded on this engine: the live module was shared, with no bytes read or deserialized.</summary>
    LiveModule,
}
