using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace FileCache.Specification.Tests;

// The store as the engine uses it: registered with UseCache(store, locality) behind a faster tier, read
// through the stream contract, its hits promoted, written through.
public abstract partial class WasmCodeCacheSpecificationTests
{
    /// <summary>Who fills and reads the store's entries, as it is declared when registered with
    /// <c>UseCache(store, locality)</c>: <see cref="WasmCodeCacheLocality.Machine"/> unless overridden
    /// (a store that hosts of a fleet share is <see cref="WasmCodeCacheLocality.Fleet"/>).</summary>
    protected virtual WasmCodeCacheLocality Locality => WasmCodeCacheLocality.Machine;

    /// <summary>
    /// Registered behind a faster in-process tier, as a host composes it: a hit is read through the
    /// store's streams with its exact bytes and copied into the faster tier; a miss is a miss, sync and
    /// async; an add through the engine reaches the store.
    /// </summary>
    /// <returns>A task that completes when the test has run.</returns>
    [SkippableFact]
    public async Task BehindTheEngine_HitsArePromoted_MissesAreMisses_AndAddsReachTheStore()
    {
        using var scope = NewCache();
        var faster = new InProcessTier();
        var services = new ServiceCollection();
        services.AddWasmCodeCache(c => c.UseCache(faster, WasmCodeCacheLocality.Process).UseCache(scope.Cache, Locality));
        using var provider = services.BuildServiceProvider();
        var engine = provider.GetRequiredService<IWasmCodeCache>();

        var stored = TestPayload.Create(60, 1, 100_000);
        Put(scope.Cache, Key(60), stored);
        AssertHit(stored, Get(engine, Key(60)));
        AssertHit(stored, Get(faster, Key(60))); // promoted into the faster tier

        Assert.False(engine.TryGet(Key(61), out _));
        Assert.Null(await engine.GetAsync(Key(61)));

        var added = TestPayload.Create(62, 1, 5_000);
        await engine.AddAsync(Key(62), new MemoryStream(added));
        AssertHit(added, Get(scope.Cache, Key(62)));
        await engine.DeleteAsync(Key(62));
        Assert.Null(Get(scope.Cache, Key(62)));
    }

    /// <summary>A minimal in-process tier: the faster tier of <see cref="BehindTheEngine_HitsArePromoted_MissesAreMisses_AndAddsReachTheStore"/>.</summary>
    private sealed class InProcessTier : IWasmCodeCache
    {
        private readonly ConcurrentDictionary<CacheKey, byte[]> _entries = new();

        public bool TryGet(CacheKey key, [NotNullWhen(true)] out Stream? content)
        {
            content = _entries.TryGetValue(key, out var bytes) ? new MemoryStream(bytes, writable: false) : null;
            return content is not null;
        }

        public void Add(CacheKey key, Stream content)
        {
            using var copy = new MemoryStream(); // the caller's stream stays open: the next tier reads it too
            content.CopyTo(copy);
            _entries[key] = copy.ToArray();
        }

        public void Delete(CacheKey key) => _entries.TryRemove(key, out _);

        public ValueTask<Stream?> GetAsync(CacheKey key, CancellationToken cancellationToken = default)
            => ValueTask.FromResult(TryGet(key, out var content) ? content : null);

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
