namespace FileCache.Wasmtime;

/// <summary>
/// A module (<c>Loaded&lt;Module&gt;</c>) or component (<c>Loaded&lt;Component&gt;</c>) that
/// <see cref="WasmtimeModuleCache"/> loaded, with how it was obtained.
/// </summary>
/// <typeparam name="T">Wasmtime's <c>Module</c> or <c>Component</c>.</typeparam>
/// <remarks>
/// What it holds may be shared with other loads of the same key on the same engine (live modules):
/// dispose this object when done with it, never <see cref="Value"/> itself. It stays valid until this
/// object is disposed, even if the loader evicts it meanwhile.
/// </remarks>
public sealed class Loaded<T> : IDisposable
    where T : class
{
    private readonly LiveModules _owner;
    private LiveModules.Entry? _lease;

    internal Loaded(LiveModules owner, LiveModules.Entry lease, ModuleOrigin origin, TimeSpan elapsed)
    {
        _owner = owner;
        _lease = lease;
        Value = (T)lease.Module;
        Origin = origin;
        Key = lease.Key;
        Elapsed = elapsed;
    }

    /// <summary>The module or component; valid until this object is disposed. Do not dispose it yourself.</summary>
    public T Value { get; }

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
    }
}
