using FileCache.Disk;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Wasmtime;

namespace FileCache.Wasmtime.Tests;

/// <summary>UsePrecompiled: a read-only tier in front of the writable ones, whatever the call order.</summary>
public sealed class PrecompiledTierTests : IDisposable
{
    private readonly string _root = Path.Join(Path.GetTempPath(), "filecache-precompiled-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [Fact]
    public void AMatchingHostMapsThePrecompiledEntry_ADifferentOneMissesThere_AndCompilesIntoItsWritableTier()
    {
        string precompiled = Path.Join(_root, "wasm-precompiled");
        string writable = Path.Join(_root, "cache");
        var settings = new WasmtimeEngineSettings();
        using (var publisher = new DiskCodeCache(precompiled)) // what the publish step writes, with the disk tier's code
        {
            using var engine = settings.CreateEngine();
            new WasmtimeModuleCache(publisher).Load(engine, WasmModules.Answer).Dispose();
        }

        var before = Directory.GetFiles(precompiled).Select(File.ReadAllBytes).ToArray();
        var services = new ServiceCollection().AddMetrics();
        services.AddWasmCodeCache(c => c.UseDisk(writable).UsePrecompiled(o => o.Directory = precompiled).AddWasmtime()); // UsePrecompiled last, yet first
        using var provider = services.BuildServiceProvider();
        using var failures = new MetricCollector<long>(provider.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), Diagnostics.WasmCodeCacheMetrics.MeterName, "filecache.tier_failures");
        var loader = provider.GetRequiredService<WasmtimeModuleCache>();

        using (var engine = settings.CreateEngine())
        using (var hit = loader.Load(engine, WasmModules.Answer))
        {
            Assert.Equal(ModuleOrigin.MappedFile, hit.Origin); // the first start is a hit
        }

        Assert.False(Directory.Exists(writable) && Directory.GetFiles(writable).Length > 0); // nothing copied into the writable tier

        // Other engine settings (as another CPU or Wasmtime would): another key, a miss there, a compile into the writable tier.
        var other = settings with { Optimization = OptimizationLevel.None };
        using (var engine = other.CreateEngine())
        using (var compiled = loader.Load(engine, WasmModules.Answer))
        {
            Assert.Equal(ModuleOrigin.Compiled, compiled.Origin);
            Assert.True(File.Exists(Path.Join(writable, compiled.Key.ToString())));
        }

        using (var engine = other.CreateEngine())
        using (var again = loader.Load(engine, WasmModules.Answer))
        {
            Assert.Equal(ModuleOrigin.MappedFile, again.Origin); // from the writable tier now
        }

        Assert.Empty(failures.GetMeasurementSnapshot()); // the read-only tier refusing writes is not a failure
        Assert.Equal(before, Directory.GetFiles(precompiled).Select(File.ReadAllBytes).ToArray()); // and it is unchanged
    }

    [Fact]
    public void AMissingPrecompiledDirectory_IsAMiss_NotAnError()
    {
        var services = new ServiceCollection();
        services.AddWasmCodeCache(c => c.UsePrecompiled(o => o.Directory = Path.Join(_root, "none")).UseDisk(Path.Join(_root, "cache")).AddWasmtime());
        using var provider = services.BuildServiceProvider();
        provider.GetService<Microsoft.Extensions.Options.IStartupValidator>()?.Validate();
        var settings = new WasmtimeEngineSettings();
        using var engine = settings.CreateEngine();
        using var loaded = provider.GetRequiredService<WasmtimeModuleCache>().Load(engine, WasmModules.Answer);
        Assert.Equal(ModuleOrigin.Compiled, loaded.Origin);
        Assert.False(Directory.Exists(Path.Join(_root, "none")));
    }
}
