using System.Diagnostics;
using FileCache.Specification.Tests;

namespace FileCache.Disk.Tests;

/// <summary>
/// Deploys that must work and the attacks of issue 17 that worked before it: a root-published read-only
/// tier run by the container's user, links on the cache path, a directory swapped after its check,
/// the mkdir/chmod race, a planted sparse entry, and the temp files of killed writers.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class DeployAttackTests : IDisposable
{
    private const int AppUid = 1654; // the official .NET images' non-root user ($APP_UID)
    private static readonly byte[] Key32 = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
    private readonly TempDirectory _dir = new();
    private readonly ScopedMeters _meters = new();

    public void Dispose()
    {
        _meters.Dispose();
        _dir.Dispose();
    }

    private string Make(string relative, int mode)
    {
        string path = Path.Join(_dir.Path, relative);
        Directory.CreateDirectory(path);
        File.SetUnixFileMode(path, (UnixFileMode)mode);
        return path;
    }

    [SkippableFact]
    public async Task ARootPublishedReadOnlyTier_IsReadByTheContainersUser_AndAnUnreadableOneIsAMiss_NeverARefusedStart()
    {
        Skip.IfNot(Unix.IsRoot && OperatingSystem.IsLinux(), "Running a process as uid 1654 (setpriv) needs root on Linux; CI runs as root.");
        Make("", 0b111_101_101);
        string published = Path.Join(_dir.Path, "wasm-precompiled");
        // What dotnet publish -p:WasmPrecompile=true writes as root (filecache warm --readable-by-all).
        using (var cache = new DiskCodeCache(new DiskCodeCacheOptions
        {
            Directory = published,
            DirectoryMode = (UnixFileMode)0b111_101_101,
            FileMode = (UnixFileMode)0b110_100_100,
        }))
        {
            cache.Add(TestKeys.Key(1), new MemoryStream(TestPayload.Create(1, 1, TestPayload.MinimumLength)));
        }

        var read = await Worker.RunAsAsync((AppUid, AppUid), TimeSpan.FromMinutes(1), "readonly-get", published, "1");
        Assert.True(read.ExitCode == 0, read.Output);
        Assert.Contains("hit", read.Output);

        // Published the old way (0700): the app's user cannot read it. A miss, not a refused start.
        File.SetUnixFileMode(published, (UnixFileMode)0b111_000_000);
        read = await Worker.RunAsAsync((AppUid, AppUid), TimeSpan.FromMinutes(1), "readonly-get", published, "1");
        Assert.True(read.ExitCode == 0, read.Output);
        Assert.Contains("miss", read.Output);

        // Writable by others: refused as a source of code, still a miss, not a failure.
        File.SetUnixFileMode(published, (UnixFileMode)0b111_111_111);
        read = await Worker.RunAsAsync((AppUid, AppUid), TimeSpan.FromMinutes(1), "readonly-get", published, "1");
        Assert.True(read.ExitCode == 0, read.Output);
        Assert.Contains("miss", read.Output);
    }

    [SkippableFact]
    public void ALinkOnThePath_InADirectoryOthersCanWrite_IsRefused_EvenWithAKey_AndNothingBehindItChanges()
    {
        Skip.IfNot(Unix.IsUnix, "Unix links.");
        Make("", 0b111_101_101);
        string shared = Make("shared", 0b111_111_111); // others can write, not sticky: they could swap a link here
        string victim = Make("victim", 0b111_000_000);
        string planted = Path.Join(victim, TestKeys.Key(1).ToString());
        File.WriteAllBytes(planted, [1, 2, 3]);
        string link = Path.Join(shared, "cache");
        File.CreateSymbolicLink(link, victim);

        foreach (byte[]? key in new[] { null, Key32 })
        {
            using var cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = link, AuthenticationKey = key });
            var e = Assert.Throws<InsecureCacheDirectoryException>(() => cache.Trim());
            Assert.Contains(link, e.Message);
            Assert.Contains("symbolic link", e.Message);
            Assert.Throws<InsecureCacheDirectoryException>(() => cache.Delete(TestKeys.Key(1)));
            Assert.Throws<InsecureCacheDirectoryException>(() => cache.Add(TestKeys.Key(2), new MemoryStream([9])));
        }

        Assert.Equal([planted], Directory.GetFiles(victim));
        Assert.Equal([1, 2, 3], File.ReadAllBytes(planted));
    }

    [SkippableFact]
    public async Task AWorkerWhoseTestHostDied_Exits_InsteadOfWritingForEver()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "Re-parenting is watched through /proc (Linux).");
        Make("", 0b111_000_000);
        string dir = Make("cache", 0b111_000_000);
        string dll = Path.Join(AppContext.BaseDirectory, "FileCache.Disk.TestWorker.dll");

        // A stand-in test host: starts a writer that never stops on its own, then dies.
        var info = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true };
        foreach (var a in new[] { "-c", "FILECACHE_TEST_PARENT=$$ dotnet \"$0\" write-loop \"$1\" > /dev/null 2>&1 & echo $!", dll, dir })
        {
            info.ArgumentList.Add(a);
        }

        using var host = Process.Start(info)!;
        int writer = int.Parse((await host.StandardOutput.ReadLineAsync())!, System.Globalization.CultureInfo.InvariantCulture);
        await host.WaitForExitAsync();
        var until = DateTime.UtcNow.AddSeconds(15);
        while (DateTime.UtcNow < until && Alive(writer))
        {
            await Task.Delay(100);
        }

        Assert.False(Alive(writer), "the writer outlived its test host");
    }

    private static bool Alive(int pid)
        => File.Exists($"/proc/{pid}/stat") && File.ReadAllText($"/proc/{pid}/stat") is var stat && stat[(stat.LastIndexOf(')') + 2)] != 'Z';

    [SkippableFact]
    public void ALinkOfOurOwn_InAPrivateDirectory_IsFollowed()
    {
        Skip.IfNot(Unix.IsUnix, "Unix links.");
        Make("", 0b111_000_000);
        string real = Make("real", 0b111_000_000);
        string link = Path.Join(_dir.Path, "cache");
        File.CreateSymbolicLink(link, real);
        using var cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = link });
        cache.Add(TestKeys.Key(1), new MemoryStream([7]));
        Assert.Equal([7], cache.GetBytes(TestKeys.Key(1)));
        Assert.Single(Directory.GetFiles(real), f => Path.GetFileName(f) == TestKeys.Key(1).ToString());
    }

    [SkippableFact]
    public void TheDirectorySwappedForALinkAfterItsCheck_RedirectsNoDeleteNoTrimNoAdd()
    {
        Skip.IfNot(Unix.IsUnix, "Unix links.");
        Make("", 0b111_101_101);
        string shared = Make("shared", 0b111_111_111);
        string victim = Make("victim", 0b111_000_000);
        string planted = Path.Join(victim, TestKeys.Key(1).ToString());
        File.WriteAllBytes(planted, [1, 2, 3]);
        string cacheDir = Path.Join(shared, "cache");

        // A keyed cache in a shared parent: checked and used.
        using var cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = cacheDir, AuthenticationKey = Key32, MaxSize = 1 });
        cache.Add(TestKeys.Key(3), new MemoryStream([5]));

        // Another user who can write to the parent swaps the checked directory for a link.
        Directory.Move(cacheDir, Path.Join(shared, "moved"));
        File.CreateSymbolicLink(cacheDir, victim);

        Assert.Throws<InsecureCacheDirectoryException>(() => cache.Delete(TestKeys.Key(1)));
        Assert.Throws<InsecureCacheDirectoryException>(() => cache.Trim());
        Assert.Throws<InsecureCacheDirectoryException>(() => cache.Add(TestKeys.Key(1), new MemoryStream([6])));
        Assert.Equal([planted], Directory.GetFiles(victim));
        Assert.Equal([1, 2, 3], File.ReadAllBytes(planted));
    }

    [SkippableFact]
    public void CreatingTheDirectory_WhileAnotherUserSwapsItForALink_NeverChangesTheLinksTarget()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "The race runs on Linux.");
        Make("", 0b111_101_101);
        string shared = Make("shared", 0b111_111_111);
        string victim = Path.Join(_dir.Path, "victim-file");
        File.WriteAllBytes(victim, [1]);
        File.SetUnixFileMode(victim, (UnixFileMode)0b110_100_100);
        string cacheDir = Path.Join(shared, "cache");
        var groupMode = (UnixFileMode)0b111_111_000; // a group cache: 0770, with a key

        // The attacker: whenever the cache directory appears, swap it for a link to the victim file.
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        int swaps = 0;
        var attacker = Task.Run(() =>
        {
            int n = 0;
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    if (Directory.Exists(cacheDir) && !File.GetAttributes(cacheDir).HasFlag(FileAttributes.ReparsePoint))
                    {
                        string away = Path.Join(shared, "away-" + n++);
                        Directory.Move(cacheDir, away);
                        File.CreateSymbolicLink(cacheDir, victim);
                        Interlocked.Increment(ref swaps);
                    }
                }
                catch (IOException)
                {
                }
            }
        });

        int attempts = 0;
        while (!stop.IsCancellationRequested)
        {
            attempts++;
            try
            {
                if (File.Exists(cacheDir) || Directory.Exists(cacheDir))
                {
                    File.Delete(cacheDir); // the link, left by the last round
                }

                using var cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = cacheDir, AuthenticationKey = Key32, DirectoryMode = groupMode });
                cache.Add(TestKeys.Key(1), new MemoryStream([1]));
            }
            catch (Exception e) when (e is IOException or InsecureCacheDirectoryException or UnauthorizedAccessException)
            {
            }
        }

        attacker.Wait();
        Assert.True(swaps > 0, $"the attacker never swapped ({attempts} attempts): the race did not run");
        Assert.Equal((UnixFileMode)0b110_100_100, File.GetUnixFileMode(victim));
    }

    [SkippableFact]
    public async Task CreatingTheDirectory_SetsModesOnHandles_NeverByPath()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && File.Exists("/usr/bin/strace"), "strace on Linux (.ci/run installs it).");
        Make("", 0b111_000_000);
        string dir = Path.Join(_dir.Path, "a", "b", "cache");
        string trace = Path.Join(_dir.Path, "trace.txt");
        string dll = Path.Join(AppContext.BaseDirectory, "FileCache.Disk.TestWorker.dll");
        var info = new ProcessStartInfo("strace") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-f", "-qq", "-e", "trace=chmod,fchmodat,fchmod,mkdir,mkdirat", "-o", trace, "dotnet", dll, "add-one", dir })
        {
            info.ArgumentList.Add(a);
        }

        using var p = Process.Start(info)!;
        string output = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, output + await p.StandardError.ReadToEndAsync());
        Assert.Contains("added", output);
        string[] calls = File.ReadAllLines(trace);
        Assert.Contains(calls, l => l.Contains("mkdirat(", StringComparison.Ordinal) && l.Contains("\"cache\"", StringComparison.Ordinal));
        Assert.DoesNotContain(calls, l => l.Contains(" chmod(", StringComparison.Ordinal) || l.Contains("fchmodat(", StringComparison.Ordinal) || l.Contains("fchmodat2(", StringComparison.Ordinal));
        Assert.Equal((UnixFileMode)0b111_000_000, File.GetUnixFileMode(dir));
    }

    [Fact]
    public void APlantedSparseEntry_OfGigabytes_IsRejectedOnItsSize_WithoutAllocatingOrReading()
    {
        Make("", 0b111_000_000);
        string dir = Make("cache", 0b111_000_000);
        string path = Path.Join(dir, TestKeys.Key(1).ToString());
        using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
        {
            file.SetLength(1536L << 20); // sparse 1.5 GiB
            file.Position = file.Length - 64;
            file.Write(new byte[64]);
        }

        File.SetUnixFileMode(path, (UnixFileMode)0b110_000_000);
        using var reasons = _meters.Collect("filecache.corrupt_entries");
        using var cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = dir, AuthenticationKey = Key32 }, _meters.Factory);
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.False(cache.TryGetEntry(TestKeys.Key(1), CacheLookupScope.All, out _));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.InRange(allocated, 0, 1 << 20);
        Assert.Equal(1, reasons.Sum("filecache.reason", "TooLarge"));
        Assert.False(File.Exists(path)); // removed like any unusable entry

        // Add refuses content over the bound too, naming the option.
        using var small = new DiskCodeCache(new DiskCodeCacheOptions { Directory = dir, MaxEntrySize = 1000 });
        var e = Assert.Throws<ArgumentException>(() => small.Add(TestKeys.Key(2), new MemoryStream(new byte[1001])));
        Assert.Contains("MaxEntrySize", e.Message);
    }

    [SkippableFact]
    public async Task WritersKilledMidWrite_LeaveNoTempFile_AfterTheNextTrim()
    {
        Skip.IfNot(Unix.IsUnix, "flock and SIGKILL.");
        Make("", 0b111_000_000);
        string dir = Make("cache", 0b111_000_000);
        int left = 0;
        var random = new Random(17);
        // 100 writers of 1-5 MiB entries, killed at random moments, ten at a time; one of each ten
        // is killed mid-write for certain (it hangs half way through its content).
        for (int round = 0; round < 10; round++)
        {
            var writers = Enumerable.Range(0, 10).Select(i => Worker.Start(i == 0 ? "write-stall" : "write-loop", dir)).ToList();
            for (int i = 0; i < writers.Count; i++)
            {
                Assert.Equal(i == 0 ? "stalled" : "ready", await writers[i].StandardOutput.ReadLineAsync());
            }

            await Task.Delay(random.Next(50, 400));
            foreach (var w in writers)
            {
                w.Kill();
            }

            foreach (var w in writers)
            {
                await w.WaitForExitAsync();
                w.Dispose();
            }

            left = Math.Max(left, Directory.GetFiles(dir, ".tmp-*").Length);
        }

        Assert.True(left > 0, "no writer died mid-write: the test proved nothing");
        await Task.Delay(DiskCodeCache.TempLockGrace + TimeSpan.FromMilliseconds(200));
        using var cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = dir, MaxSize = null });
        cache.Trim();
        Assert.Empty(Directory.GetFiles(dir, ".tmp-*"));
    }

    [SkippableFact]
    public void ALiveWritersTemp_IsKept_AndCountsAgainstMaxSize()
    {
        Skip.IfNot(Unix.IsUnix, "flock.");
        Make("", 0b111_000_000);
        string dir = Make("cache", 0b111_000_000);
        using var cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = dir, MaxSize = 3 << 20, TrimRatio = 1.0 });
        cache.Add(TestKeys.Key(1), new MemoryStream(new byte[1 << 20]));
        cache.Add(TestKeys.Key(2), new MemoryStream(new byte[1 << 20]));

        // A writer in the middle of an entry, holding its temp's lock, older than the grace period.
        string temp = Path.Join(dir, ".tmp-live-writer");
        using var writer = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        writer.Write(new byte[1 << 20]);
        writer.Flush();
        File.SetLastWriteTimeUtc(temp, DateTime.UtcNow - TimeSpan.FromMinutes(1));

        cache.Trim();
        Assert.True(File.Exists(temp));
        Assert.Single(cache.EnumerateEntries()); // 2 MiB of entries + 1 MiB in flight > 3 MiB: one entry went
    }
}
