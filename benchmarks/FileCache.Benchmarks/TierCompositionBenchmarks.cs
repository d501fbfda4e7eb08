using BenchmarkDotNet.Attributes;
using FileCache.Disk;
using FileCache.Memory;
using FileCache.Tiering;
using FileCache.Wasmtime;
using RunStrategy = BenchmarkDotNet.Engines.RunStrategy;

namespace FileCache.Benchmarks;

/// <summary>
/// The recommended compositions against the disk tier alone (issue 19's measure): a warm esbuild.wasm
/// load (&lt;WasmModule&gt;), a fresh engine per load, side by side in one run. The precompiled tier is
/// present but misses the key, as on a host whose CPU or settings differ from the publisher's.
/// </summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 3, iterationCount: 15)]
[MedianColumn]
public class TierCompositionBenchmarks
{
    private readonly WasmtimeEngineSettings _settings = new();
    private EmbeddedWasmModule _module = null!;
    private string _dir = "";
    private WasmtimeModuleCache _disk = null!;
    private WasmtimeModuleCache _precompiledDisk = null!;
    private WasmtimeModuleCache _memoryDisk = null!;

    [GlobalSetup]
    public void Setup()
    {
        _module = WasmModules.All.FirstOrDefault(m => m.Name == "esbuild.wasm")
            ?? throw new InvalidOperationException("Run benchmarks/fetch-modules.sh first, then build again: esbuild.wasm is not embedded.");
        _dir = Path.Join(Path.GetTempPath(), "filecache-compositions-" + Guid.NewGuid().ToString("N"));
        string disk = Path.Join(_dir, "disk");
        string precompiled = Path.Join(_dir, "precompiled");
        Directory.CreateDirectory(precompiled);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(precompiled, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        _disk = new WasmtimeModuleCache(new DiskCodeCache(disk), options: new WasmtimeModuleCacheOptions { LiveModuleBudget = 0 });
        _precompiledDisk = new WasmtimeModuleCache(
            new TieredCodeCache([new DiskCodeCache(new DiskCodeCacheOptions { Directory = precompiled, ReadOnly = true }), new DiskCodeCache(disk)]),
            options: new WasmtimeModuleCacheOptions { LiveModuleBudget = 0 });
        _memoryDisk = new WasmtimeModuleCache(new TieredCodeCache([new MemoryCodeCache(), new DiskCodeCache(disk)]), options: new WasmtimeModuleCacheOptions { LiveModuleBudget = 0 });
        using (var engine = _settings.CreateEngine())
        using (_disk.Load(engine, _module))
        {
            // compiled once into the disk tier; every benchmark below is a warm load
        }
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_dir, recursive: true);

    [Benchmark(Baseline = true)]
    public ModuleOrigin UseDisk() => Load(_disk);

    [Benchmark]
    public ModuleOrigin UsePrecompiled_UseDisk() => Load(_precompiledDisk);

    [Benchmark]
    public ModuleOrigin UseMemory_UseDisk() => Load(_memoryDisk);

    private ModuleOrigin Load(WasmtimeModuleCache loader)
    {
        using var engine = _settings.CreateEngine();
        using var loaded = loader.Load(engine, _module);
        return loaded.IsHit ? loaded.Origin : throw new InvalidOperationException($"expected a hit, got {loaded.Origin}");
    }
}
