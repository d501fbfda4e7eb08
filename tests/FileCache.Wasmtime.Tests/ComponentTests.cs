using FileCache.Disk;
using FileCache.Memory;
using FileCache.Tiering;
using Wasmtime;
using Wasmtime.Components;

namespace FileCache.Wasmtime.Tests;

/// <summary>Components (the component model) load through the same cache as core modules, under keys of their own.</summary>
public sealed class ComponentTests : IDisposable
{
    private readonly string _dir = Path.Join(Path.GetTempPath(), "filecache-component-" + Guid.NewGuid().ToString("N"));
    private readonly WasmtimeEngineSettings _settings = new() { ComponentModel = true };

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    /// <summary>A real component: a core module lifted to a component function <c>answer: func() -> u32</c>.</summary>
    private static byte[] Component(uint answer) => global::Wasmtime.Module.ConvertText($$"""
        (component
          (core module $m (func (export "answer") (result i32) i32.const {{answer}}))
          (core instance $i (instantiate $m))
          (func (export "answer") (result u32) (canon lift (core func $i "answer"))))
        """);

    private static uint Call(Loaded<global::Wasmtime.Components.Component> loaded, Engine engine)
    {
        using var store = new Store(engine);
        using var linker = new ComponentLinker(engine);
        var instance = linker.Instantiate(store, loaded.Value);
        return instance.GetFunction("answer")!.Call()!.AsU32();
    }

    [Fact]
    public void AComponent_IsCompiledOnce_ThenMappedFromDisk_ThenLive()
    {
        using var disk = new DiskCodeCache(_dir);
        var loader = new WasmtimeModuleCache(disk);
        var wasm = Component(42);

        using (var engine = _settings.CreateEngine())
        using (var first = loader.LoadComponent(engine, new WasmSource("c", wasm)))
        using (var again = loader.LoadComponent(engine, new WasmSource("c", wasm)))
        {
            Assert.Equal(ModuleOrigin.Compiled, first.Origin);
            Assert.Equal(ModuleOrigin.LiveModule, again.Origin);
            Assert.Same(first.Value, again.Value);
            Assert.Equal(42u, Call(first, engine));
        }

        using var fresh = _settings.CreateEngine();
        using var hit = loader.LoadComponent(fresh, new WasmSource("c", wasm));
        Assert.Equal(ModuleOrigin.MappedFile, hit.Origin);
        Assert.Equal(42u, Call(hit, fresh));
    }

    [Fact]
    public async Task ComponentKeys_AreADomainOfTheirOwn_SoTheModuleKeyOfTheSameBytesNeverHitsIt()
    {
        var memory = new MemoryCodeCache();
        var loader = new WasmtimeModuleCache(memory);
        var wasm = Component(7);
        using var engine = _settings.CreateEngine();
        using var loaded = await loader.LoadComponentAsync(engine, new WasmSource("c", wasm));
        Assert.Equal(ModuleOrigin.Compiled, loaded.Origin);

        var moduleKey = _settings.DeriveKey(wasm);
        Assert.NotEqual(moduleKey, loaded.Key);
        Assert.False(memory.TryGet(moduleKey, out _));
        Assert.True(memory.TryGet(loaded.Key, out var stored));
        stored.Dispose();

        using var fresh = _settings.CreateEngine();
        using var hit = await loader.LoadComponentAsync(fresh, new WasmSource("c", wasm));
        Assert.Equal(ModuleOrigin.CacheHit, hit.Origin);
        Assert.Equal(7u, Call(hit, fresh));
    }

    [Fact]
    public async Task ConcurrentComponentLoads_CompileOnce()
    {
        using var disk = new DiskCodeCache(_dir);
        var loader = new WasmtimeModuleCache(new TieredCodeCache([new MemoryCodeCache(), disk]));
        var wasm = Component(9);
        using var engine = _settings.CreateEngine();
        var loads = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => loader.LoadComponentAsync(engine, new WasmSource("c", wasm)).AsTask())));
        try
        {
            Assert.Equal(1, loads.Count(l => l.Origin == ModuleOrigin.Compiled));
            Assert.All(loads, l => Assert.Equal(9u, Call(l, engine)));
        }
        finally
        {
            foreach (var l in loads)
            {
                l.Dispose();
            }
        }
    }

    [Fact]
    public void ACoreModule_IsNotAComponent_TheErrorSaysSo()
    {
        var loader = new WasmtimeModuleCache(new MemoryCodeCache());
        using var engine = _settings.CreateEngine();
        var module = global::Wasmtime.Module.ConvertText("(module)");
        Assert.Throws<WasmtimeException>(() => loader.LoadComponent(engine, new WasmSource("not-a-component", module)));
    }
}
