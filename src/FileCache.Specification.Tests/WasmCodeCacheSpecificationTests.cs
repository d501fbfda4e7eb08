using Xunit;
using System.Collections.Concurrent;

namespace FileCache.Specification.Tests;

/// <summary>
/// The conformance suite of the <see cref="IWasmCodeCache"/> contract. A backend's test class
/// inherits it and implements <see cref="CreateCache"/>; every test then runs against that backend.
/// </summary>
/// <remarks>
/// The first six tests are wazero's own filecache tests; the rest cover what wazero's users
/// later needed: empty and large payloads, readers that outlive deletes and overwrites, many
/// threads on the same keys, sync/async agreement and cancellation.
/// </remarks>
public abstract partial class WasmCodeCacheSpecificationTests
{
    /// <summary>Creates a new, empty cache. Disposable caches are disposed after each test. A backend
    /// whose store is not available may call <c>Skip.If</c> here: the test is then reported as skipped
    /// with that reason, never as passed.</summary>
    /// <returns>The cache under test.</returns>
    protected abstract IWasmCodeCache CreateCache();

    /// <summary>The size of the large-payload test's entry (32 MiB by default).</summary>
    protected virtual int LargePayloadSize => 32 * 1024 * 1024;

    /// <summary>How many operations each thread of the concurrency test runs.</summary>
    protected virtual int ConcurrentOperationsPerThread => 300;

    /// <summary>The key that test number <paramref name="id"/> uses.</summary>
    /// <param name="id">A small number.</param>
    /// <returns>A key whose first byte is <paramref name="id"/>.</returns>
    protected static CacheKey Key(int id)
    {
        var bytes = new byte[CacheKey.Size];
        bytes[0] = (byte)id;
        bytes[31] = 0x5A;
        return new CacheKey(bytes);
    }

    /// <summary>Reads a hit to its end and disposes it.</summary>
    /// <param name="content">The stream a hit returned.</param>
    /// <returns>Its bytes.</returns>
    protected static byte[] ReadAll(Stream content)
    {
        using (content)
        {
            using var copy = new MemoryStream();
            content.CopyTo(copy);
            return copy.ToArray();
        }
    }

    /// <summary>Looks a key up and returns the bytes of a hit, or null on a miss.</summary>
    /// <param name="cache">The cache.</param>
    /// <param name="key">The key.</param>
    /// <returns>The entry's bytes or null.</returns>
    protected static byte[]? Get(IWasmCodeCache cache, CacheKey key) => cache.GetBytes(key);

    /// <summary>Adds <paramref name="bytes"/> under <paramref name="key"/>.</summary>
    /// <param name="cache">The cache.</param>
    /// <param name="key">The key.</param>
    /// <param name="bytes">The content.</param>
    protected static void Put(IWasmCodeCache cache, CacheKey key, byte[] bytes)
    {
        using var source = new MemoryStream(bytes);
        cache.Add(key, source);
    }

    /// <summary>Asserts a hit (not a miss) whose bytes equal <paramref name="expected"/>.</summary>
    /// <param name="expected">The expected bytes.</param>
    /// <param name="actual">What <see cref="Get"/> returned.</param>
    protected static void AssertHit(byte[] expected, byte[]? actual)
    {
        Assert.True(actual is not null, "Expected a hit but the cache reported a miss.");
        Assert.True(expected.AsSpan().SequenceEqual(actual), $"The hit's {actual.Length} bytes differ from the {expected.Length} bytes stored.");
    }

    private Scope NewCache() => new(CreateCache());

    /// <summary>wazero TestFileCache_Add/not exist.</summary>
    [SkippableFact]
    public void Add_NewKey_StoresExactBytes()
    {
        using var scope = NewCache();
        byte[] content = [1, 2, 3, 4, 5];
        Put(scope.Cache, Key(1), content);
        AssertHit(content, Get(scope.Cache, Key(1)));
    }

    /// <summary>wazero TestFileCache_Add/already exists.</summary>
    [SkippableFact]
    public void Add_ExistingKey_Overwrites()
    {
        using var scope = NewCache();
        Put(scope.Cache, Key(1), [1, 2, 3]);
        Put(scope.Cache, Key(1), [1, 2, 3]);
        AssertHit([1, 2, 3], Get(scope.Cache, Key(1)));
        Put(scope.Cache, Key(1), [9, 8]);
        AssertHit([9, 8], Get(scope.Cache, Key(1)));
    }

    /// <summary>wazero TestFileCache_Get/exist: exact bytes, and Close returns no error.</summary>
    [SkippableFact]
    public void TryGet_Hit_ReturnsExactBytesAndDisposesCleanly()
    {
        using var scope = NewCache();
        Put(scope.Cache, Key(2), [1, 2, 3, 4, 5]);
        Assert.True(scope.Cache.TryGet(Key(2), out var content));
        Assert.NotNull(content);
        Assert.True(content.CanRead);
        using var copy = new MemoryStream();
        content.CopyTo(copy);
        Assert.Equal([1, 2, 3, 4, 5], copy.ToArray());
        content.Dispose();
        content.Dispose(); // disposing twice is harmless
    }

    /// <summary>wazero TestFileCache_Get/not exist: a miss is not an error.</summary>
    [SkippableFact]
    public async Task Get_Miss_IsNotAnError()
    {
        using var scope = NewCache();
        Assert.False(scope.Cache.TryGet(Key(0xf), out var content));
        Assert.Null(content);
        Assert.Null(await scope.Cache.GetAsync(Key(0xf)));
    }

    /// <summary>wazero TestFileCache_Delete/non-exist: idempotent.</summary>
    [SkippableFact]
    public async Task Delete_MissingKey_IsNotAnError()
    {
        using var scope = NewCache();
        scope.Cache.Delete(Key(0));
        await scope.Cache.DeleteAsync(Key(0));
        scope.Cache.Delete(Key(0));
        Assert.Null(Get(scope.Cache, Key(0)));
    }

    /// <summary>wazero TestFileCache_Delete/exist.</summary>
    [SkippableFact]
    public void Delete_ExistingKey_ThenMiss()
    {
        using var scope = NewCache();
        Put(scope.Cache, Key(3), [7]);
        Put(scope.Cache, Key(4), [8]);
        scope.Cache.Delete(Key(3));
        Assert.Null(Get(scope.Cache, Key(3)));
        AssertHit([8], Get(scope.Cache, Key(4)));
    }

    /// <summary>The all-zero key (default) is a valid key.</summary>
    [SkippableFact]
    public void DefaultKey_IsUsable()
    {
        using var scope = NewCache();
        Put(scope.Cache, default, [42]);
        AssertHit([42], Get(scope.Cache, default));
    }

    /// <summary>An empty payload is stored and returned as empty, not as a miss.</summary>
    [SkippableFact]
    public async Task EmptyPayload_IsAHit()
    {
        using var scope = NewCache();
        Put(scope.Cache, Key(5), []);
        var hit = Get(scope.Cache, Key(5));
        Assert.NotNull(hit); // a miss would also be "no bytes"
        Assert.Empty(hit);
        var stream = await scope.Cache.GetAsync(Key(5));
        Assert.NotNull(stream);
        Assert.Empty(ReadAll(stream));
    }

    /// <summary>Tens of megabytes round-trip exactly.</summary>
    [SkippableFact]
    public async Task LargePayload_RoundTrips()
    {
        using var scope = NewCache();
        var big = TestPayload.Create(6, 0, LargePayloadSize);
        Put(scope.Cache, Key(6), big);
        Assert.True(big.AsSpan().SequenceEqual(Get(scope.Cache, Key(6))));
        var viaAsync = await scope.Cache.GetAsync(Key(6));
        Assert.NotNull(viaAsync);
        Assert.Null(TestPayload.Check(ReadAll(viaAsync), 6));
    }

    /// <summary>Overwrites with larger and smaller values leave exactly the last value.</summary>
    [SkippableFact]
    public void Overwrite_WithDifferentSizes_LeavesLastValue()
    {
        using var scope = NewCache();
        foreach (int size in new[] { 100_000, 64, 1_000_000, 0, 5000 })
        {
            var value = size == 0 ? [] : TestPayload.Create(7, size, Math.Max(size, TestPayload.MinimumLength));
            Put(scope.Cache, Key(7), value);
            AssertHit(value, Get(scope.Cache, Key(7)));
        }
    }

    /// <summary>Add stores from the content's current position, and the caller's later changes do not leak in.</summary>
    [SkippableFact]
    public void Add_CopiesFromCurrentPosition_AndIsImmuneToLaterMutation()
    {
        using var scope = NewCache();
        byte[] source = [0, 0, 1, 2, 3];
        using (var stream = new MemoryStream(source))
        {
            stream.Position = 2;
            scope.Cache.Add(Key(8), stream);
        }

        source[2] = 99;
        AssertHit([1, 2, 3], Get(scope.Cache, Key(8)));
    }

    /// <summary>Forward-only content streams work.</summary>
    [SkippableFact]
    public async Task Add_NonSeekableContent_Works()
    {
        using var scope = NewCache();
        var value = TestPayload.Create(9, 1, 300_000);
        scope.Cache.Add(Key(9), TestStreams.NonSeekable(value));
        AssertHit(value, Get(scope.Cache, Key(9)));
        var second = TestPayload.Create(9, 2, 200_000);
        await scope.Cache.AddAsync(Key(9), TestStreams.NonSeekable(second));
        AssertHit(second, Get(scope.Cache, Key(9)));
    }

    /// <summary>A content stream that fails midway leaves the previous value, never a partial one.</summary>
    [SkippableFact]
    public async Task Add_ContentThatThrows_LeavesPreviousValue()
    {
        using var scope = NewCache();
        var old = TestPayload.Create(10, 1, 10_000);
        Put(scope.Cache, Key(10), old);
        var next = TestPayload.Create(10, 2, 200_000);
        Assert.ThrowsAny<IOException>(() => scope.Cache.Add(Key(10), TestStreams.FailingAfter(next, 100_000)));
        AssertHit(old, Get(scope.Cache, Key(10)));
        await Assert.ThrowsAnyAsync<IOException>(async () => await scope.Cache.AddAsync(Key(10), TestStreams.FailingAfter(next, 100_000)));
        AssertHit(old, Get(scope.Cache, Key(10)));
        Assert.ThrowsAny<IOException>(() => scope.Cache.Add(Key(11), TestStreams.FailingAfter(next, 1000)));
        Assert.Null(Get(scope.Cache, Key(11)));
    }

    /// <summary>Null content is rejected with <see cref="ArgumentNullException"/>.</summary>
    [SkippableFact]
    public async Task Add_NullContent_Throws()
    {
        using var scope = NewCache();
        Assert.Throws<ArgumentNullException>(() => scope.Cache.Add(Key(1), null!));
        await Assert.ThrowsAsync<ArgumentNullException>(async () => await scope.Cache.AddAsync(Key(1), null!));
    }

    private readonly struct Scope(IWasmCodeCache cache) : IDisposable
    {
        public IWasmCodeCache Cache { get; } = cache;

        public void Dispose()
        {
            switch (Cache)
            {
                case IDisposable disposable:
                    disposable.Dispose();
                    break;
                case IAsyncDisposable asyncDisposable:
                    asyncDisposable.DisposeAsync().AsTask().GetAwaiter().GetResult();
                    break;
            }
        }
    }
}
