using System.Diagnostics.CodeAnalysis;
using FileCache.Memory;
using Wasmtime;

namespace FileCache.Wasmtime.Tests;

/// <summary>The loader's live modules: a repeated load on one engine shares the loaded module.</summary>
public sealed class LiveModuleTests
{
    private readonly WasmtimeEngineSettings _settings = new();

    private static byte[] Answer(int value) => global::Wasmtime.Module.ConvertText($"(module (func (export \"answer\") (result i32) i32.const {value}))");

    private static int Call(global::Wasmtime.Module module, Engine engine)
    {
        using var store = new Store(engine);
        return (int)new Instance(store, module).GetFunction("answer")!.Invoke()!;
    }

    [Fact]
    public async Task RepeatedLoad_OnTheSameEngine_SharesTheModule_WithoutTouchingTheCache()
    {
        var cache = new CountingCache(new MemoryCodeCache());
        var loader = new WasmtimeModuleCache(cache);
        using var engine = _settings.CreateEngine();
        using var first = loader.Load(engine, new WasmSource("m", Answer(1)));
        int lookups = cache.Lookups;
        using var second = loader.Load(engine, new WasmSource("m", Answer(1)));
        Assert.Equal(ModuleOrigin.LiveModule, second.Origin);
        Assert.True(second.IsHit);
        Assert.Same(first.Value, second.Value);
        Assert.Equal(lookups, cache.Lookups);
        Assert.Equal(1, Call(second.Value, engine));

        using var viaAsync = await loader.LoadAsync(engine, new WasmSource("m", Answer(1)));
        Assert.Equal(ModuleOrigin.LiveModule, viaAsync.Origin);
    }

    [Fact]
    public void AnotherEngine_DoesNotShare()
    {
        var loader = new WasmtimeModuleCache(new MemoryCodeCache());
        using var engine1 = _settings.CreateEngine();
        using var engine2 = _settings.CreateEngine();
        using var a = loader.Load(engine1, new WasmSource("m", Answer(1)));
        using var b = loader.Load(engine2, new WasmSource("m", Answer(1)));
        Assert.NotEqual(ModuleOrigin.LiveModule, b.Origin);
        Assert.NotSame(a.Value, b.Value);
    }

    [Fact]
    public void Eviction_NeverDisposesAModuleACallerHolds_TheLastDisposeDoes()
    {
        var loader = new WasmtimeModuleCache(new MemoryCodeCache(), options: new WasmtimeModuleCacheOptions { LiveModuleBudget = 1 });
        using var engine = _settings.CreateEngine();
        var held = loader.Load(engine, new WasmSource("a", Answer(1))); // larger than the budget: leased, not kept
        using (var other = loader.Load(engine, new WasmSource("b", Answer(2))))
        {
            Assert.Equal(2, Call(other.Value, engine));
        }

        Assert.Equal(1, Call(held.Value, engine)); // still usable while held
        Assert.Equal(0, loader.LiveModuleBytes);
        var module = held.Value;
        held.Dispose();
        held.Dispose(); // idempotent
        Assert.ThrowsAny<Exception>(() => Call(module, engine)); // disposed by the last release
        using var again = loader.Load(engine, new WasmSource("a", Answer(1)));
        Assert.NotEqual(ModuleOrigin.LiveModule, again.Origin);
    }

    [Fact]
    public void Budget_EvictsLeastRecentlyUsed_AndCountsBytes()
    {
        var loader = new WasmtimeModuleCache(new MemoryCodeCache());
        using var engine = _settings.CreateEngine();
        loader.Load(engine, new WasmSource("a", Answer(1))).Dispose();
        long one = loader.LiveModuleBytes;
        Assert.True(one > 0);

        var small = new WasmtimeModuleCache(new MemoryCodeCache(), options: new WasmtimeModuleCacheOptions { LiveModuleBudget = (2 * one) + (one / 2) });
        small.Load(engine, new WasmSource("a", Answer(1))).Dispose();
        small.Load(engine, new WasmSource("b", Answer(2))).Dispose();
        small.Load(engine, new WasmSource("a", Answer(1))).Dispose(); // a is now the most recently used
        small.Load(engine, new WasmSource("c", Answer(3))).Dispose(); // evicts b
        Assert.True(small.LiveModuleBytes <= (2 * one) + (one / 2));
        using (var a = small.Load(engine, new WasmSource("a", Answer(1))))
        {
            Assert.Equal(ModuleOrigin.LiveModule, a.Origin);
        }

        using var b = small.Load(engine, new WasmSource("b", Answer(2)));
        Assert.NotEqual(ModuleOrigin.LiveModule, b.Origin);
    }

    [Fact]
    public void Forget_DropsAnEnginesModules_AndAZeroBudgetKeepsNone()
    {
        var loader = new WasmtimeModuleCache(new MemoryCodeCache());
        using var engine = _settings.CreateEngine();
        loader.Load(engine, new WasmSource("a", Answer(1))).Dispose();
        Assert.Equal(1, loader.Forget(engine));
        Assert.Equal(0, loader.LiveModuleBytes);
        using (var reloaded = loader.Load(engine, new WasmSource("a", Answer(1))))
        {
            Assert.Equal(ModuleOrigin.CacheHit, reloaded.Origin);
        }

        var none = new WasmtimeModuleCache(new MemoryCodeCache(), options: new WasmtimeModuleCacheOptions { LiveModuleBudget = 0 });
        none.Load(engine, new WasmSource("a", Answer(1))).Dispose();
        using var notLive = none.Load(engine, new WasmSource("a", Answer(1)));
        Assert.Equal(ModuleOrigin.CacheHit, notLive.Origin);
        Assert.Throws<ArgumentOutOfRangeException>(() => new WasmtimeModuleCache(new MemoryCodeCache(), options: new WasmtimeModuleCacheOptions { LiveModuleBudget = -1 }));
    }

    private sealed class CountingCache(IWasmCodeCache inner) : IWasmCodeCache
    {
        private int _lookups;

        public int Lookups => Volatile.Read(ref _lookups);

        public bool TryGet(CacheKey key, [NotNullWhen(true)] out Stream? content)
        {
            Interlocked.Increment(ref _lookups);
            return inner.TryGet(key, out content);
        }

        public ValueTask<Stream?> GetAsync(CacheKey key, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _lookups);
            return inner.GetAsync(key, cancellationToken);
        }

        public void Add(CacheKey key, Stream content) => inner.Add(key, content);

        public void Delete(CacheKey key) => inner.Delete(key);

        public ValueTask AddAsync(CacheKey key, Stream content, CancellationToken cancellationToken = default) => inner.AddAsync(key, content, cancellationToken);

        public ValueTask DeleteAsync(CacheKey key, CancellationToken cancellationToken = default) => inner.DeleteAsync(key, cancellationToken);
    }
}
