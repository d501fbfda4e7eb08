using BenchmarkDotNet.Attributes;
using FileCache.Disk;
using FileCache.Wasmtime;
using RunStrategy = BenchmarkDotNet.Engines.RunStrategy;
using WasmModule = Wasmtime.Module;

namespace FileCache.Benchmarks;

/// <summary>
/// What the trust boundary costs a warm load (issue 9), side by side in one run, each in a fresh
/// engine: the private mapped path (no key: Wasmtime maps the verified entry file), the sealed copy
/// (a key: the payload is read into a sealed memfd that Wasmtime maps), and the floor, a raw
/// <c>Module.DeserializeFile</c> of a plain serialized file; and the HMAC alone, to tell the cost of
/// authenticating from the cost of the copy.
/// </summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 2, iterationCount: 15)]
[MemoryDiagnoser]
[MedianColumn]
public class TrustPathBenchmarks
{
    private string _dir = "";
    private string _plain = "";
    private static readonly byte[] HmacKey = new byte[32];
    private byte[] _wasm = [];
    private byte[] _serialized = [];
    private WasmtimeModuleCache _private = null!;
    private WasmtimeModuleCache _sealed = null!;
    private readonly WasmtimeEngineSettings _settings = new();

    [Params("sql-wasm.wasm", "esbuild.wasm")]
    public string Module { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        _wasm = File.ReadAllBytes(Path.Join(WasmtimeBenchmarks.ModulesDirectory(), Module));
        _dir = Path.Join(Path.GetTempPath(), "filecache-trust-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        _private = new WasmtimeModuleCache(new DiskCodeCache(new DiskCodeCacheOptions { Directory = Path.Join(_dir, "private") }));
        _sealed = new WasmtimeModuleCache(new DiskCodeCache(new DiskCodeCacheOptions { Directory = Path.Join(_dir, "keyed"), AuthenticationKey = new byte[32] }));
        using var engine = _settings.CreateEngine();
        using (var first = _private.Load(engine, new WasmSource(Module, _wasm)))
        {
            _plain = Path.Join(_dir, "plain.cwasm");
            _serialized = first.Value.Serialize();
            File.WriteAllBytes(_plain, _serialized);
        }

        _sealed.Load(engine, new WasmSource(Module, _wasm)).Dispose();
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_dir, recursive: true);

    [Benchmark(Baseline = true)]
    public void RawDeserializeFile()
    {
        using var engine = _settings.CreateEngine();
        using var module = WasmModule.DeserializeFile(engine, Module, _plain);
    }

    /// <summary>
    /// The floor of a hit that issue 10 measures against: the key's hash of the module on all cores,
    /// the entry's checksum on all cores (XXH3 per MiB, as frame 2 does) and a raw <c>DeserializeFile</c>.
    /// </summary>
    [Benchmark]
    public void FloorKeyChecksumDeserialize()
    {
        var key = _settings.DeriveKey(_wasm);
        var digests = new ulong[(_serialized.Length + Chunk - 1) / Chunk];
        Parallel.For(0, digests.Length, i => digests[i] = System.IO.Hashing.XxHash3.HashToUInt64(_serialized.AsSpan(i * Chunk, Math.Min(Chunk, _serialized.Length - (i * Chunk))), i));
        using var engine = _settings.CreateEngine();
        using var module = WasmModule.DeserializeFile(engine, Module, _plain);
        GC.KeepAlive(key);
    }

    private const int Chunk = 1 << 20;

    /// <summary>Frame 2's authentication alone: SHA-256 of each MiB on all cores, then HMAC over the digests.</summary>
    [Benchmark]
    public byte[] ChunkedMacOfTheEntryOnly()
    {
        var digests = new byte[(_serialized.Length + Chunk - 1) / Chunk * 32];
        Parallel.For(0, digests.Length / 32, i => System.Security.Cryptography.SHA256.HashData(_serialized.AsSpan(i * Chunk, Math.Min(Chunk, _serialized.Length - (i * Chunk))), digests.AsSpan(i * 32, 32)));
        return System.Security.Cryptography.HMACSHA256.HashData(HmacKey, digests);
    }

    /// <summary>Frame 1's authentication: HMAC-SHA256 over the serialized module on one core.</summary>
    [Benchmark]
    public byte[] HmacOfTheEntryOnly() => System.Security.Cryptography.HMACSHA256.HashData(HmacKey, _serialized);

    [Benchmark]
    public void PrivateMappedHit() => Hit(_private);

    [Benchmark]
    public void AuthenticatedSealedCopyHit() => Hit(_sealed);

    private void Hit(WasmtimeModuleCache loader)
    {
        using var engine = _settings.CreateEngine();
        using var loaded = loader.Load(engine, new WasmSource(Module, _wasm));
        if (loaded.Origin != ModuleOrigin.MappedFile)
        {
            throw new InvalidOperationException($"expected a mapped hit, got {loaded.Origin}");
        }
    }
}
