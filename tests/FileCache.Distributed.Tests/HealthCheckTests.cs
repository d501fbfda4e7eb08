using FileCache.Memory;
using FileCache.Specification.Tests;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace FileCache.Distributed.Tests;

/// <summary>One builder call reports the cache's health: the disk directory usable and private, the store reachable, its circuit closed.</summary>
[Collection(StoreServerCollection.Name)]
public sealed class HealthCheckTests : IDisposable
{
    private readonly string _dir = Path.Join(Path.GetTempPath(), "filecache-health-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(_dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }

            Directory.Delete(_dir, recursive: true);
        }
    }

    private static async Task<HealthReport> CheckAsync(Action<IServiceCollection> configure)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        configure(services);
        services.AddHealthChecks().AddWasmCodeCache();
        await using var provider = services.BuildServiceProvider();
        return await provider.GetRequiredService<HealthCheckService>().CheckHealthAsync();
    }

    [Fact]
    public async Task AllTiersUsable_IsHealthy_AndTheReportNamesEachTier()
    {
        var report = await CheckAsync(s =>
        {
            s.AddSingleton<IDistributedCache>(Stores.Redis(RedisServer.Shared));
            s.AddWasmCodeCache(c => c.UseMemory().UseDisk(o => o.Directory = _dir).UseDistributed(o => o.AuthenticationKey = Stores.Secret));
        });
        var entry = report.Entries["filecache"];
        Assert.True(entry.Status == HealthStatus.Healthy, entry.Description);
        Assert.Contains(_dir, entry.Description);
        Assert.Contains("DistributedCodeCache", entry.Description);
        Assert.True(Directory.Exists(_dir)); // the probe created the directory, privately
        Assert.Empty(Directory.GetFiles(_dir)); // and left no probe file
    }

    [SkippableFact]
    public async Task ADirectoryOthersCanWrite_WithoutAKey_IsUnhealthy_AndSaysWhy()
    {
        Skip.IfNot(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), "Unix modes: on Windows the profile's ACLs decide.");
        Directory.CreateDirectory(_dir);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(_dir, (UnixFileMode)Convert.ToInt32("777", 8));
        }
        var report = await CheckAsync(s => s.AddWasmCodeCache(c => c.UseDisk(o => o.Directory = _dir)));
        var entry = report.Entries["filecache"];
        Assert.Equal(HealthStatus.Unhealthy, entry.Status);
        Assert.Contains(_dir, entry.Description);
        Assert.Contains("mode 0777", entry.Description); // refused at start by the options validator

        // The tier's own probe says the same when the directory goes bad after start.
        using var disk = new FileCache.Disk.DiskCodeCache(_dir);
        var direct = await disk.CheckHealthAsync(new HealthCheckContext { Registration = new HealthCheckRegistration("x", disk, HealthStatus.Unhealthy, null) });
        Assert.Equal(HealthStatus.Unhealthy, direct.Status);
        Assert.Contains("mode 0777", direct.Description);
    }

    [Fact]
    public async Task AStoreThatDoesNotAnswer_IsUnhealthy_NamingTheTier()
    {
        using var server = RedisServer.StartPrivate();
        var endpoint = server.Endpoint;
        server.Stop();
        var report = await CheckAsync(s =>
        {
            s.AddSingleton<IDistributedCache>(new Microsoft.Extensions.Caching.StackExchangeRedis.RedisCache(Microsoft.Extensions.Options.Options.Create(new Microsoft.Extensions.Caching.StackExchangeRedis.RedisCacheOptions
            {
                Configuration = $"{endpoint},abortConnect=false,connectTimeout=500,syncTimeout=500,asyncTimeout=500",
            })));
            s.AddWasmCodeCache(c => c.UseMemory().UseDistributed(o => { o.AuthenticationKey = Stores.Secret; o.Timeout = TimeSpan.FromSeconds(1); }));
        });
        var entry = report.Entries["filecache"];
        Assert.Equal(HealthStatus.Unhealthy, entry.Status);
        Assert.Contains("DistributedCodeCache", entry.Description);
        Assert.Contains("not reachable", entry.Description);
    }

    [Fact]
    public async Task AnOpenCircuit_IsDegraded()
    {
        var failing = new FailingStore();
        var cache = new DistributedCodeCache(failing, Stores.Options());
        for (int i = 0; i < 4; i++)
        {
            Assert.False(cache.TryGet(TestKeys.Key(i), out _)); // failures open the circuit
        }

        failing.Fail = false; // the store is back, but the circuit stays open for BreakDuration
        var result = await cache.CheckHealthAsync(new HealthCheckContext { Registration = new HealthCheckRegistration("x", cache, HealthStatus.Unhealthy, null) });
        Assert.Equal(HealthStatus.Degraded, result.Status);
        Assert.Contains("circuit", result.Description);
    }

    [Fact]
    public async Task AMemoryOnlyCache_IsHealthy()
    {
        var report = await CheckAsync(s => s.AddWasmCodeCache(c => c.UseMemory()));
        Assert.Equal(HealthStatus.Healthy, report.Status);
        Assert.IsType<MemoryCodeCache>(new ServiceCollection().AddWasmCodeCache(c => c.UseMemory()).Services.BuildServiceProvider().GetRequiredService<IWasmCodeCache>());
    }

    private sealed class FailingStore : IDistributedCache
    {
        public bool Fail { get; set; } = true;

        public byte[]? Get(string key) => Fail ? throw new IOException("store down") : null;

        public Task<byte[]?> GetAsync(string key, CancellationToken token = default) => Task.FromResult(Get(key));

        public void Refresh(string key)
        {
        }

        public Task RefreshAsync(string key, CancellationToken token = default) => Task.CompletedTask;

        public void Remove(string key)
        {
        }

        public Task RemoveAsync(string key, CancellationToken token = default) => Task.CompletedTask;

        public void Set(string key, byte[] value, DistributedCacheEntryOptions options)
        {
        }

        public Task SetAsync(string key, byte[] value, DistributedCacheEntryOptions options, CancellationToken token = default) => Task.CompletedTask;
    }
}
