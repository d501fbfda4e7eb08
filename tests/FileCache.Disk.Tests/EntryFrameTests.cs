using FileCache.Internal;

namespace FileCache.Disk.Tests;

/// <summary>The entry frame on its own (docs/entry-frame.md): vectors, and every trailer bit matters.</summary>
public sealed class EntryFrameTests
{
    private static readonly CacheKey Key = new(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray());
    private static readonly byte[] AuthenticationKey = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
    private static readonly byte[] Payload = "FileCache"u8.ToArray();

    // The trailers documented in docs/entry-frame.md.
    private const string Unauthenticated = "4643574301000000090000000000000020332080eadb248100000000000000000000000000000000000000000000000000000000000000000000000046435743";
    private const string Authenticated = "4643574301000100090000000000000020332080eadb2481eaf0c3b93daf383b7b50ccc063f1f76e223f134af60462c224cd35528188148c0000000046435743";
    private const string EmptyUnauthenticated = "46435743010000000000000000000000f2424c651271212800000000000000000000000000000000000000000000000000000000000000000000000046435743";

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

    [Fact]
    public void Vectors_MatchTheDocument()
    {
        Assert.Equal(Unauthenticated, Trailer(Entry(Payload, null)));
        Assert.Equal(Authenticated, Trailer(Entry(Payload, AuthenticationKey)));
        Assert.Equal(EmptyUnauthenticated, Trailer(Entry([], null)));
        string document = File.ReadAllText(Path.Join(RepositoryRoot(), "docs", "entry-frame.md"));
        foreach (var vector in new[] { Unauthenticated, Authenticated, EmptyUnauthenticated })
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
        Assert.Equal(FrameStatus.BadTag, EntryFrame.Verify(other, Entry(Payload, AuthenticationKey), AuthenticationKey, out _));
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
