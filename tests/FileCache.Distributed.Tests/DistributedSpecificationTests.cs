using System.Diagnostics.CodeAnalysis;
using FileCache.Specification.Tests;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Caching.StackExchangeRedis;
using Microsoft.Extensions.Options;

namespace FileCache.Distributed.Tests;

internal static class Stores
{
    public static readonly byte[] Secret = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();

    public static DistributedCodeCacheOptions Options(string? prefix = null) => new()
    {
        AuthenticationKey = Secret,
        KeyPrefix = prefix ?? $"test:{Guid.NewGuid():N}:",
        Timeout = TimeSpan.FromSeconds(30), // a busy CI machine must not turn a slow write into a skipped one
    };

    public static RedisCache Redis(RedisServer server) => new(Microsoft.Extensions.Options.Options.Create(new RedisCacheOptions
    {
        Configuration = $"{server.Endpoint},abortConnect=false,connectTimeout=2000,syncTimeout=10000,asyncTimeout=10000",
    }));
}

/// <summary>Over the in-process MemoryDistributedCache.</summary>
public sealed class MemoryDistributedSpecificationTests : WasmCodeCacheSpecificationTests
{
    protected override WasmCodeCacheLocality Locality => WasmCodeCacheLocality.Fleet;

    protected override IWasmCodeCache CreateCache() => new DistributedCodeCache(
        new MemoryDistributedCache(Options.Create(new MemoryDistributedCacheOptions())), Stores.Options());
}

/// <summary>Over a real Redis server, through RedisCache's buffer API (IBufferDistributedCache).</summary>
public sealed class RedisSpecificationTests : WasmCodeCacheSpecificationTests
{
    protected override WasmCodeCacheLocality Locality => WasmCodeCacheLocality.Fleet;

    protected override IWasmCodeCache CreateCache()
    {
        var store = Stores.Redis(RedisServer.Shared);
        Assert.IsAssignableFrom<IBufferDistributedCache>(store); // writes take the buffer path here
        return new DistributedCodeCache(store, Stores.Options());
    }
}

/// <summary>Over a real Redis server through the plain byte[] API only.</summary>
public sealed class RedisLegacyApiSpecificationTests : WasmCodeCacheSpecificationTests
{
    protected override IWasmCodeCache CreateCache() => new DistributedCodeCache(new PlainOnly(Stores.Redis(RedisServer.Shared)), Stores.Options());

    /// <summary>Hides IBufferDistributedCache.</summary>
    private sealed class PlainOnly(IDistributedCache inner) : IDistributedCache
    {
        public byte[]? Get(string key) => inner.Get(key);

        public Task<byte[]?> GetAsync(string key, CancellationToken token = default) => inner.GetAsync(key, token);

        public void Refresh(string key) => inner.Refresh(key);

        public Task RefreshAsync(string key, CancellationToken token = default) => inner.RefreshAsync(key, token);

        public void Remove(string key) => inner.Remove(key);

        public Task RemoveAsync(string key, CancellationToken token = default) => inner.RemoveAsync(key, token);

        public void Set(string key, byte[] value, DistributedCacheEntryOptions options) => inner.Set(key, value, options);

        public Task SetAsync(string key, byte[] value, DistributedCacheEntryOptions options, CancellationToken token = default) => inner.SetAsync(key, value, options, token);
    }
}
