using System.Security.Cryptography;
using System.Text;

namespace FileCache.Tests;

public class CacheKeyTests
{
    private static readonly byte[] Sample = Enumerable.Range(1, 32).Select(i => (byte)(i * 7)).ToArray();

    [Fact]
    public void Constructor_RequiresExactly32Bytes()
    {
        Assert.Equal(Sample, new CacheKey(Sample).ToArray());
        var e31 = Assert.Throws<ArgumentException>(() => new CacheKey(new byte[31]));
        Assert.Contains("31", e31.Message);
        Assert.Throws<ArgumentException>(() => new CacheKey(new byte[33]));
        Assert.Throws<ArgumentException>(() => new CacheKey([]));
    }

    [Fact]
    public void Default_IsTheAllZeroKey()
    {
        Assert.Equal(new CacheKey(new byte[32]), default);
        Assert.Equal(new string('0', 64), default(CacheKey).ToString());
    }

    [Fact]
    public void ToString_IsLowercaseHex_LikeWazeroPath()
    {
        // wazero TestFileCache_path: Key{1,2,3,4,5} -> "0102030405" followed by zeros.
        var bytes = new byte[32];
        bytes[0] = 1; bytes[1] = 2; bytes[2] = 3; bytes[3] = 4; bytes[4] = 5;
        Assert.Equal("0102030405" + new string('0', 54), new CacheKey(bytes).ToString());
        Assert.Equal(Convert.ToHexStringLower(Sample), new CacheKey(Sample).ToString());
    }

    [Fact]
    public void Compute_IsSha256()
    {
        var data = Encoding.UTF8.GetBytes("hello wasm");
        Assert.Equal(SHA256.HashData(data), CacheKey.Compute(data).ToArray());
        Assert.Equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", CacheKey.Compute([]).ToString());
    }

    [Fact]
    public void ParseAndFormat_RoundTrip_BothCases_Utf16AndUtf8()
    {
        var key = new CacheKey(Sample);
        string lower = key.ToString();
        Assert.Equal(key, CacheKey.Parse(lower));
        Assert.Equal(key, CacheKey.Parse(lower.ToUpperInvariant()));
        Assert.Equal(key, CacheKey.Parse(lower.AsSpan()));
        Assert.Equal(key, CacheKey.Parse(Encoding.UTF8.GetBytes(lower.ToUpperInvariant())));

        Span<char> chars = stackalloc char[64];
        Assert.True(key.TryFormat(chars, out int written));
        Assert.Equal(64, written);
        Assert.Equal(lower, chars.ToString());

        Span<byte> utf8 = stackalloc byte[64];
        Assert.True(key.TryFormat(utf8, out int bytesWritten));
        Assert.Equal(64, bytesWritten);
        Assert.Equal(lower, Encoding.UTF8.GetString(utf8));

        Assert.Equal(lower, $"{key}");
    }

    [Fact]
    public void TryFormat_TooSmall_ReturnsFalse()
    {
        var key = new CacheKey(Sample);
        Assert.False(key.TryFormat(new char[63], out int c));
        Assert.Equal(0, c);
        Assert.False(key.TryFormat(new byte[63], out int b));
        Assert.Equal(0, b);
    }

    [Theory]
    [InlineData(63)]
    [InlineData(65)]
    [InlineData(0)]
    public void Parse_WrongLength_ThrowsFormatExceptionNamingLength(int length)
    {
        var e = Assert.Throws<FormatException>(() => CacheKey.Parse(new string('a', length)));
        Assert.Contains(length.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message);
        Assert.False(CacheKey.TryParse(new string('a', length), out _));
        Assert.Throws<FormatException>(() => CacheKey.Parse(Encoding.UTF8.GetBytes(new string('a', length))));
    }

    [Fact]
    public void Parse_NonHex_ThrowsFormatExceptionNamingIndex()
    {
        string text = new string('a', 10) + "g" + new string('a', 53);
        var e = Assert.Throws<FormatException>(() => CacheKey.Parse(text));
        Assert.Contains("index 10", e.Message);
        Assert.False(CacheKey.TryParse(text, out var result));
        Assert.Equal(default, result);
        Assert.False(CacheKey.TryParse((string?)null, out _));
        Assert.Throws<ArgumentNullException>(() => CacheKey.Parse((string)null!));
    }

    [Fact]
    public void EqualityHashAndOrder_AreBytewise()
    {
        var a = new CacheKey(Sample);
        var b = new CacheKey(Sample);
        var bytes = (byte[])Sample.Clone();
        bytes[31]++;
        var c = new CacheKey(bytes);
        bytes[0] = 0;
        var d = new CacheKey(bytes);

        Assert.True(a == b);
        Assert.False(a != b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, c);
        Assert.True(a < c && c > a && a <= b && a >= b);
        Assert.True(d < a);
        var keys = new[] { c, d, a };
        Array.Sort(keys);
        Assert.Equal(keys.Select(k => k.ToString()).Order(StringComparer.Ordinal), keys.Select(k => k.ToString()));
        Assert.Equal(1, a.CompareTo(null));
        Assert.Throws<ArgumentException>(() => a.CompareTo("x"));
        Assert.False(a.Equals("x"));
    }

    [Fact]
    public void CopyTo_ShortDestination_Throws()
    {
        var key = new CacheKey(Sample);
        Assert.Throws<ArgumentException>(() => key.CopyTo(new byte[31]));
        var big = new byte[40];
        key.CopyTo(big);
        Assert.Equal(Sample, big[..32]);
    }

    [Fact]
    public void GenericParsing_WorksThroughInterfaces()
    {
        string text = new CacheKey(Sample).ToString();
        Assert.Equal(new CacheKey(Sample), ParseVia<CacheKey>(text));

        static T ParseVia<T>(string s) where T : ISpanParsable<T> => T.Parse(s.AsSpan(), null);
    }
}

/// <summary>RuntimeMajorVersionOf: a key that survives a runtime's patch and minor releases.</summary>
public sealed class MajorVersionKeyTests
{
    private static CacheKey KeyWith(Version version)
    {
        var builder = CacheKeyBuilder.Create("filecache/test-major", 1);
        builder.AppendCount(1);
        builder.AppendMajorVersion("Wasmtime.Dotnet", version);
        builder.AppendTarget(includeCpuFeatures: false);
        return builder.Finish([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
    }

    [Fact]
    public void APatchOrMinorRelease_KeepsTheKey_ANewMajorChangesIt()
    {
        var key = KeyWith(new Version(50, 0, 1, 0));
        Assert.Equal(key, KeyWith(new Version(50, 0, 2, 0)));
        Assert.Equal(key, KeyWith(new Version(50, 3, 0, 0)));
        Assert.NotEqual(key, KeyWith(new Version(51, 0, 0, 0)));
        Assert.NotEqual(key, KeyWith(new Version(5, 0, 0, 0)));
    }

    [Fact]
    public void AppendAssemblyMajorVersion_HashesTheLoadedAssemblysMajor()
    {
        var assembly = typeof(CacheKey).Assembly;
        var viaAssembly = CacheKeyBuilder.Create("filecache/test-major", 1);
        viaAssembly.AppendAssemblyMajorVersion(assembly);
        var viaVersion = CacheKeyBuilder.Create("filecache/test-major", 1);
        viaVersion.AppendMajorVersion(assembly.GetName().Name!, assembly.GetName().Version);
        Assert.Equal(viaVersion.Finish([1]), viaAssembly.Finish([1]));
    }

    [Fact]
    public void TheKeyBuildersManagedSha256_EqualsOpenSsls_ForEveryLengthAndSplit()
    {
        // CacheKeyBuilder hashes with its own SHA-256 (no OpenSSL start-up cost); it must be SHA-256.
        var random = new Random(20261206);
        var lengths = Enumerable.Range(0, 200).Concat([255, 256, 257, 1000, 4095, 4096, 65_537, 1 << 20]);
        foreach (int length in lengths)
        {
            var data = new byte[length];
            random.NextBytes(data);
            var builder = CacheKeyBuilder.Create("test", 7);
            for (int at = 0; at < length;)
            {
                int piece = Math.Min(length - at, random.Next(0, 150));
                builder.AppendRaw(data.AsSpan(at, piece));
                at += piece;
            }

            byte[] encoding = [.. CacheKeyBuilder.EncodingMagic, 4, 0, 0, 0, .. "test"u8, 7, 0, 0, 0, .. data];
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(encoding)), builder.ToKey().ToString());
        }
    }

    [Fact]
    public void TheKeyBuilder_IsReusedPerThread_WithoutCarryingState()
    {
        var first = CacheKeyBuilder.Create("d", 1);
        first.Append("abc");
        var a = first.ToKey();
        var second = CacheKeyBuilder.Create("d", 1); // takes the hash object the first one returned
        second.Append("abc");
        Assert.Equal(a, second.ToKey());
    }
}

