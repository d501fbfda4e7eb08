using System.Collections.Immutable;

namespace FileCache.Generators.Tests;

/// <summary>Key types compiled by the real generator into this test assembly (test vectors of docs/key-encoding.md).</summary>
[WasmCodeCacheKey("filecache/test-vector", Version = 1)]
public readonly partial record struct VectorSettings(int Level, bool Simd, string? Name);

public enum VectorMode : byte
{
    Fast = 1,
    Small = 2,
}

[WasmCodeCacheKey("filecache/test-vector-inner", Version = 2)]
public partial struct VectorInner
{
    public ushort Pages;
}

[WasmCodeCacheKey("filecache/test-vector-all", Version = 1)]
public sealed partial class VectorAll
{
    public VectorMode Mode { get; init; }
    public long? Limit { get; init; }
    public int[]? Numbers { get; init; }
    public ImmutableArray<string> Tags { get; init; }
    public ReadOnlyMemory<byte> Salt { get; init; }
    public VectorInner Inner { get; init; }
    public double Ratio { get; init; }
}
