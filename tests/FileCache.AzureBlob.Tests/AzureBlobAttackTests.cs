using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Sas;
using FileCache.Diagnostics;
using FileCache.Specification.Tests;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace FileCache.AzureBlob.Tests;

/// <summary>
/// A store that lies, as an attacker with write access to the container (but not the key) or a broken
/// transport would make it: every case is a counted miss, no wrong byte is ever returned, and the
/// shared objects are left in place for an operator.
/// </summary>
public sealed class AzureBlobAttackTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly CacheKey KeyA = TestKeys.Key(1);
    private static readonly CacheKey KeyB = TestKeys.Key(2);

    private static byte[] Payload(int id, int length = (3 << 20) + 12345) => TestPayload.Create(id, 1, length);

    private static (AzureBlobCodeCache Cache, BlobContainerClient Container, MetricCollector<long> Corrupt, ServiceProvider Meters) NewCache()
    {
        var meters = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var factory = meters.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        var container = Azurite.Shared.NewContainer();
        var corrupt = new MetricCollector<long>(factory, WasmCodeCacheMetrics.MeterName, "filecache.corrupt_entries");
        return (new AzureBlobCodeCache(Blobs.Options(container), factory), container, corrupt, meters);
    }

    internal static byte[] ReadAll(Stream stream)
    {
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    private static string Reasons(MetricCollector<long> corrupt) => string.Join(",", corrupt.GetMeasurementSnapshot().Select(m => m.Tags[WasmCodeCacheMetrics.ReasonTag]));

    private static BlobClient OnlyBody(BlobContainerClient container) => container.GetBlobClient(container.GetBlobs(BlobTraits.None, BlobStates.None, "body/", CancellationToken.None).Single().Name);

    [SkippableFact]
    public void ASameLengthBitFlipInTheBody_IsAMiss_AndTheBodyIsLeftInPlace()
    {
        var (cache, container, corrupt, meters) = NewCache();
        using var metersScope = meters;
        cache.Add(KeyA, new MemoryStream(Payload(1)));
        var body = OnlyBody(container);
        var bytes = body.DownloadContent().Value.Content.ToArray();
        bytes[(2 << 20) + 7] ^= 0x40; // one bit in the third chunk
        body.Upload(new BinaryData(bytes), overwrite: true);

        Assert.False(cache.TryGet(KeyA, out _));
        Assert.Equal("ChecksumMismatch", Reasons(corrupt));
        Assert.True(body.Exists().Value); // a miss, never a delete of the shared object
        Assert.True(container.GetBlobClient(cache.IndexName(KeyA)).Exists().Value);
    }

    [SkippableFact]
    public async Task ATruncatedOrExtendedBody_IsAMiss()
    {
        var (cache, container, corrupt, meters) = NewCache();
        using var metersScope = meters;
        var payload = Payload(2);
        cache.Add(KeyA, new MemoryStream(payload));
        var body = OnlyBody(container);

        await body.UploadAsync(new BinaryData(payload[..^1]), overwrite: true);
        Assert.Null(await cache.GetAsync(KeyA));

        // Framing bytes stored as content (a CRC64 structured message's header, left by an endpoint that does not speak them).
        await body.UploadAsync(new BinaryData([.. new byte[13], .. payload, .. new byte[26]]), overwrite: true);
        Assert.Null(await cache.GetAsync(KeyA));
        Assert.Equal("Truncated,ChecksumMismatch", Reasons(corrupt));

        // Bytes after the body's length are never read: what is returned is exactly the verified payload.
        await body.UploadAsync(new BinaryData([.. payload, .. new byte[39]]), overwrite: true);
        using var hit = await cache.GetAsync(KeyA);
        Assert.Equal(payload, ReadAll(hit!));
    }

    [SkippableFact]
    public void AnotherKeysRecordReplayedUnderThisKey_IsAMiss()
    {
        var (cache, container, corrupt, meters) = NewCache();
        using var metersScope = meters;
        cache.Add(KeyA, new MemoryStream(Payload(3)));
        var record = container.GetBlobClient(cache.IndexName(KeyA)).DownloadContent().Value.Content;
        container.GetBlobClient(cache.IndexName(KeyB)).Upload(record); // a valid record, for another key

        Assert.False(cache.TryGet(KeyB, out _));
        Assert.Equal("BadTag", Reasons(corrupt));
        Assert.True(cache.TryGet(KeyA, out var original)); // the record is fine where it belongs
        original.Dispose();
    }

    [SkippableFact]
    public void ABodySwappedUnderTheRightNameAndARecordForgedWithoutTheKey_AreNeverServed()
    {
        var (victim, container, corrupt, meters) = NewCache();
        using var metersScope = meters;
        victim.Add(KeyA, new MemoryStream(Payload(4)));

        // An attacker who can write the container but holds another key: its record and body look right.
        var attacker = new AzureBlobCodeCache(Blobs.Options(container, key: Enumerable.Repeat((byte)7, 32).ToArray()));
        container.GetBlobClient(victim.IndexName(KeyB)).DeleteIfExists();
        attacker.Add(KeyB, new MemoryStream(Payload(5)));
        Assert.False(victim.TryGet(KeyB, out _));

        // Swap the victim's body for the attacker's, same name: the chunk digests disagree.
        var bodies = container.GetBlobs(BlobTraits.None, BlobStates.None, "body/", CancellationToken.None).Select(b => b.Name).ToList();
        var theirs = container.GetBlobClient(bodies.Single(n => n != OnlyVictimBody(victim, container))).DownloadContent().Value.Content;
        container.GetBlobClient(OnlyVictimBody(victim, container)).Upload(theirs, overwrite: true);
        Assert.False(victim.TryGet(KeyA, out _));
        Assert.Equal("BadTag,ChecksumMismatch", Reasons(corrupt));
    }

    private static string OnlyVictimBody(AzureBlobCodeCache victim, BlobContainerClient container)
    {
        var record = container.GetBlobClient(victim.IndexName(KeyA)).DownloadContent().Value.Content.ToArray();
        return "body/" + IndexRecord.Verify(KeyA, record, Blobs.Secret, long.MaxValue, out _)!.BodyName;
    }

    [SkippableFact]
    public async Task SixtyFourRacingWriters_StoreOneBodyAndOneRecord_AndAllReadTheSameBytes()
    {
        var container = Azurite.Shared.NewContainer();
        var payload = Payload(6, 2 << 20);
        var writers = Enumerable.Range(0, 64).Select(_ => new AzureBlobCodeCache(Blobs.Options(container))).ToArray();
        await Task.WhenAll(writers.Select(w => w.AddAsync(KeyA, new MemoryStream(payload)).AsTask()));

        Assert.Single(container.GetBlobs(BlobTraits.None, BlobStates.None, "body/", CancellationToken.None));
        Assert.Single(container.GetBlobs(BlobTraits.None, BlobStates.None, "index/", CancellationToken.None));
        var reads = await Task.WhenAll(writers.Select(async w => await w.GetAsync(KeyA)));
        Assert.All(reads, r =>
        {
            Assert.NotNull(r);
            using (r)
            {
                Assert.Equal(payload, ReadAll(r!));
            }
        });
    }

    [SkippableFact]
    public void AReaderIdentity_CannotWrite_AndKeepsReading()
    {
        var container = Azurite.Shared.NewContainer();
        var writer = new AzureBlobCodeCache(Blobs.Options(container));
        writer.Add(KeyA, new MemoryStream(Payload(7)));

        // A SAS that may read and list only: what the README tells fleets to give hosts that do not compile.
        var sas = container.GenerateSasUri(BlobContainerSasPermissions.Read | BlobContainerSasPermissions.List, DateTimeOffset.UtcNow.AddHours(1));
        var readerOptions = Blobs.Options(new BlobContainerClient(sas, Options()));
        var reader = new AzureBlobCodeCache(readerOptions);
        reader.Add(KeyB, new MemoryStream(Payload(8))); // 403: writes turn off, nothing thrown
        Assert.True(reader.IsReadOnly);
        Assert.False(container.GetBlobClient(reader.IndexName(KeyB)).Exists().Value);
        Assert.True(reader.TryGet(KeyA, out var hit));
        hit.Dispose();
    }

    /// <summary>
    /// A writer whose client sends CRC64 structured messages to an endpoint that stores their framing as
    /// content (Azurite does) takes the body's name with wrong bytes: it writes no record and turns writes
    /// off, and the next writer of the same code finds the body does not match its name and replaces it,
    /// so the fleet is not left with a record whose body can never verify.
    /// </summary>
    [SkippableFact]
    public async Task AWriterWhoseStoreAltersContent_WritesNoRecord_AndTheNextWriterRepairsTheBody()
    {
        var container = Azurite.Shared.NewContainer();
        var crc = new BlobClientOptions();
        crc.TransferValidation.Upload.ChecksumAlgorithm = StorageChecksumAlgorithm.StorageCrc64;
        crc.Retry.MaxRetries = 0;
        var writer = new AzureBlobCodeCache(Blobs.Options(new BlobContainerClient(Azurite.Shared.ConnectionString, container.Name, crc)));
        var payload = Payload(11);
        await writer.AddAsync(KeyA, new MemoryStream(payload));
        Assert.True(writer.IsReadOnly);
        Assert.False(container.GetBlobClient(writer.IndexName(KeyA)).Exists().Value);
        var body = OnlyBody(container);
        Assert.NotEqual(payload.Length, body.GetProperties().Value.ContentLength); // the framing was stored: the name is taken

        var good = new AzureBlobCodeCache(Blobs.Options(container));
        await good.AddAsync(KeyA, new MemoryStream(payload));
        using var hit = await new AzureBlobCodeCache(Blobs.Options(container)).GetAsync(KeyA);
        Assert.NotNull(hit);
        Assert.Equal(payload, ReadAll(hit));
    }

    private static BlobClientOptions Options()
    {
        var options = new BlobClientOptions();
        options.TransferValidation.Upload.ChecksumAlgorithm = StorageChecksumAlgorithm.None;
        options.TransferValidation.Download.ChecksumAlgorithm = StorageChecksumAlgorithm.None;
        return options;
    }

    [SkippableFact]
    public async Task AStoreThatIsDown_IsAMiss_AndTheCircuitOpens()
    {
        _ = Azurite.Shared; // same skip rule as the rest
        var nowhere = new BlobContainerClient(new Uri("http://127.0.0.1:9/devstoreaccount1/none"), Options());
        var options = Blobs.Options(nowhere);
        options.Timeout = TimeSpan.FromSeconds(2); // each failing call is bounded by the tier, whatever the client's retries
        options.BreakDuration = TimeSpan.FromMinutes(5);
        var cache = new AzureBlobCodeCache(options);
        for (int i = 0; i < 4; i++)
        {
            Assert.Null(await cache.GetAsync(KeyA));
            await cache.AddAsync(KeyA, new MemoryStream(Payload(9, 100))); // fails open
        }

        var watch = System.Diagnostics.Stopwatch.StartNew();
        Assert.Null(await cache.GetAsync(KeyA)); // skipped: the circuit is open
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(1), $"an open circuit still took {watch.Elapsed}");
    }

    /// <summary>
    /// A transport that damages what it carries: same-length bit flips, truncation and 500s on body
    /// ranges and index records, a few hundred in all; every lookup is a verified hit or a miss.
    /// </summary>
    [SkippableFact]
    public async Task AFaultyTransport_NeverDeliversAWrongByte()
    {
        var container = Azurite.Shared.NewContainer();
        var payload = Payload(10, (2 << 20) + 99);
        new AzureBlobCodeCache(Blobs.Options(container)).Add(KeyA, new MemoryStream(payload));

        var faults = new FaultInjection(seed: 42);
        var options = Options();
        options.AddPolicy(faults, HttpPipelinePosition.PerRetry);
        options.Retry.MaxRetries = 0;
        // A reader's SAS: the faulty reader can damage nothing but what it reads.
        var faulty = Blobs.Options(new BlobContainerClient(container.GenerateSasUri(BlobContainerSasPermissions.Read, DateTimeOffset.UtcNow.AddHours(1)), options));
        faulty.BreakDuration = TimeSpan.FromSeconds(0.5); // Polly's shortest
        var cache = new AzureBlobCodeCache(faulty);
        int hits = 0, misses = 0;
        // A few hundred faults in every run; the long run sets FILECACHE_BLOB_FAULTS=10000 (docs/security.md).
        int wanted = int.TryParse(Environment.GetEnvironmentVariable("FILECACHE_BLOB_FAULTS"), out int configured) ? configured : 300;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < wanted * 10 && faults.Injected < wanted; i++)
        {
            var found = await cache.GetAsync(KeyA);
            if (found is null)
            {
                misses++;
                continue;
            }

            using (found)
            {
                Assert.Equal(payload, ReadAll(found)); // 0 bad bytes
            }

            hits++;
        }

        output.WriteLine($"{faults.Injected} faults injected ({faults.Describe()}) in {hits + misses} lookups over {watch.Elapsed.TotalSeconds:F0} s: {hits} verified hits, {misses} misses, 0 wrong bytes");
        Assert.True(faults.Injected >= wanted, $"only {faults.Injected} faults injected");
        Assert.True(hits > 0 && misses > 0, $"{hits} hits, {misses} misses: the faults should cost some lookups, not all");
    }

    private sealed class FaultInjection(int seed) : HttpPipelinePolicy
    {
        private readonly Random _random = new(seed);
        private readonly int[] _kinds = new int[3];
        private int _injected;

        public int Injected => Volatile.Read(ref _injected);

        public string Describe() => $"{_kinds[0]} bit flips, {_kinds[1]} truncations, {_kinds[2]} server errors";

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
            if (message.Request.Method != RequestMethod.Get || message.Response.Status != 200 && message.Response.Status != 206 || message.Response.ContentStream is null)
            {
                return;
            }

            int roll;
            lock (_random)
            {
                roll = _random.Next(20);
            }

            if (roll >= 7)
            {
                return; // most responses pass untouched, so some lookups see no fault at all
            }

            using var copy = new MemoryStream();
            message.Response.ContentStream.CopyTo(copy);
            var bytes = copy.ToArray();
            Interlocked.Increment(ref _injected);
            switch (roll)
            {
                case 0 or 1 or 2 or 3 when bytes.Length > 0:
                    Interlocked.Increment(ref _kinds[0]);
                    bytes[bytes.Length / 2] ^= 0x01; // same length, one bit
                    break;
                case 4 or 5 when bytes.Length > 1:
                    Interlocked.Increment(ref _kinds[1]);
                    bytes = bytes[..(bytes.Length - 1)]; // truncated
                    break;
                default:
                    Interlocked.Increment(ref _kinds[2]);
                    throw new RequestFailedException(500, "injected server error");
            }

            message.Response.ContentStream = new MemoryStream(bytes);
        }
    }
}
