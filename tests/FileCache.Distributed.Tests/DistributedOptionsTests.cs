using System.Diagnostics;
using FileCache.Specification.Tests;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;

namespace FileCache.Distributed.Tests;

/// <summary>Each option of the distributed tier does what its documentation says.</summary>
public sealed class DistributedOptionsTests
{
    private static MemoryDistributedCache MemoryStore() => new(Options.Create(new MemoryDistributedCacheOptions()));

    [Fact]
    public void KeyPrefix_IsolatesApplicationsSharingOneStore()
    {
        var store = MemoryStore();
        var a = new DistributedCodeCache(store, Stores.Options("app-a:"));
        var b = new DistributedCodeCache(store, Stores.Options("app-b:"));
        a.Add(TestKeys.Key(1), new MemoryStream([1]));
        Assert.Equal("app-a:" + TestKeys.Key(1) + ":head", a.GetStoreKey(TestKeys.Key(1)));
        var head = store.Get("app-a:" + TestKeys.Key(1) + ":head");
        Assert.NotNull(head);
        Assert.StartsWith("app-a:" + TestKeys.Key(1) + ":", a.GetChunkKey(TestKeys.Key(1), head, 0));
        Assert.Equal([1], store.Get(a.GetChunkKey(TestKeys.Key(1), head, 0)));
        Assert.Null(b.GetBytes(TestKeys.Key(1)));
        b.Delete(TestKeys.Key(1));
        Assert.Equal([1], a.GetBytes(TestKeys.Key(1)));
    }

    [Fact]
    public async Task Expirations_AreHandedToTheStore_OnEveryWrite()
    {
        var store = new RecordingStore(MemoryStore());
        var options = Stores.Options();
        options.SlidingExpiration = TimeSpan.FromHours(3);
        options.AbsoluteExpiration = TimeSpan.FromDays(2);
        var cache = new DistributedCodeCache(store, options);
        cache.Add(TestKeys.Key(1), new MemoryStream([1]));
        await cache.AddAsync(TestKeys.Key(2), new MemoryStream([2]));
        Assert.Equal(4, store.Writes.Count); // a chunk and a head per entry
        Assert.All(store.Writes, w =>
        {
            Assert.Equal(TimeSpan.FromHours(3), w.SlidingExpiration);
            Assert.Equal(TimeSpan.FromDays(2), w.AbsoluteExpirationRelativeToNow);
        });
    }

    [Fact]
    public async Task Timeout_BoundsAnAsynchronousCall_ToASlowStore_AndCountsASlowSynchronousOne()
    {
        var store = new RecordingStore(MemoryStore()) { Delay = TimeSpan.FromSeconds(3) };
        var options = Stores.Options();
        options.Timeout = TimeSpan.FromMilliseconds(200);
        var cache = new DistributedCodeCache(store, options);
        var clock = Stopwatch.StartNew();
        Assert.Null(await cache.GetAsync(TestKeys.Key(1))); // a miss, not an exception
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2.5), $"the async get waited {clock.Elapsed} for a store that takes 3 s");

        // A synchronous call cannot be cut short; it counts as a failure, so the breaker opens and
        // the next calls skip the store.
        store.Delay = TimeSpan.FromMilliseconds(400);
        Assert.False(cache.TryGet(TestKeys.Key(1), out _));
        Assert.False(cache.TryGet(TestKeys.Key(1), out _));
        int calls = store.Gets;
        Assert.False(cache.TryGet(TestKeys.Key(1), out _));
        Assert.Equal(calls, store.Gets); // skipped: the store was not asked
    }

    [Fact]
    public void DangerouslyAcceptUnauthenticatedEntries_ReadsEntriesWithoutATag_AndStillChecksTheChecksum()
    {
        var store = MemoryStore();
        var options = new DistributedCodeCacheOptions { KeyPrefix = "open:", DangerouslyAcceptUnauthenticatedEntries = true };
        var cache = new DistributedCodeCache(store, options);
        var value = TestPayload.Create(1, 1, 3000);
        cache.Add(TestKeys.Key(1), new MemoryStream(value));
        Assert.Equal(value, cache.GetBytes(TestKeys.Key(1)));

        string chunkKey = cache.GetChunkKey(TestKeys.Key(1), store.Get(cache.GetStoreKey(TestKeys.Key(1))), 0);
        var stored = store.Get(chunkKey)!;
        stored[10] ^= 1;
        store.Set(chunkKey, stored, new DistributedCacheEntryOptions());
        Assert.Null(cache.GetBytes(TestKeys.Key(1)));
    }

    private sealed class RecordingStore(IDistributedCache inner) : IDistributedCache
    {
        private int _gets;

        public TimeSpan Delay { get; set; }

        public List<DistributedCacheEntryOptions> Writes { get; } = [];

        public int Gets => Volatile.Read(ref _gets);

        public byte[]? Get(string key)
        {
            Interlocked.Increment(ref _gets);
            Thread.Sleep(Delay);
            return inner.Get(key);
        }

        public async Task<byte[]?> GetAsync(string key, CancellationToken token = default)
        {
            Interlocked.Increment(ref _gets);
            await Task.Delay(Delay, CancellationToken.None); // ignores the token, as StackExchange.Redis does
            return await inner.GetAsync(key, token);
        }

        public void Refresh(string key) => inner.Refresh(key);

        public Task RefreshAsync(string key, CancellationToken token = default) => inner.RefreshAsync(key, token);

        public void Remove(string key) => inner.Remove(key);

        public Task RemoveAsync(string key, CancellationToken token = default) => inner.RemoveAsync(key, token);

        public void Set(string key, byte[] value, DistributedCacheEntryOptions options)
        {
            Writes.Add(options);
            inner.Set(key, value, options);
        }

        public Task SetAsync(string key, byte[] value, DistributedCacheEntryOptions options, CancellationToken token = default)
        {
            Writes.Add(options);
            return inner.SetAsync(key, value, options, token);
        }
    }
}
