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
            if (c.OpenAzure(parsed, "stats", needsKey: false) is { } store)
            {
                return AzureCommands.Stats(c, parsed, store, parsed.GetValue(top));
            }

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
            if (c.OpenAzure(parsed, "verify", needsKey: true) is { } store)
            {
                return AzureCommands.Verify(c, parsed, store, remove);
            }

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
        var maxSize = MaxSizeOption("Stop before the entries written would pass this size, and trim the cache to it at the end (bytes, or with K, M, G; default the library's 1G).");
        var readable = new Option<bool>("--readable-by-all") { Description = "Create the directory 0755 and entries 0644: readable by every user, writable by the owner only. For code shipped with an app that another user runs (dotnet publish -p:WasmPrecompile=true)." };
        var command = new Command("warm", "Compile modules with Wasmtime into the cache, under the keys an app with the same engine settings (defaults plus the flags given) on this machine looks up.") { modules, fuel, epochs, maxSize, readable };
        command.SetAction(parsed =>
        {
            long limit = parsed.GetValue(maxSize) ?? DefaultMaxSize;
            // No eviction while warming (it would hide what was written); the limit is kept by counting
            // and by one trim at the end.
            using var cache = c.OpenCache(parsed, readOnly: false, maxSize: null, readableByAll: parsed.GetValue(readable));
            long written = 0;
            string? stopped = null;
            var loader = new WasmtimeModuleCache(cache.Cache, options: new WasmtimeModuleCacheOptions { LiveModuleBudget = 0 });
            var results = new List<WarmResult>();
            int failed = 0;
            foreach (var file in parsed.GetValue(modules) ?? [])
            {
                if (written > limit)
                {
                    stopped = $"warm stopped before '{file.FullName}': the {written} bytes written are past --max-size {limit}";
                    break;
                }

                var watch = Stopwatch.StartNew();
                try
                {
                    byte[] wasm = File.ReadAllBytes(file.FullName);
                    bool component = wasm.Length >= 8 && wasm[4] == 0x0d; // the component model's layer field
                    var settings = new WasmtimeEngineSettings { ConsumeFuel = parsed.GetValue(fuel), EpochInterruption = parsed.GetValue(epochs), ComponentModel = component ? true : null };
                    using var engine = settings.CreateEngine();
                    var source = new WasmSource(file.Name, wasm, validate: true);
                    (ModuleOrigin origin, CacheKey key) = component ? Warm(loader.LoadComponent(engine, source)) : Warm(loader.Load(engine, source));
                    results.Add(new WarmResult(file.FullName, origin.ToString(), key.ToString(), watch.Elapsed.TotalMilliseconds, null));
                    var entry = new FileInfo(cache.GetPath(key));
                    written += entry.Exists ? entry.Length : 0;
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

            TrimTo(c, parsed, cache, limit);

            if (stopped is not null)
            {
                c.Error.WriteLine($"filecache: {stopped}; the cache trimmed to its limit.");
            }

            return failed == 0 && stopped is null ? Cli.Ok : Cli.Problems;
        });
        return command;
    }

    public static Command Export(CommandContext c)
    {
        var archive = new Argument<FileInfo>("archive") { Description = "The archive to write (.tar.gz)." };
        var command = new Command("export", "Write every valid entry, as stored (payload, frame and tag), to one archive, to seed another machine with import.") { archive };
        command.SetAction(parsed =>
        {
            var target = parsed.GetValue(archive)!;
            if (c.OpenAzure(parsed, "export", needsKey: true) is { } store)
            {
                return AzureCommands.Export(c, parsed, store, File.ReadAllBytes(parsed.GetValue(c.KeyFile)!.FullName), target);
            }

            using var cache = c.OpenCache(parsed, readOnly: true);
            var entries = cache.EnumerateEntries().ToList();
            int exported = 0, skipped = 0, done = 0;
            string temp = target.FullName + ".tmp-" + Environment.ProcessId;
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            using (var gzip = new GZipStream(file, CompressionLevel.Fastest))
            using (var tar = new TarWriter(gzip, TarEntryFormat.Pax, leaveOpen: false))
            {
                foreach (var entry in entries)
                {
                    // Only what a lookup accepts leaves the cache, with its frame: an import checks
                    // each entry against its own key instead of trusting the archive.
                    if (cache.TryReadStoredEntry(entry.Key, out var stored))
                    {
                        tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, entry.Key.ToString()) { DataStream = new MemoryStream(stored, writable: false) });
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
        var trust = new Option<bool>("--trust-archive") { Description = "Import into a cache without an authentication key, where nothing can prove who made the entries: only for archives you made yourself." };
        var maxSize = MaxSizeOption("Stop before the entries imported would pass this size, and trim the cache to it at the end (bytes, or with K, M, G; default the library's 1G).");
        var command = new Command(
            "import",
            "Add the entries of an archive written by export. Each entry is verified with this cache's key (--key-file) before it is added; an entry made with another key, or changed, is skipped. A cache without a key imports only with --trust-archive.") { archive, trust, maxSize };
        command.SetAction(parsed =>
        {
            long limit = parsed.GetValue(maxSize) ?? DefaultMaxSize;
            bool trusted = parsed.GetValue(trust);
            if (parsed.GetValue(c.KeyFile) is null && !trusted)
            {
                c.Error.WriteLine("filecache: import refused: this cache has no authentication key (--key-file), so nothing can prove who made the archive's entries; "
                    + "an archive could carry any machine code under any key. Import with the key the archive was exported with, or pass --trust-archive for an archive you made yourself.");
                return Cli.Usage;
            }

            using var cache = c.OpenCache(parsed, readOnly: false, maxSize: limit);
            var source = parsed.GetValue(archive)!;
            int imported = 0, skipped = 0;
            long bytes = 0;
            string? stopped = null;
            using (var file = File.OpenRead(source.FullName))
            using (var gzip = new GZipStream(file, CompressionMode.Decompress))
            using (var tar = new TarReader(gzip))
            {
                while (tar.GetNextEntry() is { } entry)
                {
                    if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile)
                        || !CacheKey.TryParse(entry.Name, out var key)
                        || entry.DataStream is null)
                    {
                        c.Error.WriteLine($"skipped '{entry.Name}': not an entry of a FileCache export");
                        skipped++;
                        continue;
                    }

                    if (bytes + entry.Length > limit)
                    {
                        // Checked on the archive's header, before a byte is decompressed: a small
                        // archive that expands to gigabytes stops here.
                        stopped = $"import stopped before key {key}: its {entry.Length} bytes would take the {bytes} bytes imported past --max-size {limit}";
                        break;
                    }

                    if (cache.TryImportStoredEntry(key, entry.DataStream, trusted, out string? problem))
                    {
                        imported++;
                        bytes += entry.Length;
                    }
                    else
                    {
                        c.Error.WriteLine($"skipped '{entry.Name}': {problem}{(problem == "NotAuthenticated" ? " (the archive was not exported from a cache with this key)" : problem is "BadTag" or "ChecksumMismatch" ? " (made with another key, or changed since export)" : "")}");
                        skipped++;
                    }

                    if (!c.WantsJson(parsed) && imported > 0 && imported % 100 == 0)
                    {
                        c.Error.WriteLine($"imported {imported}");
                    }
                }
            }

            TrimTo(c, parsed, cache, limit);
            if (stopped is not null)
            {
                c.Error.WriteLine($"filecache: {stopped}; {imported} entries imported, the cache trimmed to its limit.");
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

            return skipped == 0 && stopped is null ? Cli.Ok : Cli.Problems;
        });
        return command;
    }

    /// <summary>What warming a module or component did; the loaded artifact itself is released at once.</summary>
    private static (ModuleOrigin Origin, CacheKey Key) Warm<T>(Loaded<T> loaded)
        where T : class
    {
        using (loaded)
        {
            return (loaded.Origin, loaded.Key);
        }
    }

    /// <summary>The library's default size limit (<see cref="DiskCodeCacheOptions.MaxSize"/>), which import and warm keep unless told otherwise.</summary>
    internal static long DefaultMaxSize { get; } = new DiskCodeCacheOptions().MaxSize ?? long.MaxValue;

    /// <summary>Trims to <paramref name="limit"/> once the writing cache is done (its own background trim may hold the lock until then).</summary>
    private static void TrimTo(CommandContext c, ParseResult parsed, DiskCacheMaintenance writer, long limit)
    {
        writer.Dispose();
        using var trimmer = c.OpenCache(parsed, readOnly: false, maxSize: limit);
        trimmer.Trim();
    }

    private static Option<long?> MaxSizeOption(string description)
        => new("--max-size") { Description = description, CustomParser = Cli.ParseSize };

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
