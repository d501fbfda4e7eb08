using BenchmarkDotNet.Attributes;
using FileCache.Disk;
using FileCache.Wasmtime;
using Wasmtime;
using RunStrategy = BenchmarkDotNet.Engines.RunStrategy;
using WasmModule = Wasmtime.Module;

namespace FileCache.Benchmarks;

/// <summary>
/// A warm in-process load of esbuild.wasm embedded as a &lt;WasmModule&gt; item (issue 11), each in a
/// fresh engine, side by side with its floor (the entry's checksum on all cores, XXH3 per MiB as
/// frame 2 does, plus a raw <c>DeserializeFile</c>), the same load from bytes (which hashes the
/// module for its key) and Wasmtime's own cache hit.
/// </summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 2, iterationCount: 15)]
[MemoryDiagnoser]
[MedianColumn]
public class EmbeddedModuleBenchmarks
{
    private const int Chunk = 1 << 20;
    private readonly WasmtimeEngineSettings _settings = new();
    private EmbeddedWasmModule _module = null!;
    private byte[] _wasm = [];
    private byte[] _serialized = [];
    private string _dir = "";
    private string _plain = "";
    private string _wasmtimeCacheConfig = "";
    private WasmtimeModuleCache _loader = null!;
    private WasmtimeModuleCache _everyRead = null!;
    private WasmDigest _digest = null!;
    private Engine _sameEngine = null!;

    [GlobalSetup]
    public void Setup()
    {
        _module = WasmModules.All.FirstOrDefault(m => m.Name == "esbuild.wasm")
            ?? throw new InvalidOperationException("Run benchmarks/fetch-modules.sh first, then build again: esbuild.wasm is not embedded.");
        _wasm = _module.Bytes.ToArray();
        _dir = Path.Join(Path.GetTempPath(), "filecache-embedded-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        _loader = new WasmtimeModuleCache(new DiskCodeCache(Path.Join(_dir, "filecache")));
        // The same directory, hashed on every hit (before verification records, issue 20).
        _everyRead = new WasmtimeModuleCache(new DiskCodeCache(new DiskCodeCacheOptions { Directory = Path.Join(_dir, "filecache"), Verification = DiskVerification.EveryRead }));
        using (var engine = _settings.CreateEngine())
        using (var first = _loader.Load(engine, _module))
        {
            _serialized = first.Value.Serialize();
        }

        _digest = WasmDigest.Compute(_wasm); // computed once, as a host keeps it beside the file
        _sameEngine = _settings.CreateEngine();
        _loader.Load(_sameEngine, _module).Dispose(); // now a live module on this engine
        _plain = Path.Join(_dir, "plain.cwasm");
        File.WriteAllBytes(_plain, _serialized);
        _wasmtimeCacheConfig = Path.Join(_dir, "wasmtime-cache.toml");
        File.WriteAllText(_wasmtimeCacheConfig, $"[cache]\ndirectory = \"{Path.Join(_dir, "wasmtime")}\"\n");
        using (var engine = new Engine(_settings.CreateConfig().WithCacheConfig(_wasmtimeCacheConfig)))
        using (WasmModule.FromBytes(engine, "esbuild", _wasm))
        {
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _sameEngine.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>The floor: the entry's checksum on all cores and a raw DeserializeFile of a plain file.</summary>
    [Benchmark(Baseline = true)]
    public void FloorChecksumDeserialize()
    {
        var digests = new ulong[(_serialized.Length + Chunk - 1) / Chunk];
        Parallel.For(0, digests.Length, i => digests[i] = System.IO.Hashing.XxHash3.HashToUInt64(_serialized.AsSpan(i * Chunk, Math.Min(Chunk, _serialized.Length - (i * Chunk))), i));
        using var engine = _settings.CreateEngine();
        using var module = WasmModule.DeserializeFile(engine, "esbuild", _plain);
    }

    /// <summary>The key from the build-time digest: nothing is hashed but the entry's checksum.</summary>
    [Benchmark]
    public void EmbeddedModuleHit()
    {
        using var engine = _settings.CreateEngine();
        using var loaded = _loader.Load(engine, _module);
        ExpectMapped(loaded);
    }

    /// <summary>The real floor once entries are verified once per change: a raw DeserializeFile in a fresh engine.</summary>
    [Benchmark]
    public void RawDeserializeFile()
    {
        using var engine = _settings.CreateEngine();
        using var module = WasmModule.DeserializeFile(engine, "esbuild", _plain);
    }

    /// <summary>The embedded hit when every read hashes the entry (Verification = EveryRead).</summary>
    [Benchmark]
    public void EmbeddedModuleHit_EveryRead()
    {
        using var engine = _settings.CreateEngine();
        using var loaded = _everyRead.Load(engine, _module);
        ExpectMapped(loaded);
    }

    /// <summary>A module known at run time with its digest computed once before: the key hashes nothing.</summary>
    [Benchmark]
    public void DigestedBytesHit()
    {
        using var engine = _settings.CreateEngine();
        using var loaded = _loader.Load(engine, new WasmSource("esbuild.wasm", _wasm, digest: _digest));
        ExpectMapped(loaded);
    }

    /// <summary>A reload on the same engine of an embedded module: the live module.</summary>
    [Benchmark]
    public ModuleOrigin SameEngineReload_Embedded()
    {
        using var loaded = _loader.Load(_sameEngine, _module);
        return loaded.Origin == ModuleOrigin.LiveModule ? loaded.Origin : throw new InvalidOperationException($"expected the live module, got {loaded.Origin}");
    }

    /// <summary>A reload on the same engine of a module with its digest: the live module.</summary>
    [Benchmark]
    public ModuleOrigin SameEngineReload_Digested()
    {
        using var loaded = _loader.Load(_sameEngine, new WasmSource("esbuild.wasm", _wasm, digest: _digest));
        return loaded.Origin == ModuleOrigin.LiveModule ? loaded.Origin : throw new InvalidOperationException($"expected the live module, got {loaded.Origin}");
    }

    /// <summary>The same hit from the bytes: the key hashes the 13 MB module first.</summary>
    [Benchmark]
    public void BytesHit()
    {
        using var engine = _settings.CreateEngine();
        using var loaded = _loader.Load(engine, new WasmSource("esbuild", _wasm));
        ExpectMapped(loaded);
    }

    [Benchmark]
    public void WasmtimeCacheHit()
    {
        using var engine = new Engine(_settings.CreateConfig().WithCacheConfig(_wasmtimeCacheConfig));
        using var module = WasmModule.FromBytes(engine, "esbuild", _wasm);
    }

    private static void ExpectMapped(Loaded<global::Wasmtime.Module> loaded)
    {
        if (loaded.Origin != ModuleOrigin.MappedFile)
        {
            throw new InvalidOperationException($"expected a mapped hit, got {loaded.Origin}");
        }
    }
}
