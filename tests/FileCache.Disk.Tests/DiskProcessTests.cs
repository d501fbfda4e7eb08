using System.Diagnostics;
using FileCache.Specification.Tests;

namespace FileCache.Disk.Tests;

/// <summary>Real child processes: killed writers, several processes on one directory, a full disk.</summary>
public sealed class DiskProcessTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task KilledWriters_LeaveOnlyCompleteEntries_AndTempsAreSwept()
    {
        var random = new Random(1234);
        const int kills = 50;
        for (int i = 0; i < kills; i++)
        {
            // Most kills land at a random moment; every fifth, and the last, lands mid-write on purpose.
            // Later writers sweep a dead writer's temp once it is 2 s old (its lock is free), so what
            // is left for the sweep below is what the last few kills left, at least the last one's.
            bool placed = i % 5 == 4;
            using var writer = Worker.Start(placed ? "write-stall" : "write-loop", _dir.Path);
            string? first = await writer.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(placed ? "stalled" : "ready", first);
            if (!placed)
            {
                await Task.Delay(random.Next(0, 60));
            }

            writer.Kill(); // SIGKILL on Unix: no finally block, no cleanup
            await writer.WaitForExitAsync();
        }

        using var reader = new DiskCodeCache(new DiskCodeCacheOptions { Directory = _dir.Path, StaleTempFileAge = TimeSpan.FromMilliseconds(1), MaxSize = null });
        int valid = 0;
        for (int keyId = 0; keyId < 8; keyId++)
        {
            bool onDisk = File.Exists(reader.GetPath(TestKeys.Key(keyId)));
            if (reader.TryGet(TestKeys.Key(keyId), out var s))
            {
                using var m = new MemoryStream();
                s.CopyTo(m);
                s.Dispose();
                Assert.Null(TestPayload.Check(m.ToArray(), keyId));
                valid++;
            }
            else
            {
                Assert.False(onDisk, $"entry {keyId} is on disk but not valid: a torn write was published");
            }
        }

        Assert.True(valid > 0, "no writer finished a single entry in 50 runs");
        int temps = _dir.Files().Count(f => f.StartsWith(".tmp-", StringComparison.Ordinal));
        Assert.True(temps >= 1, "the last writer, killed mid-write, left no temp file: the sweep below would prove nothing");
        Thread.Sleep(10);
        reader.Trim();
        Assert.DoesNotContain(_dir.Files(), f => f.StartsWith(".tmp-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task FourProcessesTimesFourThreads_EveryHitIsComplete()
    {
        var runs = Enumerable.Range(0, 4).Select(_ => Worker.RunAsync(TimeSpan.FromMinutes(2), "hammer", _dir.Path, "4", "3000")).ToArray();
        var results = await Task.WhenAll(runs);
        foreach (var (exitCode, output) in results)
        {
            Assert.True(exitCode == 0, output);
        }
    }

    [Fact]
    public async Task TwoProcessesAdding_KeepTheDirectoryNearTheLimit()
    {
        const long maxSize = 4L << 20; // 4 MiB; each entry is 256 KiB of payload and a 64-byte frame
        const long entry = (256 << 10) + 64;

        // The mechanism's bound: a process that counts more than the limit since its last scan waits
        // for a trim before its Add returns, but it counts only its own Adds. So while both write flat
        // out, each can have added up to the limit plus the one entry that crossed it: 2 x (limit +
        // one entry), frames included. (A clean-clone CI run saw exactly 32 entries: 2 x 16 entries of
        // 256 KiB + 64 bytes, 2,048 bytes above 2 x the limit; an earlier bound of 2 x the limit
        // forgot the frames and the crossing entry.)
        const long bound = 2 * (maxSize + entry);
        var writers = new[] { Worker.RunAsync(TimeSpan.FromMinutes(2), "fill", _dir.Path, maxSize.ToString(System.Globalization.CultureInfo.InvariantCulture), "120", "1"),
                              Worker.RunAsync(TimeSpan.FromMinutes(2), "fill", _dir.Path, maxSize.ToString(System.Globalization.CultureInfo.InvariantCulture), "120", "2") };
        long peak = 0;
        var all = Task.WhenAll(writers);
        while (!all.IsCompleted)
        {
            peak = Math.Max(peak, DirectorySize());
            await Task.Delay(5);
        }

        foreach (var (exitCode, output) in await all)
        {
            Assert.True(exitCode == 0, output);
            // Each process measured the directory right after each of its own Adds.
            long own = long.Parse(output.Split("peak=")[1].Trim(), System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(own <= bound, $"a process saw {own} bytes after one of its Adds, against a limit of {maxSize} (bound {bound})");
        }

        // Writing 60 MiB through a 4 MiB cache as fast as two processes can: trims keep it bounded
        // while it runs (measured peaks: 1.0x to 2.0x the limit, the top under CI load).
        Assert.True(peak <= bound, $"peak {peak} bytes against a limit of {maxSize} (bound {bound})");
        using var cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = _dir.Path, MaxSize = maxSize });
        cache.Trim();
        Assert.True(DirectorySize() <= maxSize, $"after a trim {DirectorySize()} bytes remain against {maxSize}");
    }

    [SkippableFact]
    public async Task TortureRun_Small_FindsNoBadBytesAndNoHangs()
    {
        Skip.IfNot(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), "The corruption kinds include FIFOs and links (Unix).");
        // The full-scale run (1,000 kills, 10,000 corruptions, 8 x 8 x 60 s) is documented in
        // docs/security.md; this is the same harness, small enough for every test run.
        var (exitCode, output) = await Worker.RunAsync(TimeSpan.FromMinutes(4), "torture", _dir.Path, "15", "800", "2", "2", "2");
        Assert.True(exitCode == 0, output);
        Assert.Contains("torture: clean", output);
        Assert.Contains("0 torn entries returned", output);
        Assert.Contains("; 0 returned as hits", output);
    }

    [SkippableFact]
    public async Task EvictionUnderFire_Small_NoBadByteNoTempLeft_TheDirectoryEndsWithinItsLimit()
    {
        Skip.IfNot(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), "SIGKILL and flock (Unix).");
        // The full-scale run (8 x 8 x 60 s, 4 MiB against 32 MiB) is recorded in docs/security.md.
        var (exitCode, output) = await Worker.RunAsync(TimeSpan.FromMinutes(3), "evict-torture", _dir.Path, "3", "3", "8", (4L << 20).ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(exitCode == 0, output);
        Assert.Contains("evict: clean", output);
        Assert.Contains(" 0 bad;", output);
        Assert.Contains("and 0 temp files", output);
    }

    [SkippableFact]
    public void DiskFull_AddFailsWithIOException_NoPartialEntryOrTemp_OldEntriesStillRead()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && Environment.UserName == "root", "Mounting a small tmpfs needs Linux and root.");
        Directory.CreateDirectory(_dir.Path);
        Unix.Run("mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", _dir.Path);
        try
        {
            using var cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = _dir.Path, MaxSize = null });
            // Disposed (background trim stopped) when this block ends, before the unmount below.
            var small = TestPayload.Create(1, 1, 512 * 1024);
            cache.Add(TestKeys.Key(1), new MemoryStream(small));
            var e = Assert.ThrowsAny<IOException>(() => cache.Add(TestKeys.Key(2), new MemoryStream(TestPayload.Create(2, 1, 4 << 20))));
            Assert.Contains(_dir.Path, e.Message);
            Assert.Equal([TestKeys.Key(1).ToString()], _dir.Files().Where(f => f != ".trim.lock"));
            Assert.True(cache.TryGet(TestKeys.Key(1), out var s));
            using var m = new MemoryStream();
            s.CopyTo(m);
            s.Dispose();
            Assert.Equal(small, m.ToArray());
        }
        finally
        {
            Unix.Run("umount", _dir.Path);
        }
    }

    private long DirectorySize()
    {
        try
        {
            return new DirectoryInfo(_dir.Path).EnumerateFiles().Where(f => f.Name.Length == 64).Sum(f =>
            {
                try
                {
                    return f.Length;
                }
                catch (FileNotFoundException)
                {
                    return 0;
                }
            });
        }
        catch (DirectoryNotFoundException)
        {
            return 0;
        }
    }
}
