namespace FileCache;

/// <summary>
/// Marks a partial type that describes everything that changes compiled code (engine settings,
/// target, ...). The FileCache source generator then emits, without reflection,
/// <c>CacheKey DeriveKey(ReadOnlySpan&lt;byte&gt; wasm)</c>, a <c>SchemaFingerprint</c> and
/// <see cref="IWasmCodeCacheKey"/>. The key hashes, in the canonical encoding of
/// <c>docs/key-encoding.md</c>: the domain, the version, the schema fingerprint (members' names
/// and declared types), every member's value, the versions of the <see cref="VersionOf"/>
/// assemblies (read at compile time), the process architecture, optionally the CPU features, and
/// the Wasm bytes.
/// </summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Struct, AllowMultiple = false, Inherited = false)]
public sealed class WasmCodeCacheKeyAttribute : Attribute
{
    /// <summary>Marks a key type.</summary>
    /// <param name="domain">Names what the key is for, for example <c>"my-host/engine"</c>; unique per compilation.</param>
    public WasmCodeCacheKeyAttribute(string domain)
    {
        Domain = domain;
    }

    /// <summary>Names what the key is for; part of every key.</summary>
    public string Domain { get; }

    /// <summary>A positive number to bump by hand when something outside the members changes the
    /// compiled code (default 1).</summary>
    public int Version { get; set; } = 1;

    /// <summary>Types whose assemblies' versions become part of every key, read at compile time,
    /// for example <c>typeof(Wasmtime.Engine)</c>.</summary>
    public Type[]? VersionOf { get; set; }

    /// <summary>
    /// Types whose assemblies' versions become part of every key, read when the process runs (once,
    /// AOT-safe), after the <see cref="VersionOf"/> ones: for a dependency the application may
    /// update without recompiling the library that declares the key type (Wasmtime under
    /// FileCache.Wasmtime).
    /// </summary>
    public Type[]? RuntimeVersionOf { get; set; }

    /// <summary>
    /// Types whose assemblies' <em>major</em> versions become part of every key, read when the process
    /// runs, after the <see cref="RuntimeVersionOf"/> ones: for a runtime whose compiled code is
    /// compatible across its patch and minor releases and which checks that itself. Wasmtime's
    /// serialized modules record, and Wasmtime's deserialization accepts, only its major version under
    /// its default <c>ModuleVersionStrategy::WasmtimeVersion</c>, so a key with its full version would
    /// empty every cache on every patch release for nothing.
    /// </summary>
    public Type[]? RuntimeMajorVersionOf { get; set; }

    /// <summary>Whether the CPU features that compiled code may depend on are part of every key
    /// (read with CPUID, docs/key-encoding.md).</summary>
    public bool IncludeCpuFeatures { get; set; }
}

/// <summary>Implemented by generated code for every <see cref="WasmCodeCacheKeyAttribute"/> type.</summary>
public interface IWasmCodeCacheKey
{
    /// <summary>Derives the cache key of <paramref name="wasm"/> compiled with these settings.</summary>
    /// <param name="wasm">The WebAssembly module's bytes.</param>
    /// <returns>The key.</returns>
    CacheKey DeriveKey(ReadOnlySpan<byte> wasm);

    /// <summary>Derives the same key from the module's digest, without hashing its bytes (<see cref="WasmDigest"/>).</summary>
    /// <param name="wasm">The WebAssembly module's digest.</param>
    /// <returns>The key.</returns>
    CacheKey DeriveKey(WasmDigest wasm);

    /// <summary>Appends this value's schema fingerprint and members, for nesting in another key type.</summary>
    /// <param name="builder">The builder.</param>
    void AppendTo(ref CacheKeyBuilder builder);
}
