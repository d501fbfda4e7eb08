using BenchmarkDotNet.Attributes;
using RunStrategy = BenchmarkDotNet.Engines.RunStrategy;
using FileCache.Disk;
using FileCache.Wasmtime;
using Wasmtime;
using WasmModule = Wasmtime.Module;

namespace FileCache.Benchmarks;

/// <summary>
/// Loading a real module three ways, each in a fresh Engine, side by side in one run: a cold
/// compile, a hit in Wasmtime's own cache (Config.WithCacheConfig), and a hit through FileCache's
/// disk backend. Modules come from benchmarks/fetch-modules.sh.
/// </summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1, iterationCount: 7)]
[MemoryDiagnoser]
public class WasmtimeBenchmarks
{
    private string _dir = "";
    private byte[] _wasm = [];
    private string _wasmtimeCacheConfig = "";
    private WasmtimeModuleCache _loader = null!;
    private readonly WasmtimeEngineSettings _settings = new();

    [Params("sql-wasm.wasm", "tree-sitter-cpp.wasm", "esbuild.wasm", "wasm_bg.wasm")]
    public string Module { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        string path = Path.Join(ModulesDirectory(), Module);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Run benchmarks/fetch-modules.sh first: '{path}' is missing.", path);
        }

        _wasm = File.ReadAllBytes(path);
        _dir = Path.Join(Path.GetTempPath(), "filecache-wasmtime-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);

        // Wasmtime's own cache, primed once.
        _wasmtimeCacheConfig = Path.Join(_dir, "wasmtime-cache.toml");
        File.WriteAllText(_wasmtimeCacheConfig, $"[cache]\ndirectory = \"{Path.Join(_dir, "wasmtime")}\"\n");
        using (var engine = new Engine(_settings.CreateConfig().WithCacheConfig(_wasmtimeCacheConfig)))
        using (WasmModule.FromBytes(engine, Module, _wasm))
        {
        }

        // FileCache's disk backend, primed once.
        _loader = new WasmtimeModuleCache(new DiskCodeCache(new DiskCodeCacheOptions { Directory = Path.Join(_dir, "filecache") }));
        using (var engine = _settings.CreateEngine())
        using (var first = _loader.Load(engine, new WasmSource(Module, _wasm)))
        {
            if (first.Origin != ModuleOrigin.Compiled)
            {
                throw new InvalidOperationException("expected a compile while priming");
            }
        }
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_dir, recursive: true);

    [Benchmark(Baseline = true)]
    public void ColdCompile()
    {
        using var engine = _settings.CreateEngine();
        using var module = WasmModule.FromBytes(engine, Module, _wasm);
    }

    [Benchmark]
    public void WasmtimeCacheHit()
    {
        using var engine = new Engine(_settings.CreateConfig().WithCacheConfig(_wasmtimeCacheConfig));
        using var module = WasmModule.FromBytes(engine, Module, _wasm);
    }

    [Benchmark]
    public void FileCacheDiskHit()
    {
        using var engine = _settings.CreateEngine();
        using var loaded = _loader.Load(engine, new WasmSource(Module, _wasm));
        if (!loaded.IsHit)
        {
            throw new InvalidOperationException($"expected a hit, got {loaded.Origin}");
        }
    }

    internal static string ModulesDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Join(dir.FullName, "benchmarks", "modules");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        return Path.Join("benchmarks", "modules");
    }
}
