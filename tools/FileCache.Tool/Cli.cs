using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Text.Json;
using FileCache.Disk;

namespace FileCache.Tool;

/// <summary>
/// The command line. Exit codes: 0 done; 1 the command found or left a problem (verify: bad entries;
/// import: skipped files; warm: a module failed); 2 the command line is wrong; 3 the cache directory
/// is unusable (missing where it must exist, insecure, not writable) or a file could not be read or written.
/// </summary>
internal static class Cli
{
    public const int Ok = 0, Problems = 1, Usage = 2, Unusable = 3;

    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var directory = new Option<string?>("--dir", "-d")
        {
            Description = "The cache directory (default: the user cache folder FileCache uses, e.g. ~/.cache/filecache).",
            Recursive = true,
        };
        var keyFile = new Option<FileInfo?>("--key-file")
        {
            Description = "A file holding the cache's authentication key (raw bytes, at least 16): needed for a shared, authenticated cache.",
            Recursive = true,
        };
        var json = new Option<bool>("--json") { Description = "Write one JSON document to standard output instead of text.", Recursive = true };
        var azure = new Option<string?>("--azure")
        {
            Description = "Work on an Azure Blob container instead of a directory (stats, verify, export): a storage connection string (with --container), or a container URL with a SAS.",
            Recursive = true,
        };
        var container = new Option<string>("--container") { Description = "The container with a connection string in --azure (default filecache).", Recursive = true, DefaultValueFactory = _ => "filecache" };
        var prefix = new Option<string>("--prefix") { Description = "The blob name prefix the hosts use (AzureBlobCodeCacheOptions.Prefix; default none).", Recursive = true, DefaultValueFactory = _ => "" };
        var root = new RootCommand("Inspect and maintain a FileCache disk cache of compiled WebAssembly code, or (--azure) a fleet's Azure Blob container.");
        root.Options.Add(directory);
        root.Options.Add(keyFile);
        root.Options.Add(json);
        root.Options.Add(azure);
        root.Options.Add(container);
        root.Options.Add(prefix);

        var context = new CommandContext(directory, keyFile, json, output, error) { Azure = azure, Container = container, Prefix = prefix };
        root.Subcommands.Add(Commands.Stats(context));
        root.Subcommands.Add(Commands.Verify(context));
        root.Subcommands.Add(Commands.Trim(context));
        root.Subcommands.Add(Commands.Clear(context));
        root.Subcommands.Add(Commands.Warm(context));
        root.Subcommands.Add(Commands.Export(context));
        root.Subcommands.Add(Commands.Import(context));

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors)
            {
                error.WriteLine(e.Message);
            }

            error.WriteLine("Run 'filecache --help' for usage.");
            return Usage;
        }

        try
        {
            return parsed.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (ArgumentException e)
        {
            error.WriteLine($"filecache: {e.Message}");
            return Usage;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            error.WriteLine($"filecache: {e.Message}");
            return Unusable;
        }
    }

    /// <summary>Parses sizes such as 1048576, 512K, 300M or 2G (powers of 1024).</summary>
    public static long? ParseSize(ArgumentResult result)
    {
        string text = result.Tokens.Count == 1 ? result.Tokens[0].Value.Trim() : "";
        long unit = 1;
        if (text.Length > 0 && char.IsLetter(text[^1]))
        {
            unit = char.ToUpperInvariant(text[^1]) switch { 'K' => 1L << 10, 'M' => 1L << 20, 'G' => 1L << 30, 'T' => 1L << 40, _ => 0 };
            text = text[..^1];
        }

        if (unit == 0 || !long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long value) || value > long.MaxValue / unit)
        {
            result.AddError($"'{(result.Tokens.Count == 1 ? result.Tokens[0].Value : "")}' is not a size: use bytes or a number with K, M, G or T (for example 500M).");
            return null;
        }

        return value * unit;
    }
}

/// <summary>What every command reads from the shared options.</summary>
internal sealed record CommandContext(Option<string?> Directory, Option<FileInfo?> KeyFile, Option<bool> Json, TextWriter Output, TextWriter Error)
{
    public required Option<string?> Azure { get; init; }

    public required Option<string> Container { get; init; }

    public required Option<string> Prefix { get; init; }

    /// <summary>
    /// The Azure container when <c>--azure</c> is given, else <see langword="null"/> (the disk cache).
    /// <paramref name="command"/> names what needs it; commands with no Azure form and checks without
    /// the key are refused here, with the reason.
    /// </summary>
    public AzureBlob.AzureBlobMaintenance? OpenAzure(ParseResult parsed, string command, bool needsKey, bool supported = true)
    {
        if (parsed.GetValue(Azure) is not { Length: > 0 } azure)
        {
            return null;
        }

        if (!supported)
        {
            throw new ArgumentException($"{command} has no --azure form: the container's lifecycle rule expires entries (see the README's fleet section), and hosts fill it themselves. --azure works with stats, verify and export.");
        }

        byte[]? key = parsed.GetValue(KeyFile) is { } file ? File.ReadAllBytes(file.FullName) : null;
        if (needsKey && key is null)
        {
            throw new ArgumentException($"{command} --azure needs --key-file: a fleet's entries are checked with the key the hosts sign their index records with.");
        }

        return AzureCommands.Open(azure, parsed.GetValue(Container)!, parsed.GetValue(Prefix)!, key);
    }

    public DiskCacheMaintenance OpenCache(ParseResult parsed, bool readOnly, long? maxSize = null, bool readableByAll = false)
    {
        _ = OpenAzure(parsed, parsed.CommandResult.Command.Name, needsKey: false, supported: false); // refuses --azure here
        byte[]? key = null;
        if (parsed.GetValue(KeyFile) is { } file)
        {
            key = File.ReadAllBytes(file.FullName);
        }

        var options = new DiskCodeCacheOptions
        {
            Directory = parsed.GetValue(Directory),
            AuthenticationKey = key,
            ReadOnly = readOnly,
            MaxSize = maxSize,
            TrimRatio = 1.0, // the tool trims to exactly the size asked for
        };
        if (readableByAll)
        {
            options.DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
            options.FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        }

        return new DiskCacheMaintenance(options); // refuses a short key itself (ArgumentException: exit code 2)
    }

    public bool WantsJson(ParseResult parsed) => parsed.GetValue(Json);

    public void WriteJson<T>(T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) => Output.WriteLine(JsonSerializer.Serialize(value, type));

    /// <summary>Progress for long runs, on standard error so standard output stays the result.</summary>
    public void Progress(ParseResult parsed, string verb, int done, int total)
    {
        if (!WantsJson(parsed) && total >= 100 && (done == total || done % Math.Max(1, total / 10) == 0))
        {
            Error.WriteLine($"{verb} {done}/{total}");
        }
    }
}
