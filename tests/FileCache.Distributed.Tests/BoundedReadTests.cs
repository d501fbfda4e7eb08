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
    public async Task AnOversizedValueInARealStore_IsRejected_LeftThere_AndTheCircuitStaysClosed(bool async, bool bounded)
    {
        using var meters = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var factory = meters.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        using var rejected = new MetricCollector<long>(factory, WasmCodeCacheMetrics.MeterName, "filecache.rejected_entries");
        using var failures = new MetricCollector<long>(factory, WasmCodeCacheMetrics.MeterName, "filecache.tier_failures");
        using var store = Stores.Redis(RedisServer.Shared);
        Assert.IsAssignableFrom<IBufferDistributedCache>(store);
        var options = Stores.Options();
        options.MaxEntrySize = 64 << 10;
        options.BoundReadsBeforeAllocation = bounded;
        var cache = new DistributedCodeCache(store, options, factory);
        var huge = new byte[8 << 20]; // written by anyone who can write the store
        for (int i = 0; i < 3; i++)
        {
            store.Set(cache.GetStoreKey(TestKeys.Key(i)), huge, new DistributedCacheEntryOptions());
            Stream? got = async ? await cache.GetAsync(TestKeys.Key(i)) : (cache.TryGet(TestKeys.Key(i), out var s) ? s : null);
            Assert.Null(got);
            Assert.NotNull(store.Get(cache.GetStoreKey(TestKeys.Key(i)))); // left in the store
        }

        Assert.Equal(3, rejected.GetMeasurementSnapshot().Count(m => (string?)m.Tags[WasmCodeCacheMetrics.ReasonTag] == "TooLarge"));
        Assert.Empty(failures.GetMeasurementSnapshot()); // not a store failure: the circuit stays closed

        var payload = TestPayload.Create(3, 1, 10_000);
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
