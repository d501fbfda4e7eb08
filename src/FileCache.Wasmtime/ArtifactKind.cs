using Wasmtime;
using Wasmtime.Components;
using WasmModule = Wasmtime.Module; // System.Reflection.Module would clash

namespace FileCache.Wasmtime;

/// <summary>
/// What the loader compiles and caches: core modules or components. Both go through the same
/// lookups, live cache and single flight; only these operations differ.
/// </summary>
internal abstract class ArtifactKind<T>
    where T : class, IDisposable
{
    /// <summary>The cache key of this kind for a module key: components get a separate key domain,
    /// so the same bytes never hit the other kind's entry.</summary>
    public abstract CacheKey KeyOf(CacheKey key);

    /// <summary>Whether this kind is the component model's.</summary>
    public abstract bool IsComponent { get; }

    public abstract T Compile(Engine engine, string name, ReadOnlySpan<byte> wasm, bool validate);

    public abstract T Deserialize(Engine engine, string name, ReadOnlySpan<byte> serialized);

    public abstract T DeserializeFile(Engine engine, string name, string path);

    public abstract byte[] Serialize(T artifact);
}

internal sealed class ModuleKind : ArtifactKind<WasmModule>
{
    public static readonly ModuleKind Instance = new();

    public override CacheKey KeyOf(CacheKey key) => key;

    public override bool IsComponent => false;

    public override WasmModule Compile(Engine engine, string name, ReadOnlySpan<byte> wasm, bool validate)
    {
        if (validate && WasmModule.Validate(engine, wasm) is { } error)
        {
            throw new WasmtimeException($"Module '{name}' is not valid WebAssembly: {error}");
        }

        return WasmModule.FromBytes(engine, name, wasm);
    }

    public override WasmModule Deserialize(Engine engine, string name, ReadOnlySpan<byte> serialized) => WasmModule.Deserialize(engine, name, serialized);

    public override WasmModule DeserializeFile(Engine engine, string name, string path) => WasmModule.DeserializeFile(engine, name, path);

    public override byte[] Serialize(WasmModule artifact) => artifact.Serialize();
}

internal sealed class ComponentKind : ArtifactKind<Component>
{
    public static readonly ComponentKind Instance = new();

    public override bool IsComponent => true;

    public override CacheKey KeyOf(CacheKey key)
    {
        var builder = CacheKeyBuilder.Create("filecache/wasmtime-component", 1);
        Span<byte> bytes = stackalloc byte[CacheKey.Size];
        key.CopyTo(bytes);
        builder.AppendRaw(bytes);
        return builder.ToKey();
    }

    // Component.FromBytes validates while it compiles; there is no separate validator in Wasmtime's C API.
    public override Component Compile(Engine engine, string name, ReadOnlySpan<byte> wasm, bool validate) => Component.FromBytes(engine, wasm);

    public override Component Deserialize(Engine engine, string name, ReadOnlySpan<byte> serialized) => Component.Deserialize(engine, serialized);

    public override Component DeserializeFile(Engine engine, string name, string path) => Component.DeserializeFile(engine, path);

    public override byte[] Serialize(Component artifact) => artifact.Serialize();
}
