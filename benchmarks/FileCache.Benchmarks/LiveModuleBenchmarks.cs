using BenchmarkDotNet.Attributes;
using FileCache.Disk;
using FileCache.Wasmtime;
using Wasmtime;

namespace FileCache.Benchmarks;

/// <summary>
/// A repeated load of one module on one engine (issue 10's live modules), against a disk hit on a
/// fresh engine and against deriving the key alone, which is all a live hit does besides a lookup.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class LiveModuleBenchmarks
{
    private string _dir = "";
    private byte[] _wasm = [];
    private Engine _engine = null!;
    private WasmtimeModuleCache _loader = null!;
    private WasmDigest _digest = null!;
    private readonly WasmtimeEngineSettings _settings = new();

    [Params("tiny (127 B)", "sql-wasm.wasm")]
    public string Module { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        _wasm = Module == "sql-wasm.wasm"
            ? File.ReadAllBytes(Path.Join(WasmtimeBenchmarks.ModulesDirectory(), Module))
            : global::Wasmtime.Module.ConvertText("(module (func (export \"answer\") (result i32) i32.const 42))");
        _dir = Path.Join(Path.GetTempPath(), "filecache-live-bench-" + Guid.NewGuid().ToString("N"));
        _loader = new WasmtimeModuleCache(new DiskCodeCache(_dir));
        _engine = _settings.CreateEngine();
        _loader.Load(_engine, new WasmSource("m", _wasm)).Dispose();
        _digest = WasmDigest.Compute(_wasm);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _engine.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark(Baseline = true)]
    public CacheKey DeriveKeyOnly() => _settings.DeriveKey(_wasm);

    [Benchmark]
    public void LiveModuleHit()
    {
        using var loaded = _loader.Load(_engine, new WasmSource("m", _wasm));
        if (loaded.Origin != ModuleOrigin.LiveModule)
        {
            throw new InvalidOperationException($"expected a live module, got {loaded.Origin}");
        }
    }

    /// <summary>The same reload with the module's digest computed once before (issue 20): the key hashes no module byte.</summary>
    [Benchmark]
    public void LiveModuleHit_Digested()
    {
        using var loaded = _loader.Load(_engine, new WasmSource("m", _wasm, digest: _digest));
        if (loaded.Origin != ModuleOrigin.LiveModule)
        {
            throw new InvalidOperationException($"expected a live module, got {loaded.Origin}");
        }
    }

    /// <summary>What the digested reload costs besides the lookup: deriving the key from the digest.</summary>
    [Benchmark]
    public CacheKey DeriveKeyFromDigest() => _settings.DeriveKey(_digest);
}
