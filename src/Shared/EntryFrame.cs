using System.Buffers.Binary;
using System.IO.Hashing;
using System.Security.Cryptography;

namespace FileCache.Internal;

/// <summary>
/// The integrity frame stored after every payload (source file shared by the disk and distributed
/// backends). Putting it last means a verified entry file starts with the payload itself, so a
/// memory-mapping loader can use the file as it is.
/// </summary>
/// <remarks>
/// Trailer, 64 bytes, little-endian:
/// <c>"FCWC"</c> magic (4) | format version u16 | flags u16 (bit 0: authenticated) |
/// payload length u64 | XXH3-64 of the payload seeded with the key's first 8 bytes (8) |
/// HMAC-SHA256 tag (32, zero when not authenticated) | reserved u32 (0) | <c>"FCWC"</c> (4).
/// The tag is HMAC-SHA256(authentication key, cache key (32) | payload | trailer bytes 0..24),
/// so a valid entry cannot be made without the key, nor moved to another cache key.
/// </remarks>
internal static class EntryFrame
{
    public const int TrailerSize = 64;
    public const ushort CurrentVersion = 1;
    private const ushort FlagAuthenticated = 1;
    private const int TagOffset = 24;
    private const int TagSize = 32;

    private static ReadOnlySpan<byte> Magic => "FCWC"u8;

    /// <summary>Builds a trailer while the payload streams through.</summary>
    public sealed class Writer : IDisposable
    {
        private readonly XxHash3 _checksum;
        private readonly IncrementalHash? _hmac;
        private long _length;

        public Writer(CacheKey key, byte[]? authenticationKey)
        {
            _checksum = new XxHash3(Seed(key));
            if (authenticationKey is not null)
            {
                _hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, authenticationKey);
                Span<byte> k = stackalloc byte[CacheKey.Size];
                key.CopyTo(k);
                _hmac.AppendData(k);
            }
        }

        public long Length => _length;

        public void Append(ReadOnlySpan<byte> payload)
        {
            _checksum.Append(payload);
            _hmac?.AppendData(payload);
            _length += payload.Length;
        }

        public void WriteTrailer(Span<byte> trailer)
        {
            trailer = trailer[..TrailerSize];
            trailer.Clear();
            Magic.CopyTo(trailer);
            BinaryPrimitives.WriteUInt16LittleEndian(trailer[4..], CurrentVersion);
            BinaryPrimitives.WriteUInt16LittleEndian(trailer[6..], _hmac is null ? (ushort)0 : FlagAuthenticated);
            BinaryPrimitives.WriteUInt64LittleEndian(trailer[8..], (ulong)_length);
            BinaryPrimitives.WriteUInt64LittleEndian(trailer[16..], _checksum.GetCurrentHashAsUInt64());
            if (_hmac is not null)
            {
                _hmac.AppendData(trailer[..TagOffset]);
                _hmac.GetHashAndReset(trailer.Slice(TagOffset, TagSize));
            }

            Magic.CopyTo(trailer[60..]);
        }

        public void Dispose() => _hmac?.Dispose();
    }

    /// <summary>Checks a payload that arrives in pieces (for example while a file is still being read).</summary>
    public sealed class Verifier : IDisposable
    {
        private readonly XxHash3? _checksum;
        private readonly IncrementalHash? _hmac;

        public Verifier(CacheKey key, byte[]? authenticationKey)
        {
            if (authenticationKey is null)
            {
                _checksum = new XxHash3(Seed(key));
            }
            else
            {
                // The tag covers every payload byte, so the checksum would only repeat the work.
                _hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, authenticationKey);
                Span<byte> k = stackalloc byte[CacheKey.Size];
                key.CopyTo(k);
                _hmac.AppendData(k);
            }
        }

        public void Append(ReadOnlySpan<byte> payload)
        {
            _checksum?.Append(payload);
            _hmac?.AppendData(payload);
        }

        /// <summary>Compares with a trailer that <see cref="ReadTrailer"/> accepted.</summary>
        public FrameStatus Finish(ReadOnlySpan<byte> trailer)
        {
            if (_checksum is not null)
            {
                return _checksum.GetCurrentHashAsUInt64() == BinaryPrimitives.ReadUInt64LittleEndian(trailer[16..])
                    ? FrameStatus.Valid
                    : FrameStatus.ChecksumMismatch;
            }

            _hmac!.AppendData(trailer[..TagOffset]);
            Span<byte> tag = stackalloc byte[TagSize];
            _hmac.GetHashAndReset(tag);
            return CryptographicOperations.FixedTimeEquals(tag, trailer.Slice(TagOffset, TagSize)) ? FrameStatus.Valid : FrameStatus.BadTag;
        }

        public void Dispose() => _hmac?.Dispose();
    }

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

    /// <summary>Verifies a payload held somewhere other than one span (for example a mapped file).</summary>
    public static FrameStatus VerifyPayload(CacheKey key, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> trailer, byte[]? authenticationKey)
    {
        if (authenticationKey is not null)
        {
            using var verifier = new Verifier(key, authenticationKey);
            verifier.Append(payload);
            return verifier.Finish(trailer);
        }

        if (XxHash3.HashToUInt64(payload, Seed(key)) != BinaryPrimitives.ReadUInt64LittleEndian(trailer[16..]))
        {
            return FrameStatus.ChecksumMismatch;
        }

        return FrameStatus.Valid;
    }

    private static long Seed(CacheKey key)
    {
        Span<byte> k = stackalloc byte[CacheKey.Size];
        key.CopyTo(k);
        return BinaryPrimitives.ReadInt64LittleEndian(k);
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

    // What the disk tier checks on a file before reading it (see docs/security.md).
    SymbolicLink,
    NotRegularFile,
    ForeignOwner,
    WritableByOthers,
    MultipleLinks,
    Unreadable,
}
