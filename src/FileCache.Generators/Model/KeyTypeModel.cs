namespace FileCache.Generators.Model;

/// <summary>Everything the emitter needs about one [WasmCodeCacheKey] type: strings, numbers and
/// equatable arrays only (no symbols, syntax, compilation or locations), so unrelated edits leave it
/// equal and the generator's output cached.</summary>
internal sealed record KeyTypeModel(
    string Namespace,
    EquatableArray<ContainerModel> Containers,
    string Keyword,
    string Name,
    string FullName,
    string Domain,
    int Version,
    EquatableArray<MemberModel> Members,
    EquatableArray<AssemblyVersionModel> VersionOf,
    bool IncludeCpuFeatures,
    string Fingerprint);

/// <summary>A type that contains the key type: its declaration keyword ("class", "record struct") and name.</summary>
internal sealed record ContainerModel(string Keyword, string Name);

/// <summary>One member in declaration order, with its declared type as written in the fingerprint.</summary>
internal sealed record MemberModel(string Name, string DeclaredType, ValueShape Shape);

/// <summary>
/// An assembly named by VersionOf, with the version the compilation references; or, named by
/// RuntimeVersionOf (RuntimeMajorVersionOf: <see cref="MajorOnly"/>), a type of it
/// (<see cref="RuntimeType"/>, fully qualified) whose assembly's version (or major version) is read
/// when the process runs.
/// </summary>
internal sealed record AssemblyVersionModel(string Name, string Version, string? RuntimeType = null, bool MajorOnly = false);

/// <summary>How a value is encoded.</summary>
internal sealed record ValueShape(ShapeKind Kind, string TypeName, ValueShape? Element = null);

internal enum ShapeKind
{
    /// <summary>A type CacheKeyBuilder.Append takes directly (numbers, bool, char, string, Guid, TimeSpan).</summary>
    Direct,

    /// <summary>An enum: its underlying value; TypeName is the underlying type.</summary>
    Enum,

    /// <summary>Nullable&lt;T&gt;: a presence byte, then the value.</summary>
    Nullable,

    /// <summary>T[]: a count (or null), then the elements.</summary>
    Array,

    /// <summary>ImmutableArray&lt;T&gt;: a count (or default), then the elements.</summary>
    ImmutableArray,

    /// <summary>ReadOnlyMemory&lt;byte&gt; or Memory&lt;byte&gt;: a count, then the bytes.</summary>
    ByteMemory,

    /// <summary>A nested [WasmCodeCacheKey] struct: its AppendTo.</summary>
    KeyStruct,

    /// <summary>A nested [WasmCodeCacheKey] class: a presence byte, then its AppendTo.</summary>
    KeyClass,
}
