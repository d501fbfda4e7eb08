// FleetWorker <disk-dir> <redis host:port> <key-prefix> <module.wasm>
// Loads the module through memory -> disk -> Redis, prints where it came from and whether this
// member's disk tier holds the entry afterwards.
// FleetWorker machine <disk-dir> <module.wasm>   one process of a machine sharing a disk cache
// FleetWorker fleetlock <disk-dir> <redis host:port> <key-prefix> <module.wasm>   one host of a fleet with the fleet compile lock
// FleetWorker azureblob <disk-dir> <connection-string> <container> <module.wasm> <tasks>   one host of a fleet on Azure Blob (Azurite)
// FleetWorker concurrency <redis host:port> <key-prefix> <sync|async|loadasync> <callers> <seconds> [host-min-threads]
// The concurrency harness (see Concurrency.cs and benchmarks/README.md).
using FileCache;
using FileCache.Disk;
using FileCache.Tiering;
using FileCache.Wasmtime;
using Microsoft.Extensions.DependencyInjection;

FileCache.Tests.ParentWatch.Start(); // never outlive the test host
if (args[0] == "machine")
{
    // FleetWorker machine <disk-dir> <module.wasm>: load through the disk tier alone; print the origin.
    var machine = new ServiceCollection();
    machine.AddWasmCodeCache(c => c.UseDisk(args[1]).AddWasmtime());
    using var machineProvider = machine.BuildServiceProvider();
    var machineSettings = new WasmtimeEngineSettings();
    using var machineEngine = machineSettings.CreateEngine();
    using var machineLoaded = machineProvider.GetRequiredService<WasmtimeModuleCache>().Load(machineEngine, new WasmSource("m", File.ReadAllBytes(args[2])));
    Console.WriteLine($"origin={machineLoaded.Origin}");
    return 0;
}

if (args[0] == "fleetlock")
{
    // FleetWorker fleetlock <disk-dir> <redis> <prefix> <module.wasm>: one host of a fleet (its own
    // disk) with the fleet compile lock on; prints the origin.
    using var redisConnection = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(args[2]);
    var host = new ServiceCollection();
    host.AddStackExchangeRedisCache(o => o.Configuration = args[2]);
    host.AddWasmCodeCache(c => c
        .UseDisk(args[1])
        .UseDistributed(o =>
        {
            o.AuthenticationKey = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
            o.KeyPrefix = args[3];
            o.FleetCompileLock = new FileCache.Distributed.RedisFleetCompileLock(redisConnection);
        })
        .AddWasmtime());
    using var hostProvider = host.BuildServiceProvider();
    var hostSettings = new WasmtimeEngineSettings();
    using var hostEngine = hostSettings.CreateEngine();
    using var hostLoaded = await hostProvider.GetRequiredService<WasmtimeModuleCache>().LoadAsync(hostEngine, new WasmSource("m", File.ReadAllBytes(args[4])));
    Console.WriteLine($"origin={hostLoaded.Origin}");
    return 0;
}

if (args[0] == "azureblob")
{
    return await FileCache.FleetWorker.BlobHost.RunAsync(args[1], args[2], args[3], args[4], int.Parse(args[5], System.Globalization.CultureInfo.InvariantCulture));
}

if (args[0] == "concurrency")
{
    return FileCache.FleetWorker.Concurrency.Run(args[1], args[2], args[3], int.Parse(args[4], System.Globalization.CultureInfo.InvariantCulture), double.Parse(args[5], System.Globalization.CultureInfo.InvariantCulture), args.Length > 6 && args[6] == "host-min-threads");
}

string disk = args[0], redis = args[1], prefix = args[2];
var wasm = File.ReadAllBytes(args[3]);
var services = new ServiceCollection();
services.AddStackExchangeRedisCache(o => o.Configuration = redis);
services.AddWasmCodeCache(c => c
    .UseDisk(disk)
    .UseDistributed(o => { o.AuthenticationKey = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray(); o.KeyPrefix = prefix; })
    .AddWasmtime());
using var provider = services.BuildServiceProvider();
var loader = provider.GetRequiredService<WasmtimeModuleCache>();
var settings = new WasmtimeEngineSettings();
using var engine = settings.CreateEngine();
using var loaded = loader.Load(engine, new WasmSource("fleet", wasm));
var diskTier = (DiskCodeCache)((TieredCodeCache)provider.GetRequiredService<IWasmCodeCache>()).Tiers[0];
Console.WriteLine($"origin={loaded.Origin}");
Console.WriteLine($"disk-holds-entry={File.Exists(diskTier.GetPath(loaded.Key))}");
return 0;
