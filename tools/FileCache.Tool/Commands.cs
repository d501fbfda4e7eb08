using System.CommandLine;
using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json.Serialization;
using FileCache.Disk;
using FileCache.Wasmtime;

namespace FileCache.Tool;

/// <summary>The commands, each over the library's own operations.</summary>
internal static class Commands
{
    private const string ManifestName = "filecache-export.json";

    public static Command Stats(CommandContext c)
    {
        var top = new Option<int>("--top") { Description = "How many of the largest entries to list.", DefaultValueFactory = _ => 5 };
        var command = new Command("stats", "Entries, bytes, use times and the largest entries.") { top };
        command.SetAction(parsed =>
        {
            using var cache = c.OpenCache(parsed, readOnly: true);
            var entries = cache.EnumerateEntries().ToList();
            var result = new StatsResult(
                cache.Directory,
                entries.Count,
                entries.Sum(e => e.FileLength),
                entries.Count == 0 ? null : entries.Min(e => e.LastUseUtc),
                entries.Count == 0 ? null : entries.Max(e => e.LastUseUtc),
                [.. entries.OrderByDescending(e => e.FileLength).Take(parsed.GetValue(top)).Select(e => new EntryResult(e.Key.ToString(), e.FileLength, e.LastUseUtc))]);
            if (c.WantsJson(parsed))
            {
                c.WriteJson(result, ToolJson.Default.StatsResult);
                return Cli.Ok;
            }

            c.Output.WriteLine($"directory  {result.Directory}");
            c.Output.WriteLine($"entries    {result.Entries}");
            c.Output.WriteLine($"bytes      {result.Bytes} ({Human(result.Bytes)})");
            if (result.Entries > 0)
            {
                c.Output.WriteLine($"used       {result.OldestUseUtc:u} .. {result.NewestUseUtc:u}");
                c.Output.WriteLine("largest:");
                foreach (var e in result.Largest)
                {
                    c.Output.WriteLine($"  {e.Key}  {Human(e.Bytes),10}  last used {e.LastUseUtc:u}");
                }
            }

            return Cli.Ok;
        });
        return command;
    }

    public static Command Verify(CommandContext c)
    {
        var delete = new Option<bool>("--delete") { Description = "Remove bad entries (without it the cache is opened read-only and nothing changes)." };
        var command = new Command("verify", "Check every entry as a lookup does (file trust checks and frame); exit code 1 when any is bad.") { delete };
        command.SetAction(parsed =>
        {
            bool remove = parsed.GetValue(delete);
            using var cache = c.OpenCache(parsed, readOnly: !remove);
            var entries = cache.EnumerateEntries().ToList();
            var bad = new List<BadEntry>();
            int valid = 0, done = 0;
            foreach (var entry in entries)
            {
                if (cache.Verify(entry.Key, out string? problem))
                {
                    valid++;
                }
                else if (problem is not null)
                {
                    bad.Add(new BadEntry(entry.Key.ToString(), problem));
                }

                c.Progress(parsed, "verified", ++done, entries.Count);
            }

            var result = new VerifyResult(cache.Directory, valid, bad, remove);
            if (c.WantsJson(parsed))
            {
                c.WriteJson(result, ToolJson.Default.VerifyResult);
            }
            else
            {
                c.Output.WriteLine($"{valid} valid, {bad.Count} bad{(remove && bad.Count > 0 ? " (removed)" : "")} in {cache.Directory}");
                foreach (var b in bad)
                {
                    c.Output.WriteLine($"  {b.Key}  {b.Reason}");
                }
            }

            return bad.Count == 0 ? Cli.Ok : Cli.Problems;
        });
        return command;
    }

    public static Command Trim(CommandContext c)
    {
        var maxSize = new Option<long?>("--max-size") { Description = "Remove the least recently used entries until the cache holds at most this much (bytes, or with K, M, G).", Required = true, CustomParser = Cli.ParseSize };
        var command = new Command("trim", "Evict the least recently used entries down to a size; also sweeps temp files of killed writers.") { maxSize };
        command.SetAction(parsed =>
        {
            using var cache = c.OpenCache(parsed, readOnly: false, maxSize: parsed.GetValue(maxSize));
            int removed = cache.Trim();
            long bytes = cache.EnumerateEntries().Sum(e => e.FileLength);
            if (c.WantsJson(parsed))
            {
                c.WriteJson(new TrimResult(cache.Directory, removed, bytes), ToolJson.Default.TrimResult);
            }
            else
            {
                c.Output.WriteLine($"removed {removed}; {Human(bytes)} left in {cache.Directory}");
            }

            return Cli.Ok;
        });
        return command;
    }

    public static Command Clear(CommandContext c)
    {
        var command = new Command("clear", "Remove every entry.");
        command.SetAction(parsed =>
        {
            using var cache = c.OpenCache(parsed, readOnly: false);
            int removed = 0;
            foreach (var entry in cache.EnumerateEntries().ToList())
            {
                cache.Delete(entry.Key);
                removed++;
            }

            if (c.WantsJson(parsed))
            {
                c.WriteJson(new TrimResult(cache.Directory, removed, 0), ToolJson.Default.TrimResult);
            }
            else
            {
                c.Output.WriteLine($"removed {removed} entries from {cache.Directory}");
            }

            return Cli.Ok;
        });
        return command;
    }

    public static Command Warm(CommandContext c)
    {
        var modules = new Argument<FileInfo[]>("modules") { Description = "WebAssembly modules or components to compile into the cache.", Arity = ArgumentArity.OneOrMore };
        var fuel = new Option<bool>("--fuel") { Description = "Compile for engines with fuel consumption on (WasmtimeEngineSettings.ConsumeFuel)." };
        var epochs = new Option<bool>("--epoch-interruption") { Description = "Compile for engines with epoch interruption on." };
        var command = new Command("warm", "Compile modules with Wasmtime into the cache, under the keys an app with the same engine settings (defaults plus the flags given) on this machine looks up.") { modules, fuel, epochs };
        command.SetAction(parsed =>
        {
            using var cache = c.OpenCache(parsed, readOnly: false);
            var loader = new WasmtimeModuleCache(cache, options: new WasmtimeModuleCacheOptions { LiveModuleBudget = 0 });
            var results = new List<WarmResult>();
            int failed = 0;
            foreach (var file in parsed.GetValue(modules) ?? [])
            {
                var watch = Stopwatch.StartNew();
                try
                {
                    byte[] wasm = File.ReadAllBytes(file.FullName);
                    bool component = wasm.Length >= 8 && wasm[4] == 0x0d; // the component model's layer field
                    var settings = new WasmtimeEngineSettings { ConsumeFuel = parsed.GetValue(fuel), EpochInterruption = parsed.GetValue(epochs), ComponentModel = component ? true : null };
                    using var engine = settings.CreateEngine();
                    using LoadedArtifact loaded = component
                        ? loader.LoadComponent(engine, settings, file.Name, wasm)
                        : loader.Load(engine, settings, file.Name, wasm, validate: true);
                    results.Add(new WarmResult(file.FullName, loaded.Origin.ToString(), loaded.Key.ToString(), watch.Elapsed.TotalMilliseconds, null));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or global::Wasmtime.WasmtimeException)
                {
                    failed++;
                    results.Add(new WarmResult(file.FullName, "Failed", null, watch.Elapsed.TotalMilliseconds, e.Message));
                }
            }

            if (c.WantsJson(parsed))
            {
                c.WriteJson(results, ToolJson.Default.ListWarmResult);
            }
            else
            {
                foreach (var r in results)
                {
                    c.Output.WriteLine(r.Error is null ? $"{r.Origin,-12} {r.Milliseconds,9:F1} ms  {r.Key}  {r.Module}" : $"Failed       {r.Module}: {r.Error}");
                }
            }

            return failed == 0 ? Cli.Ok : Cli.Problems;
        });
        return command;
    }

    public static Command Export(CommandContext c)
    {
        var archive = new Argument<FileInfo>("archive") { Description = "The archive to write (.tar.gz)." };
        var command = new Command("export", "Write every valid entry's payload to one archive, to seed another machine with import.") { archive };
        command.SetAction(parsed =>
        {
            using var cache = c.OpenCache(parsed, readOnly: true);
            var target = parsed.GetValue(archive)!;
            var entries = cache.EnumerateEntries().ToList();
            int exported = 0, skipped = 0, done = 0;
            string temp = target.FullName + ".tmp-" + Environment.ProcessId;
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            using (var gzip = new GZipStream(file, CompressionLevel.Fastest))
            using (var tar = new TarWriter(gzip, TarEntryFormat.Pax, leaveOpen: false))
            {
                foreach (var entry in entries)
                {
                    // Only what a lookup accepts leaves the cache: the payload, verified, without its frame.
                    if (cache.TryGet(entry.Key, out var payload))
                    {
                        using (payload)
                        {
                            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, entry.Key.ToString()) { DataStream = payload });
                        }

                        exported++;
                    }
                    else
                    {
                        skipped++;
                    }

                    c.Progress(parsed, "exported", ++done, entries.Count);
                }
            }

            File.Move(temp, target.FullName, overwrite: true);
            var result = new TransferResult(cache.Directory, target.FullName, exported, skipped);
            if (c.WantsJson(parsed))
            {
                c.WriteJson(result, ToolJson.Default.TransferResult);
            }
            else
            {
                c.Output.WriteLine($"exported {exported} entries to {target.FullName}{(skipped > 0 ? $"; {skipped} bad or vanished entries skipped" : "")}");
            }

            return Cli.Ok;
        });
        return command;
    }

    public static Command Import(CommandContext c)
    {
        var archive = new Argument<FileInfo>("archive") { Description = "An archive written by export." };
        var command = new Command(
            "import",
            "Add every entry of an archive to the cache (framed, and authenticated with --key-file, by this cache). The archive is trusted: import only archives you made.") { archive };
        command.SetAction(parsed =>
        {
            using var cache = c.OpenCache(parsed, readOnly: false);
            var source = parsed.GetValue(archive)!;
            int imported = 0, skipped = 0;
            using (var file = File.OpenRead(source.FullName))
            using (var gzip = new GZipStream(file, CompressionMode.Decompress))
            using (var tar = new TarReader(gzip))
            {
                while (tar.GetNextEntry() is { } entry)
                {
                    if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile)
                        || !CacheKey.TryParse(entry.Name, out var key)
                        || entry.DataStream is null
                        || entry.Length > DiskCodeCache.MaxEntrySize)
                    {
                        c.Error.WriteLine($"skipped '{entry.Name}': not an entry of a FileCache export");
                        skipped++;
                        continue;
                    }

                    cache.Add(key, entry.DataStream);
                    imported++;
                    if (!c.WantsJson(parsed) && imported % 100 == 0)
                    {
                        c.Error.WriteLine($"imported {imported}");
                    }
                }
            }

            var result = new TransferResult(cache.Directory, source.FullName, imported, skipped);
            if (c.WantsJson(parsed))
            {
                c.WriteJson(result, ToolJson.Default.TransferResult);
            }
            else
            {
                c.Output.WriteLine($"imported {imported} entries into {cache.Directory}{(skipped > 0 ? $"; {skipped} skipped" : "")}");
            }

            return skipped == 0 ? Cli.Ok : Cli.Problems;
        });
        return command;
    }

    private static string Human(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):F1} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):F1} MiB",
        >= 1L << 10 => $"{bytes / (double)(1L << 10):F1} KiB",
        _ => $"{bytes} B",
    };
}

internal sealed record EntryResult(string Key, long Bytes, DateTime LastUseUtc);

internal sealed record StatsResult(string Directory, int Entries, long Bytes, DateTime? OldestUseUtc, DateTime? NewestUseUtc, List<EntryResult> Largest);

internal sealed record BadEntry(string Key, string Reason);

internal sealed record VerifyResult(string Directory, int Valid, List<BadEntry> Bad, bool Removed);

internal sealed record TrimResult(string Directory, int Removed, long BytesLeft);

internal sealed record WarmResult(string Module, string Origin, string? Key, double Milliseconds, string? Error);

internal sealed record TransferResult(string Directory, string Archive, int Entries, int Skipped);

/// <summary>Source-generated JSON (no reflection: the tool publishes with NativeAOT).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(StatsResult))]
[JsonSerializable(typeof(VerifyResult))]
[JsonSerializable(typeof(TrimResult))]
[JsonSerializable(typeof(List<WarmResult>))]
[JsonSerializable(typeof(TransferResult))]
internal sealed partial class ToolJson : JsonSerializerContext;
