using FileCache.Diagnostics;
using FileCache.Specification.Tests;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace FileCache.Memory.Tests;

public sealed class MemoryCodeCacheSpecificationTests : WasmCodeCacheSpecificationTests
{
    protected override WasmCodeCacheLocality Locality => WasmCodeCacheLocality.Process;

    protected override IWasmCodeCache CreateCache() => new MemoryCodeCache();
}

public sealed class MemoryCodeCacheTests
{
    private static CacheKey Key(int i) => CacheKey.Compute(BitConverter.GetBytes(i));

    [Fact]
    public void SizeLimit_EvictsLeastRecentlyUsedFirst()
    {
        using var cache = new MemoryCodeCache(new MemoryCodeCacheOptions { SizeLimit = 300 });
        cache.Add(Key(1), new MemoryStream(new byte[100]));
        cache.Add(Key(2), new MemoryStream(new byte[100]));
        cache.Add(Key(3), new MemoryStream(new byte[100]));
        Assert.True(cache.TryGet(Key(1), out var touched)); // 1 is now the most recently used
        touched.Dispose();

        cache.Add(Key(4), new MemoryStream(new byte[100]));
        Assert.False(cache.TryGet(Key(2), out _)); // least recently used goes first
        Assert.True(cache.TryGet(Key(1), out var s1));
        s1.Dispose();
        Assert.True(cache.TryGet(Key(3), out var s3));
        s3.Dispose();
        Assert.Equal(300, cache.Size);
        Assert.Equal(3, cache.Count);
    }

    [Fact]
    public void EntryLargerThanLimit_IsNotKept_AndRemovesTheOldValue()
    {
        using var cache = new MemoryCodeCache(new MemoryCodeCacheOptions { SizeLimit = 50 });
        cache.Add(Key(1), new MemoryStream(new byte[10]));
        cache.Add(Key(1), new MemoryStream(new byte[51]));
        Assert.False(cache.TryGet(Key(1), out _));
        Assert.Equal(0, cache.Size);
    }

    [Fact]
    public void Hit_IsReadOnlyAndIndependentOfOtherReaders()
    {
        using var cache = new MemoryCodeCache();
        cache.Add(Key(1), new MemoryStream([1, 2, 3]));
        Assert.True(cache.TryGet(Key(1), out var a));
        Assert.True(cache.TryGet(Key(1), out var b));
        Assert.False(a.CanWrite);
        Assert.Throws<NotSupportedException>(() => a.WriteByte(9));
        Assert.Equal(1, a.ReadByte());
        Assert.Equal(1, b.ReadByte()); // each hit has its own position
        Assert.False(((MemoryStream)a).TryGetBuffer(out _)); // the stored array is not exposed
    }

    [Fact]
    public void Metrics_CountHitsMissesAddsEvictionsAndBytes()
    {
        using var meterProvider = new MetricsTestFactory();
        using var hits = new MetricCollector<long>(meterProvider.Factory, WasmCodeCacheMetrics.MeterName, "filecache.hits");
        using var misses = new MetricCollector<long>(meterProvider.Factory, WasmCodeCacheMetrics.MeterName, "filecache.misses");
        using var evictions = new MetricCollector<long>(meterProvider.Factory, WasmCodeCacheMetrics.MeterName, "filecache.evictions");
        using var written = new MetricCollector<long>(meterProvider.Factory, WasmCodeCacheMetrics.MeterName, "filecache.bytes_written");
        using var read = new MetricCollector<long>(meterProvider.Factory, WasmCodeCacheMetrics.MeterName, "filecache.bytes_read");

        using var cache = new MemoryCodeCache(new MemoryCodeCacheOptions { SizeLimit = 100 }, meterProvider.Factory);
        cache.Add(Key(1), new MemoryStream(new byte[60]));
        cache.Add(Key(2), new MemoryStream(new byte[60])); // evicts 1
        Assert.False(cache.TryGet(Key(1), out _));
        Assert.True(cache.TryGet(Key(2), out var s));
        s.Dispose();

        Assert.Equal(1, hits.GetMeasurementSnapshot().EvaluateAsCounter());
        Assert.Equal(1, misses.GetMeasurementSnapshot().EvaluateAsCounter());
        Assert.Equal(1, evictions.GetMeasurementSnapshot().EvaluateAsCounter());
        Assert.Equal(120, written.GetMeasurementSnapshot().EvaluateAsCounter());
        Assert.Equal(60, read.GetMeasurementSnapshot().EvaluateAsCounter());
        Assert.All(hits.GetMeasurementSnapshot(), m => Assert.Equal("memory", m.Tags[WasmCodeCacheMetrics.BackendTag]));
    }

    [Fact]
    public void AnEntryLargerThanTheLimit_IsRejected_NotEvicted()
    {
        using var meterProvider = new MetricsTestFactory();
        using var evictions = new MetricCollector<long>(meterProvider.Factory, WasmCodeCacheMetrics.MeterName, "filecache.evictions");
        using var rejected = new MetricCollector<long>(meterProvider.Factory, WasmCodeCacheMetrics.MeterName, "filecache.rejected_entries");
        using var cache = new MemoryCodeCache(new MemoryCodeCacheOptions { SizeLimit = 100 }, meterProvider.Factory);
        cache.Add(Key(1), new MemoryStream(new byte[101]));
        Assert.False(cache.TryGet(Key(1), out _));
        Assert.Empty(evictions.GetMeasurementSnapshot());
        var m = Assert.Single(rejected.GetMeasurementSnapshot());
        Assert.Equal("TooLarge", m.Tags[WasmCodeCacheMetrics.ReasonTag]);
    }

    [Fact]
    public void Constructor_RejectsNonPositiveLimit()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new MemoryCodeCache(new MemoryCodeCacheOptions { SizeLimit = 0 }));
        Assert.Contains("SizeLimit", e.Message);
    }

    /// <summary>A private meter factory so parallel tests do not see each other's measurements.</summary>
    private sealed class MetricsTestFactory : IDisposable
    {
        private readonly Microsoft.Extensions.DependencyInjection.ServiceProvider _provider;

        public MetricsTestFactory()
        {
            var services = new Microsoft.Extensions.DependencyInjection.ServiceCollection();
            Microsoft.Extensions.DependencyInjection.MetricsServiceExtensions.AddMetrics(services);
            _provider = Microsoft.Extensions.DependencyInjection.ServiceCollectionContainerBuilderExtensions.BuildServiceProvider(services);
            Factory = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(_provider);
        }

        public System.Diagnostics.Metrics.IMeterFactory Factory { get; }

        public void Dispose() => _provider.Dispose();
    }
}
