// Exercises every FileCache assembly under NativeAOT; exit code 0 means every check passed.
using FileCache;
using FileCache.Disk;
using FileCache.Memory;
using FileCache.Tiering;
using FileCache.Wasmtime;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Wasmtime;

int failures = 0;
void Check(bool condition, string what)
{
    Console.WriteLine($"{(condition ? "ok  " : "FAIL")} {what}");
    failures += condition ? 0 : 1;
}

string dir = Path.Join(Path.GetTempPath(), "filecache-aot-" + Guid.NewGuid().ToString("N"));
try
{
    var builder = Host.CreateApplicationBuilder();
    builder.Logging.SetMinimumLevel(LogLevel.Warning);
    // Disk first: AddWasmtime refuses a memory tier in front of the disk tier (it would make loads slower).
    builder.Services.AddWasmCodeCache(c => c.UseDisk(o => o.Directory = dir).UseMemory(o => o.SizeLimit = 1 << 20).AddWasmtime());
    builder.Services.AddKeyedWasmCodeCache("second", c => c.UseMemory());
    builder.Services.AddDistributedMemoryCache();
    builder.Services.AddKeyedWasmCodeCache("fleet", c => c.UseDistributed(o => o.AuthenticationKey = new byte[32]));
    using var host = builder.Build();
    await host.StartAsync(); // source-generated options validation

    var cache = host.Services.GetRequiredService<IWasmCodeCache>();
    Check(cache is TieredCodeCache { Tiers.Count: 2 }, "DI builds disk + memory tiers");
    var key = CacheKey.Compute("aot"u8);
    Check(CacheKey.Parse(key.ToString()) == key, "CacheKey formats and parses");
    cache.Add(key, new MemoryStream([1, 2, 3]));
    Check(cache.TryGet(key, out var hit) && hit.Length == 3, "add then get");
    hit?.Dispose();
    Check(await cache.GetAsync(key) is { Length: 3 }, "async get");
    var disk = (DiskCodeCache)((TieredCodeCache)cache).Tiers[0];
    Check(disk.TryGetFile(key, out var file) && file.PayloadLength == 3, "disk pins a verified file");
    file?.Dispose();
    cache.Delete(key);
    Check(!cache.TryGet(key, out _), "delete then miss");
    Check(host.Services.GetRequiredKeyedService<IWasmCodeCache>("second") is MemoryCodeCache, "keyed cache");

    var fleet = host.Services.GetRequiredKeyedService<IWasmCodeCache>("fleet");
    fleet.Add(key, new MemoryStream([4, 5]));
    Check(fleet is FileCache.Distributed.DistributedCodeCache && fleet.TryGet(key, out var fleetHit) && fleetHit.Length == 2, "distributed tier: authenticated add then get");
    Check(await fleet.GetAsync(key) is { Length: 2 }, "distributed tier: async get");

    using (var keyed = new DiskCodeCache(new DiskCodeCacheOptions { Directory = Path.Join(dir, "keyed"), AuthenticationKey = new byte[32] }))
    {
        keyed.Add(key, new MemoryStream([6, 7, 8]));
        bool sealedCopy = keyed.TryGetFile(key, out var copy);
        Check(!OperatingSystem.IsLinux() || (sealedCopy && File.ReadAllBytes(copy!.Path).Length == 3), "authenticated disk hit as a sealed copy (memfd, native calls)");
        copy?.Dispose();
    }

    var settings = new WasmtimeEngineSettings();
    var wasm = Wasmtime.Module.ConvertText("(module (func (export \"answer\") (result i32) i32.const 42))");
    Check(settings.DeriveKey(wasm) == new WasmtimeEngineSettings().DeriveKey(wasm), "generated key derivation is stable");
    Check(settings.DeriveKey(wasm) != (settings with { ConsumeFuel = true }).DeriveKey(wasm), "settings change the key");
    var loader = host.Services.GetRequiredService<WasmtimeModuleCache>();
    using var engine = settings.CreateEngine();
    using (var first = loader.Load(engine, new WasmSource("answer", wasm)))
    {
        Check(first.Origin == ModuleOrigin.Compiled, "first load compiles");
    }

    using var second = loader.Load(engine, new WasmSource("answer", wasm));
    Check(second.IsHit, $"second load hits ({second.Origin})");
    using var store = new Store(engine);
    Check(new Instance(store, second.Value).GetFunction("answer")!.Invoke() is 42, "the cached module runs");
    await host.StopAsync();
}
catch (Exception e)
{
    Console.WriteLine($"FAIL {e}");
    failures++;
}
finally
{
    if (Directory.Exists(dir))
    {
        Directory.Delete(dir, recursive: true);
    }
}

Console.WriteLine(failures == 0 ? "Passed." : $"{failures} checks failed.");
return failures == 0 ? 0 : 1;
