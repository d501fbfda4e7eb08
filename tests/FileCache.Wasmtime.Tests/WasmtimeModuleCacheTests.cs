using System.Text;
using FileCache.Disk;
using FileCache.Memory;
using FileCache.Tiering;
using Microsoft.Extensions.DependencyInjection;
using Wasmtime;

namespace FileCache.Wasmtime.Tests;

public sealed class WasmtimeModuleCacheTests : IDisposable
{
    private readonly string _dir = Path.Join(Path.GetTempPath(), "filecache-wasmtime-" + Guid.NewGuid().ToString("N"));

    private readonly List<IDisposable> _owned = [];

    public void Dispose()
    {
        foreach (var owned in _owned)
        {
            owned.Dispose(); // stops background trims before the directory goes
        }

        for (int attempt = 0; Directory.Exists(_dir); attempt++)
        {
            try
            {
                Directory.Delete(_dir, recursive: true);
            }
            catch (IOException) when (attempt < 20)
            {
                Thread.Sleep(50); // a file handle of the test may still be closing
            }
        }
    }

    private T Own<T>(T value)
        where T : IDisposable
    {
        _owned.Add(value);
        return value;
    }

    /// <summary>A module built from WAT text; <paramref name="salt"/> makes distinct modules.</summary>
    private static byte[] Wasm(int salt = 0) => global::Wasmtime.Module.ConvertText($"""
        (module
          (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add i32.const {salt} i32.add)
          (func (export "answer") (result i32) i32.const 42))
        """);

    private static int CallAdd(Loaded<global::Wasmtime.Module> loaded, Engine engine, int a, int b)
    {
        using var store = new Store(engine);
        var instance = new Instance(store, loaded.Value);
        return (int)instance.GetFunction("add")!.Invoke(a, b)!;
    }

    private DiskCodeCache Disk() => Own(new DiskCodeCache(new DiskCodeCacheOptions { Directory = _dir }));

    public static TheoryData<string> Backends() => ["memory", "disk", "tiered"];

    private IWasmCodeCache Backend(string name) => name switch
    {
        "memory" => new MemoryCodeCache(),
        "disk" => Disk(),
        _ => Own(new TieredCodeCache([new MemoryCodeCache(), Disk()], ownsTiers: true)),
    };

    [Theory]
    [MemberData(nameof(Backends))]
    public void FirstLoadCompilesAndStores_SecondLoadWithAFreshEngineHits(string backend)
    {
        var cache = Backend(backend);
        var loader = new WasmtimeModuleCache(cache);
        var settings = new WasmtimeEngineSettings();
        var wasm = Wasm();

        using (var engine = settings.CreateEngine())
        using (var first = loader.Load(engine, new WasmSource("m", wasm)))
        {
            Assert.Equal(ModuleOrigin.Compiled, first.Origin);
            Assert.Equal(5, CallAdd(first, engine, 2, 3));
        }

        using (var engine = settings.CreateEngine())
        using (var second = loader.Load(engine, new WasmSource("m", wasm)))
        {
            Assert.True(second.IsHit, second.Origin.ToString());
            // Tiers answer in their order: with a memory tier in front, its bytes are the hit.
            Assert.Equal(backend == "disk" ? ModuleOrigin.MappedFile : ModuleOrigin.CacheHit, second.Origin);
            Assert.Equal(9, CallAdd(second, engine, 4, 5));
        }
    }

    [Fact]
    public void DiskHit_TakesTheMappedFilePath_AndWasmtimeAcceptsTheFramedFile()
    {
        using var disk = Disk();
        var loader = new WasmtimeModuleCache(disk);
        var settings = new WasmtimeEngineSettings();
        using var engine = settings.CreateEngine();
        loader.Load(engine, new WasmSource("m", Wasm())).Dispose();

        // The entry file is the serialized module followed by FileCache's 64-byte frame.
        var key = settings.DeriveKey(Wasm());
        Assert.True(disk.TryGetFile(key, out var file));
        using (file)
        {
            Assert.Equal(new FileInfo(disk.GetPath(key)).Length - 64, file.PayloadLength);
            using var direct = global::Wasmtime.Module.DeserializeFile(engine, "direct", file.Path); // trailing bytes accepted
        }

        loader.Forget(engine); // past the live module: to the disk entry
        using var hit = loader.Load(engine, new WasmSource("m", Wasm()));
        Assert.Equal(ModuleOrigin.MappedFile, hit.Origin);
        Assert.Equal(3, CallAdd(hit, engine, 1, 2));
    }

    [Fact]
    public void FlippedByteInTheStoredEntry_IsDetected_AndRecompiled()
    {
        using var disk = Disk();
        var loader = new WasmtimeModuleCache(disk);
        var settings = new WasmtimeEngineSettings();
        using var engine = settings.CreateEngine();
        loader.Load(engine, new WasmSource("m", Wasm())).Dispose();

        string path = disk.GetPath(settings.DeriveKey(Wasm()));
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0x10; // inside the machine code
        File.WriteAllBytes(path, bytes);

        loader.Forget(engine); // past the live module: to the corrupt disk entry
        using var loaded = loader.Load(engine, new WasmSource("m", Wasm()));
        Assert.Equal(ModuleOrigin.Compiled, loaded.Origin); // the corrupt entry was a miss
        Assert.Equal(7, CallAdd(loaded, engine, 3, 4));
        Assert.True(disk.TryGetFile(loaded.Key, out var repaired)); // and was replaced by a good one
        repaired.Dispose();
    }

    [Fact]
    public void OtherEngineSettings_UseADifferentKey_AndAForcedEntryIsDeletedAndRecompiled()
    {
        using var disk = Disk();
        var loader = new WasmtimeModuleCache(disk);
        var plain = new WasmtimeEngineSettings();
        var fuel = plain with { ConsumeFuel = true };
        Assert.NotEqual(plain.DeriveKey(Wasm()), fuel.DeriveKey(Wasm()));

        using var fuelEngine = fuel.CreateEngine();
        using (var fromFuel = loader.Load(fuelEngine, new WasmSource("m", Wasm())))
        {
            Assert.Equal(ModuleOrigin.Compiled, fromFuel.Origin);

            // Not used by an engine without fuel: its key differs, so this is a miss.
            using var plainEngine = plain.CreateEngine();
            using (var fromPlain = loader.Load(plainEngine, new WasmSource("m", Wasm())))
            {
                Assert.Equal(ModuleOrigin.Compiled, fromPlain.Origin);
            }

            // Forced under the plain key: Wasmtime refuses it, the entry is deleted and recompiled.
            disk.Add(plain.DeriveKey(Wasm()), new MemoryStream(fromFuel.Value.Serialize()));
            loader.Forget(plainEngine); // past the live module: to the forced disk entry
            using var forced = loader.Load(plainEngine, new WasmSource("m", Wasm()));
            Assert.Equal(ModuleOrigin.Recompiled, forced.Origin);
            Assert.Equal(11, CallAdd(forced, plainEngine, 5, 6));

            loader.Forget(plainEngine);
            using var again = loader.Load(plainEngine, new WasmSource("m", Wasm()));
            Assert.Equal(ModuleOrigin.MappedFile, again.Origin); // the replacement is usable
        }
    }

    [Fact]
    public async Task SixteenConcurrentLoadsOfANewModule_CompileItOnce_TheOthersShareIt()
    {
        // Deterministic: the leader's second lookup (after it claimed the compile, before compiling)
        // waits until all fifteen others are waiting for that compile, so each must get SharedCompile.
        var disk = Disk();
        using var allWaiting = new ManualResetEventSlim();
        var gate = new RecheckGate(disk, allWaiting);
        int waiting = 0;
        var loader = new WasmtimeModuleCache(gate) { WaitingForCompile = _ => { if (Interlocked.Increment(ref waiting) == 15) { allWaiting.Set(); } } };
        var settings = new WasmtimeEngineSettings();
        using var engine = settings.CreateEngine();
        var wasm = Wasm(16);
        using var start = new ManualResetEventSlim();
        // Every caller on a thread of its own, as a server's request threads would be, so the test
        // does not depend on how fast the thread pool grows (issue 13 covers that).
        var loads = Enumerable.Range(0, 16).Select(i =>
        {
            var done = new TaskCompletionSource<Loaded<global::Wasmtime.Module>>();
            new Thread(() =>
            {
                start.Wait();
                try
                {
                    done.SetResult(i % 2 == 0
                        ? loader.Load(engine, new WasmSource("m", wasm))
                        : loader.LoadAsync(engine, new WasmSource("m", wasm)).AsTask().GetAwaiter().GetResult());
                }
                catch (Exception e)
                {
                    done.SetException(e);
                }
            }).Start();
            return done.Task;
        }).ToArray();
        start.Set();
        var results = await Task.WhenAll(loads).WaitAsync(TimeSpan.FromSeconds(60));
        try
        {
            var origins = results.Select(r => r.Origin).ToArray();
            Assert.True(origins.Count(o => o == ModuleOrigin.Compiled) == 1, "origins: " + string.Join(", ", origins));
            Assert.True(origins.Count(o => o == ModuleOrigin.SharedCompile) == 15, "origins: " + string.Join(", ", origins) + "; waiting " + waiting);
            Assert.All(results, r => Assert.Equal(19, CallAdd(r, engine, 1, 2)));
        }
        finally
        {
            foreach (var r in results)
            {
                r.Dispose();
            }
        }
    }

    /// <summary>
    /// Holds the leader's re-check (its second lookup) until a test says go (bounded, so a bug fails
    /// instead of hanging). Every caller runs on a thread of its own and looks up once before it
    /// claims or waits; a second lookup on the same thread, or one on a pool thread (where
    /// LoadAsync runs the claimed compile), is the leader's.
    /// </summary>
    /// <summary>
    /// Holds the leader's re-check (the only lookup asked with <see cref="CacheLookupScope.SharedTiers"/>,
    /// made after it claimed the compile, sync or async) until every other caller waits for its compile.
    /// </summary>
    private sealed class RecheckGate(IWasmCodeCache inner, ManualResetEventSlim go) : IWasmCodeCache, ICacheEntrySource
    {
        public bool TryGetEntry(CacheKey key, CacheLookupScope scope, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out CacheEntry? entry)
        {
            HoldIfRecheck(scope);
            return inner.TryGetEntry(key, out entry, scope);
        }

        public ValueTask<CacheEntry?> GetEntryAsync(CacheKey key, CacheLookupScope scope, CancellationToken cancellationToken = default)
        {
            HoldIfRecheck(scope);
            return inner.GetEntryAsync(key, scope, cancellationToken);
        }

        private void HoldIfRecheck(CacheLookupScope scope)
        {
            if (scope == CacheLookupScope.SharedTiers)
            {
                Assert.True(go.Wait(TimeSpan.FromSeconds(30)), "the other loads never started waiting for the compile");
            }
        }

        public bool TryGet(CacheKey key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Stream? content) => inner.TryGet(key, out content);

        public ValueTask<Stream?> GetAsync(CacheKey key, CancellationToken cancellationToken = default) => inner.GetAsync(key, cancellationToken);

        public void Add(CacheKey key, Stream content) => inner.Add(key, content);

        public void Delete(CacheKey key) => inner.Delete(key);

        public ValueTask AddAsync(CacheKey key, Stream content, CancellationToken cancellationToken = default) => inner.AddAsync(key, content, cancellationToken);

        public ValueTask DeleteAsync(CacheKey key, CancellationToken cancellationToken = default) => inner.DeleteAsync(key, cancellationToken);
    }

    [Fact]
    public async Task WaitingForAnotherCallersCompile_HonoursCancellation()
    {
        // The leader's second lookup (after it claimed the key) blocks until released, so the
        // follower is certainly waiting on the leader's compile when its token is cancelled.
        var cache = new BlockingSecondLookup(new MemoryCodeCache());
        var loader = new WasmtimeModuleCache(cache);
        var settings = new WasmtimeEngineSettings();
        using var engine = settings.CreateEngine();
        var leader = Task.Run(() => loader.Load(engine, new WasmSource("m", Wasm())));
        Assert.True(cache.SecondLookupStarted.Wait(TimeSpan.FromSeconds(30)));

        using var cts = new CancellationTokenSource();
        var follower = loader.LoadAsync(engine, new WasmSource("m", Wasm()), cancellationToken: cts.Token).AsTask();
        await Task.Delay(50);
        Assert.False(follower.IsCompleted);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => follower);

        cache.Release.Set();
        using var led = await leader;
        Assert.Equal(ModuleOrigin.Compiled, led.Origin);
    }

    [Fact]
    public void InvalidWasm_WithValidation_ThrowsNamingTheModule()
    {
        var loader = new WasmtimeModuleCache(new MemoryCodeCache());
        var settings = new WasmtimeEngineSettings();
        using var engine = settings.CreateEngine();
        byte[] garbage = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0xff];
        var e = Assert.Throws<WasmtimeException>(() => loader.Load(engine, new WasmSource("broken.wasm", garbage, validate: true)));
        Assert.Contains("Module 'broken.wasm' is not valid WebAssembly", e.Message); // the loader's validation, before any compile

        // Without validation the compile itself rejects the bytes, in Wasmtime's words: so the
        // message above proves the validation step ran.
        var unvalidated = Assert.Throws<WasmtimeException>(() => loader.Load(engine, new WasmSource("broken.wasm", garbage, validate: false)));
        Assert.DoesNotContain("is not valid WebAssembly", unvalidated.Message);
    }

    [Fact]
    public void LoadsAreCounted_ExactlyByOrigin()
    {
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var factory = services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        using var loads = new Microsoft.Extensions.Diagnostics.Metrics.Testing.MetricCollector<long>(factory, FileCache.Diagnostics.WasmCodeCacheMetrics.MeterName, "filecache.wasmtime.loads");
        var loader = new WasmtimeModuleCache(Disk(), meterFactory: factory);
        var settings = new WasmtimeEngineSettings();
        using var engine = settings.CreateEngine();
        loader.Load(engine, new WasmSource("m", Wasm(7))).Dispose();   // compiled
        loader.Load(engine, new WasmSource("m", Wasm(7))).Dispose();   // live module
        loader.Forget(engine);
        loader.Load(engine, new WasmSource("m", Wasm(7))).Dispose();   // mapped from disk
        loader.Load(engine, new WasmSource("m", Wasm(7))).Dispose();   // live again
        long Count(string origin) => loads.GetMeasurementSnapshot().Where(m => Equals(m.Tags["filecache.origin"], origin)).Sum(m => m.Value);
        Assert.Equal(1, Count("compiled"));
        Assert.Equal(2, Count("livemodule"));
        Assert.Equal(1, Count("mappedfile"));
        Assert.Equal(4, loads.GetMeasurementSnapshot().Sum(m => m.Value));
    }

    [Fact]
    public void LoadDurations_AreRecorded_ByOriginAndArtifact_CompiledSlowerThanMapped()
    {
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var factory = services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        using var durations = new Microsoft.Extensions.Diagnostics.Metrics.Testing.MetricCollector<double>(factory, FileCache.Diagnostics.WasmCodeCacheMetrics.MeterName, "filecache.wasmtime.load.duration");
        var loader = new WasmtimeModuleCache(Disk(), meterFactory: factory);
        var settings = new WasmtimeEngineSettings();
        var big = BigWasm();
        using (var engine = settings.CreateEngine())
        {
            loader.Load(engine, new WasmSource("m", big)).Dispose(); // compiled
        }

        using (var engine = settings.CreateEngine())
        {
            loader.Load(engine, new WasmSource("m", big)).Dispose(); // mapped
        }

        var all = durations.GetMeasurementSnapshot();
        Assert.Equal(2, all.Count);
        Assert.All(all, m => Assert.Equal("module", m.Tags["filecache.artifact"]));
        double compiled = Assert.Single(all, m => Equals(m.Tags["filecache.origin"], "compiled")).Value;
        double mapped = Assert.Single(all, m => Equals(m.Tags["filecache.origin"], "mappedfile")).Value;
        Assert.True(compiled > mapped, $"compiled {compiled} s, mapped {mapped} s"); // the difference is the compile time saved
        Assert.Equal("s", durations.Instrument!.Unit);
    }

    [Fact]
    public void ReadOnlyCache_StillLoads_ByCompiling()
    {
        var readOnly = Own(new DiskCodeCache(new DiskCodeCacheOptions { Directory = _dir, ReadOnly = true }));
        var loader = new WasmtimeModuleCache(readOnly);
        var settings = new WasmtimeEngineSettings();
        using var engine = settings.CreateEngine();
        using var loaded = loader.Load(engine, new WasmSource("m", Wasm()));
        Assert.Equal(ModuleOrigin.Compiled, loaded.Origin);
        Assert.Equal(2, CallAdd(loaded, engine, 1, 1));
    }

    [Fact]
    public void AddWasmtime_RegistersTheLoaderOverTheCache()
    {
        var services = new ServiceCollection();
        services.AddWasmCodeCache(c => c.UseDisk(_dir).AddWasmtime());
        var provider = Own(services.BuildServiceProvider());
        var loader = provider.GetRequiredService<WasmtimeModuleCache>();
        var settings = new WasmtimeEngineSettings();
        using var engine = settings.CreateEngine();
        loader.Load(engine, new WasmSource("m", Wasm())).Dispose();
        using var hit = loader.Load(engine, new WasmSource("m", Wasm()));
        Assert.True(hit.IsHit);
    }

    [Fact]
    public void AddWasmtime_RefusesAMemoryTierInFrontOfTheDiskTier_AtStart_SayingWhy()
    {
        // A memory hit is bytes Wasmtime must deserialize (14 ms for esbuild.wasm); the disk tier's is a
        // verified file it maps (0.3 ms): the composition would make every fresh-engine load slower.
        var services = new ServiceCollection();
        services.AddWasmCodeCache(c => c.UseMemory().UseDisk(_dir).AddWasmtime());
        var provider = Own(services.BuildServiceProvider());
        var e = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => provider.GetRequiredService<Microsoft.Extensions.Options.IStartupValidator>().Validate());
        Assert.Contains("UseMemory() in front of UseDisk()", e.Message);
        Assert.Contains("Remove UseMemory()", e.Message);

        // Memory alone, or in front of a tier that holds no files, is not refused.
        var fine = new ServiceCollection();
        fine.AddWasmCodeCache(c => c.UseMemory().AddWasmtime());
        Own(fine.BuildServiceProvider()).GetRequiredService<Microsoft.Extensions.Options.IStartupValidator>().Validate();
    }

    /// <summary>A cache whose second TryGet blocks until released.</summary>
    private sealed class BlockingSecondLookup(IWasmCodeCache inner) : IWasmCodeCache
    {
        private int _lookups;

        public ManualResetEventSlim SecondLookupStarted { get; } = new();

        public ManualResetEventSlim Release { get; } = new();

        public bool TryGet(CacheKey key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Stream? content)
        {
            if (Interlocked.Increment(ref _lookups) == 2)
            {
                SecondLookupStarted.Set();
                Release.Wait(TimeSpan.FromSeconds(30));
            }

            return inner.TryGet(key, out content);
        }

        public void Add(CacheKey key, Stream content) => inner.Add(key, content);

        public void Delete(CacheKey key) => inner.Delete(key);

        public ValueTask<Stream?> GetAsync(CacheKey key, CancellationToken cancellationToken = default) => inner.GetAsync(key, cancellationToken);

        public ValueTask AddAsync(CacheKey key, Stream content, CancellationToken cancellationToken = default) => inner.AddAsync(key, content, cancellationToken);

        public ValueTask DeleteAsync(CacheKey key, CancellationToken cancellationToken = default) => inner.DeleteAsync(key, cancellationToken);
    }

    /// <summary>A module with many functions, so compiling it takes a noticeable time.</summary>
    private static byte[] BigWasm()
    {
        var text = new StringBuilder("(module\n");
        for (int i = 0; i < 3000; i++)
        {
            text.Append("(func (export \"f").Append(i).Append("\") (result i32) (local i32) i32.const 42 local.set 0 ");
            for (int j = 0; j < 20; j++)
            {
                text.Append("local.get 0 i32.const ").Append(j).Append(" i32.add i32.const ").Append(j).Append(" i32.sub local.set 0 ");
            }

            text.Append("local.get 0)\n");
        }

        return global::Wasmtime.Module.ConvertText(text.Append(')').ToString());
    }
}
