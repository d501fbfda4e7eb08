namespace FileCache.Distributed.Tests;

/// <summary>
/// Many concurrent callers against a real Redis, in a fresh process whose thread pool starts at its
/// defaults. The synchronous API used to block on the asynchronous one: with 32 synchronous callers
/// the tier answered 29 calls in 4 s, and LoadAsync ran that chain on the pool too.
/// </summary>
[Collection(StoreServerCollection.Name)]
public sealed class ConcurrencyTests
{
    [SkippableTheory]
    [InlineData("sync")]
    [InlineData("loadasync")]
    public async Task SixtyFourCallers_EachFinishTheirFirstTwentyOperations_WithoutAStall(string api)
    {
        var redis = RedisServer.Shared;
        // 6 s is generous for 20 operations on a noisy machine (a healthy run finishes them in well
        // under a second) and far below a stall, where callers finished none.
        var (exitCode, output) = await Fleet.RunAsync("concurrency", redis.Endpoint, $"concurrency-{Guid.NewGuid():N}:", api, "64", "6");
        Assert.True(exitCode == 0, output);
        Assert.Contains("stalled_callers=0", output);
    }
}
