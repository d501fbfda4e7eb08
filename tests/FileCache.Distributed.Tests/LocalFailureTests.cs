using FileCache.Disk;
using FileCache.Memory;
using FileCache.Tiering;
using FileCache.Wasmtime;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;

namespace FileCache.Distributed.Tests;

/// <summary>
/// One host's failure stays local (issue 10): an entry this engine cannot use is replaced in this
/// host's tiers only, and the fleet's entry is neither deleted nor overwritten.
/// </summary>
public sealed class LocalFailureTests : IDisposable
{
    private readonly string _dir = Path.Join(Path.GetTempPath(), "filecache-local-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    [Fact]
    public void AnEntryThisEngineCannotUse_IsReplacedLocally_TheFleetKeepsItsOwn()
    {
        var wasm = global::Wasmtime.Module.ConvertText("(module (func (export \"f\") (result i32) i32.const 5))");
        var plain = new WasmtimeEngineSettings();
        var fuel = plain with { ConsumeFuel = true };
        byte[] foreign;
        using (var fuelEngine = fuel.CreateEngine())
        using (var module = global::Wasmtime.Module.FromBytes(fuelEngine, "m", wasm))
        {
            foreign = module.Serialize(); // another host's code under this host's key
        }

        var store = new MemoryDistributedCache(Options.Create(new MemoryDistributedCacheOptions()));
        var fleet = new DistributedCodeCache(store, Stores.Options("fleet:"));
        var key = plain.DeriveKey(wasm);
        fleet.Add(key, new MemoryStream(foreign));
        var fleetValue = store.Get(fleet.GetStoreKey(key));

        using var disk = new DiskCodeCache(_dir);
        using var tiers = new TieredCodeCache([new MemoryCodeCache(), disk, fleet]);
        var loader = new WasmtimeModuleCache(tiers);
        using var engine = plain.CreateEngine();
        using var loaded = loader.Load(engine, new WasmSource("m", wasm));
        Assert.Equal(ModuleOrigin.Recompiled, loaded.Origin);

        Assert.Equal(fleetValue, store.Get(fleet.GetStoreKey(key))); // neither deleted nor overwritten
        Assert.True(disk.TryGet(key, out var local)); // this host's own, compatible entry
        local.Dispose();
        loader.Forget(engine);
        using var next = loader.Load(engine, new WasmSource("m", wasm));
        Assert.Equal(ModuleOrigin.CacheHit, next.Origin); // the memory tier, first, now holds the compatible entry
    }

    [Fact]
    public void AMappingFailure_FallsBackToTheVerifiedBytes_AndKeepsTheEntry()
    {
        var wasm = global::Wasmtime.Module.ConvertText("(module (func (export \"f\") (result i32) i32.const 6))");
        var settings = new WasmtimeEngineSettings();
        using var disk = new DiskCodeCache(_dir);
        using (var engine = settings.CreateEngine())
        {
            new WasmtimeModuleCache(disk).Load(engine, new WasmSource("m", wasm)).Dispose();
        }

        var broken = new UnmappableFiles(disk);
        var loader = new WasmtimeModuleCache(broken);
        using var fresh = settings.CreateEngine();
        using var loaded = loader.Load(fresh, new WasmSource("m", wasm));
        Assert.Equal(ModuleOrigin.CacheHit, loaded.Origin); // not Recompiled: the entry was fine
        Assert.Equal(0, broken.Deletes);
        Assert.True(File.Exists(disk.GetPath(settings.DeriveKey(wasm))));
    }

    /// <summary>A disk cache whose leases name a path that cannot be mapped (as with no /proc).</summary>
    private sealed class UnmappableFiles(DiskCodeCache inner) : IWasmCodeCache, ICacheEntryFileSource
    {
        public int Deletes { get; private set; }

        public bool TryGetFile(CacheKey key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out CacheEntryFile? file)
        {
            if (!inner.TryGetFile(key, out var real))
            {
                file = null;
                return false;
            }

            file = new CacheEntryFile("/nonexistent/filecache-test", real.PayloadLength, real);
            return true;
        }

        public bool TryGet(CacheKey key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Stream? content) => inner.TryGet(key, out content);

        public void Add(CacheKey key, Stream content) => inner.Add(key, content);

        public void Delete(CacheKey key)
        {
            Deletes++;
            inner.Delete(key);
        }

        public ValueTask<Stream?> GetAsync(CacheKey key, CancellationToken cancellationToken = default) => inner.GetAsync(key, cancellationToken);

        public ValueTask AddAsync(CacheKey key, Stream content, CancellationToken cancellationToken = default) => inner.AddAsync(key, content, cancellationToken);

        public ValueTask DeleteAsync(CacheKey key, CancellationToken cancellationToken = default)
        {
            Deletes++;
            return inner.DeleteAsync(key, cancellationToken);
        }
    }
}
