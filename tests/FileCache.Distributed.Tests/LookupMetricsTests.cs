using FileCache.Diagnostics;
using FileCache.Disk;
using FileCache.Memory;
using FileCache.Specification.Tests;
using FileCache.Tiering;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace FileCache.Distributed.Tests;

/// <summary>
/// A lookup is counted once (issue 19): through memory, disk and a real Redis tier a cold lookup used to
/// be four misses under four backend tags (each tier's and the set's). The set now counts it, naming the
/// tier that answered a hit; the tiers keep their own events (adds, corrupt entries).
/// </summary>
public sealed class LookupMetricsTests : IDisposable
{
    private readonly string _dir = Path.Join(Path.GetTempPath(), "filecache-lookupmetrics-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    [Fact]
    public async Task AColdLookupOverMemoryDiskAndRedis_IsOneMiss_AndAHitIsOneHitNamingItsTier()
    {
        using var meters = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var factory = meters.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        using var misses = new MetricCollector<long>(factory, WasmCodeCacheMetrics.MeterName, "filecache.misses");
        using var hits = new MetricCollector<long>(factory, WasmCodeCacheMetrics.MeterName, "filecache.hits");
        using var adds = new MetricCollector<long>(factory, WasmCodeCacheMetrics.MeterName, "filecache.adds");

        var memory = new MemoryCodeCache(meterFactory: factory);
        var disk = new DiskCodeCache(new DiskCodeCacheOptions { Directory = _dir }, factory);
        using var store = Stores.Redis(RedisServer.Shared);
        var fleet = new DistributedCodeCache(store, Stores.Options(), factory);
        await using var tiers = new TieredCodeCache([memory, disk, fleet], ownsTiers: true, meterFactory: factory);
        var key = TestKeys.Key(7);

        Assert.Null(await tiers.GetEntryAsync(key, CacheLookupScope.All));
        Assert.False(tiers.TryGet(key, out _));
        var missed = misses.GetMeasurementSnapshot();
        Assert.Equal(2, missed.Sum(m => m.Value)); // two lookups, not eight
        Assert.All(missed, m => Assert.Equal("tiered", m.Tags[WasmCodeCacheMetrics.BackendTag]));

        // Only the fleet has it: the hit is counted once, as the distributed tier's, and promoted.
        fleet.Add(key, new MemoryStream(TestPayload.Create(7, 1, 4096)));
        adds.Clear();
        using (var entry = await tiers.GetEntryAsync(key, CacheLookupScope.All))
        {
            Assert.NotNull(entry);
        }

        var hit = Assert.Single(hits.GetMeasurementSnapshot());
        Assert.Equal(1, hit.Value);
        Assert.Equal("tiered", hit.Tags[WasmCodeCacheMetrics.BackendTag]);
        Assert.Equal("distributed", hit.Tags[WasmCodeCacheMetrics.TierTag]);
        Assert.Equal(2, misses.GetMeasurementSnapshot().Sum(m => m.Value)); // the tiers above it did not count misses
        Assert.Equal(["memory", "disk"], adds.GetMeasurementSnapshot().Select(m => (string)m.Tags[WasmCodeCacheMetrics.BackendTag]!)); // their own events stay

        // The promoted copy answers next, from the first tier.
        hits.Clear();
        Assert.True(tiers.TryGetEntry(key, CacheLookupScope.All, out var again));
        again.Dispose();
        Assert.Equal("memory", Assert.Single(hits.GetMeasurementSnapshot()).Tags[WasmCodeCacheMetrics.TierTag]);
    }
}
