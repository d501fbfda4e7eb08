using System.Diagnostics.Metrics;
using FileCache.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace FileCache.Disk.Tests;

/// <summary>A meter factory of its own, so counts are exact: no other test's cache records into it.</summary>
internal sealed class ScopedMeters : IDisposable
{
    private readonly ServiceProvider _provider = new ServiceCollection().AddMetrics().BuildServiceProvider();

    public IMeterFactory Factory => _provider.GetRequiredService<IMeterFactory>();

    public MetricCollector<long> Collect(string instrument) => new(Factory, WasmCodeCacheMetrics.MeterName, instrument);

    public void Dispose() => _provider.Dispose();
}

internal static class MetricCollectorExtensions
{
    /// <summary>The sum of the measurements, optionally only those whose tag has a value.</summary>
    public static long Sum(this MetricCollector<long> collector, string? tag = null, string? value = null)
        => collector.GetMeasurementSnapshot()
            .Where(m => tag is null || (m.Tags.TryGetValue(tag, out var v) && Equals(v, value)))
            .Sum(m => m.Value);
}
