namespace FileCache.Abstractions.Tests;

/// <summary>A digest computed before gives the key of the bytes (docs/key-encoding.md).</summary>
public sealed class WasmDigestTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(1 << 20)]
    [InlineData((1 << 20) + 1)]
    [InlineData((9 << 20) / 2)] // five chunks: the parallel path
    public void FinishWithADigest_EqualsFinishWithTheBytes(int length)
    {
        var wasm = new byte[length];
        new Random(length).NextBytes(wasm);
        var digest = WasmDigest.Compute(wasm);
        var fromBytes = CacheKeyBuilder.Create("digest-test", 1);
        var fromDigest = CacheKeyBuilder.Create("digest-test", 1);
        Assert.Equal(fromBytes.Finish(wasm), fromDigest.Finish(digest));
        Assert.Equal(length, digest.Length);
        Assert.Equal((length + (1 << 20) - 1) / (1 << 20) * 32, digest.ChunkDigests.Length);
        Assert.True(digest.Matches(wasm));
        Assert.Equal(digest, WasmDigest.FromHex(length, Convert.ToHexStringLower(digest.ChunkDigests)));
    }

    [Fact]
    public void AMismatchedDigest_IsRefused_WithTheNumbers()
    {
        var e = Assert.Throws<FormatException>(() => WasmDigest.FromHex(3 << 20, new string('0', 64)));
        Assert.Contains("3 chunk digests", e.Message);
        var wasm = new byte[100];
        var digest = WasmDigest.Compute(wasm);
        wasm[50] = 1;
        Assert.False(digest.Matches(wasm));
    }
}
