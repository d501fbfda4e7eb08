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
