using System.Buffers;
using FileCache.Diagnostics;
using FileCache.Specification.Tests;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace FileCache.Distributed.Tests;

/// <summary>Reads through the buffer API stop at MaxEntrySize before allocating or authenticating.</summary>
public sealed class BoundedReadTests
{
    [Fact]
    public void TheWriter_RefusesRoomPastItsLimit_BeforeAllocatingIt()
    {
        var writer = new BoundedBufferWriter(100_000);
        writer.Write(new byte[60_000]);
        var e = Assert.Throws<BoundedBufferWriter.TooLargeException>(() => writer.GetSpan(50_000));
        Assert.Equal(110_000, e.AtLeast);

        var exact = new BoundedBufferWriter(long.MaxValue);
        var value = new byte[5_000_000];
        Random.Shared.NextBytes(value);
        exact.Write(value); // as a store holding the value whole writes it: GetSpan(), then GetSpan(rest)
        var result = exact.ToArray();
        Assert.Equal(value, result);
        Assert.Equal(value.Length, result.Length);
    }

    [Fact]
    public void TheWriter_GrowsLinearlyForSmallPieces()
    {
        var writer = new BoundedBufferWriter(long.MaxValue);
        var piece = Enumerable.Range(0, 1000).Select(i => (byte)i).ToArray();
        for (int i = 0; i < 3000; i++)
        {
            writer.Write(piece);
        }

        var all = writer.ToArray();
        Assert.Equal(3_000_000, all.Length);
        Assert.Equal(piece, all.AsSpan(2_999_000).ToArray());
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public async Task OversizedValuesInARealStore_AreMisses_WithTheirReason_AndTheCircuitStaysClosed(bool async, bool bounded)
    {
        using var meters = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var factory = meters.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        using var rejected = new MetricCollector<long>(factory, WasmCodeCacheMetrics.MeterName, "filecache.rejected_entries");
        using var corrupt = new MetricCollector<long>(factory, WasmCodeCacheMetrics.MeterName, "filecache.corrupt_entries");
        using var failures = new MetricCollector<long>(factory, WasmCodeCacheMetrics.MeterName, "filecache.tier_failures");
        using var store = Stores.Redis(RedisServer.Shared);
        Assert.IsAssignableFrom<IBufferDistributedCache>(store);
        var options = Stores.Options($"oversized-{async}-{bounded}:");
        options.MaxEntrySize = 64 << 10;
        options.BoundReadsBeforeAllocation = bounded;
        var cache = new DistributedCodeCache(store, options, factory);
        var generous = new DistributedCodeCache(store, Stores.Options($"oversized-{async}-{bounded}:")); // a node with the default limit, or anyone who can write the store
        var huge = new byte[8 << 20];
        async Task<Stream?> Get(CacheKey key) => async ? await cache.GetAsync(key) : (cache.TryGet(key, out var s) ? s : null);

        // A head that claims more than MaxEntrySize: rejected from the head alone, left for nodes that take it.
        generous.Add(TestKeys.Key(1), new MemoryStream(huge));
        Assert.Null(await Get(TestKeys.Key(1)));
        Assert.NotNull(store.Get(cache.GetStoreKey(TestKeys.Key(1))));
        Assert.Equal("TooLarge", Assert.Single(rejected.GetMeasurementSnapshot()).Tags[WasmCodeCacheMetrics.ReasonTag]);

        // 8 MiB where a head (64 bytes) or a chunk (at most 1 MiB) belongs: damage, removed.
        store.Set(cache.GetStoreKey(TestKeys.Key(2)), huge, new DistributedCacheEntryOptions());
        Assert.Null(await Get(TestKeys.Key(2)));
        Assert.Null(store.Get(cache.GetStoreKey(TestKeys.Key(2))));
        var payload = TestPayload.Create(3, 1, 10_000);
        cache.Add(TestKeys.Key(3), new MemoryStream(payload));
        string chunk = cache.GetChunkKey(TestKeys.Key(3), store.Get(cache.GetStoreKey(TestKeys.Key(3))), 0);
        store.Set(chunk, huge, new DistributedCacheEntryOptions());
        Assert.Null(await Get(TestKeys.Key(3)));
        Assert.Null(store.Get(chunk));
        Assert.Equal(["NotAnEntry", "LengthMismatch"], corrupt.GetMeasurementSnapshot().Select(m => (string)m.Tags[WasmCodeCacheMetrics.ReasonTag]!));
        Assert.Empty(failures.GetMeasurementSnapshot()); // not a store failure: the circuit stays closed

        cache.Add(TestKeys.Key(9), new MemoryStream(payload));
        Assert.True(cache.TryGet(TestKeys.Key(9), out var hit));
        using (hit)
        {
            using var copy = new MemoryStream();
            hit.CopyTo(copy);
            Assert.Equal(payload, copy.ToArray());
        }
    }
}
