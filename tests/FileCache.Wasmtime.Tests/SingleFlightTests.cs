using System.Diagnostics.CodeAnalysis;
using FileCache.Disk;
using FileCache.Tiering;

namespace FileCache.Wasmtime.Tests;

/// <summary>
/// One caller at a time loads a key in a process: the lookup, the verification and the deserialize are
/// inside the single flight, not only the compile (issue 19). Each test holds the leader inside the disk
/// tier's lookup until every other caller is waiting for it, so the callers truly overlap.
/// </summary>
public sealed class SingleFlightTests : IDisposable
{
    private const int Callers = 8;
    private readonly string _dir = Path.Join(Path.GetTempPath(), "filecache-flight-" + Guid.NewGuid().ToString("N"));
    private readonly WasmtimeEngineSettings _settings = new();

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private static byte[] Wasm() => global::Wasmtime.Module.ConvertText("(module (func (export \"answer\") (result i32) i32.const 42))");

    private void Seed()
    {
        using var disk = new DiskCodeCache(_dir);
        using var engine = _settings.CreateEngine();
        using var compiled = new WasmtimeModuleCache(disk).Load(engine, new WasmSource("m", Wasm()));
        Assert.Equal(ModuleOrigin.Compiled, compiled.Origin);
    }

    [Theory]
    [InlineData(false, 64L << 20)]
    [InlineData(true, 64L << 20)]
    [InlineData(false, 0L)] // nothing stays live: the joiners still share the leader's module
    [InlineData(true, 0L)]
    public async Task EightConcurrentLoadsOfAKeyOnDisk_OnOneEngine_VerifyAndDeserializeItOnce(bool async, long liveBudget)
    {
        Seed();
        using var disk = new DiskCodeCache(_dir);
        using var held = new HeldLookups(disk);
        int waiting = 0;
        var loader = new WasmtimeModuleCache(new TieredCodeCache([held]), options: new WasmtimeModuleCacheOptions { LiveModuleBudget = liveBudget })
        {
            WaitingForCompile = _ =>
            {
                if (Interlocked.Increment(ref waiting) == Callers - 1)
                {
                    held.Release();
                }
            },
        };
        using var engine = _settings.CreateEngine();
        var wasm = Wasm();
        using var start = new Barrier(Callers);
        var loads = Enumerable.Range(0, Callers).Select(_ => Task.Run(async () =>
        {
            start.SignalAndWait();
            return async ? await loader.LoadAsync(engine, new WasmSource("m", wasm)) : loader.Load(engine, new WasmSource("m", wasm));
        })).ToArray();
        var loaded = await Task.WhenAll(loads);
        try
        {
            Assert.True(held.WasReleased, $"only {waiting} of {Callers - 1} callers waited for the first one's load");
            Assert.Equal(1, held.Lookups); // one lookup, so one verification
            Assert.Equal(1, loaded.Count(l => l.Origin == ModuleOrigin.MappedFile)); // one deserialize
            Assert.Equal(Callers - 1, loaded.Count(l => l.Origin == ModuleOrigin.LiveModule));
            Assert.All(loaded, l => Assert.Same(loaded[0].Value, l.Value));
            Assert.All(loaded, l => Assert.Equal(42, Answer(engine, l)));
        }
        finally
        {
            foreach (var l in loaded)
            {
                l.Dispose();
            }
        }
    }

    [Fact]
    public async Task AJoinerOnAnotherEngine_LooksTheEntryUpItself_AndNeverGetsBytesMadeFromTheLeadersModule()
    {
        Seed();
        using var disk = new DiskCodeCache(_dir);
        using var held = new HeldLookups(disk);
        var loader = new WasmtimeModuleCache(new TieredCodeCache([held])) { WaitingForCompile = _ => held.Release() };
        using var first = _settings.CreateEngine();
        using var second = _settings.CreateEngine();
        var wasm = Wasm();
        var leading = Task.Run(() => loader.Load(first, new WasmSource("m", wasm)));
        Assert.True(held.WaitUntilEntered(), "the first load never reached the tier");
        using var joined = await loader.LoadAsync(second, new WasmSource("m", wasm));
        using var led = await leading;
        Assert.Equal(ModuleOrigin.MappedFile, led.Origin);
        Assert.Equal(ModuleOrigin.MappedFile, joined.Origin); // its own verified file, mapped for its engine
        Assert.Equal(2, held.Lookups);
        Assert.Equal(42, Answer(second, joined));
    }

    [Fact]
    public async Task ALeaderCancelledWhileLookingUp_HandsTheLoadToAJoiner()
    {
        Seed();
        using var disk = new DiskCodeCache(_dir);
        using var held = new HeldLookups(disk);
        using var cancel = new CancellationTokenSource();
        var loader = new WasmtimeModuleCache(new TieredCodeCache([held]))
        {
            WaitingForCompile = _ =>
            {
                cancel.Cancel();
                held.Release();
            },
        };
        using var engine = _settings.CreateEngine();
        var wasm = Wasm();
        held.CancelFirstWith(cancel.Token);
        var leading = Task.Run(async () => await loader.LoadAsync(engine, new WasmSource("m", wasm), cancellationToken: cancel.Token));
        Assert.True(held.WaitUntilEntered());
        using var joined = await loader.LoadAsync(engine, new WasmSource("m", wasm));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await leading);
        Assert.Equal(ModuleOrigin.MappedFile, joined.Origin);
        Assert.Equal(42, Answer(engine, joined));
    }

    private static int Answer(global::Wasmtime.Engine engine, Loaded<global::Wasmtime.Module> loaded)
    {
        using var store = new global::Wasmtime.Store(engine);
        var instance = new global::Wasmtime.Instance(store, loaded.Value);
        return instance.GetFunction<int>("answer")!();
    }

    /// <summary>
    /// The disk tier, with its typed lookup kept (the tier set reads its traits, so a decorator that
    /// offers them loses nothing); the first lookup is held until released, and lookups are counted.
    /// </summary>
    private sealed class HeldLookups(DiskCodeCache disk) : IWasmCodeCache, ICacheEntrySource, IDisposable
    {
        private readonly ManualResetEventSlim _released = new();
        private readonly ManualResetEventSlim _entered = new();
        private int _lookups;
        private int _held;
        private CancellationToken _cancelFirst;

        public int Lookups => Volatile.Read(ref _lookups);

        public bool WasReleased => _released.IsSet;

        public void Release() => _released.Set();

        public bool WaitUntilEntered() => _entered.Wait(TimeSpan.FromSeconds(30));

        public void CancelFirstWith(CancellationToken token) => _cancelFirst = token;

        public bool TryGetEntry(CacheKey key, CacheLookupScope scope, [NotNullWhen(true)] out CacheEntry? entry)
        {
            if (Interlocked.Increment(ref _lookups) == 1 && Interlocked.Exchange(ref _held, 1) == 0)
            {
                _entered.Set();
                _released.Wait(TimeSpan.FromSeconds(30)); // long enough for every caller to arrive, short of a hang
                if (_cancelFirst.IsCancellationRequested)
                {
                    Interlocked.Decrement(ref _lookups); // the cancelled lookup read nothing
                    _cancelFirst.ThrowIfCancellationRequested();
                }
            }

            return disk.TryGetEntry(key, scope, out entry);
        }

        public ValueTask<CacheEntry?> GetEntryAsync(CacheKey key, CacheLookupScope scope, CancellationToken cancellationToken = default)
            => ValueTask.FromResult(TryGetEntry(key, scope, out var entry) ? entry : null);

        public bool TryGet(CacheKey key, [NotNullWhen(true)] out Stream? content) => disk.TryGet(key, out content);

        public void Add(CacheKey key, Stream content) => disk.Add(key, content);

        public void Delete(CacheKey key) => disk.Delete(key);

        public ValueTask<Stream?> GetAsync(CacheKey key, CancellationToken cancellationToken = default) => disk.GetAsync(key, cancellationToken);

        public ValueTask AddAsync(CacheKey key, Stream content, CancellationToken cancellationToken = default) => disk.AddAsync(key, content, cancellationToken);

        public ValueTask DeleteAsync(CacheKey key, CancellationToken cancellationToken = default) => disk.DeleteAsync(key, cancellationToken);

        public void Dispose()
        {
            _released.Set();
            _released.Dispose();
            _entered.Dispose();
        }
    }
}
