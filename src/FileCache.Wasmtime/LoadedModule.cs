using Wasmtime;
using Wasmtime.Components;
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

    /// <summary>Already loaded on this engine: the live module was shared, with no bytes read or deserialized.</summary>
    LiveModule,
}

/// <summary>Something <see cref="WasmtimeModuleCache"/> loaded (a module or a component), with how it was obtained.</summary>
/// <remarks>
/// What it holds may be shared with other loads of the same key on the same engine (live modules):
/// dispose this object when done with it, never the module or component itself. It stays valid
/// until this object is disposed, even if the loader evicts it meanwhile.
/// </remarks>
public abstract class LoadedArtifact : IDisposable
{
    private readonly LiveModules _owner;
    private LiveModules.Entry? _lease;

    private protected LoadedArtifact(LiveModules owner, LiveModules.Entry lease, ModuleOrigin origin, TimeSpan elapsed)
    {
        _owner = owner;
        _lease = lease;
        Origin = origin;
        Key = lease.Key;
        Elapsed = elapsed;
    }

    /// <summary>Where its machine code came from.</summary>
    public ModuleOrigin Origin { get; }

    /// <summary>The cache key it was looked up under.</summary>
    public CacheKey Key { get; }

    /// <summary>How long the load took, including key derivation and any compile.</summary>
    public TimeSpan Elapsed { get; }

    /// <summary>Whether the machine code came from a cache (live, mapped or read).</summary>
    public bool IsHit => Origin is ModuleOrigin.MappedFile or ModuleOrigin.CacheHit or ModuleOrigin.LiveModule;

    /// <summary>Releases this load's hold; the module or component is disposed once no load holds it and the loader no longer keeps it.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _lease, null) is { } lease)
        {
            _owner.Release(lease);
        }

        GC.SuppressFinalize(this);
    }
}

/// <summary>A core module from <see cref="WasmtimeModuleCache.Load(Engine, IWasmCodeCacheKey, string, ReadOnlySpan{byte}, bool, CancellationToken)"/>, with how it was obtained.</summary>
/// <remarks>Dispose this object when done, never <see cref="Module"/> itself: the module may be shared.</remarks>
public sealed class LoadedModule : LoadedArtifact
{
    internal LoadedModule(LiveModules owner, LiveModules.Entry lease, ModuleOrigin origin, TimeSpan elapsed)
        : base(owner, lease, origin, elapsed)
        => Module = (WasmModule)lease.Module;

    /// <summary>The module; valid until this object is disposed. Do not dispose it yourself.</summary>
    public WasmModule Module { get; }
}

/// <summary>A component from <see cref="WasmtimeModuleCache.LoadComponent(Engine, IWasmCodeCacheKey, string, ReadOnlySpan{byte}, CancellationToken)"/>, with how it was obtained.</summary>
/// <remarks>Dispose this object when done, never <see cref="Component"/> itself: the component may be shared.</remarks>
public sealed class LoadedComponent : LoadedArtifact
{
    internal LoadedComponent(LiveModules owner, LiveModules.Entry lease, ModuleOrigin origin, TimeSpan elapsed)
        : base(owner, lease, origin, elapsed)
        => Component = (Component)lease.Module;

    /// <summary>The component; valid until this object is disposed. Do not dispose it yourself.</summary>
    public Component Component { get; }
}
