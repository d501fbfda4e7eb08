using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json;
using FileCache.Disk;

namespace FileCache.Tool.Tests;

/// <summary>Every filecache command against real cache directories (in-process, plus one run of the built tool).</summary>
public sealed class ToolTests : IDisposable
{
    private readonly string _root = Path.Join(Path.GetTempPath(), "filecache-tool-" + Guid.NewGuid().ToString("N"));

    public ToolTests() => Directory.CreateDirectory(_root);

    public void Dispose()
    {
        if (!OperatingSystem.IsWindows())
        {
            foreach (var dir in Directory.GetDirectories(_root))
            {
                File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
        }

        Directory.Delete(_root, recursive: true);
    }

    private string Dir(string name) => Path.Join(_root, name);

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = Cli.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement;

    private static byte[] Payload(int seed, int length)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private void Fill(string dir, int count, int length)
    {
        using var cache = new DiskCodeCache(dir);
        for (int i = 0; i < count; i++)
        {
            cache.Add(CacheKey.Compute([(byte)i]), new MemoryStream(Payload(i, length)));
        }
    }

    private static string ModulePath(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Join(dir.FullName, "tests", "FileCache.Wasmtime.Tests", "modules", name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException(name);
    }

    [Fact]
    public void Stats_OnAMissingDirectory_IsEmpty_AndOnAFilledOne_CountsEntriesAndBytes()
    {
        var (code, output, _) = Run("stats", "--dir", Dir("none"), "--json");
        Assert.Equal(0, code);
        Assert.Equal(0, Json(output).GetProperty("entries").GetInt32());

        Fill(Dir("c"), 3, 1000);
        (code, output, _) = Run("stats", "-d", Dir("c"), "--json", "--top", "2");
        Assert.Equal(0, code);
        var stats = Json(output);
        Assert.Equal(3, stats.GetProperty("entries").GetInt32());
        Assert.Equal(3 * (1000 + 64), stats.GetProperty("bytes").GetInt64()); // payload + frame each
        Assert.Equal(2, stats.GetProperty("largest").GetArrayLength());

        (code, output, _) = Run("stats", "-d", Dir("c"));
        Assert.Contains("entries    3", output);
    }

    [Fact]
    public void Verify_FindsACorruptEntry_LeavesItWithoutDelete_RemovesItWithDelete()
    {
        Fill(Dir("c"), 3, 5000);
        string victim = Path.Join(Dir("c"), CacheKey.Compute([1]).ToString());
        var bytes = File.ReadAllBytes(victim);
        bytes[100] ^= 0xff;
        File.WriteAllBytes(victim, bytes);

        var (code, output, _) = Run("verify", "-d", Dir("c"), "--json");
        Assert.Equal(Cli.Problems, code);
        var result = Json(output);
        Assert.Equal(2, result.GetProperty("valid").GetInt32());
        var bad = Assert.Single(result.GetProperty("bad").EnumerateArray());
        Assert.Equal(CacheKey.Compute([1]).ToString(), bad.GetProperty("key").GetString());
        Assert.Equal("ChecksumMismatch", bad.GetProperty("reason").GetString());
        Assert.True(File.Exists(victim)); // read-only without --delete

        (code, output, _) = Run("verify", "-d", Dir("c"), "--delete");
        Assert.Equal(Cli.Problems, code);
        Assert.Contains("(removed)", output);
        Assert.False(File.Exists(victim));
        Assert.Equal(Cli.Ok, Run("verify", "-d", Dir("c")).Code);
    }

    [Fact]
    public void Trim_EvictsTheLeastRecentlyUsed_DownToTheSize_AndRefusesABadSize()
    {
        Fill(Dir("c"), 10, 10_000);
        using (var cache = new DiskCodeCache(Dir("c")))
        {
            for (int i = 0; i < 10; i++)
            {
                File.SetLastWriteTimeUtc(cache.GetPath(CacheKey.Compute([(byte)i])), DateTime.UtcNow.AddHours(i - 20)); // entry 9 most recent
            }
        }

        var (code, output, _) = Run("trim", "-d", Dir("c"), "--max-size", "40K", "--json");
        Assert.Equal(0, code);
        var result = Json(output);
        Assert.Equal(6, result.GetProperty("removed").GetInt32()); // 4 entries of 10,064 bytes fit in 40,960
        Assert.True(result.GetProperty("bytesLeft").GetInt64() <= 40 << 10);
        Assert.True(File.Exists(Path.Join(Dir("c"), CacheKey.Compute([9]).ToString())));
        Assert.True(File.Exists(Path.Join(Dir("c"), CacheKey.Compute([6]).ToString())));
        Assert.False(File.Exists(Path.Join(Dir("c"), CacheKey.Compute([5]).ToString())));

        var (badCode, _, error) = Run("trim", "-d", Dir("c"), "--max-size", "12Q");
        Assert.Equal(Cli.Usage, badCode);
        Assert.Contains("'12Q' is not a size", error);
        Assert.Equal(Cli.Usage, Run("trim", "-d", Dir("c")).Code); // --max-size is required
    }

    [Fact]
    public void Clear_RemovesEveryEntry()
    {
        Fill(Dir("c"), 4, 100);
        var (code, output, _) = Run("clear", "-d", Dir("c"));
        Assert.Equal(0, code);
        Assert.Contains("removed 4 entries", output);
        Assert.DoesNotContain(Directory.GetFiles(Dir("c")), f => !Path.GetFileName(f).StartsWith('.'));
    }

    [Fact]
    public void Warm_CompilesModulesAndComponents_UnderTheKeysALoadUses_ThenHits()
    {
        string module = ModulePath("answer.wasm");
        string component = ModulePath("answer-component.wasm");
        var (code, output, _) = Run("warm", "-d", Dir("c"), module, component, "--json");
        Assert.Equal(0, code);
        var results = Json(output).EnumerateArray().ToArray();
        Assert.Equal(["Compiled", "Compiled"], results.Select(r => r.GetProperty("origin").GetString()));

        // The key an app with default settings derives for the same bytes.
        var settings = new Wasmtime.WasmtimeEngineSettings();
        Assert.Equal(settings.DeriveKey(File.ReadAllBytes(module)).ToString(), results[0].GetProperty("key").GetString());

        (code, output, _) = Run("warm", "-d", Dir("c"), module);
        Assert.Equal(0, code);
        Assert.StartsWith("MappedFile", output);

        File.WriteAllText(Path.Join(_root, "bad.wasm"), "not wasm");
        (code, output, _) = Run("warm", "-d", Dir("c"), Path.Join(_root, "bad.wasm"));
        Assert.Equal(Cli.Problems, code);
        Assert.Contains("Failed", output);
    }

    [SkippableFact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void Warm_ReadableByAll_WritesWhatAnotherUserCanRead_AndMaxSizeStopsIt()
    {
        Skip.If(OperatingSystem.IsWindows(), "Unix modes.");
        string module = ModulePath("answer.wasm");
        string component = ModulePath("answer-component.wasm");
        var (code, output, _) = Run("warm", "-d", Dir("published"), "--readable-by-all", module);
        Assert.True(code == 0, output);
        Assert.Equal((UnixFileMode)0b111_101_101, File.GetUnixFileMode(Dir("published")));
        var entry = Assert.Single(Directory.GetFiles(Dir("published")), f => !Path.GetFileName(f).StartsWith('.'));
        Assert.Equal((UnixFileMode)0b110_100_100, File.GetUnixFileMode(entry));

        // A limit smaller than the first entry: the second module is not compiled, and the cache is trimmed to the limit.
        string error;
        (code, output, error) = Run("warm", "-d", Dir("small"), "--max-size", "1", module, component);
        Assert.Equal(Cli.Problems, code);
        Assert.Contains("past --max-size 1", error);
        Assert.Empty(new DiskCodeCache(Dir("small")).EnumerateEntries());
    }

    private string KeyFile(string name, byte seed)
    {
        string path = Path.Join(_root, name);
        File.WriteAllBytes(path, Enumerable.Range(seed, 32).Select(i => (byte)i).ToArray());
        return path;
    }

    private void FillKeyed(string dir, string keyFile, int count, int length)
    {
        using var cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = dir, AuthenticationKey = File.ReadAllBytes(keyFile) });
        for (int i = 0; i < count; i++)
        {
            cache.Add(CacheKey.Compute([(byte)i]), new MemoryStream(Payload(i, length)));
        }
    }

    private static void AssertPayloads(string dir, string? keyFile, int count, int length)
    {
        using var cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = dir, AuthenticationKey = keyFile is null ? null : File.ReadAllBytes(keyFile) });
        for (int i = 0; i < count; i++)
        {
            Assert.True(cache.TryGet(CacheKey.Compute([(byte)i]), out var hit));
            using (hit)
            {
                using var copy = new MemoryStream();
                hit.CopyTo(copy);
                Assert.Equal(Payload(i, length), copy.ToArray());
            }
        }
    }

    [Fact]
    public void ExportThenImport_WithTheSameKey_SeedsAnotherCache_AnotherKeyImportsNothing()
    {
        string key = KeyFile("key", 1);
        FillKeyed(Dir("a"), key, 5, 3000);
        string archive = Path.Join(_root, "cache.tar.gz");
        var (code, output, _) = Run("export", "-d", Dir("a"), "--key-file", key, archive, "--json");
        Assert.Equal(0, code);
        Assert.Equal(5, Json(output).GetProperty("entries").GetInt32());

        // The archive holds the entries as stored, tag included: the importer checks each with its key.
        (code, output, _) = Run("import", "-d", Dir("b"), "--key-file", key, archive);
        Assert.Equal(0, code);
        Assert.Contains("imported 5 entries", output);
        Assert.Equal(Cli.Ok, Run("verify", "-d", Dir("b"), "--key-file", key).Code);
        AssertPayloads(Dir("b"), key, 5, 3000);

        // A cache with another key accepts none of them.
        string other = KeyFile("other", 100);
        string error;
        (code, output, error) = Run("import", "-d", Dir("c"), "--key-file", other, archive);
        Assert.Equal(Cli.Problems, code);
        Assert.Contains("imported 0 entries", output);
        Assert.Contains("BadTag", error);
        Assert.Empty(new DiskCodeCache(Dir("c")).EnumerateEntries());

        // A cache without a key cannot check who made them: refused, naming the way out...
        (code, _, error) = Run("import", "-d", Dir("d"), archive);
        Assert.Equal(Cli.Usage, code);
        Assert.Contains("--trust-archive", error);
        Assert.False(Directory.Exists(Dir("d")));

        // ...which takes the archive on trust (its checksums still have to hold).
        (code, output, _) = Run("import", "-d", Dir("d"), "--trust-archive", archive);
        Assert.Equal(Cli.Ok, code);
        AssertPayloads(Dir("d"), null, 5, 3000);
    }

    [Fact]
    public void AHostileArchive_CarryingOtherCodeUnderTheVictimsKey_IsNotImported_TheVictimKeepsItsOwnCode()
    {
        // The victim's authenticated cache holds its module's code under its key.
        string key = KeyFile("key", 1);
        var victimKey = CacheKey.Compute([0]);
        FillKeyed(Dir("victim"), key, 1, 4000);

        // The attacker has no key. Archive 1: bare machine code under the victim's key (what the old
        // export wrote). Archive 2: the same code framed and tagged in a cache of the attacker's own key.
        string bare = Path.Join(_root, "bare.tar.gz");
        using (var file = File.Create(bare))
        using (var gzip = new GZipStream(file, CompressionLevel.Fastest))
        using (var tar = new TarWriter(gzip))
        {
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, victimKey.ToString()) { DataStream = new MemoryStream(Payload(666, 4000)) });
        }

        string attackerKey = KeyFile("attacker.key", 50);
        using (var attacker = new DiskCodeCache(new DiskCodeCacheOptions { Directory = Dir("attacker"), AuthenticationKey = File.ReadAllBytes(attackerKey) }))
        {
            attacker.Add(victimKey, new MemoryStream(Payload(666, 4000)));
        }

        string framed = Path.Join(_root, "framed.tar.gz");
        Assert.Equal(Cli.Ok, Run("export", "-d", Dir("attacker"), "--key-file", attackerKey, framed).Code);

        foreach (string archive in new[] { bare, framed })
        {
            var (code, output, error) = Run("import", "-d", Dir("victim"), "--key-file", key, archive);
            Assert.Equal(Cli.Problems, code);
            Assert.Contains("imported 0 entries", output);
            Assert.Contains("skipped", error);
            Assert.Equal(Cli.Ok, Run("verify", "-d", Dir("victim"), "--key-file", key).Code);
            AssertPayloads(Dir("victim"), key, 1, 4000); // still the victim's own code
        }
    }

    [Fact]
    public void AnArchiveThatExpandsPastMaxSize_StopsBeforePassingIt_AndTheCacheStaysWithinItsLimit()
    {
        // 40 entries of 8 MiB of zeros: 320 MiB of entries in an archive of about 1 MiB.
        const int Count = 40, Length = 8 << 20;
        using (var source = new DiskCodeCache(new DiskCodeCacheOptions { Directory = Dir("source"), MaxSize = null, Durability = DiskDurability.None }))
        {
            for (int i = 0; i < Count; i++)
            {
                source.Add(CacheKey.Compute([(byte)i]), new MemoryStream(new byte[Length]));
            }
        }

        string archive = Path.Join(_root, "bomb.tar.gz");
        Assert.Equal(Cli.Ok, Run("export", "-d", Dir("source"), archive).Code);
        Assert.InRange(new FileInfo(archive).Length, 1, 4 << 20);

        var (code, output, error) = Run("import", "-d", Dir("target"), "--trust-archive", "--max-size", "64M", archive);
        Assert.Equal(Cli.Problems, code);
        Assert.Contains("past --max-size", error);
        long bytes = new DiskCodeCache(Dir("target")).EnumerateEntries().Sum(e => e.FileLength);
        Assert.InRange(bytes, 1, 64L << 20);
        Assert.DoesNotContain("imported 40", output);
    }

    [Fact]
    public void Import_SkipsWhatIsNotAnExportEntry_AndSaysSo()
    {
        string archive = Path.Join(_root, "foreign.tar.gz");
        using (var file = File.Create(archive))
        using (var gzip = new GZipStream(file, CompressionLevel.Fastest))
        using (var tar = new TarWriter(gzip))
        {
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "../../etc/passwd") { DataStream = new MemoryStream([1, 2, 3]) });
            tar.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, CacheKey.Compute([1]).ToString()) { LinkName = "/etc/passwd" });
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, CacheKey.Compute([2]).ToString()) { DataStream = new MemoryStream([4, 5, 6]) });
        }

        var (code, output, error) = Run("import", "-d", Dir("c"), "--trust-archive", archive);
        Assert.Equal(Cli.Problems, code);
        Assert.Contains("imported 0 entries", output);
        Assert.Contains("skipped '../../etc/passwd'", error);
        Assert.Contains($"skipped '{CacheKey.Compute([2])}': TooShort", error); // bare bytes are no stored entry
        Assert.Empty(Directory.Exists(Dir("c")) ? Directory.GetFiles(Dir("c")).Where(f => !Path.GetFileName(f).StartsWith('.')) : []);
    }

    [SkippableFact]
    public void ADirectoryOthersCanWrite_IsRefused_WithExitCode3_NamingIt()
    {
        Skip.If(OperatingSystem.IsWindows(), "Unix modes: on Windows the profile's ACLs decide.");
        Fill(Dir("c"), 1, 10);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(Dir("c"), (UnixFileMode)Convert.ToInt32("777", 8));
        }

        var (code, _, error) = Run("stats", "-d", Dir("c"));
        Assert.Equal(Cli.Unusable, code);
        Assert.Contains(Dir("c"), error);
        Assert.Contains("mode 0777", error);
    }

    [SkippableFact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void CommandsOnAnotherUsersLinkToADirectory_AreRefused_AndNothingThereChanges()
    {
        Skip.If(OperatingSystem.IsWindows(), "Unix links.");
        // <shared>/cache, in a directory others can write, is a link to a directory the tool's user owns.
        string shared = Dir("shared");
        Directory.CreateDirectory(shared);
        File.SetUnixFileMode(shared, (UnixFileMode)0b111_111_111);
        string victim = Dir("victim");
        Fill(victim, 3, 1000);
        var before = Directory.GetFiles(victim).Order().ToArray();
        string link = Path.Join(shared, "cache");
        File.CreateSymbolicLink(link, victim);
        string archive = Path.Join(_root, "a.tar.gz");
        Assert.Equal(Cli.Ok, Run("export", "-d", victim, archive).Code);

        foreach (var args in new[] { new[] { "trim", "--max-size", "1" }, ["clear"], ["import", "--trust-archive", archive] })
        {
            var (code, _, error) = Run([.. args, "-d", link]);
            Assert.Equal(Cli.Unusable, code);
            Assert.Contains("symbolic link", error);
        }

        Assert.Equal(before, Directory.GetFiles(victim).Order().ToArray());
    }

    [Fact]
    public void AnUnknownCommand_IsAUsageError()
    {
        var (code, _, error) = Run("frobnicate");
        Assert.Equal(Cli.Usage, code);
        Assert.Contains("filecache --help", error);
    }

    [Fact]
    public void TheBuiltTool_RunsAsAProcess()
    {
        Fill(Dir("c"), 2, 100);
        string tool = Path.Join(AppContext.BaseDirectory, "FileCache.Tool.dll");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { tool, "stats", "--dir", Dir("c"), "--json" })
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, process.StandardError.ReadToEnd());
        Assert.Equal(2, Json(output).GetProperty("entries").GetInt32());
    }
}
