namespace FileCache.Wasmtime;

/// <summary>
/// What <see cref="WasmtimeModuleCache"/> loads: WebAssembly bytes with a name for logs and, when known,
/// their digest (so the key hashes nothing). Converts from an <see cref="EmbeddedWasmModule"/> (the
/// generated <c>WasmModules</c> class: digest from build time, validated before a compile) and from
/// bytes.
/// </summary>
/// <remarks>
/// A digest that does not match the bytes (a stale build's, or a stale stored one) is caught before a
/// compile and counted in <c>filecache.wasmtime.stale_digests</c>: the module is then filed under the
/// key of its bytes, never under another module's.
/// </remarks>
public readonly struct WasmSource
{
    private readonly string? _name;
    private readonly bool? _isComponent;

    /// <summary>Describes a module or component known at run time.</summary>
    /// <param name="name">Its name, for logs.</param>
    /// <param name="wasm">Its WebAssembly bytes; they must not change while a load runs.</param>
    /// <param name="digest">Their digest computed before (<see cref="WasmDigest.Compute"/>, kept beside the file as
    /// hex and read back with <see cref="WasmDigest.FromHex"/>), or <see langword="null"/> to hash the bytes.</param>
    /// <param name="validate">Validate the bytes before compiling them (a hit needs no validation: its key covers the bytes).</param>
    public WasmSource(string name, ReadOnlyMemory<byte> wasm, WasmDigest? digest = null, bool validate = false)
    {
        ArgumentNullException.ThrowIfNull(name);
        _name = name;
        Wasm = wasm;
        Digest = digest;
        Validate = validate;
    }

    private WasmSource(EmbeddedWasmModule module)
        : this(module.Name, module.Bytes, module.Digest, validate: true)
        => _isComponent = module.IsComponent;

    /// <summary>Its name, for logs.</summary>
    public string Name => _name ?? "module";

    /// <summary>Its WebAssembly bytes.</summary>
    public ReadOnlyMemory<byte> Wasm { get; }

    /// <summary>The bytes' digest, when it was computed before; <see langword="null"/> when the key hashes the bytes.</summary>
    public WasmDigest? Digest { get; }

    /// <summary>Whether the bytes are validated before a compile.</summary>
    public bool Validate { get; }

    /// <summary>Whether the source is known to be a component (<see langword="true"/>) or a core module
    /// (<see langword="false"/>): set for embedded modules, whose kind was read at build time.</summary>
    internal bool? IsComponent => _isComponent;

    /// <summary>A module embedded by a <c>&lt;WasmModule&gt;</c> item: its build-time digest, validated before a compile.</summary>
    /// <param name="module">The embedded module.</param>
    public static implicit operator WasmSource(EmbeddedWasmModule module)
    {
        ArgumentNullException.ThrowIfNull(module);
        return new WasmSource(module);
    }

    /// <summary>Bytes known at run time, named "module" in logs; the key hashes them.</summary>
    /// <param name="wasm">The WebAssembly bytes.</param>
    public static implicit operator WasmSource(byte[] wasm)
    {
        ArgumentNullException.ThrowIfNull(wasm);
        return new WasmSource("module", wasm);
    }

    /// <summary>Bytes known at run time, named "module" in logs; the key hashes them.</summary>
    /// <param name="wasm">The WebAssembly bytes.</param>
    public static implicit operator WasmSource(ReadOnlyMemory<byte> wasm) => new("module", wasm);

    /// <summary>Converts an embedded module (for languages without implicit conversions).</summary>
    /// <param name="module">The embedded module.</param>
    /// <returns>The source.</returns>
    public static WasmSource FromEmbeddedWasmModule(EmbeddedWasmModule module) => module;

    /// <summary>Converts bytes (for languages without implicit conversions).</summary>
    /// <param name="wasm">The WebAssembly bytes.</param>
    /// <returns>The source.</returns>
    public static WasmSource FromReadOnlyMemory(ReadOnlyMemory<byte> wasm) => wasm;
}
