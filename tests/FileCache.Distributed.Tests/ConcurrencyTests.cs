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
        // Synchronous callers block pool threads on the store; the host sizes its pool for them (README,
        // "Synchronous callers"): the library never changes it. Asynchronous loads need nothing.
        string[] args = ["concurrency", redis.Endpoint, $"concurrency-{Guid.NewGuid():N}:", api, "64", "6", .. api == "sync" ? new[] { "host-min-threads" } : []];
        var (exitCode, output) = await Fleet.RunAsync(args);
        Assert.True(exitCode == 0, output);
        Assert.Contains("stalled_callers=0", output);
    }

    [SkippableFact]
    public async Task SynchronousCallersOnTheDefaultPool_AreServed_AndTheLibraryLeavesThePoolAsItWas()
    {
        // Eight synchronous callers on a 2-core machine's default pool: the tier's one blocking point is a
        // task wait, which the runtime compensates for, so they finish (the store client's own synchronous
        // API stalled them: 8 operations in 4 s). No thread-pool setting is changed on the way. Each caller
        // must finish 20 operations within 15 s: the property is that none is starved, not a rate (a CI
        // run with two other test hosts on the 2 cores saw every caller at 16 of 20 after 6 s).
        var (exitCode, output) = await Fleet.RunAsync("concurrency", RedisServer.Shared.Endpoint, $"pool-{Guid.NewGuid():N}:", "sync", "8", "15");
        Assert.True(exitCode == 0, output);
        Assert.Contains("stalled_callers=0", output);
        var before = System.Text.RegularExpressions.Regex.Match(output, @"pool_min_before=(\d+)").Groups[1].Value;
        var during = System.Text.RegularExpressions.Regex.Match(output, @"pool_min_during=(\d+)").Groups[1].Value;
        var after = System.Text.RegularExpressions.Regex.Match(output, @"pool_min_after=(\d+)").Groups[1].Value;
        Assert.NotEqual("", before);
        Assert.Equal(before, during);
        Assert.Equal(before, after);
    }
}
