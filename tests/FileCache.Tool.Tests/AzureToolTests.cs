using System.Text.Json;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using FileCache.AzureBlob;
using FileCache.AzureBlob.Tests;
using FileCache.Disk;

namespace FileCache.Tool.Tests;

/// <summary><c>filecache --azure</c> stats, verify and export against a real Azurite.</summary>
public sealed class AzureToolTests : IDisposable
{
    private static readonly byte[] Secret = Enumerable.Range(50, 32).Select(i => (byte)i).ToArray();
    private readonly string _root = Path.Join(Path.GetTempPath(), "filecache-azure-tool-" + Guid.NewGuid().ToString("N"));

    public AzureToolTests() => Directory.CreateDirectory(_root);

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = Cli.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static byte[] Payload(int seed, int length)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static CacheKey Key(int i) => CacheKey.Compute([(byte)i, 7]);

    /// <summary>A container as a fleet leaves it: two generations of entries, written by the tier.</summary>
    private (BlobContainerClient Container, string KeyFile, byte[][] Payloads) Fleet()
    {
        var container = Azurite.Shared.NewContainer();
        var payloads = new[] { Payload(1, 3 << 20), Payload(2, 100_000), Payload(3, 5000) };
        for (int i = 0; i < payloads.Length; i++)
        {
            var tier = new AzureBlobCodeCache(new AzureBlobCodeCacheOptions { Container = container, AuthenticationKey = Secret, Prefix = "app/", Generation = i == 2 ? "wasmtime-49" : "wasmtime-50" });
            tier.Add(Key(i), new MemoryStream(payloads[i]));
        }

        string keyFile = Path.Join(_root, "fleet.key");
        File.WriteAllBytes(keyFile, Secret);
        return (container, keyFile, payloads);
    }

    private static string[] Azure(BlobContainerClient container, params string[] args)
        => [.. args, "--azure", Azurite.Shared.ConnectionString, "--container", container.Name, "--prefix", "app/"];

    [SkippableFact]
    public void Stats_CountsRecordsPerGeneration_AndBodies()
    {
        var (container, _, payloads) = Fleet();
        var (code, output, error) = Run(Azure(container, "stats", "--json"));
        Assert.True(code == 0, error);
        var json = JsonDocument.Parse(output).RootElement;
        Assert.Equal(3, json.GetProperty("records").GetInt32());
        Assert.Equal(2, json.GetProperty("recordsByGeneration").GetProperty("wasmtime-50").GetInt32());
        Assert.Equal(1, json.GetProperty("recordsByGeneration").GetProperty("wasmtime-49").GetInt32());
        Assert.Equal(3, json.GetProperty("bodies").GetInt32());
        Assert.Equal(payloads.Sum(p => (long)p.Length), json.GetProperty("bodyBytes").GetInt64());
        // The tag is on the blobs themselves, where a lifecycle rule's blobIndexMatch sees it.
        var record = container.GetBlobClient("app/index/" + Key(2)).GetTags().Value.Tags;
        Assert.Equal("wasmtime-49", record[AzureBlobCodeCache.GenerationTag]);
    }

    [SkippableFact]
    public async Task Verify_FindsADamagedBody_AndDeleteRemovesOnlyItsRecord()
    {
        var (container, keyFile, payloads) = Fleet();
        Assert.Equal(0, Run(Azure(container, "verify", "--key-file", keyFile)).Code);

        // Same length, one bit: only reading every byte with the key finds it.
        var bodies = container.GetBlobs(BlobTraits.None, BlobStates.None, "app/body/", CancellationToken.None).ToList();
        var damaged = bodies.Single(b => b.Properties.ContentLength == payloads[0].Length);
        var bytes = (byte[])payloads[0].Clone();
        bytes[(2 << 20) + 17] ^= 1;
        await container.GetBlobClient(damaged.Name).UploadAsync(new BinaryData(bytes), overwrite: true);

        var (code, output, _) = Run(Azure(container, "verify", "--key-file", keyFile, "--json"));
        Assert.Equal(1, code);
        var bad = JsonDocument.Parse(output).RootElement.GetProperty("bad").EnumerateArray().Single();
        Assert.Equal(Key(0).ToString(), bad.GetProperty("key").GetString());
        Assert.Equal("ChecksumMismatch", bad.GetProperty("reason").GetString());
        Assert.True(container.GetBlobClient("app/index/" + Key(0)).Exists().Value); // verify alone changes nothing

        Assert.Equal(1, Run(Azure(container, "verify", "--key-file", keyFile, "--delete")).Code);
        Assert.False(container.GetBlobClient("app/index/" + Key(0)).Exists().Value);
        Assert.True(container.GetBlobClient(damaged.Name).Exists().Value); // bodies expire by the lifecycle rule
        var again = Run(Azure(container, "verify", "--key-file", keyFile));
        Assert.Equal(0, again.Code);
        Assert.Contains("2 valid, 0 bad", again.Out);
    }

    [SkippableFact]
    public void Export_WritesWhatVerifies_AndImportSeedsADiskCacheWithTheSameKey()
    {
        var (container, keyFile, payloads) = Fleet();
        string archive = Path.Join(_root, "fleet.tar.gz");
        var (code, output, error) = Run(Azure(container, "export", archive, "--key-file", keyFile));
        Assert.True(code == 0, error);
        Assert.Contains("exported 3 entries", output);

        string dir = Path.Join(_root, "seeded");
        var imported = Run("import", archive, "--dir", dir, "--key-file", keyFile);
        Assert.True(imported.Code == 0, imported.Err);
        using var disk = new DiskCodeCache(new DiskCodeCacheOptions { Directory = dir, AuthenticationKey = Secret });
        for (int i = 0; i < payloads.Length; i++)
        {
            Assert.True(disk.TryGet(Key(i), out var hit));
            using var copy = new MemoryStream();
            hit.CopyTo(copy);
            hit.Dispose();
            Assert.Equal(payloads[i], copy.ToArray());
        }
    }

    [SkippableFact]
    public void WithoutTheKey_OrForACommandWithNoAzureForm_TheToolSaysWhy()
    {
        var (container, _, _) = Fleet();
        var verify = Run(Azure(container, "verify"));
        Assert.Equal(2, verify.Code);
        Assert.Contains("--key-file", verify.Err);
        var trim = Run(Azure(container, "trim", "--max-size", "1M"));
        Assert.Equal(2, trim.Code);
        Assert.Contains("lifecycle rule", trim.Err);
        var missing = Run("stats", "--azure", Azurite.Shared.ConnectionString, "--container", "nosuchcontainer");
        Assert.Equal(3, missing.Code);
        Assert.Contains("does not exist", missing.Err);
    }
}
