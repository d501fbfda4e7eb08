using System.Text;
using FileCache.Specification.Tests;

namespace FileCache.Distributed.Tests;

/// <summary>One compile per machine (issue 10): processes sharing a disk cache compile a missing key once.</summary>
public sealed class MachineCompileTests : IDisposable
{
    private readonly string _dir = Path.Join(Path.GetTempPath(), "filecache-machine-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    [Fact]
    public async Task FourProcessesColdLoadingOneModule_CompileItOnce()
    {
        Directory.CreateDirectory(_dir);
        string module = Path.Join(_dir, "big.wasm");
        File.WriteAllBytes(module, BigWasm()); // compiling takes long enough for all four to start
        string cache = Path.Join(_dir, "cache");

        var runs = Enumerable.Range(0, 4).Select(_ => Fleet.RunAsync("machine", cache, module)).ToArray();
        var results = await Task.WhenAll(runs);
        foreach (var (exitCode, output) in results)
        {
            Assert.True(exitCode == 0, output);
        }

        var origins = results.Select(r => r.Output.Split("origin=")[1].Trim()).ToArray();
        Assert.True(origins.Count(o => o == "Compiled") == 1, "origins: " + string.Join(", ", origins));
        Assert.All(origins, o => Assert.Contains(o, new[] { "Compiled", "MappedFile" }));
        Assert.DoesNotContain(Directory.GetFiles(cache), f => Path.GetFileName(f).StartsWith(".compile-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task FourHostsWithTheirOwnDisks_ColdLoadingOneModule_CompileItOncePerFleet()
    {
        Directory.CreateDirectory(_dir);
        string module = Path.Join(_dir, "big.wasm");
        File.WriteAllBytes(module, BigWasm());
        string prefix = $"fleetlock:{Guid.NewGuid():N}:";
        var runs = Enumerable.Range(0, 4).Select(i => Fleet.RunAsync("fleetlock", Path.Join(_dir, $"host{i}"), RedisServer.Shared.Endpoint, prefix, module)).ToArray();
        var results = await Task.WhenAll(runs);
        foreach (var (exitCode, output) in results)
        {
            Assert.True(exitCode == 0, output);
        }

        var origins = results.Select(r => r.Output.Split("origin=")[1].Trim()).ToArray();
        Assert.True(origins.Count(o => o == "Compiled") == 1, "origins: " + string.Join(", ", origins));
        Assert.All(origins, o => Assert.Contains(o, new[] { "Compiled", "CacheHit" })); // the others took the fleet's entry
    }

    [Fact]
    public async Task ALockWhoseHolderDied_StopsBlockingWhenItExpires()
    {
        using var redis = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(RedisServer.Shared.Endpoint);
        var fleetLock = new RedisFleetCompileLock(redis);
        var options = Stores.Options();
        options.FleetCompileLock = fleetLock;
        options.FleetCompileLockExpiry = TimeSpan.FromSeconds(5); // long enough that a busy machine cannot outlast it between two calls
        var cache = new DistributedCodeCache(Stores.Redis(RedisServer.Shared), options);
        var key = TestKeys.Key(1);
        var first = await cache.TryAcquireCompileLockAsync(key, TimeSpan.Zero);
        Assert.NotNull(first); // and never released: its holder "died"

        Assert.Null(await cache.TryAcquireCompileLockAsync(key, TimeSpan.Zero)); // held: one attempt fails
        var started = System.Diagnostics.Stopwatch.StartNew();
        var second = await cache.TryAcquireCompileLockAsync(key, TimeSpan.FromSeconds(30));
        Assert.NotNull(second); // after the expiry, not the whole wait
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(20), started.Elapsed.ToString());
        second.Dispose(); // releases in the background
        using var third = await cache.TryAcquireCompileLockAsync(key, TimeSpan.FromSeconds(2)); // well before the 5 s expiry: Dispose released it
        Assert.NotNull(third);
    }

    [Fact]
    public async Task ALockKeyWithoutExpiry_PlantedByAnotherWriter_IsNotObeyed_ARealHoldersIs()
    {
        using var redis = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(RedisServer.Shared.Endpoint);
        var fleetLock = new RedisFleetCompileLock(redis);
        string planted = "filecache-test:planted-lock:" + Guid.NewGuid().ToString("N");
        await redis.GetDatabase().StringSetAsync(planted, "for ever"); // no expiry: no real holder does this
        await using (var held = await fleetLock.TryAcquireAsync(planted, TimeSpan.FromSeconds(30)))
        {
            Assert.NotNull(held);
            Assert.NotNull(await redis.GetDatabase().KeyTimeToLiveAsync(planted)); // now a real, expiring lock

            // A real holder's lock (with its expiry) is obeyed.
            Assert.Null(await fleetLock.TryAcquireAsync(planted, TimeSpan.FromSeconds(30)));
        }
    }

    [SkippableFact]
    public async Task BothLocksHeld_ALoadWaitsOneTimeout_NotOnePerTier()
    {
        Skip.If(OperatingSystem.IsWindows(), "The disk tier's lock is flock.");
        using var redis = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(RedisServer.Shared.Endpoint);
        var options = Stores.Options();
        options.KeyPrefix = "filecache-deadline-" + Guid.NewGuid().ToString("N") + ":";
        options.FleetCompileLock = new RedisFleetCompileLock(redis);
        options.FleetCompileLockExpiry = TimeSpan.FromMinutes(1);
        var key = TestKeys.Key(7);
        using var disk = new Disk.DiskCodeCache(new Disk.DiskCodeCacheOptions { Directory = _dir });
        var fleet = new DistributedCodeCache(Stores.Redis(RedisServer.Shared), options);
        using var tiers = new FileCache.Tiering.TieredCodeCache([disk, fleet]);

        // Another process holds both: the machine's lock (another handle on the lock file) and the fleet's.
        using var otherDisk = new Disk.DiskCodeCache(new Disk.DiskCodeCacheOptions { Directory = _dir });
        using var machineHeld = otherDisk.TryAcquireCompileLock(key, TimeSpan.Zero);
        Assert.NotNull(machineHeld);
        var fleetHeld = await fleet.TryAcquireCompileLockAsync(key, TimeSpan.Zero);
        Assert.NotNull(fleetHeld);

        var timeout = TimeSpan.FromSeconds(2);
        // A timeout per tier would wait 2 x 2 s = 4 s; 3.5 s allows a busy machine 1.5 s of overshoot and still fails that.
        var bound = timeout * 1.75;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var got = await tiers.TryAcquireCompileLockAsync(key, timeout);
        Assert.Null(got);
        Assert.True(watch.Elapsed < bound, $"waited {watch.Elapsed} for a {timeout} timeout");
        watch.Restart();
        Assert.Null(tiers.TryAcquireCompileLock(key, timeout));
        Assert.True(watch.Elapsed < bound, $"waited {watch.Elapsed} (sync) for a {timeout} timeout");
        fleetHeld!.Dispose();
    }

    private static byte[] BigWasm()
    {
        var text = new StringBuilder("(module\n");
        for (int i = 0; i < 4000; i++)
        {
            text.Append("(func (export \"f").Append(i).Append("\") (param i32) (result i32) local.get 0 i32.const ").Append(i).Append(" i32.mul i32.const 7 i32.add)\n");
        }

        return global::Wasmtime.Module.ConvertText(text.Append(')').ToString());
    }
}
