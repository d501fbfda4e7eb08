using System.Diagnostics.CodeAnalysis;
using FileCache.Diagnostics;
using FileCache.Memory;
using FileCache.Specification.Tests;
using FileCache.Tiering;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace FileCache.Tests;

/// <summary>The two-tier composite passes the whole contract.</summary>
public sealed class TieredCodeCacheSpecificationTests : WasmCodeCacheSpecificationTests
{
    protected override IWasmCodeCache CreateCache() => new TieredCodeCache([new MemoryCodeCache(), new MemoryCodeCache()], ownsTiers: true);
}

public sealed class TieredCodeCacheTests
{
    private static readonly CacheKey K = CacheKey.Compute([1, 2, 3]);

    [Fact]
    public void HitInSlowTier_IsPromotedToFastTier()
    {
        using var fast = new MemoryCodeCache();
        using var slow = new MemoryCodeCache();
        slow.Add(K, new MemoryStream([4, 5, 6]));
        var tiered = new TieredCodeCache([fast, slow]);

        Assert.True(tiered.TryGet(K, out var s));
        using (s)
        {
            Assert.Equal([4, 5, 6], ReadAll(s));
        }

        Assert.True(fast.TryGet(K, out var promoted));
        Assert.Equal([4, 5, 6], ReadAll(promoted));
    }

    [Fact]
    public async Task HitInSlowTier_IsPromotedToFastTier_Async()
    {
        using var fast = new MemoryCodeCache();
        using var slow = new MemoryCodeCache();
        slow.Add(K, new MemoryStream([7]));
        var tiered = new TieredCodeCache([fast, slow]);
        var s = await tiered.GetAsync(K);
        Assert.NotNull(s);
        Assert.Equal([7], ReadAll(s));
        Assert.Equal(1, fast.Count);
    }

    [Fact]
    public void Add_WritesThroughEveryTier_AndDeleteRemovesFromEvery()
    {
        using var fast = new MemoryCodeCache();
        using var slow = new MemoryCodeCache();
        var tiered = new TieredCodeCache([fast, slow]);
        tiered.Add(K, new MemoryStream([1, 1]));
        Assert.Equal([1, 1], ReadAll(Hit(fast)));
        Assert.Equal([1, 1], ReadAll(Hit(slow)));

        // Non-seekable content is buffered once and given to every tier.
        var key2 = CacheKey.Compute([2]);
        var content = TestPayload.Create(2, 0, 100_000);
        tiered.Add(key2, TestStreams.NonSeekable(content));
        Assert.Equal(content, ReadAll(Hit(fast, key2)));
        Assert.Equal(content, ReadAll(Hit(slow, key2)));

        tiered.Delete(K);
        Assert.False(fast.TryGet(K, out _));
        Assert.False(slow.TryGet(K, out _));
    }

    [Fact]
    public async Task FailingTier_IsSkippedForReads_AndCounted()
    {
        using var collector = new MetricCollector<long>(null, WasmCodeCacheMetrics.MeterName, "filecache.tier_failures");
        using var slow = new MemoryCodeCache();
        slow.Add(K, new MemoryStream([3]));
        var tiered = new TieredCodeCache([new BrokenCache(), slow]);

        Assert.True(tiered.TryGet(K, out var s));
        Assert.Equal([3], ReadAll(s));
        var viaAsync = await tiered.GetAsync(K);
        Assert.NotNull(viaAsync);
        Assert.Equal([3], ReadAll(viaAsync));
        Assert.False(tiered.TryGet(CacheKey.Compute([9]), out _));

        var failures = collector.GetMeasurementSnapshot();
        Assert.True(failures.Count >= 3);
        Assert.All(failures, m => Assert.Equal("tiered", m.Tags[WasmCodeCacheMetrics.BackendTag]));
    }

    [Fact]
    public void FailingTier_FailsAddAfterWritingTheOthers()
    {
        using var good = new MemoryCodeCache();
        var tiered = new TieredCodeCache([good, new BrokenCache()]);
        var e = Assert.Throws<IOException>(() => tiered.Add(K, new MemoryStream([5])));
        Assert.Contains("broken on purpose", e.Message);
        Assert.Equal([5], ReadAll(Hit(good)));
        Assert.Throws<IOException>(() => tiered.Delete(K));
        Assert.False(good.TryGet(K, out _));
    }

    [Fact]
    public void Constructor_RejectsEmptyOrNullTiers()
    {
        Assert.Throws<ArgumentException>(() => new TieredCodeCache([]));
        Assert.Throws<ArgumentException>(() => new TieredCodeCache([new MemoryCodeCache(), null!]));
    }

    private static Stream Hit(IWasmCodeCache cache, CacheKey? key = null)
    {
        Assert.True(cache.TryGet(key ?? K, out var s));
        return s;
    }

    private static byte[] ReadAll(Stream s)
    {
        using (s)
        {
            using var m = new MemoryStream();
            s.CopyTo(m);
            return m.ToArray();
        }
    }

    private sealed class BrokenCache : IWasmCodeCache
    {
        public bool TryGet(CacheKey key, [NotNullWhen(true)] out Stream? content) => throw new IOException("broken on purpose");

        public void Add(CacheKey key, Stream content) => throw new IOException("broken on purpose");

        public void Delete(CacheKey key) => throw new IOException("broken on purpose");

        public ValueTask<Stream?> GetAsync(CacheKey key, CancellationToken cancellationToken = default) => throw new IOException("broken on purpose");

        public ValueTask AddAsync(CacheKey key, Stream content, CancellationToken cancellationToken = default) => throw new IOException("broken on purpose");

        public ValueTask DeleteAsync(CacheKey key, CancellationToken cancellationToken = default) => throw new IOException("broken on purpose");
    }
}

/// <summary>A read-only tier in front (code shipped with the app): refused once, never offered a copy again.</summary>
public sealed class ReadOnlyTierTests
{
    private static readonly CacheKey K = CacheKey.Compute([9, 9]);

    [Fact]
    public void AReadOnlyTierInFront_IsOfferedNoCopyAfterItsFirstRefusal_ByLookupsOrAdds()
    {
        var shipped = new RefusingTier();
        using var slow = new FileCache.Memory.MemoryCodeCache();
        slow.Add(K, new MemoryStream([1, 2, 3]));
        var tiered = new FileCache.Tiering.TieredCodeCache([shipped, slow]);

        for (int i = 0; i < 5; i++)
        {
            Assert.True(tiered.TryGetEntry(K, CacheLookupScope.All, out var entry));
            entry.Dispose();
        }

        Assert.Equal(1, shipped.Adds); // refused once; then known to be read-only
        tiered.Add(CacheKey.Compute([7]), new MemoryStream([7]));
        Assert.Equal(1, shipped.Adds);
        Assert.True(slow.TryGet(CacheKey.Compute([7]), out var added)); // the writable tier still takes writes
        added.Dispose();
    }

    private sealed class RefusingTier : IWasmCodeCache
    {
        public int Adds { get; private set; }

        public bool TryGet(CacheKey key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Stream? content)
        {
            content = null;
            return false;
        }

        public void Add(CacheKey key, Stream content)
        {
            Adds++;
            throw new ReadOnlyWasmCodeCacheException($"Cannot add key {key}: read-only.");
        }

        public void Delete(CacheKey key) => throw new ReadOnlyWasmCodeCacheException($"Cannot delete key {key}: read-only.");

        public ValueTask<Stream?> GetAsync(CacheKey key, CancellationToken cancellationToken = default) => ValueTask.FromResult<Stream?>(null);

        public ValueTask AddAsync(CacheKey key, Stream content, CancellationToken cancellationToken = default)
        {
            Add(key, content);
            return ValueTask.CompletedTask;
        }

        public ValueTask DeleteAsync(CacheKey key, CancellationToken cancellationToken = default)
        {
            Delete(key);
            return ValueTask.CompletedTask;
        }
    }
}
