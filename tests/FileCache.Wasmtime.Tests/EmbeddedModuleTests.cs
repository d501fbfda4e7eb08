using FileCache.Disk;
using Wasmtime;
using Wasmtime.Components;

namespace FileCache.Wasmtime.Tests;

/// <summary>Modules from &lt;WasmModule&gt; items (this project has two): keys from the build-time digest, bytes from the assembly.</summary>
public sealed class EmbeddedModuleTests : IDisposable
{
    private readonly string _dir = Path.Join(Path.GetTempPath(), "filecache-embedded-" + Guid.NewGuid().ToString("N"));
    private readonly WasmtimeEngineSettings _settings = new();

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    [Fact]
    public void TheCommittedModules_AreTheirWatSources()
    {
        foreach (var module in WasmModules.All)
        {
            string wat = File.ReadAllText(Path.Join(AppContext.BaseDirectory, "modules", Path.ChangeExtension(module.Name, ".wat")));
            Assert.Equal(global::Wasmtime.Module.ConvertText(wat), module.Bytes.ToArray());
        }
    }

    [Fact]
    public void TheSamplesFibWasm_IsItsWatSource()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Join(dir.FullName, "FileCache.sln")))
        {
            dir = dir.Parent;
        }

        string sample = Path.Join(dir!.FullName, "samples", "WasmHost");
        Assert.Equal(global::Wasmtime.Module.ConvertText(File.ReadAllText(Path.Join(sample, "fib.wat"))), File.ReadAllBytes(Path.Join(sample, "fib.wasm")));
    }

    [Fact]
    public void AnEmbeddedModule_HasItsBuildTimeDigest_AndTheKeyOfItsBytes()
    {
        var answer = WasmModules.Answer;
        Assert.Equal("answer.wasm", answer.Name);
        Assert.False(answer.IsComponent);
        Assert.True(answer.Digest.Matches(answer.Bytes.Span));
        Assert.Equal(_settings.DeriveKey(answer.Bytes.Span), _settings.DeriveKey(answer.Digest));
        Assert.True(WasmModules.AnswerComponent.IsComponent);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AModuleFromDisk_WithADigestKeptBesideIt_LoadsUnderTheKeyOfItsBytes_CompiledThenLiveThenMapped(bool async)
    {
        // A plugin host digests a module once and keeps the digest next to the file, as hex.
        byte[] wasm = WasmModules.Answer.Bytes.ToArray();
        string stored = Convert.ToHexString(WasmDigest.Compute(wasm).ChunkDigests);
        var digest = WasmDigest.FromHex(wasm.Length, stored);

        using var disk = new DiskCodeCache(_dir);
        var loader = new WasmtimeModuleCache(disk);
        async Task<Loaded<global::Wasmtime.Module>> Load(global::Wasmtime.Engine engine)
            => async ? await loader.LoadAsync(engine, new WasmSource("plugin", wasm, digest: digest)) : loader.Load(engine, new WasmSource("plugin", wasm, digest: digest));

        using (var engine = _settings.CreateEngine())
        {
            using var first = await Load(engine);
            Assert.Equal(ModuleOrigin.Compiled, first.Origin);
            Assert.Equal(_settings.DeriveKey(wasm), first.Key);
            using var again = await Load(engine);
            Assert.Equal(ModuleOrigin.LiveModule, again.Origin);
        }

        using var fresh = _settings.CreateEngine();
        using var mapped = await Load(fresh);
        Assert.Equal(ModuleOrigin.MappedFile, mapped.Origin);

        // A digest of other bytes (a stale one kept beside a replaced file) files nothing under its key.
        var previous = (byte[])wasm.Clone();
        previous[^1] ^= 1;
        using var other = new DiskCodeCache(Path.Join(_dir, "other"));
        var otherLoader = new WasmtimeModuleCache(other);
        using var wrong = otherLoader.Load(fresh, new WasmSource("plugin", wasm, digest: WasmDigest.Compute(previous)));
        Assert.Equal(ModuleOrigin.Compiled, wrong.Origin);
        Assert.Equal(_settings.DeriveKey(wasm), wrong.Key);
        Assert.DoesNotContain(other.EnumerateEntries(), e => e.Key == _settings.DeriveKey(WasmDigest.Compute(previous)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AStaleDigest_NeverFilesTheBytesCodeUnderAnotherModulesKey(bool async)
    {
        // A build that kept a previous module's digest (same length, other bytes): before compiling,
        // the loader checks the bytes and files the code under the key of what it really compiled.
        var answer = WasmModules.Answer;
        var previous = answer.Bytes.ToArray();
        previous[^1] ^= 0x01;
        var stale = new EmbeddedWasmModule(typeof(WasmModules).Assembly, "FileCache.WasmModule/answer.wasm", "answer.wasm", false, WasmDigest.Compute(previous));
        Assert.False(stale.Digest.Matches(stale.Bytes.Span));
        var staleKey = _settings.DeriveKey(stale.Digest);
        var bytesKey = _settings.DeriveKey(stale.Bytes.Span);

        using var disk = new DiskCodeCache(_dir);
        var loader = new WasmtimeModuleCache(disk);
        using var engine = _settings.CreateEngine();
        using var loaded = async ? await loader.LoadAsync(engine, stale) : loader.Load(engine, stale);
        Assert.Equal(ModuleOrigin.Compiled, loaded.Origin);
        Assert.Equal(bytesKey, loaded.Key);
        Assert.DoesNotContain(disk.EnumerateEntries(), e => e.Key == staleKey);
        Assert.Contains(disk.EnumerateEntries(), e => e.Key == bytesKey);
    }

    [Fact]
    public async Task AnEmbeddedModule_LoadsCompiled_ThenLive_ThenMapped_AsTheBytesWould()
    {
        using var disk = new DiskCodeCache(_dir);
        var loader = new WasmtimeModuleCache(disk);
        using (var engine = _settings.CreateEngine())
        using (var first = loader.Load(engine, WasmModules.Answer))
        using (var again = await loader.LoadAsync(engine, WasmModules.Answer))
        {
            Assert.Equal(ModuleOrigin.Compiled, first.Origin);
            Assert.Equal(ModuleOrigin.LiveModule, again.Origin);
            Assert.Equal(_settings.DeriveKey(WasmModules.Answer.Bytes.Span), first.Key);
            using var store = new Store(engine);
            Assert.Equal(42, (int)new Instance(store, first.Value).GetFunction("answer")!.Invoke()!);
        }

        using var fresh = _settings.CreateEngine();
        using var byBytes = loader.Load(fresh, new WasmSource("answer", WasmModules.Answer.Bytes)); // the same entry
        Assert.Equal(ModuleOrigin.MappedFile, byBytes.Origin);
    }

    [Fact]
    public void AnEmbeddedComponent_LoadsThroughLoadComponent_AndTheWrongMethodSaysWhichToUse()
    {
        var settings = new WasmtimeEngineSettings { ComponentModel = true };
        var loader = new WasmtimeModuleCache(new Memory.MemoryCodeCache());
        using var engine = settings.CreateEngine();
        using var loaded = loader.LoadComponent(engine, WasmModules.AnswerComponent);
        Assert.Equal(ModuleOrigin.Compiled, loaded.Origin);
        using var store = new Store(engine);
        using var linker = new ComponentLinker(engine);
        Assert.Equal(42u, linker.Instantiate(store, loaded.Value).GetFunction("answer")!.Call()!.AsU32());

        var e = Assert.Throws<ArgumentException>(() => loader.Load(engine, WasmModules.AnswerComponent));
        Assert.Contains("LoadComponent", e.Message);
        Assert.Throws<ArgumentException>(() => loader.LoadComponent(engine, WasmModules.Answer));
    }
}
