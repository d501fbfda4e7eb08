using System.Buffers.Binary;

namespace FileCache.Specification.Tests;

/// <summary>Deterministic keys for tests and test processes.</summary>
internal static class TestKeys
{
    /// <summary>The key for a small number: its bytes are SHA-256 of the number.</summary>
    /// <param name="id">The number.</param>
    /// <returns>The key.</returns>
    public static CacheKey Key(int id)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, id);
        return CacheKey.Compute(bytes);
    }
}
