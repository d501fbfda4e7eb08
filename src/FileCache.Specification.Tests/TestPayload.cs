using System.Buffers.Binary;
using System.Security.Cryptography;

namespace FileCache.Specification.Tests;

/// <summary>
/// Self-describing payloads: each names the key it was written for and ends with a SHA-256 of
/// everything before it, so a reader can prove a hit is one complete value written for that key.
/// </summary>
internal static class TestPayload
{
    private const int HeaderSize = 16;
    private const int TrailerSize = 32;

    /// <summary>The smallest payload <see cref="Create"/> makes.</summary>
    public const int MinimumLength = HeaderSize + TrailerSize;

    /// <summary>Creates a payload of <paramref name="length"/> bytes for <paramref name="keyId"/>.</summary>
    /// <param name="keyId">Which key the payload is written for.</param>
    /// <param name="writer">Who wrote it (varies the content).</param>
    /// <param name="length">The total length; at least <see cref="MinimumLength"/>.</param>
    /// <returns>The payload.</returns>
    public static byte[] Create(int keyId, int writer, int length)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(length, MinimumLength);
        var bytes = new byte[length];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, keyId);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), writer);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(8), length);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(12), Random.Shared.Next());
        Random.Shared.NextBytes(bytes.AsSpan(HeaderSize, length - HeaderSize - TrailerSize));
        SHA256.HashData(bytes.AsSpan(0, length - TrailerSize), bytes.AsSpan(length - TrailerSize));
        return bytes;
    }

    /// <summary>Checks that <paramref name="bytes"/> is one complete payload written for <paramref name="keyId"/>.</summary>
    /// <param name="bytes">The bytes a hit returned.</param>
    /// <param name="keyId">The key that was looked up.</param>
    /// <returns>Null when valid, otherwise what is wrong.</returns>
    public static string? Check(ReadOnlySpan<byte> bytes, int keyId)
    {
        if (bytes.Length < MinimumLength)
        {
            return $"hit of {bytes.Length} bytes is shorter than any payload written";
        }

        int key = BinaryPrimitives.ReadInt32LittleEndian(bytes);
        int length = BinaryPrimitives.ReadInt32LittleEndian(bytes[8..]);
        if (length != bytes.Length)
        {
            return $"hit of {bytes.Length} bytes claims a length of {length}: partial or mixed entry";
        }

        Span<byte> hash = stackalloc byte[TrailerSize];
        SHA256.HashData(bytes[..^TrailerSize], hash);
        if (!hash.SequenceEqual(bytes[^TrailerSize..]))
        {
            return "hit fails its checksum: partial, mixed or mutated entry";
        }

        return key == keyId ? null : $"hit for key {keyId} holds a value written for key {key}";
    }
}
