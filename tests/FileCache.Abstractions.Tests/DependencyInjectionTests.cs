using FileCache.Memory;
using FileCache.Tiering;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace FileCache.Tests;

public sealed class DependencyInjectionTests
{
    [Fact]
    public void UseMemory_RegistersMemoryCodeCacheSingleton()
    {
        var services = new ServiceCollection();
        services.AddWasmCodeCache().UseMemory(o => o.SizeLimit = 1024);
        using var provider = services.BuildServiceProvider();
        var cache = provider.GetRequiredService<IWasmCodeCache>();
        Assert.IsType<MemoryCodeCache>(cache);
        Assert.Same(cache, provider.GetRequiredService<IWasmCodeCache>());
    }

    [Fact]
    public void SeveralUseCalls_FormTiersFastestFirst()
    {
        var services = new ServiceCollection();
        var spare = new MemoryCodeCache();
        services.AddWasmCodeCache(c => c.UseMemory().UseCache(spare));
        using var provider = services.BuildServiceProvider();
        var tiered = Assert.IsType<TieredCodeCache>(provider.GetRequiredService<IWasmCodeCache>());
        Assert.Equal(2, tiered.Tiers.Count);
        Assert.IsType<MemoryCodeCache>(tiered.Tiers[0]);

        var key = CacheKey.Compute([1]);
        tiered.Add(key, new MemoryStream([1, 2]));
        Assert.True(spare.TryGet(key, out var s));
        s.Dispose();
    }

    [Fact]
    public void AddWasmCodeCache_Twice_IsHarmless()
    {
        var services = new ServiceCollection();
        services.AddWasmCodeCache().UseMemory();
        int count = services.Count;
        services.AddWasmCodeCache();
        Assert.Equal(count, services.Count);
        using var provider = services.BuildServiceProvider();
        Assert.IsType<MemoryCodeCache>(provider.GetRequiredService<IWasmCodeCache>());
        Assert.Single(provider.GetServices<IWasmCodeCache>());
    }

    [Fact]
    public void NoTier_FailsWithAMessageThatSaysWhatToCall()
    {
        var services = new ServiceCollection();
        services.AddWasmCodeCache();
        using var provider = services.BuildServiceProvider();
        var e = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IWasmCodeCache>());
        Assert.Contains("UseDisk()", e.Message);
        Assert.Contains("UseMemory()", e.Message);
    }

    [Fact]
    public async Task InvalidOptions_FailHostStart_NamingTheOption()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddWasmCodeCache().UseMemory(o => o.SizeLimit = 0);
        using var host = builder.Build();
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains("SizeLimit", e.Message);
    }

    [Fact]
    public async Task MissingTier_FailsHostStart()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddKeyedWasmCodeCache("plugins");
        using var host = builder.Build();
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains("'plugins'", e.Message);
    }

    [Fact]
    public void KeyedCaches_AreIndependent()
    {
        var services = new ServiceCollection();
        services.AddKeyedWasmCodeCache("a", c => c.UseMemory());
        services.AddKeyedWasmCodeCache("b").UseMemory().UseMemory();
        using var provider = services.BuildServiceProvider();
        var a = provider.GetRequiredKeyedService<IWasmCodeCache>("a");
        var b = provider.GetRequiredKeyedService<IWasmCodeCache>("b");
        Assert.IsType<MemoryCodeCache>(a);
        Assert.IsType<TieredCodeCache>(b);
        var key = CacheKey.Compute([3]);
        a.Add(key, new MemoryStream([3]));
        Assert.False(b.TryGet(key, out _));
        Assert.Null(provider.GetService<IWasmCodeCache>());
    }

    [Fact]
    public void EachTier_GetsItsOwnOptions()
    {
        var services = new ServiceCollection();
        services.AddWasmCodeCache().UseMemory(o => o.SizeLimit = 10).UseMemory(o => o.SizeLimit = 1000);
        using var provider = services.BuildServiceProvider();
        var tiered = Assert.IsType<TieredCodeCache>(provider.GetRequiredService<IWasmCodeCache>());
        var key = CacheKey.Compute([4]);
        tiered.Add(key, new MemoryStream(new byte[100]));
        Assert.Equal(0, ((MemoryCodeCache)tiered.Tiers[0]).Count); // 100 bytes do not fit in 10
        Assert.Equal(1, ((MemoryCodeCache)tiered.Tiers[1]).Count);
    }

    [Fact]
    public void DisposingTheProvider_DisposesTheTiers()
    {
        var services = new ServiceCollection();
        services.AddWasmCodeCache().UseMemory().UseMemory();
        var provider = services.BuildServiceProvider();
        var tiered = Assert.IsType<TieredCodeCache>(provider.GetRequiredService<IWasmCodeCache>());
        tiered.Add(CacheKey.Compute([5]), new MemoryStream([5]));
        provider.Dispose();
        Assert.Equal(0, ((MemoryCodeCache)tiered.Tiers[0]).Count);
    }
}
