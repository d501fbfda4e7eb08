using System.Buffers;
using System.Reflection;

namespace FileCache;

/// <summary>
/// A WebAssembly module embedded in an assembly by a <c>&lt;WasmModule Include="..." /&gt;</c> item: its
/// name, its digest computed at build time (so deriving its cache key hashes nothing) and its bytes,
/// read from the assembly's resources without a copy where the runtime maps them (it does, also under NativeAOT).
/// The generated <c>WasmModules</c> class has one property per item.
/// </summary>
public sealed class EmbeddedWasmModule
{
    private readonly Assembly _assembly;
    private readonly string _resourceName;
    private ReadOnlyMemory<byte>? _bytes;

    /// <summary>Describes an embedded module (called by generated code).</summary>
    /// <param name="assembly">The assembly holding the resource.</param>
    /// <param name="resourceName">The manifest resource's name.</param>
    /// <param name="name">The module's name (its file name).</param>
    /// <param name="isComponent">Whether it is a component (the component model) rather than a core module.</param>
    /// <param name="digest">Its digest, computed at build time.</param>
    public EmbeddedWasmModule(Assembly assembly, string resourceName, string name, bool isComponent, WasmDigest digest)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        ArgumentException.ThrowIfNullOrEmpty(resourceName);
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(digest);
        _assembly = assembly;
        _resourceName = resourceName;
        Name = name;
        IsComponent = isComponent;
        Digest = digest;
    }

    /// <summary>The module's name (its file name).</summary>
    public string Name { get; }

    /// <summary>Whether it is a component rather than a core module.</summary>
    public bool IsComponent { get; }

    /// <summary>Its length in bytes.</summary>
    public long Length => Digest.Length;

    /// <summary>Its digest, computed at build time.</summary>
    public WasmDigest Digest { get; }

    /// <summary>The module's bytes: the resource in place when the runtime maps it, else one copy made on first use.</summary>
    /// <exception cref="InvalidOperationException">The resource is missing or its length differs from the digest's.</exception>
    public ReadOnlyMemory<byte> Bytes => _bytes ??= Open();

    private unsafe ReadOnlyMemory<byte> Open()
    {
        var stream = _assembly.GetManifestResourceStream(_resourceName)
            ?? throw new InvalidOperationException($"The assembly '{_assembly.GetName().Name}' has no resource '{_resourceName}' for the WebAssembly module '{Name}'.");
        if (stream.Length != Length)
        {
            throw new InvalidOperationException($"The resource '{_resourceName}' holds {stream.Length} bytes; the module '{Name}' was digested at build time with {Length}.");
        }

        if (stream is UnmanagedMemoryStream mapped)
        {
            // The resource lives in the loaded image for as long as the assembly does: no copy.
            return new UnmanagedMemory(mapped.PositionPointer, checked((int)Length)).Memory;
        }

        using (stream)
        {
            var bytes = new byte[Length];
            stream.ReadExactly(bytes);
            return bytes;
        }
    }

    /// <summary>Memory over a resource of a loaded assembly (never freed while the assembly is loaded).</summary>
    private sealed unsafe class UnmanagedMemory(byte* pointer, int length) : MemoryManager<byte>
    {
        public override Span<byte> GetSpan() => new(pointer, length);

        public override MemoryHandle Pin(int elementIndex = 0) => new(pointer + elementIndex);

        public override void Unpin()
        {
        }

        protected override void Dispose(bool disposing)
        {
        }
    }
}
