using System.Collections.Concurrent;
using Xunit;

namespace FileCache.Specification.Tests;

// Readers that outlive deletes and overwrites, many threads on the same keys, sync/async agreement
// and cancellation.
public abstract partial class WasmCodeCacheSpecificationTests
{
    /// <summary>Delete while a reader holds the entry's stream: no deadlock, the reader keeps its bytes (wazero #977).</summary>
    [SkippableFact]
    public void Delete_WhileReaderHoldsStream_ReaderKeepsBytes()
    {
        using var scope = NewCache();
        var value = TestPayload.Create(12, 0, 1_000_000);
        Put(scope.Cache, Key(12), value);
        Assert.True(scope.Cache.TryGet(Key(12), out var reader));
        using (reader)
        {
            var head = new byte[1000];
            reader.ReadExactly(head);
            scope.Cache.Delete(Key(12));
            Assert.Null(Get(scope.Cache, Key(12)));
            using var rest = new MemoryStream();
            rest.Write(head);
            reader.CopyTo(rest);
            Assert.Equal(value, rest.ToArray());
        }
    }

    /// <summary>Overwrite while a reader holds the entry's stream: the reader keeps the old bytes, new readers get the new ones.</summary>
    [SkippableFact]
    public void Overwrite_WhileReaderHoldsStream_ReaderKeepsOldBytes()
    {
        using var scope = NewCache();
        var old = TestPayload.Create(13, 1, 1_000_000);
        var next = TestPayload.Create(13, 2, 400_000);
        Put(scope.Cache, Key(13), old);
        Assert.True(scope.Cache.TryGet(Key(13), out var reader));
        using (reader)
        {
            var head = new byte[1000];
            reader.ReadExactly(head);
            Put(scope.Cache, Key(13), next);
            using var rest = new MemoryStream();
            rest.Write(head);
            reader.CopyTo(rest);
            Assert.Equal(old, rest.ToArray());
        }

        AssertHit(next, Get(scope.Cache, Key(13)));
    }

    /// <summary>Many threads adding, getting and deleting the same keys: every hit is one complete value written for that key.</summary>
    [SkippableFact]
    public async Task ConcurrentAddGetDelete_EveryHitIsACompleteValueForItsKey()
    {
        using var scope = NewCache();
        var cache = scope.Cache;
        var problems = new ConcurrentQueue<string>();
        int hits = 0;
        var threads = Enumerable.Range(0, 8).Select(writer => Task.Run(async () =>
        {
            var random = new Random(writer);
            for (int op = 0; op < ConcurrentOperationsPerThread; op++)
            {
                int keyId = 20 + random.Next(4);
                var key = Key(keyId);
                switch (random.Next(10))
                {
                    case < 3:
                        int length = random.Next(20) == 0 ? 1_000_000 : TestPayload.MinimumLength + random.Next(64 * 1024);
                        var value = TestPayload.Create(keyId, writer, length);
                        if (random.Next(2) == 0)
                        {
                            Put(cache, key, value);
                        }
                        else
                        {
                            await cache.AddAsync(key, new MemoryStream(value));
                        }

                        break;
                    case < 4:
                        if (random.Next(2) == 0)
                        {
                            cache.Delete(key);
                        }
                        else
                        {
                            await cache.DeleteAsync(key);
                        }

                        break;
                    default:
                        var stream = random.Next(2) == 0 ? (cache.TryGet(key, out var s) ? s : null) : await cache.GetAsync(key);
                        if (stream is not null)
                        {
                            Interlocked.Increment(ref hits);
                            if (TestPayload.Check(ReadAll(stream), keyId) is { } problem)
                            {
                                problems.Enqueue(problem);
                            }
                        }

                        break;
                }
            }
        })).ToArray();

        await Task.WhenAll(threads);
        Assert.Empty(problems);
        Assert.True(hits > 0, "The concurrency test saw no hit at all, so it proved nothing.");
    }

    /// <summary>Sync and async paths see the same entries.</summary>
    [SkippableFact]
    public async Task SyncAndAsyncPaths_Agree()
    {
        using var scope = NewCache();
        var a = TestPayload.Create(30, 1, 5000);
        await scope.Cache.AddAsync(Key(30), new MemoryStream(a));
        AssertHit(a, Get(scope.Cache, Key(30)));

        var b = TestPayload.Create(31, 1, 7000);
        Put(scope.Cache, Key(31), b);
        var viaAsync = await scope.Cache.GetAsync(Key(31));
        Assert.NotNull(viaAsync);
        Assert.Equal(b, ReadAll(viaAsync));

        await scope.Cache.DeleteAsync(Key(31));
        Assert.False(scope.Cache.TryGet(Key(31), out _));
        scope.Cache.Delete(Key(30));
        Assert.Null(await scope.Cache.GetAsync(Key(30)));
    }

    /// <summary>An already-cancelled token cancels every async operation, and nothing changes.</summary>
    [SkippableFact]
    public async Task CancelledToken_IsHonoured()
    {
        using var scope = NewCache();
        Put(scope.Cache, Key(40), [1, 2, 3]);
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await scope.Cache.GetAsync(Key(40), cts.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await scope.Cache.AddAsync(Key(40), new MemoryStream([9]), cts.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await scope.Cache.DeleteAsync(Key(40), cts.Token));
        AssertHit([1, 2, 3], Get(scope.Cache, Key(40)));
    }

    /// <summary>Cancellation in the middle of an AddAsync leaves the previous value.</summary>
    [SkippableFact]
    public async Task CancellationMidAdd_LeavesPreviousValue()
    {
        using var scope = NewCache();
        var old = TestPayload.Create(41, 1, 3000);
        Put(scope.Cache, Key(41), old);
        using var cts = new CancellationTokenSource();
        var next = TestPayload.Create(41, 2, 1_000_000);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            async () => await scope.Cache.AddAsync(Key(41), TestStreams.CancellingAfterFirstRead(next, cts), cts.Token));
        AssertHit(old, Get(scope.Cache, Key(41)));
    }
}
