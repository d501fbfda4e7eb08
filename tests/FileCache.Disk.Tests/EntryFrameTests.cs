using FileCache.Internal;

namespace FileCache.Disk.Tests;

/// <summary>The entry frame on its own (docs/entry-frame.md): vectors, and every trailer bit matters.</summary>
public sealed class EntryFrameTests
{
    private static readonly CacheKey Key = new(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray());
    private static readonly byte[] AuthenticationKey = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
    private static readonly byte[] Payload = "FileCache"u8.ToArray();

    // The trailers documented in docs/entry-frame.md.
    private const string Unauthenticated = "4643574302000000090000000000000024ce1770cf4fcccf00000000000000000000000000000000000000000000000000000000000000000000000046435743";
    private const string Authenticated = "46435743020001000900000000000000909e719981dca27c11dec82d5ac8f52e71d84997def0e3cfd498aa4e3e8745d265c58415163003de0000000046435743";
    private const string EmptyUnauthenticated = "46435743020000000000000000000000f2424c651271212800000000000000000000000000000000000000000000000000000000000000000000000046435743";
    private const string LargeUnauthenticated = "4643574302000000000028000000000035ff478893c8f65d00000000000000000000000000000000000000000000000000000000000000000000000046435743";
    private const string LargeAuthenticated = "464357430200010000002800000000003b4c6c7f11d58472c41a0a051efdb7e68553353d4eb61b5de0c162b454c570c328ab467f85cc3d120000000046435743";

    private static byte[] Entry(byte[] payload, byte[]? authenticationKey, CacheKey? key = null)
    {
        var entry = new byte[payload.Length + EntryFrame.TrailerSize];
        payload.CopyTo(entry, 0);
        using var writer = new EntryFrame.Writer(key ?? Key, authenticationKey);
        writer.Append(payload);
        writer.WriteTrailer(entry.AsSpan(payload.Length));
        return entry;
    }

    private static string Trailer(byte[] entry) => Convert.ToHexStringLower(entry.AsSpan(entry.Length - EntryFrame.TrailerSize));

    /// <summary>2.5 MiB, byte i = i mod 251: three chunks, the last one short.</summary>
    private static readonly byte[] LargePayload = Enumerable.Range(0, (5 * EntryFrame.ChunkSize) / 2).Select(i => (byte)(i % 251)).ToArray();

    [Fact]
    public void Vectors_MatchTheDocument()
    {
        Assert.Equal(Unauthenticated, Trailer(Entry(Payload, null)));
        Assert.Equal(Authenticated, Trailer(Entry(Payload, AuthenticationKey)));
        Assert.Equal(EmptyUnauthenticated, Trailer(Entry([], null)));
        Assert.Equal(LargeUnauthenticated, Trailer(Entry(LargePayload, null)));
        Assert.Equal(LargeAuthenticated, Trailer(Entry(LargePayload, AuthenticationKey)));
        string document = File.ReadAllText(Path.Join(RepositoryRoot(), "docs", "entry-frame.md"));
        foreach (var vector in new[] { Unauthenticated, Authenticated, EmptyUnauthenticated, LargeUnauthenticated, LargeAuthenticated })
        {
            Assert.Contains(vector, document);
        }
    }

    [Fact]
    public void Vectors_Verify()
    {
        Assert.Equal(FrameStatus.Valid, EntryFrame.Verify(Key, Entry(Payload, null), null, out long length));
        Assert.Equal(Payload.Length, length);
        Assert.Equal(FrameStatus.Valid, EntryFrame.Verify(Key, Entry(Payload, AuthenticationKey), AuthenticationKey, out _));
        Assert.Equal(FrameStatus.Valid, EntryFrame.Verify(Key, Entry([], null), null, out _));
        Assert.Equal(FrameStatus.Valid, EntryFrame.Verify(Key, Entry(LargePayload, AuthenticationKey), AuthenticationKey, out _));
        Assert.Equal(FrameStatus.Valid, EntryFrame.Verify(Key, Entry(LargePayload, null), null, out _));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4096)]
    [InlineData(EntryFrame.ChunkSize - 1)]
    [InlineData(EntryFrame.ChunkSize + 1)]
    [InlineData(3 * EntryFrame.ChunkSize)]
    public void TheTrailer_DoesNotDependOnHowThePayloadWasCut(int piece)
    {
        // The writer and the streaming verifier take pieces of any size; whole chunks go in parallel.
        foreach (var key in new[] { null, AuthenticationKey })
        {
            var expected = Entry(LargePayload, key);
            var trailer = new byte[EntryFrame.TrailerSize];
            using (var writer = new EntryFrame.Writer(Key, key))
            {
                for (int at = 0; at < LargePayload.Length; at += piece)
                {
                    writer.Append(LargePayload.AsSpan(at, Math.Min(piece, LargePayload.Length - at)));
                }

                writer.WriteTrailer(trailer);
            }

            Assert.Equal(Trailer(expected), Convert.ToHexStringLower(trailer));
            using var verifier = new EntryFrame.Verifier(Key, key, trailer);
            for (int at = 0; at < LargePayload.Length; at += piece)
            {
                verifier.Append(LargePayload.AsSpan(at, Math.Min(piece, LargePayload.Length - at)));
            }

            Assert.Equal(FrameStatus.Valid, verifier.Finish(trailer));
        }
    }

    [Fact]
    public void AnEntryLargeEnoughToBeCheckedInParallel_GivesTheTrailerOfASequentialCheck()
    {
        // 9.5 MiB: one piece is digested on all cores; 1 MiB pieces one by one on this thread.
        var payload = Enumerable.Range(0, (19 * EntryFrame.ChunkSize) / 2).Select(i => (byte)(i % 253)).ToArray();
        foreach (var key in new[] { null, AuthenticationKey })
        {
            string whole = Trailer(Entry(payload, key));
            var trailer = new byte[EntryFrame.TrailerSize];
            using (var writer = new EntryFrame.Writer(Key, key))
            {
                for (int at = 0; at < payload.Length; at += EntryFrame.ChunkSize)
                {
                    writer.Append(payload.AsSpan(at, Math.Min(EntryFrame.ChunkSize, payload.Length - at)));
                }

                writer.WriteTrailer(trailer);
            }

            Assert.Equal(whole, Convert.ToHexStringLower(trailer));
            var entry = Entry(payload, key);
            Assert.Equal(FrameStatus.Valid, EntryFrame.Verify(Key, entry, key, out _));
            entry[(7 * EntryFrame.ChunkSize) + 5] ^= 1; // a chunk only the parallel path checks alone
            Assert.NotEqual(FrameStatus.Valid, EntryFrame.Verify(Key, entry, key, out _));
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(EntryFrame.ChunkSize - 1)]
    [InlineData(EntryFrame.ChunkSize)]
    [InlineData((5 * EntryFrame.ChunkSize / 2) - 1)]
    public void AFlipInAnyChunk_IsRejected_WithAndWithoutAKey(int at)
    {
        foreach (var key in new[] { null, AuthenticationKey })
        {
            var entry = Entry(LargePayload, key);
            entry[at] ^= 1;
            Assert.NotEqual(FrameStatus.Valid, EntryFrame.Verify(Key, entry, key, out _));
        }
    }

    [Fact]
    public void SwappedChunks_AreRejected()
    {
        var entry = Entry(LargePayload, AuthenticationKey);
        var first = entry.AsSpan(0, EntryFrame.ChunkSize).ToArray();
        entry.AsSpan(EntryFrame.ChunkSize, EntryFrame.ChunkSize).CopyTo(entry);
        first.CopyTo(entry.AsSpan(EntryFrame.ChunkSize));
        Assert.NotEqual(FrameStatus.Valid, EntryFrame.Verify(Key, entry, AuthenticationKey, out _));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EveryTrailerBitFlip_IsRejected(bool authenticated)
    {
        byte[]? key = authenticated ? AuthenticationKey : null;
        var entry = Entry(Payload, key);
        int trailerStart = Payload.Length;
        for (int bit = 0; bit < EntryFrame.TrailerSize * 8; bit++)
        {
            var flipped = (byte[])entry.Clone();
            flipped[trailerStart + (bit / 8)] ^= (byte)(1 << (bit % 8));
            var status = EntryFrame.Verify(Key, flipped, key, out _);
            Assert.True(status != FrameStatus.Valid, $"a flip of trailer bit {bit} (byte {bit / 8}) was accepted");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void PayloadBitFlips_AreRejected_FixedSeed(bool authenticated)
    {
        byte[]? key = authenticated ? AuthenticationKey : null;
        var random = new Random(20261129); // fixed: a failure names a flip that can be replayed
        var payload = new byte[4096];
        random.NextBytes(payload);
        var entry = Entry(payload, key);
        for (int i = 0; i < 500; i++)
        {
            int bit = random.Next(payload.Length * 8);
            var flipped = (byte[])entry.Clone();
            flipped[bit / 8] ^= (byte)(1 << (bit % 8));
            Assert.True(EntryFrame.Verify(Key, flipped, key, out _) != FrameStatus.Valid, $"a flip of payload bit {bit} was accepted");
        }
    }

    [Fact]
    public void AuthenticatedFlagSet_OnAnEntryWrittenWithoutAKey_IsRejected_EvenWithoutAKey()
    {
        var entry = Entry(Payload, null);
        entry[Payload.Length + 6] |= 1;
        Assert.Equal(FrameStatus.NotAnEntry, EntryFrame.Verify(Key, entry, null, out _));
    }

    [Fact]
    public void AnEntryUnderAnotherKey_IsRejected_WithAndWithoutAKey()
    {
        var other = new CacheKey(Enumerable.Range(100, 32).Select(i => (byte)i).ToArray());
        Assert.Equal(FrameStatus.ChecksumMismatch, EntryFrame.Verify(other, Entry(Payload, null), null, out _));
        // The checksum, seeded by the cache key, already fails; the tag binds the key too.
        Assert.Equal(FrameStatus.ChecksumMismatch, EntryFrame.Verify(other, Entry(Payload, AuthenticationKey), AuthenticationKey, out _));
        Assert.Equal(FrameStatus.NotAuthenticated, EntryFrame.Verify(Key, Entry(Payload, null), AuthenticationKey, out _));
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Join(dir.FullName, "FileCache.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("The repository root (FileCache.sln) was not found above " + AppContext.BaseDirectory);
    }
}
