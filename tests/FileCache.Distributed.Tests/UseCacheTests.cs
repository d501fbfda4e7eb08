using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using FileCache.Disk;
using FileCache.Wasmtime;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace FileCache.Distributed.Tests;

/// <summary>
/// <c>UseCache(instance)</c> registers the instance as it is (issue 19): a wrapper used to hide its
/// disposal and with it every capability, so a disk tier lost its mapped hits, compile lock and health
/// probe, and a distributed tier stopped being fleet-wide (a host that could not use its entry would
/// have deleted the fleet's). A third-party store declares its locality.
/// </summary>
public sealed class UseCacheTests : IDisposable
{
    private readonly string _dir = Path.Join(Path.GetTempPath(), "filecache-usecache-" + Guid.NewGuid().ToString("N"));
    private readonly WasmtimeEngineSettings _settings = new();

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private static byte[] Wasm(int answer) => global::Wasmtime.Module.ConvertText($"(module (func (export \"f\") (result i32) i32.const {answer}))");

    [Fact]
    public async Task ADiskTierPassedAsAnInstance_KeepsItsMappedHits_ItsCompileLock_AndItsHealthProbe()
    {
        using var disk = new DiskCodeCache(_dir);
        var services = new ServiceCollection();
        services.AddWasmCodeCache(c => c.UseCache(disk).AddWasmtime());
        services.AddLogging();
        services.AddHealthChecks().AddWasmCodeCache();
        await using (var provider = services.BuildServiceProvider())
        {
            var loader = provider.GetRequiredService<WasmtimeModuleCache>();
            var wasm = Wasm(1);
            using (var engine = _settings.CreateEngine())
            using (var cold = loader.Load(engine, new WasmSource("m", wasm)))
            {
                Assert.Equal(ModuleOrigin.Compiled, cold.Origin);
            }

            using (var engine = _settings.CreateEngine())
            using (var warm = loader.Load(engine, new WasmSource("m", wasm)))
            {
                Assert.Equal(ModuleOrigin.MappedFile, warm.Origin); // the typed lookup: the verified file, mapped
            }

            var cache = provider.GetRequiredService<IWasmCodeCache>();
            var lockSource = Assert.IsAssignableFrom<ICompileLockSource>(cache);
            using (var held = lockSource.TryAcquireCompileLock(CacheKey.Compute([1]), TimeSpan.FromSeconds(5)))
            {
                Assert.NotNull(held);
                using var other = new DiskCodeCache(_dir); // another opener of the directory, as another process would be
                Assert.Null(other.TryAcquireCompileLock(CacheKey.Compute([1]), TimeSpan.FromMilliseconds(200))); // the disk tier's lock is what is held
            }

            var report = await provider.GetRequiredService<HealthCheckService>().CheckHealthAsync();
            var entry = Assert.Single(report.Entries).Value;
            Assert.Equal(HealthStatus.Healthy, entry.Status);
            Assert.Equal(_dir, entry.Data["tier0.directory"]); // the disk probe ran (not "needs no probe")
        }

        Assert.True(disk.TryGet(_settings.DeriveKey(Wasm(1)), out var stillUsable)); // the container did not dispose the caller's instance
        stillUsable.Dispose();
    }

    [Fact]
    public void ADistributedTierPassedAsAnInstance_StaysFleetWide_SoAnEntryThisEngineCannotUseIsLeftForTheFleet()
    {
        var wasm = Wasm(2);
        var store = new MemoryDistributedCache(Options.Create(new MemoryDistributedCacheOptions()));
        var fleet = new DistributedCodeCache(store, Stores.Options("usecache:"));
        var key = _settings.DeriveKey(wasm);
        fleet.Add(key, new MemoryStream(Foreign(wasm)));
        var fleetValue = store.Get(fleet.GetStoreKey(key));

        var services = new ServiceCollection();
        services.AddWasmCodeCache(c => c.UseDisk(_dir).UseCache(fleet).AddWasmtime());
        using var provider = services.BuildServiceProvider();
        using var engine = _settings.CreateEngine();
        using var loaded = provider.GetRequiredService<WasmtimeModuleCache>().Load(engine, new WasmSource("m", wasm));
        Assert.Equal(ModuleOrigin.Recompiled, loaded.Origin);
        Assert.Equal(fleetValue, store.Get(fleet.GetStoreKey(key))); // neither deleted nor overwritten
    }

    [Theory]
    [InlineData(WasmCodeCacheLocality.Fleet, true)]
    [InlineData(WasmCodeCacheLocality.Machine, false)]
    public void AThirdPartyStore_DeclaredFleetWide_KeepsItsEntry_WhileAMachineStoreIsThisHostsToReplace(WasmCodeCacheLocality locality, bool keepsForeignEntry)
    {
        var wasm = Wasm(3);
        var key = _settings.DeriveKey(wasm);
        var foreign = Foreign(wasm);
        var store = new StreamStore();
        store.Add(key, new MemoryStream(foreign));

        var services = new ServiceCollection();
        services.AddWasmCodeCache(c => c.UseCache(store, locality).AddWasmtime());
        using var provider = services.BuildServiceProvider();
        using var engine = _settings.CreateEngine();
        using var loaded = provider.GetRequiredService<WasmtimeModuleCache>().Load(engine, new WasmSource("m", wasm));
        Assert.Equal(ModuleOrigin.Recompiled, loaded.Origin);
        Assert.True(store.TryGet(key, out var held));
        using (held)
        {
            using var copy = new MemoryStream();
            held.CopyTo(copy);
            Assert.Equal(keepsForeignEntry, copy.ToArray().AsSpan().SequenceEqual(foreign));
        }
    }

    [Fact]
    public void AnUndefinedLocality_IsRefusedWhenRegistered()
    {
        var services = new ServiceCollection();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => services.AddWasmCodeCache(c => c.UseCache(new StreamStore(), (WasmCodeCacheLocality)7)));
        Assert.Equal("locality", e.ParamName);
    }

    /// <summary>Another host's code under this host's key: compiled by an engine with other settings.</summary>
    private byte[] Foreign(byte[] wasm)
    {
        using var other = (_settings with { ConsumeFuel = true }).CreateEngine();
        using var module = global::Wasmtime.Module.FromBytes(other, "m", wasm);
        return module.Serialize();
    }

    /// <summary>A third-party store with only the stream contract.</summary>
    private sealed class StreamStore : IWasmCodeCache
    {
        private readonly ConcurrentDictionary<CacheKey, byte[]> _entries = new();

        public bool TryGet(CacheKey key, [NotNullWhen(true)] out Stream? content)
        {
            content = _entries.TryGetValue(key, out var bytes) ? new MemoryStream(bytes, writable: false) : null;
            return content is not null;
        }

        public void Add(CacheKey key, Stream content)
        {
            using var copy = new MemoryStream();
            content.CopyTo(copy);
            _entries[key] = copy.ToArray();
        }

        public void Delete(CacheKey key) => _entries.TryRemove(key, out _);

        public ValueTask<Stream?> GetAsync(CacheKey key, CancellationToken cancellationToken = default) => ValueTask.FromResult(TryGet(key, out var s) ? s : null);

        public ValueTask AddAsync(CacheKey key, Stream content, CancellationToken cancellationToken = default)
        {
            Add(key, content);
            return ValueTask.CompletedTask;
        }

        public ValueTask DeleteAsync(CacheKey key, CancellationToken cancellationToken = default)
        {
            Delete(key);
            return ValueTask.CompletedTask;
        }
    }
}
