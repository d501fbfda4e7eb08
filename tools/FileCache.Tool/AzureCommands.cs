using System.CommandLine;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json.Serialization;
using Azure.Storage.Blobs;
using FileCache.AzureBlob;
using FileCache.Internal;

namespace FileCache.Tool;

/// <summary>
/// <c>stats</c>, <c>verify</c> and <c>export</c> over an Azure Blob container (<c>--azure</c>). The store
/// expires entries by its lifecycle rule, so trim and clear have no Azure form; a record that does not
/// verify is removed only by <c>verify --delete</c>, the operator's repair.
/// </summary>
internal static class AzureCommands
{
    public static int Stats(CommandContext c, ParseResult parsed, AzureBlobMaintenance store, int top)
    {
        var records = store.ListRecords(out int foreign);
        var bodies = store.ListBodies();
        var generations = records.GroupBy(r => r.Generation ?? "(none)").OrderBy(g => g.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var result = new AzureStatsResult(
            store.Uri.GetLeftPart(UriPartial.Path),
            records.Count,
            generations,
            bodies.Count,
            bodies.Sum(b => b.Length),
            records.Count == 0 ? null : records.Min(r => r.LastModified),
            records.Count == 0 ? null : records.Max(r => r.LastModified),
            [.. bodies.OrderByDescending(b => b.Length).Take(top).Select(b => new AzureBodyResult(b.Name, b.Length, b.LastModified, b.LastAccessed, b.Generation))],
            foreign);
        if (c.WantsJson(parsed))
        {
            c.WriteJson(result, AzureToolJson.Default.AzureStatsResult);
            return Cli.Ok;
        }

        c.Output.WriteLine($"container  {result.Container}");
        c.Output.WriteLine($"records    {result.Records}{(foreign > 0 ? $" (+{foreign} other blobs under index/)" : "")}");
        foreach (var (generation, count) in generations)
        {
            c.Output.WriteLine($"  {generation,-20} {count}");
        }

        c.Output.WriteLine($"bodies     {result.Bodies}, {result.BodyBytes} bytes");
        if (result.Records > 0)
        {
            c.Output.WriteLine($"written    {result.OldestRecord:u} .. {result.NewestRecord:u}");
        }

        if (result.Largest.Count > 0)
        {
            c.Output.WriteLine("largest bodies:");
            foreach (var b in result.Largest)
            {
                c.Output.WriteLine($"  {b.Name}  {b.Bytes,12}  {b.Generation ?? "(none)"}");
            }
        }

        return Cli.Ok;
    }

    public static int Verify(CommandContext c, ParseResult parsed, AzureBlobMaintenance store, bool remove)
    {
        var records = store.ListRecords(out _);
        var bad = new List<BadEntry>();
        int valid = 0, done = 0;
        foreach (var record in records)
        {
            string? problem = store.CheckAsync(record.Key, payload: null).GetAwaiter().GetResult();
            if (problem is null)
            {
                valid++;
            }
            else if (problem != "Missing") // removed since it was listed
            {
                bad.Add(new BadEntry(record.Key.ToString(), problem));
                if (remove)
                {
                    store.DeleteRecord(record.Key);
                }
            }

            c.Progress(parsed, "verified", ++done, records.Count);
        }

        var result = new AzureVerifyResult(store.Uri.GetLeftPart(UriPartial.Path), valid, bad, remove);
        if (c.WantsJson(parsed))
        {
            c.WriteJson(result, AzureToolJson.Default.AzureVerifyResult);
        }
        else
        {
            c.Output.WriteLine($"{valid} valid, {bad.Count} bad{(remove && bad.Count > 0 ? " (records removed; bodies expire by the lifecycle rule)" : "")} in {result.Container}");
            foreach (var b in bad)
            {
                c.Output.WriteLine($"  {b.Key}  {b.Reason}");
            }
        }

        return bad.Count == 0 ? Cli.Ok : Cli.Problems;
    }

    /// <summary>
    /// Every entry that verifies, framed as the disk tier stores it and tagged with the same key, in the
    /// archive format of the disk cache's export: <c>filecache import --key-file</c> with that key seeds a
    /// machine (or an image) from the fleet's store.
    /// </summary>
    public static int Export(CommandContext c, ParseResult parsed, AzureBlobMaintenance store, byte[] key, FileInfo target)
    {
        var records = store.ListRecords(out _);
        int exported = 0, skipped = 0, done = 0;
        string temp = target.FullName + ".tmp-" + Environment.ProcessId;
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            using (var gzip = new GZipStream(file, CompressionLevel.Fastest))
            using (var tar = new TarWriter(gzip, TarEntryFormat.Pax, leaveOpen: false))
            {
                foreach (var record in records)
                {
                    using var payload = new MemoryStream();
                    string? problem = store.CheckAsync(record.Key, payload).GetAwaiter().GetResult();
                    if (problem is null)
                    {
                        tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, record.Key.ToString()) { DataStream = new MemoryStream(Framed(record.Key, payload, key), writable: false) });
                        exported++;
                    }
                    else
                    {
                        c.Error.WriteLine($"skipped {record.Key}: {problem}");
                        skipped++;
                    }

                    c.Progress(parsed, "exported", ++done, records.Count);
                }
            }

            File.Move(temp, target.FullName, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }

        var result = new TransferResult(store.Uri.GetLeftPart(UriPartial.Path), target.FullName, exported, skipped);
        if (c.WantsJson(parsed))
        {
            c.WriteJson(result, ToolJson.Default.TransferResult);
        }
        else
        {
            c.Output.WriteLine($"exported {exported} entries to {target.FullName}{(skipped > 0 ? $"; {skipped} bad entries skipped" : "")}");
        }

        return Cli.Ok;
    }

    /// <summary>A payload with the disk tier's frame, as <c>import</c> expects it.</summary>
    private static byte[] Framed(CacheKey cacheKey, MemoryStream payload, byte[] key)
    {
        int length = (int)payload.Length;
        var stored = new byte[length + EntryFrame.TrailerSize];
        payload.GetBuffer().AsSpan(0, length).CopyTo(stored);
        using var frame = new EntryFrame.Writer(cacheKey, key);
        frame.Append(stored.AsSpan(0, length));
        frame.WriteTrailer(stored.AsSpan(length));
        return stored;
    }

    /// <summary>The container named by <c>--azure</c>: a container URL with a SAS, or a connection string with <c>--container</c>.</summary>
    public static AzureBlobMaintenance Open(string azure, string container, string prefix, byte[]? key)
    {
        var options = new AzureBlobCodeCacheOptions { Prefix = prefix, AuthenticationKey = key };
        if (azure.StartsWith("https://", StringComparison.OrdinalIgnoreCase) || azure.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
        {
            options.Container = new BlobContainerClient(new Uri(azure), AzureBlobCodeCache.ClientOptions());
        }
        else
        {
            options.ConnectionString = azure;
            options.ContainerName = container;
        }

        var store = new AzureBlobMaintenance(options);
        if (!store.Exists())
        {
            throw new IOException($"The container {store.Uri.GetLeftPart(UriPartial.Path)} does not exist (check --azure and --container).");
        }

        return store;
    }
}

internal sealed record AzureBodyResult(string Name, long Bytes, DateTimeOffset? LastModified, DateTimeOffset? LastAccessed, string? Generation);

internal sealed record AzureStatsResult(string Container, int Records, Dictionary<string, int> RecordsByGeneration, int Bodies, long BodyBytes, DateTimeOffset? OldestRecord, DateTimeOffset? NewestRecord, List<AzureBodyResult> Largest, int OtherBlobs);

internal sealed record AzureVerifyResult(string Container, int Valid, List<BadEntry> Bad, bool Removed);

/// <summary>Source-generated JSON for the Azure commands.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(AzureStatsResult))]
[JsonSerializable(typeof(AzureVerifyResult))]
internal sealed partial class AzureToolJson : JsonSerializerContext;
