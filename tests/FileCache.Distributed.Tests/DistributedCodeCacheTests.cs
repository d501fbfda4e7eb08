using FileCache.Diagnostics;
using FileCache.Disk;
using FileCache.Memory;
using FileCache.Specification.Tests;
using FileCache.Tiering;
using FileCache.Wasmtime;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace FileCache.Distributed.Tests;

[Collection(StoreServerCollection.Name)]
public sealed class DistributedCodeCacheTests : IDisposable
{
    private readonly string _dir = Path.Join(Path.GetTempPath(), "filecache-dist-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private static MemoryDistributedCache MemoryStore() => new(Options.Create(new MemoryDistributedCacheOptions()));

    private static byte[]? Get(IWasmCodeCache cache, CacheKey key) => cache.GetBytes(key);

    [Fact]
    public void AuthenticationKey_IsRequired_UnlessExplicitlyWaived()
    {
        var e = Assert.Throws<ArgumentException>(() => new DistributedCodeCache(MemoryStore(), new DistributedCodeCacheOptions()));
        Assert.Contains("AuthenticationKey is required", e.Message);
        Assert.Throws<ArgumentException>(() => new DistributedCodeCache(MemoryStore(), new DistributedCodeCacheOptions { AuthenticationKey = new byte[8] }));
        _ = new DistributedCodeCache(MemoryStore(), new DistributedCodeCacheOptions { DangerouslyAcceptUnauthenticatedEntries = true });
    }

    [Fact]
    public async Task UseDistributed_WithoutAKey_FailsAtStart()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddDistributedMemoryCache();
        builder.Services.AddWasmCodeCache(c => c.UseMemory().UseDistributed(_ => { }));
        using var host = builder.Build();
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains("AuthenticationKey", e.Message);
    }

    [Fact]
    public void UseDistributed_FormsTheLastTier()
    {
        var services = new ServiceCollection();
        services.AddDistributedMemoryCache();
        services.AddWasmCodeCache(c => c.UseMemory().UseDisk(_dir).UseDistributed(o => o.AuthenticationKey = Stores.Secret));
        using var provider = services.BuildServiceProvider();
        var tiered = Assert.IsType<TieredCodeCache>(provider.GetRequiredService<IWasmCodeCache>());
        Assert.IsType<DistributedCodeCache>(tiered.Tiers[2]);
    }

    [Fact]
    public void ValuesWrittenWithoutTheKey_OrWithAnother_AreMisses_CountedAndLeft_DamagedOnesAreRemoved()
    {
        using var meters = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var factory = meters.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        using var corrupt = new MetricCollector<long>(factory, WasmCodeCacheMetrics.MeterName, "filecache.corrupt_entries");
        var store = MemoryStore();
        var cache = new DistributedCodeCache(store, Stores.Options("shared:"), factory);
        var key = TestKeys.Key(1);
        string storeKey = cache.GetStoreKey(key);
        var value = TestPayload.Create(1, 1, 10_000);
        long Count(string reason) => corrupt.GetMeasurementSnapshot().Where(m => Equals(m.Tags[WasmCodeCacheMetrics.ReasonTag], reason)).Sum(m => m.Value);

        // Written by a client without the key (a valid frame, no tag): a miss, left for others.
        var unauthenticated = new DistributedCodeCache(store, new DistributedCodeCacheOptions { KeyPrefix = "shared:", DangerouslyAcceptUnauthenticatedEntries = true });
        unauthenticated.Add(key, new MemoryStream(value));
        Assert.Null(Get(cache, key));
        Assert.NotNull(store.Get(storeKey));
        Assert.Equal(1, Count("NotAuthenticated"));

        // Written with another key (a node mid-rotation, or a forger): a miss, never deleted.
        var other = new DistributedCodeCache(store, new DistributedCodeCacheOptions { KeyPrefix = "shared:", AuthenticationKey = new byte[32] });
        other.Add(key, new MemoryStream(value));
        Assert.Null(Get(cache, key));
        Assert.NotNull(store.Get(storeKey));
        Assert.Equal(1, Count("BadTag"));

        // Damaged: truncated, and raw bytes. Garbage to every node: removed.
        cache.Add(key, new MemoryStream(value));
        var good = store.Get(storeKey)!;
        store.Set(storeKey, good[..^10], new DistributedCacheEntryOptions());
        Assert.Null(Get(cache, key));
        Assert.Null(store.Get(storeKey));
        store.Set(storeKey, value, new DistributedCacheEntryOptions());
        Assert.Null(Get(cache, key));
        Assert.Null(store.Get(storeKey));

        // The real thing still works.
        cache.Add(key, new MemoryStream(value));
        Assert.Equal(value, Get(cache, key));
        Assert.Equal(4, corrupt.GetMeasurementSnapshot().Sum(m => m.Value));
    }

    [Fact]
    public void KeyRotation_EntriesSignedWithAnAdditionalVerificationKey_AreHits_NewEntriesUseTheSigningKey()
    {
        var store = MemoryStore();
        var oldKey = Enumerable.Repeat((byte)7, 32).ToArray();
        var newKey = Enumerable.Repeat((byte)9, 32).ToArray();
        var value = TestPayload.Create(1, 1, 5000);
        var oldNode = new DistributedCodeCache(store, new DistributedCodeCacheOptions { KeyPrefix = "rot:", AuthenticationKey = oldKey });
        oldNode.Add(TestKeys.Key(1), new MemoryStream(value));

        // Phase 2 of a rotation: the new key signs, the old one still verifies.
        var rotated = new DistributedCodeCacheOptions { KeyPrefix = "rot:", AuthenticationKey = newKey };
        rotated.AdditionalVerificationKeys.Add(oldKey);
        var newNode = new DistributedCodeCache(store, rotated);
        Assert.Equal(value, Get(newNode, TestKeys.Key(1)));
        newNode.Add(TestKeys.Key(2), new MemoryStream(value));

        // A node that has only the old key misses the new entry, and does not delete it.
        Assert.Null(Get(oldNode, TestKeys.Key(2)));
        Assert.Equal(value, Get(newNode, TestKeys.Key(2)));

        var tooShort = new DistributedCodeCacheOptions { AuthenticationKey = newKey };
        tooShort.AdditionalVerificationKeys.Add(new byte[8]);
        var e = Assert.Throws<ArgumentException>(() => new DistributedCodeCache(store, tooShort));
        Assert.Contains("AdditionalVerificationKeys[0]", e.Message);
    }

    [Fact]
    public void AHeadClaimingMoreThanMaxEntrySize_IsRejectedBeforeAnyChunkIsFetched_CountedWithItsReason()
    {
        using var meters = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var factory = meters.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        using var rejected = new MetricCollector<long>(factory, WasmCodeCacheMetrics.MeterName, "filecache.rejected_entries");
        using var corrupt = new MetricCollector<long>(factory, WasmCodeCacheMetrics.MeterName, "filecache.corrupt_entries");
        var store = new CountingStore(MemoryStore());
        var options = Stores.Options("big:");
        options.MaxEntrySize = 1000;
        var cache = new DistributedCodeCache(store, options, factory);
        new DistributedCodeCache(store, Stores.Options("big:")).Add(TestKeys.Key(1), new MemoryStream(new byte[5000])); // a node with a higher limit, or anyone who can write the store
        store.Reset();
        Assert.Null(Get(cache, TestKeys.Key(1)));
        Assert.Equal([cache.GetStoreKey(TestKeys.Key(1))], store.Gets); // the head only: no chunk fetched
        var measurement = Assert.Single(rejected.GetMeasurementSnapshot());
        Assert.Equal("TooLarge", measurement.Tags[WasmCodeCacheMetrics.ReasonTag]);
        Assert.Empty(corrupt.GetMeasurementSnapshot()); // never reached the frame check
        Assert.NotNull(store.Get(cache.GetStoreKey(TestKeys.Key(1)))); // left for the node that can use it
    }

    [Fact]
    public void AChunkLostToEviction_IsAMiss_LeftInTheStore_AndTheNextAddRepairsIt()
    {
        using var meters = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var factory = meters.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        using var corrupt = new MetricCollector<long>(factory, WasmCodeCacheMetrics.MeterName, "filecache.corrupt_entries");
        var store = MemoryStore();
        var cache = new DistributedCodeCache(store, Stores.Options("evict:"), factory);
        var key = TestKeys.Key(1);
        var value = TestPayload.Create(1, 1, (3 << 20) + 5000); // four chunks, the last short
        cache.Add(key, new MemoryStream(value));
        var head = store.Get(cache.GetStoreKey(key))!;
        Assert.Equal(64, head.Length);
        Assert.Equal(value.AsSpan(3 << 20).ToArray(), store.Get(cache.GetChunkKey(key, head, 3)));
        Assert.Null(store.Get(cache.GetChunkKey(key, head, 4)));

        store.Remove(cache.GetChunkKey(key, head, 2)); // evicted under memory pressure
        Assert.Null(Get(cache, key));
        Assert.NotNull(store.Get(cache.GetStoreKey(key)));
        Assert.Empty(corrupt.GetMeasurementSnapshot()); // a miss, not corruption

        cache.Add(key, new MemoryStream(value)); // the host that missed compiles and adds again
        Assert.Equal(value, Get(cache, key));
    }

    [Fact]
    public void AChunkFromAnotherWrite_OrAFlippedBit_IsAMiss_AndTheEntryIsRemoved()
    {
        using var meters = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var factory = meters.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        using var corrupt = new MetricCollector<long>(factory, WasmCodeCacheMetrics.MeterName, "filecache.corrupt_entries");
        var store = MemoryStore();
        var cache = new DistributedCodeCache(store, Stores.Options("mix:"), factory);
        var key = TestKeys.Key(1);
        var mine = TestPayload.Create(1, 1, 3 << 20);
        var theirs = TestPayload.Create(2, 1, 3 << 20);
        cache.Add(TestKeys.Key(2), new MemoryStream(theirs));
        string[] Keys(CacheKey k) => [cache.GetStoreKey(k), .. Enumerable.Range(0, 3).Select(i => cache.GetChunkKey(k, store.Get(cache.GetStoreKey(k)), i))];

        // A chunk of another entry, validly written by the fleet, under this entry's name.
        cache.Add(key, new MemoryStream(mine));
        var names = Keys(key);
        store.Set(names[2], store.Get(Keys(TestKeys.Key(2))[2])!, new DistributedCacheEntryOptions());
        Assert.Null(Get(cache, key));
        Assert.All(names, n => Assert.Null(store.Get(n))); // head and chunks removed

        // One flipped bit in the last chunk.
        cache.Add(key, new MemoryStream(mine));
        var last = store.Get(names[3])!;
        last[^1] ^= 0x10;
        store.Set(names[3], last, new DistributedCacheEntryOptions());
        Assert.Null(Get(cache, key));
        Assert.All(names, n => Assert.Null(store.Get(n)));

        // A chunk one byte short.
        cache.Add(key, new MemoryStream(mine));
        store.Set(names[1], store.Get(names[1])![..^1], new DistributedCacheEntryOptions());
        Assert.Null(Get(cache, key));
        Assert.Equal(["ChecksumMismatch", "ChecksumMismatch", "LengthMismatch"], corrupt.GetMeasurementSnapshot().Select(m => (string)m.Tags[WasmCodeCacheMetrics.ReasonTag]!));

        cache.Add(key, new MemoryStream(mine));
        Assert.Equal(mine, Get(cache, key));
        Assert.Equal(theirs, Get(cache, TestKeys.Key(2)));
    }

    [Fact]
    public async Task ReplacingAnEntry_RemovesTheOldChunks_AndDeleteRemovesHeadAndChunks()
    {
        var store = MemoryStore();
        var cache = new DistributedCodeCache(store, Stores.Options("replace:"));
        var key = TestKeys.Key(1);
        await cache.AddAsync(key, new MemoryStream(TestPayload.Create(1, 1, (2 << 20) + 1)));
        var oldHead = store.Get(cache.GetStoreKey(key))!;
        var replacement = TestPayload.Create(2, 1, 1 << 20);
        await cache.AddAsync(key, new MemoryStream(replacement));
        var newHead = store.Get(cache.GetStoreKey(key))!;
        Assert.NotEqual(cache.GetChunkKey(key, oldHead, 0), cache.GetChunkKey(key, newHead, 0));
        Assert.All(Enumerable.Range(0, 3), i => Assert.Null(store.Get(cache.GetChunkKey(key, oldHead, i))));
        Assert.Equal(replacement, Get(cache, key));

        await cache.DeleteAsync(key);
        Assert.Null(store.Get(cache.GetStoreKey(key)));
        Assert.Null(store.Get(cache.GetChunkKey(key, newHead, 0)));
    }

    [Fact]
    public async Task AHit_AsksForEveryChunkAtOnce()
    {
        var store = new CountingStore(MemoryStore()) { Delay = TimeSpan.FromMilliseconds(200) };
        var cache = new DistributedCodeCache(store, Stores.Options("wide:"));
        var value = TestPayload.Create(1, 1, 6 << 20);
        await cache.AddAsync(TestKeys.Key(1), new MemoryStream(value));
        store.Reset();
        await using (var hit = await cache.GetAsync(TestKeys.Key(1)))
        {
            using var copy = new MemoryStream();
            await hit!.CopyToAsync(copy);
            Assert.Equal(value, copy.ToArray());
        }

        Assert.Equal(7, store.Gets.Count); // the head, then six chunks...
        Assert.Equal(6, store.MostInFlight); // ...all in flight together, not one after another
    }

    [Fact]
    public void EntriesAboveMaxEntrySize_AreNotSent_AndCounted()
    {
        using var rejected = new MetricCollector<long>(null, WasmCodeCacheMetrics.MeterName, "filecache.rejected_entries");
        var store = MemoryStore();
        var options = Stores.Options();
        options.MaxEntrySize = 1000;
        var cache = new DistributedCodeCache(store, options);
        cache.Add(TestKeys.Key(1), new MemoryStream(new byte[500]));
        cache.Add(TestKeys.Key(1), new MemoryStream(new byte[1001])); // replaces: the old value goes too
        Assert.Null(store.Get(cache.GetStoreKey(TestKeys.Key(1))));
        Assert.Contains(rejected.GetMeasurementSnapshot(), m => (string?)m.Tags[WasmCodeCacheMetrics.BackendTag] == "distributed");
    }

    [Fact]
    public async Task FailingStore_NeverThrows_IsSkippedAfterFailures_AndRecovers()
    {
        var store = new FlakyStore(MemoryStore()) { Down = true };
        var options = Stores.Options();
        options.BreakDuration = TimeSpan.FromSeconds(30);
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(); // the break ends when the test says, not after a sleep
        var cache = new DistributedCodeCache(store, options, timeProvider: clock);
        var key = TestKeys.Key(1);

        for (int i = 0; i < 5; i++)
        {
            Assert.Null(Get(cache, key));
            cache.Add(key, new MemoryStream([1, 2, 3]));
            cache.Delete(key);
        }

        int callsWhileOpen = store.Calls;
        Assert.Null(await cache.GetAsync(key)); // the circuit is open: the store is not even asked
        Assert.Equal(callsWhileOpen, store.Calls);

        store.Down = false;
        clock.Advance(TimeSpan.FromSeconds(29));
        Assert.Null(await cache.GetAsync(key)); // still open just before the break ends
        Assert.Equal(callsWhileOpen, store.Calls);
        clock.Advance(TimeSpan.FromSeconds(2));
        cache.Add(key, new MemoryStream([1, 2, 3]));
        Assert.Equal([1, 2, 3], Get(cache, key));
    }

    [SkippableFact]
    public void RedisStoppedMidRun_LoadsStillSucceed_AndTheTierRecovers()
    {
        using var redis = RedisServer.StartPrivate();
        var options = Stores.Options();
        options.Timeout = TimeSpan.FromSeconds(1);
        options.BreakDuration = TimeSpan.FromSeconds(1);
        var distributed = new DistributedCodeCache(Stores.Redis(redis), options);
        using var cache = new TieredCodeCache([new MemoryCodeCache(), new DiskCodeCache(_dir), distributed], ownsTiers: true);
        var loader = new WasmtimeModuleCache(cache);
        var settings = new WasmtimeEngineSettings();
        using var engine = settings.CreateEngine();

        using (var first = loader.Load(engine, new WasmSource("a", Wasm(1))))
        {
            Assert.Equal(ModuleOrigin.Compiled, first.Origin);
        }

        redis.Stop();
        for (int i = 2; i < 5; i++)
        {
            using var loaded = loader.Load(engine, new WasmSource("m", Wasm(i))); // no exception escapes
            Assert.Equal(ModuleOrigin.Compiled, loaded.Origin);
            using var hit = loader.Load(engine, new WasmSource("m", Wasm(i))); // the local tiers still serve
            Assert.True(hit.IsHit);
        }

        redis.Start();
        Thread.Sleep(1500); // past the break
        var key = TestKeys.Key(77);
        var value = TestPayload.Create(77, 1, 5000);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        byte[]? back = null;
        while (back is null && DateTime.UtcNow < deadline)
        {
            distributed.Add(key, new MemoryStream(value));
            back = Get(distributed, key);
            if (back is null)
            {
                Thread.Sleep(250); // the client reconnects in the background
            }
        }

        Assert.Equal(value, back);
    }

    [SkippableFact]
    public async Task Fleet_ProcessBLoadsWhatProcessACompiled_FromRedis_AndItsDiskTierNowHoldsIt()
    {
        var redis = RedisServer.Shared;
        string wasmPath = Path.Join(_dir, "module.wasm");
        Directory.CreateDirectory(_dir);
        File.WriteAllBytes(wasmPath, Wasm(Random.Shared.Next()));
        string prefix = $"fleet:{Guid.NewGuid():N}:";
        string diskA = Path.Join(_dir, "a"), diskB = Path.Join(_dir, "b");

        var a = await Fleet.RunAsync(diskA, redis.Endpoint, prefix, wasmPath);
        Assert.True(a.ExitCode == 0, a.Output);
        Assert.Contains("origin=Compiled", a.Output);

        var b = await Fleet.RunAsync(diskB, redis.Endpoint, prefix, wasmPath);
        Assert.True(b.ExitCode == 0, b.Output);
        Assert.Contains("origin=CacheHit", b.Output); // never compiled in B
        Assert.Contains("disk-holds-entry=True", b.Output);
        Assert.Single(Directory.GetFiles(diskB), f => Path.GetFileName(f).Length == 64);

        // The promotion made B's next start a mapped disk hit: no trip to the store at all.
        var bAgain = await Fleet.RunAsync(diskB, redis.Endpoint, prefix, wasmPath);
        Assert.True(bAgain.ExitCode == 0, bAgain.Output);
        Assert.Contains("origin=MappedFile", bAgain.Output);
    }

    private static byte[] Wasm(int salt) => global::Wasmtime.Module.ConvertText(
        $"(module (func (export \"f\") (result i32) i32.const {salt}))");

    /// <summary>Delegates to a store, or throws like a store that is down.</summary>
    private sealed class FlakyStore(IDistributedCache inner) : IDistributedCache
    {
        private int _calls;

        public bool Down { get; set; }

        public int Calls => Volatile.Read(ref _calls);

        private void Enter()
        {
            Interlocked.Increment(ref _calls);
            if (Down)
            {
                throw new IOException("store is down (test)");
            }
        }

        public byte[]? Get(string key) { Enter(); return inner.Get(key); }

        public Task<byte[]?> GetAsync(string key, CancellationToken token = default) { Enter(); return inner.GetAsync(key, token); }

        public void Refresh(string key) { Enter(); inner.Refresh(key); }

        public Task RefreshAsync(string key, CancellationToken token = default) { Enter(); return inner.RefreshAsync(key, token); }

        public void Remove(string key) { Enter(); inner.Remove(key); }

        public Task RemoveAsync(string key, CancellationToken token = default) { Enter(); return inner.RemoveAsync(key, token); }

        public void Set(string key, byte[] value, DistributedCacheEntryOptions options) { Enter(); inner.Set(key, value, options); }

        public Task SetAsync(string key, byte[] value, DistributedCacheEntryOptions options, CancellationToken token = default) { Enter(); return inner.SetAsync(key, value, options, token); }
    }

    /// <summary>Records the keys read and how many reads were in flight at once.</summary>
    private sealed class CountingStore(IDistributedCache inner) : IDistributedCache
    {
        private readonly List<string> _gets = [];
        private int _inFlight;
        private int _most;

        public TimeSpan Delay { get; set; }

        public List<string> Gets { get { lock (_gets) { return [.. _gets]; } } }

        public int MostInFlight => Volatile.Read(ref _most);

        public void Reset()
        {
            lock (_gets)
            {
                _gets.Clear();
            }

            _most = 0;
        }

        public byte[]? Get(string key) => GetAsync(key).GetAwaiter().GetResult();

        public async Task<byte[]?> GetAsync(string key, CancellationToken token = default)
        {
            lock (_gets)
            {
                _gets.Add(key);
            }

            int now = Interlocked.Increment(ref _inFlight);
            for (int most = _most; now > most && Interlocked.CompareExchange(ref _most, now, most) != most; most = _most)
            {
            }

            try
            {
                await Task.Delay(Delay, token);
                return await inner.GetAsync(key, token);
            }
            finally
            {
                Interlocked.Decrement(ref _inFlight);
            }
        }

        public void Refresh(string key) => inner.Refresh(key);

        public Task RefreshAsync(string key, CancellationToken token = default) => inner.RefreshAsync(key, token);

        public void Remove(string key) => inner.Remove(key);

        public Task RemoveAsync(string key, CancellationToken token = default) => inner.RemoveAsync(key, token);

        public void Set(string key, byte[] value, DistributedCacheEntryOptions options) => inner.Set(key, value, options);

        public Task SetAsync(string key, byte[] value, DistributedCacheEntryOptions options, CancellationToken token = default) => inner.SetAsync(key, value, options, token);
    }
}
