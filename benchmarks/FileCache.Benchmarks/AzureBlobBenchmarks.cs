using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using BenchmarkDotNet.Attributes;
using FileCache.AzureBlob;
using FileCache.Disk;
using FileCache.Tiering;

namespace FileCache.Benchmarks;

/// <summary>
/// A 29 MiB entry fetched from Azurite (loopback, in memory) into the disk tier and verified, against a
/// plain <c>DownloadToAsync</c> of the same blob into a file; and a lookup that misses the disk tier
/// while the store is down and its circuit open, against the disk tier alone. Needs Azurite: the copy
/// the tests install (~/.cache/filecache-tests/azurite) or FILECACHE_AZURITE.
/// </summary>
[MemoryDiagnoser]
public class AzureBlobBenchmarks
{
    private const int EntrySize = 29 << 20;
    private Process? _azurite;
    private string _dir = null!;
    private BlobClient _body = null!;
    private DiskCodeCache _disk = null!;
    private DiskCodeCache _diskNoFlush = null!;
    private TieredCodeCache _tiers = null!;
    private TieredCodeCache _tiersNoFlush = null!;
    private DiskCodeCache _diskAlone = null!;
    private TieredCodeCache _outage = null!;
    private AzureBlobCodeCache _blob = null!;
    private AzureBlobCodeCache _oneRange = null!;
    private CacheKey _key;

    [GlobalSetup]
    public void Setup()
    {
        int port = FreePort();
        _azurite = Process.Start(new ProcessStartInfo("node", [AzuriteScript(), "--blobHost", "127.0.0.1", "--blobPort", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry", "--silent"]) { RedirectStandardOutput = true })!;
        WaitForPort(port);
        var clientOptions = new BlobClientOptions();
        clientOptions.TransferValidation.Upload.ChecksumAlgorithm = StorageChecksumAlgorithm.None;
        clientOptions.TransferValidation.Download.ChecksumAlgorithm = StorageChecksumAlgorithm.None;
        var container = new BlobContainerClient($"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;", "bench", clientOptions);
        container.CreateIfNotExists();

        var payload = new byte[EntrySize];
        new Random(29).NextBytes(payload);
        _key = CacheKey.Compute(payload);
        var options = new AzureBlobCodeCacheOptions { Container = container, AuthenticationKey = new byte[32], ReadOnly = false };
        var blob = _blob = new AzureBlobCodeCache(options);
        _oneRange = new AzureBlobCodeCache(new AzureBlobCodeCacheOptions { Container = container, AuthenticationKey = new byte[32], RangeSize = 32 << 20, MaxConcurrency = 1 });
        blob.Add(_key, new MemoryStream(payload));
        _body = container.GetBlobClient(container.GetBlobs(BlobTraits.None, BlobStates.None, "body/", CancellationToken.None).Single().Name);

        _dir = Path.Join(Path.GetTempPath(), "filecache-bench-blob-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        _disk = new DiskCodeCache(new DiskCodeCacheOptions { Directory = Path.Join(_dir, "disk"), MaxSize = null });
        _diskNoFlush = new DiskCodeCache(new DiskCodeCacheOptions { Directory = Path.Join(_dir, "disk-noflush"), MaxSize = null, Durability = DiskDurability.None });
        _tiers = new TieredCodeCache([_disk, blob]);
        _tiersNoFlush = new TieredCodeCache([_diskNoFlush, blob]);

        // The store down (nothing listens on port 9) and its circuit open, behind an empty disk tier.
        var down = new AzureBlobCodeCache(new AzureBlobCodeCacheOptions
        {
            Container = new BlobContainerClient(new Uri("http://127.0.0.1:9/devstoreaccount1/none"), clientOptions),
            AuthenticationKey = new byte[32],
            Timeout = TimeSpan.FromSeconds(2),
            BreakDuration = TimeSpan.FromHours(1),
        });
        _diskAlone = new DiskCodeCache(new DiskCodeCacheOptions { Directory = Path.Join(_dir, "empty"), MaxSize = null });
        _outage = new TieredCodeCache([_diskAlone, down]);
        for (int i = 0; i < 4; i++)
        {
            _ = _outage.GetEntryAsync(_key, CacheLookupScope.All).AsTask().GetAwaiter().GetResult();
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _azurite?.Kill(entireProcessTree: true);
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    [Benchmark(Baseline = true)]
    public async Task<long> Plain_DownloadToAsync()
    {
        string path = Path.Join(_dir, "plain");
        await _body.DownloadToAsync(path);
        long length = new FileInfo(path).Length;
        File.Delete(path);
        return length;
    }

    /// <summary>Record, ranges verified into the disk tier's temp file, flushed (the default durability), committed, looked up there.</summary>
    [Benchmark]
    public Task<long> FileCache_FetchIntoDisk() => Fetch(_tiers, _disk);

    /// <summary>The same without the disk tier's fsync (DiskDurability.None), to show what the flush costs.</summary>
    [Benchmark]
    public Task<long> FileCache_FetchIntoDisk_NoFlush() => Fetch(_tiersNoFlush, _diskNoFlush);

    private async Task<long> Fetch(TieredCodeCache tiers, DiskCodeCache disk)
    {
        using var entry = await tiers.GetEntryAsync(_key, CacheLookupScope.All) ?? throw new InvalidOperationException("miss");
        long length = entry.File?.PayloadLength ?? throw new InvalidOperationException("not a file hit");
        await disk.DeleteAsync(_key);
        return length;
    }

    /// <summary>The blob tier alone: record, then every range verified, drained (no disk).</summary>
    [Benchmark]
    public async Task<long> FileCache_FetchAndVerifyOnly()
    {
        await using var body = await _blob.GetAsync(_key) ?? throw new InvalidOperationException("miss");
        await body.CopyToAsync(Stream.Null);
        return body.Length;
    }

    /// <summary>The same with one range for the whole body (RangeSize 32 MiB): what splitting into ranges costs on Azurite.</summary>
    [Benchmark]
    public async Task<long> FileCache_FetchAndVerifyOnly_OneRange()
    {
        await using var body = await _oneRange.GetAsync(_key) ?? throw new InvalidOperationException("miss");
        await body.CopyToAsync(Stream.Null);
        return body.Length;
    }

    /// <summary>A miss of the disk tier alone.</summary>
    [Benchmark]
    public async Task<bool> Miss_DiskAlone() => await _diskAlone.GetEntryAsync(_key, CacheLookupScope.All) is null;

    /// <summary>The same miss with the store behind it down and its circuit open.</summary>
    [Benchmark]
    public async Task<bool> Miss_DiskThenStoreDown() => await _outage.GetEntryAsync(_key, CacheLookupScope.All) is null;

    private static string AzuriteScript()
    {
        string? configured = Environment.GetEnvironmentVariable("FILECACHE_AZURITE");
        string script = configured is { Length: > 0 } ? configured
            : Path.Join(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "filecache-tests", "azurite", "node_modules", "azurite", "dist", "src", "blob", "main.js");
        return File.Exists(script) ? script : throw new FileNotFoundException("Azurite is not installed: run the AzureBlob tests once (they install it with npm) or set FILECACHE_AZURITE.", script);
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static void WaitForPort(int port)
    {
        var until = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                client.Connect(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < until)
            {
                Thread.Sleep(100);
            }
        }
    }
}
