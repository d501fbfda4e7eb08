using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using FileCache.Disk;
using FileCache.Specification.Tests;
using FileCache.Tiering;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace FileCache.AzureBlob.Tests;

/// <summary>
/// A fleet hit behind a disk tier is streamed into the disk tier's temp file, range by range, each
/// range verified before it is written; the entry is committed only when the whole body verified.
/// </summary>
public sealed class StreamedFillTests : IDisposable
{
    private static readonly CacheKey Key = TestKeys.Key(31);
    private readonly string _dir = Path.Join(Path.GetTempPath(), "filecache-blob-fill-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private static byte[] Body(int length = 40 << 20) => TestPayload.Create(31, 1, length);

    private DiskCodeCache Disk() => new(new DiskCodeCacheOptions { Directory = _dir, MaxSize = null });

    private string[] DiskFiles() => Directory.Exists(_dir) ? Directory.GetFiles(_dir, "*", SearchOption.AllDirectories) : [];

    [SkippableFact]
    public async Task AFleetHit_IsWrittenIntoTheDiskTier_WithMemoryBoundedByTheWindow_AndMappedFromThere()
    {
        // The defaults: one GET, read 1 MiB at a time, at most 4 MiB ahead of the disk tier's writes.
        var container = Azurite.Shared.NewContainer();
        var options = Blobs.Options(container);
        var payload = Body();
        new AzureBlobCodeCache(options).Add(Key, new MemoryStream(payload));

        using var disk = Disk();
        using var tiers = new TieredCodeCache([disk, new AzureBlobCodeCache(options)]);
        await WarmUpAsync(tiers); // the pool's buffers and the SDK's first-call costs, outside the measurement

        long before = GC.GetTotalAllocatedBytes(precise: true);
        var entry = await tiers.GetEntryAsync(Key, CacheLookupScope.All);
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        Assert.NotNull(entry);
        Assert.NotNull(entry.File); // the disk tier's verified file, for a loader to map
        Assert.Equal(payload, entry.ReadBytes().ToArray());
        entry.Dispose();
        // The old read held the whole 40 MiB body (and a copy per range); the stream holds a window.
        Assert.True(allocated < 16 << 20, $"{allocated / (1 << 20)} MiB allocated to fill a 40 MiB entry; the goal is 16 MiB at most");
        Assert.True(disk.TryGet(Key, out var local));
        Assert.Equal(payload, AzureBlobAttackTests.ReadAll(local));
        local.Dispose();
    }

    [SkippableFact]
    public async Task AWarmHost_SendsTheStoreNoRequest()
    {
        var container = Azurite.Shared.NewContainer();
        var payload = Body(3 << 20);
        new AzureBlobCodeCache(Blobs.Options(container)).Add(Key, new MemoryStream(payload));
        using var meters = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var factory = meters.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        using var requests = new MetricCollector<long>(factory, Diagnostics.WasmCodeCacheMetrics.MeterName, "filecache.azureblob.requests");

        using var disk = Disk();
        using var tiers = new TieredCodeCache([disk, new AzureBlobCodeCache(Blobs.Options(container), factory)]);
        (await tiers.GetEntryAsync(Key, CacheLookupScope.All))!.Dispose(); // the cold start: the fleet's copy lands on disk
        Assert.NotEmpty(requests.GetMeasurementSnapshot());
        requests.Clear();
        for (int i = 0; i < 20; i++)
        {
            using var entry = i % 2 == 0 ? await tiers.GetEntryAsync(Key, CacheLookupScope.All) : tiers.TryGetEntry(Key, CacheLookupScope.All, out var e) ? e : null;
            Assert.NotNull(entry?.File);
            Assert.True(tiers.TryGet(Key, out var stream));
            stream.Dispose();
        }

        Assert.Empty(requests.GetMeasurementSnapshot()); // 0 GETs, 0 PUTs: a warm host costs the store nothing
    }

    private static async Task WarmUpAsync(TieredCodeCache tiers)
    {
        var other = TestKeys.Key(32);
        await tiers.AddAsync(other, new MemoryStream(Body(20 << 20)));
        await tiers.Tiers[0].DeleteAsync(other);
        (await tiers.GetEntryAsync(other, CacheLookupScope.All))?.Dispose();
    }

    [SkippableFact]
    public async Task ABodyThatFailsInItsLastRange_LeavesNoEntryAndNoTempFile_AndIsAMiss()
    {
        var container = Azurite.Shared.NewContainer();
        var options = Blobs.Options(container);
        var payload = Body(12 << 20);
        new AzureBlobCodeCache(options).Add(Key, new MemoryStream(payload));
        var body = container.GetBlobClient(container.GetBlobs(BlobTraits.None, BlobStates.None, "body/", CancellationToken.None).Single().Name);
        var damaged = (byte[])payload.Clone();
        damaged[^100] ^= 0x40; // past the first window (4 x 1 MiB): found after 11 MiB went to the temp file
        await body.UploadAsync(new BinaryData(damaged), overwrite: true);

        using var disk = Disk();
        using var tiers = new TieredCodeCache([disk, new AzureBlobCodeCache(options)]);
        Assert.Null(await tiers.GetEntryAsync(Key, CacheLookupScope.All));
        Assert.False(tiers.TryGetEntry(Key, CacheLookupScope.All, out _)); // the synchronous path too
        Assert.False(disk.TryGet(Key, out _));
        Assert.DoesNotContain(DiskFiles(), f => !f.EndsWith(".lock", StringComparison.Ordinal));
    }

    /// <summary>
    /// A hundred and fifty faults (bit flips, truncation, 500s) on the ranges of a body two windows long, with
    /// a disk tier in front: each lookup is the exact payload from the disk tier's file, or a miss
    /// that leaves the disk tier empty.
    /// </summary>
    [SkippableTheory]
    [InlineData(1)] // one GET, verified chunk by chunk (the default)
    [InlineData(4)] // 1 MiB ranges, four at a time
    public async Task AFaultyTransport_NeverCommitsAWrongByteToTheDiskTier(int concurrency)
    {
        var container = Azurite.Shared.NewContainer();
        var payload = Body(8 << 20);
        new AzureBlobCodeCache(Blobs.Options(container)).Add(Key, new MemoryStream(payload));

        var faults = new RangeFaults(seed: 7);
        var clientOptions = new BlobClientOptions();
        clientOptions.TransferValidation.Download.ChecksumAlgorithm = StorageChecksumAlgorithm.None;
        clientOptions.Retry.MaxRetries = 0;
        clientOptions.AddPolicy(faults, HttpPipelinePosition.PerRetry);
        var faulty = Blobs.Options(new BlobContainerClient(Azurite.Shared.ConnectionString, container.Name, clientOptions));
        faulty.BreakDuration = TimeSpan.FromSeconds(0.5);
        faulty.ReadOnly = true;
        faulty.MaxConcurrency = concurrency;

        using var disk = Disk();
        using var tiers = new TieredCodeCache([disk, new AzureBlobCodeCache(faulty)]);
        int hits = 0, misses = 0;
        for (int i = 0; i < 1500 && faults.Injected < 150; i++)
        {
            var entry = i % 2 == 0
                ? await tiers.GetEntryAsync(Key, CacheLookupScope.All)
                : tiers.TryGetEntry(Key, CacheLookupScope.All, out var e) ? e : null;
            if (entry is null)
            {
                misses++;
                Assert.False(disk.TryGet(Key, out _), "a miss left an entry in the disk tier");
                continue;
            }

            using (entry)
            {
                Assert.NotNull(entry.File);
                Assert.True(payload.AsSpan().SequenceEqual(entry.ReadBytes().Span), "a wrong byte reached the disk tier");
            }

            hits++;
            disk.Delete(Key);
        }

        Assert.True(faults.Injected >= 150, $"only {faults.Injected} faults injected");
        Assert.True(hits > 0 && misses > 0, $"{hits} hits, {misses} misses");
        Assert.DoesNotContain(DiskFiles(), f => Path.GetFileName(f).StartsWith(".tmp-", StringComparison.Ordinal));
    }

    /// <summary>Damages one body range in eight: a bit flip, a truncation or a 500 (so a third of the lookups of 8 ranges see none).</summary>
    private sealed class RangeFaults(int seed) : HttpPipelinePolicy
    {
        private readonly Random _random = new(seed);
        private int _injected;

        public int Injected => Volatile.Read(ref _injected);

        public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
        {
            ProcessNext(message, pipeline);
            Damage(message);
        }

        public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
        {
            await ProcessNextAsync(message, pipeline);
            Damage(message);
        }

        private void Damage(HttpMessage message)
        {
            if (!message.Request.Uri.Path.Contains("/body/", StringComparison.Ordinal) || message.Response.Status != 206 || message.Response.ContentStream is null)
            {
                return;
            }

            int roll;
            lock (_random)
            {
                roll = _random.Next(24);
            }

            if (roll >= 3)
            {
                return;
            }

            using var copy = new MemoryStream();
            message.Response.ContentStream.CopyTo(copy);
            var bytes = copy.ToArray();
            Interlocked.Increment(ref _injected);
            switch (roll)
            {
                case 0:
                    bytes[bytes.Length / 3] ^= 0x08;
                    break;
                case 1:
                    bytes = bytes[..(bytes.Length / 2)];
                    break;
                default:
                    throw new Azure.RequestFailedException(500, "injected server error");
            }

            message.Response.ContentStream = new MemoryStream(bytes);
        }
    }
}
