using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace FileCache.AzureBlob;

/// <summary>
/// The small authenticated record stored under a cache key: the payload's length and the SHA-256 of
/// each 1 MiB chunk, signed with HMAC-SHA256 over the cache key and everything before the tag. The
/// body is stored once under its own name, derived from the length and the chunk digests, so identical
/// code is stored once and anyone can check a body without the key; only the record needs the key.
/// </summary>
/// <remarks>
/// Layout (little-endian): "FCBI", version 1, 3 reserved bytes, payload length (8), chunk count (4),
/// the chunk digests (32 each), the tag (32). Hand-written: a fixed layout of a few fields whose
/// every byte is covered by the tag.
/// </remarks>
internal sealed class IndexRecord
{
    public const int ChunkSize = 1 << 20;
    private const int HeaderSize = 20;
    private const int TagSize = 32;
    private static readonly byte[] Magic = "FCBI"u8.ToArray();
    private static readonly byte[] Domain = Encoding.ASCII.GetBytes("filecache/azureblob-index/1");

    private IndexRecord(long length, byte[] chunkDigests, string bodyName)
    {
        Length = length;
        ChunkDigests = chunkDigests;
        BodyName = bodyName;
    }

    /// <summary>The payload's length.</summary>
    public long Length { get; }

    /// <summary>The SHA-256 of each 1 MiB chunk, concatenated.</summary>
    public byte[] ChunkDigests { get; }

    /// <summary>The body's name: hex of SHA-256(length, chunk digests).</summary>
    public string BodyName { get; }

    public static int ChunkCount(long length) => (int)((length + ChunkSize - 1) / ChunkSize);

    /// <summary>Makes the record of <paramref name="payload"/> under <paramref name="key"/>.</summary>
    public static byte[] Create(CacheKey key, ReadOnlySpan<byte> payload, byte[] authenticationKey, out string bodyName)
    {
        int chunks = ChunkCount(payload.Length);
        var record = new byte[HeaderSize + (chunks * 32) + TagSize];
        Magic.CopyTo(record, 0);
        record[4] = 1;
        BinaryPrimitives.WriteInt64LittleEndian(record.AsSpan(8), payload.Length);
        BinaryPrimitives.WriteInt32LittleEndian(record.AsSpan(16), chunks);
        for (int i = 0; i < chunks; i++)
        {
            var chunk = payload.Slice(i * ChunkSize, (int)Math.Min(ChunkSize, payload.Length - ((long)i * ChunkSize)));
            SHA256.HashData(chunk, record.AsSpan(HeaderSize + (i * 32), 32));
        }

        Sign(key, record, authenticationKey, record.AsSpan(record.Length - TagSize));
        bodyName = NameOf(payload.Length, record.AsSpan(HeaderSize, chunks * 32));
        return record;
    }

    /// <summary>Parses and authenticates a record read from the store; <see langword="null"/> with the reason when it is not one this key made for this cache key.</summary>
    public static IndexRecord? Verify(CacheKey key, ReadOnlySpan<byte> record, byte[] authenticationKey, long maxLength, out string? problem)
    {
        problem = null;
        if (record.Length < HeaderSize + TagSize || !record[..4].SequenceEqual(Magic))
        {
            problem = "NotAnEntry";
            return null;
        }

        if (record[4] != 1)
        {
            problem = "UnknownVersion";
            return null;
        }

        long length = BinaryPrimitives.ReadInt64LittleEndian(record[8..]);
        int chunks = BinaryPrimitives.ReadInt32LittleEndian(record[16..]);
        if (length < 0 || chunks != ChunkCount(length) || record.Length != HeaderSize + ((long)chunks * 32) + TagSize)
        {
            problem = "BadLength";
            return null;
        }

        Span<byte> expected = stackalloc byte[TagSize];
        Sign(key, record, authenticationKey, expected);
        if (!CryptographicOperations.FixedTimeEquals(expected, record[^TagSize..]))
        {
            problem = "BadTag";
            return null;
        }

        if (length > maxLength)
        {
            problem = "TooLarge";
            return null;
        }

        var digests = record.Slice(HeaderSize, chunks * 32).ToArray();
        return new IndexRecord(length, digests, NameOf(length, digests));
    }

    /// <summary>Whether chunk <paramref name="index"/> of the body has the digest the record names.</summary>
    public bool ChunkMatches(int index, ReadOnlySpan<byte> chunk)
    {
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(chunk, digest);
        return CryptographicOperations.FixedTimeEquals(digest, ChunkDigests.AsSpan(index * 32, 32));
    }

    private static void Sign(CacheKey key, ReadOnlySpan<byte> record, byte[] authenticationKey, Span<byte> tag)
    {
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, authenticationKey);
        hmac.AppendData(Domain);
        Span<byte> keyBytes = stackalloc byte[CacheKey.Size];
        key.CopyTo(keyBytes);
        hmac.AppendData(keyBytes);
        hmac.AppendData(record[..^TagSize]);
        hmac.GetHashAndReset(tag);
    }

    private static string NameOf(long length, ReadOnlySpan<byte> chunkDigests)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> lengthBytes = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(lengthBytes, length);
        sha.AppendData(lengthBytes);
        sha.AppendData(chunkDigests);
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }
}
