using System.Buffers.Binary;
using System.IO.Hashing;
using System.Security.Cryptography;

namespace FileCache.Internal;

/// <summary>
/// The integrity frame stored after every payload (source file shared by the disk and distributed
/// backends). Putting it last means a verified entry file starts with the payload itself, so a
/// memory-mapping loader can use the file as it is. Specified in docs/entry-frame.md.
/// </summary>
/// <remarks>
/// Trailer, 64 bytes, little-endian:
/// <c>"FCWC"</c> magic (4) | format version u16 (2) | flags u16 (bit 0: authenticated) |
/// payload length u64 | XXH3-64 of the chunk digests seeded with the key's first 8 bytes (8) |
/// HMAC-SHA256 tag (32, zero when not authenticated) | reserved u32 (0) | <c>"FCWC"</c> (4).
/// The payload is cut into 1 MiB chunks, each digested on its own (XXH3-64, or SHA-256 when
/// authenticated), so a large entry is checked on all cores. The tag is HMAC-SHA256(authentication
/// key, cache key (32) | chunk digests | trailer bytes 0..24): SHA-256's collision resistance makes
/// the digest list stand for the payload, so a valid entry cannot be made without the key, nor moved
/// to another cache key.
/// </remarks>
internal static class EntryFrame
{
    public const int TrailerSize = 64;
    public const ushort CurrentVersion = 2;
    public const int ChunkSize = 1 << 20;
    private const int ParallelChunks = 4; // entries of 4 MiB and more are checked on all cores, as the key hashes modules
    private const ushort FlagAuthenticated = 1;
    private const int TagOffset = 24;
    private const int TagSize = 32;

    private static ReadOnlySpan<byte> Magic => "FCWC"u8;

    /// <summary>Builds a trailer while the payload streams through.</summary>
    public sealed class Writer : IDisposable
    {
        private readonly CacheKey _key;
        private readonly byte[]? _authenticationKey;
        private readonly ChunkDigests _digests;

        public Writer(CacheKey key, byte[]? authenticationKey)
        {
            _key = key;
            _authenticationKey = authenticationKey;
            _digests = new ChunkDigests(key, authenticated: authenticationKey is not null);
        }

        public long Length => _digests.Length;

        public void Append(ReadOnlySpan<byte> payload) => _digests.Append(payload);

        public void WriteTrailer(Span<byte> trailer)
        {
            trailer = trailer[..TrailerSize];
            trailer.Clear();
            var digests = _digests.Finish();
            Magic.CopyTo(trailer);
            BinaryPrimitives.WriteUInt16LittleEndian(trailer[4..], CurrentVersion);
            BinaryPrimitives.WriteUInt16LittleEndian(trailer[6..], _authenticationKey is null ? (ushort)0 : FlagAuthenticated);
            BinaryPrimitives.WriteUInt64LittleEndian(trailer[8..], (ulong)_digests.Length);
            BinaryPrimitives.WriteUInt64LittleEndian(trailer[16..], XxHash3.HashToUInt64(digests, Seed(_key)));
            if (_authenticationKey is not null)
            {
                Tag(_authenticationKey, _key, digests, trailer[..TagOffset], trailer.Slice(TagOffset, TagSize));
            }

            Magic.CopyTo(trailer[60..]);
        }

        public void Dispose() => _digests.Dispose();
    }

    /// <summary>Checks a payload that arrives in pieces (for example while a file is still being read).</summary>
    public sealed class Verifier : IDisposable
    {
        private readonly CacheKey _key;
        private readonly byte[]? _authenticationKey;
        private readonly ChunkDigests _digests;

        /// <param name="key">The cache key.</param>
        /// <param name="authenticationKey">The reader's key, if any.</param>
        /// <param name="trailer">A trailer that <see cref="ReadTrailer"/> accepted (it says how chunks are digested).</param>
        public Verifier(CacheKey key, byte[]? authenticationKey, ReadOnlySpan<byte> trailer)
        {
            _key = key;
            _authenticationKey = authenticationKey;
            _digests = new ChunkDigests(key, IsAuthenticated(trailer));
        }

        public void Append(ReadOnlySpan<byte> payload) => _digests.Append(payload);

        /// <summary>Compares with the trailer given at construction.</summary>
        public FrameStatus Finish(ReadOnlySpan<byte> trailer) => Check(_key, _digests.Finish(), trailer, _authenticationKey);

        public void Dispose() => _digests.Dispose();
    }

    /// <summary>
    /// Checks a payload that arrives as whole chunks in any order, on any threads (the distributed
    /// tier reads its chunk values in parallel and digests each one as it lands).
    /// </summary>
    public sealed class ChunkChecker
    {
        private readonly CacheKey _key;
        private readonly bool _authenticated;
        private readonly long _seed;
        private readonly byte[] _digests;

        /// <param name="key">The cache key.</param>
        /// <param name="trailer">A trailer that <see cref="ReadTrailer"/> accepted.</param>
        /// <param name="payloadLength">The payload length it gives.</param>
        public ChunkChecker(CacheKey key, ReadOnlySpan<byte> trailer, long payloadLength)
        {
            _key = key;
            _authenticated = IsAuthenticated(trailer);
            _seed = Seed(key);
            Count = ChunkCount(payloadLength);
            _digests = new byte[Count * DigestSize(_authenticated)];
        }

        /// <summary>How many chunks the payload has.</summary>
        public int Count { get; }

        /// <summary>Digests chunk <paramref name="index"/>; safe to call for different chunks at once.</summary>
        public void Digest(int index, ReadOnlySpan<byte> chunk)
        {
            int size = DigestSize(_authenticated);
            DigestChunk(_authenticated, _seed, chunk, _digests.AsSpan(index * size, size));
        }

        /// <summary>Compares the digests of every chunk with the trailer (call once all are digested).</summary>
        public FrameStatus Finish(ReadOnlySpan<byte> trailer, byte[]? authenticationKey) => Check(_key, _digests, trailer, authenticationKey);
    }

    /// <summary>How many <see cref="ChunkSize"/> chunks a payload of <paramref name="length"/> bytes has.</summary>
    public static int ChunkCount(long length) => (int)((length + ChunkSize - 1) / ChunkSize);

    /// <summary>The payload length a trailer claims, before <see cref="ReadTrailer"/> checks anything.</summary>
    public static long ClaimedLength(ReadOnlySpan<byte> trailer) => (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(trailer[8..]), long.MaxValue / 2);

    /// <summary>Identifies a payload's content within its key: the trailer's checksum of the chunk digests.</summary>
    public static ulong ContentId(ReadOnlySpan<byte> trailer) => BinaryPrimitives.ReadUInt64LittleEndian(trailer[16..]);

    /// <summary>Checks a whole framed entry (payload followed by trailer).</summary>
    /// <param name="key">The key the entry was looked up under.</param>
    /// <param name="entry">The entry's bytes.</param>
    /// <param name="authenticationKey">When set, the entry must carry a valid tag made with it.</param>
    /// <param name="payloadLength">The payload's length when valid.</param>
    /// <returns><see cref="FrameStatus.Valid"/> or why the entry is unusable.</returns>
    public static FrameStatus Verify(CacheKey key, ReadOnlySpan<byte> entry, byte[]? authenticationKey, out long payloadLength)
    {
        var status = ReadTrailer(entry.Length, entry[Math.Max(0, entry.Length - TrailerSize)..], authenticationKey, out payloadLength);
        if (status != FrameStatus.Valid)
        {
            return status;
        }

        return VerifyPayload(key, entry[..(int)payloadLength], entry[(int)payloadLength..], authenticationKey);
    }

    /// <summary>Checks the trailer fields that need no payload bytes.</summary>
    public static FrameStatus ReadTrailer(long entryLength, ReadOnlySpan<byte> trailer, byte[]? authenticationKey, out long payloadLength)
    {
        payloadLength = 0;
        if (entryLength < TrailerSize || trailer.Length < TrailerSize)
        {
            return FrameStatus.TooShort;
        }

        if (!trailer[..4].SequenceEqual(Magic) || !trailer[60..64].SequenceEqual(Magic))
        {
            return FrameStatus.NotAnEntry;
        }

        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(trailer[4..]);
        if (version != CurrentVersion)
        {
            return FrameStatus.UnknownVersion;
        }

        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(trailer[8..]);
        if (length != (ulong)(entryLength - TrailerSize))
        {
            return FrameStatus.LengthMismatch;
        }

        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(trailer[6..]);
        bool authenticated = (flags & FlagAuthenticated) != 0;
        if (authenticationKey is not null && !authenticated)
        {
            return FrameStatus.NotAuthenticated;
        }

        // Every byte of the frame is checked: unknown flags and the reserved bytes must be zero; an
        // unauthenticated entry has an all-zero tag and an authenticated one a non-zero tag (so a
        // flipped flag bit is caught even by a reader without the key, who cannot check the tag).
        bool zeroTag = trailer.Slice(TagOffset, TagSize).IndexOfAnyExcept((byte)0) < 0;
        if ((flags & ~FlagAuthenticated) != 0
            || authenticated == zeroTag
            || trailer.Slice(56, 4).IndexOfAnyExcept((byte)0) >= 0)
        {
            return FrameStatus.NotAnEntry;
        }

        payloadLength = (long)length;
        return FrameStatus.Valid;
    }

    /// <summary>Verifies a payload held somewhere other than one span (for example a mapped file), on all cores when it is large.</summary>
    public static FrameStatus VerifyPayload(CacheKey key, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> trailer, byte[]? authenticationKey)
    {
        bool authenticated = IsAuthenticated(trailer);
        var digests = new byte[ChunkCount(payload.Length) * DigestSize(authenticated)];
        DigestChunks(key, authenticated, payload, digests);
        return Check(key, digests, trailer, authenticationKey);
    }

    private static FrameStatus Check(CacheKey key, ReadOnlySpan<byte> digests, ReadOnlySpan<byte> trailer, byte[]? authenticationKey)
    {
        if (XxHash3.HashToUInt64(digests, Seed(key)) != BinaryPrimitives.ReadUInt64LittleEndian(trailer[16..]))
        {
            return FrameStatus.ChecksumMismatch;
        }

        if (authenticationKey is null)
        {
            return FrameStatus.Valid;
        }

        Span<byte> tag = stackalloc byte[TagSize];
        Tag(authenticationKey, key, digests, trailer[..TagOffset], tag);
        return CryptographicOperations.FixedTimeEquals(tag, trailer.Slice(TagOffset, TagSize)) ? FrameStatus.Valid : FrameStatus.BadTag;
    }

    private static void Tag(byte[] authenticationKey, CacheKey key, ReadOnlySpan<byte> digests, ReadOnlySpan<byte> trailerHead, Span<byte> tag)
    {
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, authenticationKey);
        Span<byte> k = stackalloc byte[CacheKey.Size];
        key.CopyTo(k);
        hmac.AppendData(k);
        hmac.AppendData(digests);
        hmac.AppendData(trailerHead);
        hmac.GetHashAndReset(tag);
    }

    private static bool IsAuthenticated(ReadOnlySpan<byte> trailer) => (BinaryPrimitives.ReadUInt16LittleEndian(trailer[6..]) & FlagAuthenticated) != 0;

    private static int DigestSize(bool authenticated) => authenticated ? 32 : 8;

    /// <summary>Digests whole chunks (the last may be short) into <paramref name="digests"/>, in parallel when there are several.</summary>
    private static unsafe void DigestChunks(CacheKey key, bool authenticated, ReadOnlySpan<byte> data, Span<byte> digests)
    {
        int count = ChunkCount(data.Length);
        int size = DigestSize(authenticated);
        long seed = Seed(key);
        if (count < ParallelChunks)
        {
            // Small entries on this thread: in a process that just started, the thread pool's first
            // workers cost more than hashing a few MiB (measured on the NativeAOT host's warm start).
            for (int i = 0; i < count; i++)
            {
                int offset = i * ChunkSize;
                DigestChunk(authenticated, seed, data.Slice(offset, Math.Min(ChunkSize, data.Length - offset)), digests.Slice(i * size, size));
            }

            return;
        }

        fixed (byte* source = data)
        fixed (byte* target = digests)
        {
            // Spans cannot enter a lambda; the pinned addresses can.
            nint from = (nint)source, to = (nint)target;
            int length = data.Length;
            Parallel.For(0, count, i =>
            {
                int offset = i * ChunkSize;
                var chunk = new ReadOnlySpan<byte>((byte*)from + offset, Math.Min(ChunkSize, length - offset));
                DigestChunk(authenticated, seed, chunk, new Span<byte>((byte*)to + (i * size), size));
            });
        }
    }

    private static void DigestChunk(bool authenticated, long seed, ReadOnlySpan<byte> chunk, Span<byte> digest)
    {
        if (authenticated)
        {
            SHA256.HashData(chunk, digest);
        }
        else
        {
            BinaryPrimitives.WriteUInt64LittleEndian(digest, XxHash3.HashToUInt64(chunk, seed));
        }
    }

    private static long Seed(CacheKey key)
    {
        Span<byte> k = stackalloc byte[CacheKey.Size];
        key.CopyTo(k);
        return BinaryPrimitives.ReadInt64LittleEndian(k);
    }

    /// <summary>The chunk digests of a payload that arrives in pieces of any size: whole chunks in a piece are digested in parallel.</summary>
    private sealed class ChunkDigests(CacheKey key, bool authenticated) : IDisposable
    {
        private readonly long _seed = Seed(key);
        private readonly List<byte> _digests = [];
        private readonly byte[] _partial = new byte[DigestSize(authenticated)];
        private XxHash3? _checksum;
        private IncrementalHash? _sha;
        private int _inChunk; // bytes of the current, unfinished chunk

        public long Length { get; private set; }

        public void Append(ReadOnlySpan<byte> payload)
        {
            Length += payload.Length;
            if (_inChunk > 0)
            {
                int n = Math.Min(ChunkSize - _inChunk, payload.Length);
                AppendToChunk(payload[..n]);
                payload = payload[n..];
            }

            int whole = payload.Length / ChunkSize * ChunkSize;
            if (whole > 0)
            {
                var digests = new byte[whole / ChunkSize * _partial.Length];
                DigestChunks(key, authenticated, payload[..whole], digests);
                _digests.AddRange(digests);
                payload = payload[whole..];
            }

            if (!payload.IsEmpty)
            {
                AppendToChunk(payload);
            }
        }

        public byte[] Finish()
        {
            if (_inChunk > 0)
            {
                EndChunk();
            }

            return [.. _digests];
        }

        public void Dispose() => _sha?.Dispose();

        private void AppendToChunk(ReadOnlySpan<byte> bytes)
        {
            if (authenticated)
            {
                (_sha ??= IncrementalHash.CreateHash(HashAlgorithmName.SHA256)).AppendData(bytes);
            }
            else
            {
                (_checksum ??= new XxHash3(_seed)).Append(bytes);
            }

            _inChunk += bytes.Length;
            if (_inChunk == ChunkSize)
            {
                EndChunk();
            }
        }

        private void EndChunk()
        {
            if (authenticated)
            {
                _sha!.GetHashAndReset(_partial);
            }
            else
            {
                BinaryPrimitives.WriteUInt64LittleEndian(_partial, _checksum!.GetCurrentHashAsUInt64());
                _checksum.Reset();
            }

            _digests.AddRange(_partial);
            _inChunk = 0;
        }
    }
}

/// <summary>The outcome of checking an entry's frame.</summary>
internal enum FrameStatus
{
    Valid,
    TooShort,
    NotAnEntry,
    UnknownVersion,
    LengthMismatch,
    ChecksumMismatch,
    NotAuthenticated,
    BadTag,
    MissingChunk, // a chunked value lost a piece (evicted, or not yet written): a miss, repaired by the next Add

    // What the disk tier checks on a file before reading it (see docs/security.md).
    SymbolicLink,
    NotRegularFile,
    ForeignOwner,
    WritableByOthers,
    MultipleLinks,
    Unreadable,
    TooLarge,
}
