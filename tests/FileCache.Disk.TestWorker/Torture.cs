using System.Diagnostics;
using System.Globalization;
using FileCache;
using FileCache.Disk;
using FileCache.Specification.Tests;

/// <summary>
/// torture &lt;dir&gt; &lt;kills&gt; &lt;corruptions&gt; &lt;processes&gt; &lt;threads&gt; &lt;seconds&gt;: the disk tier's
/// torture run (issue 9). Kills writers with SIGKILL mid-write and checks that every visible entry is
/// whole; corrupts entries at random (bit flips, truncations, foreign bytes, entries swapped between
/// keys, in-place rewrites, FIFOs and links under entry names) and checks that none is returned;
/// then runs processes × threads of random Add / TryGet / Delete on one directory. Prints what it
/// found; exits 0 only with zero bad bytes returned and zero hangs.
/// </summary>
internal static class Torture
{
    public static int Run(string dir, int kills, int corruptions, int processes, int threads, int seconds)
    {
        var total = Stopwatch.StartNew();
        int torn = Kills(Path.Join(dir, "kills"), kills, out int killedValid, out int tempsLeft, out int tempsUnswept);
        Console.WriteLine($"kills: {kills} writers killed; {killedValid} entries whole, {torn} torn entries returned; {tempsLeft} temp files left by killed writers, {tempsUnswept} not swept");

        var corrupt = Task.Run(() => Corruptions(Path.Join(dir, "corrupt"), corruptions));
        bool corruptFinished = corrupt.Wait(TimeSpan.FromSeconds(60 + (corruptions / 50)));
        var (accepted, kinds) = corruptFinished ? corrupt.Result : (-1, "");
        Console.WriteLine(corruptFinished
            ? $"corruptions: {corruptions} ({kinds}); {accepted} returned as hits"
            : "corruptions: HANG (the phase did not finish)");

        var hammer = Enumerable.Range(0, processes).Select(_ => Self(TimeSpan.FromSeconds(seconds + 120), "hammer", Path.Join(dir, "hammer"), threads.ToString(CultureInfo.InvariantCulture), (seconds * 1000).ToString(CultureInfo.InvariantCulture))).ToArray();
        Task.WaitAll(hammer);
        int hammerFailures = hammer.Count(h => h.Result.ExitCode != 0);
        int hangs = hammer.Count(h => h.Result.ExitCode == -1) + (corruptFinished ? 0 : 1);
        foreach (var (_, output) in hammer.Select(h => h.Result))
        {
            Console.WriteLine("hammer: " + output.Trim());
        }

        bool clean = torn == 0 && tempsUnswept == 0 && accepted == 0 && hammerFailures == 0 && hangs == 0;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"torture: {(clean ? "clean" : "FAILED")}: bad bytes returned {torn + Math.Max(accepted, 0)}, hammer processes failed {hammerFailures}, hangs {hangs}, {total.Elapsed.TotalSeconds:F0} s"));
        return clean ? 0 : 1;
    }

    /// <summary>
    /// Eviction under fire: <paramref name="processes"/> × <paramref name="threads"/> callers on one
    /// directory whose <paramref name="maxSize"/> is far below the working set (64 keys of 256-768 KiB,
    /// about 32 MiB), each process SIGKILLed and restarted every few seconds, every hit checked byte for
    /// byte. The directory (entries and temps) is sampled every 50 ms. Exits 0 with no bad byte, no
    /// failed process and no temp file left after the final trim.
    /// </summary>
    public static int Evict(string dir, int processes, int threads, int seconds, long maxSize)
    {
        Directory.CreateDirectory(dir);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        var until = DateTime.UtcNow.AddSeconds(seconds);
        var random = new Random(4242);
        string Args(int i) => $"{threads} {(int)(until - DateTime.UtcNow).TotalMilliseconds} {maxSize}";
        var running = new List<Process>();
        for (int i = 0; i < processes; i++)
        {
            running.Add(Start(["evict-hammer", dir, .. Args(i).Split(' ')]));
        }

        var outputs = new System.Collections.Concurrent.ConcurrentBag<string>();
        int kills = 0, failed = 0;
        long peak = 0, samples = 0, sum = 0;
        var nextKill = DateTime.UtcNow.AddMilliseconds(random.Next(1000, 3000));
        while (DateTime.UtcNow < until)
        {
            long bytes = 0;
            foreach (var f in new DirectoryInfo(dir).EnumerateFiles())
            {
                try
                {
                    bytes += f.Name.StartsWith('.') && !f.Name.StartsWith(".tmp-", StringComparison.Ordinal) ? 0 : f.Length;
                }
                catch (FileNotFoundException)
                {
                }
            }

            peak = Math.Max(peak, bytes);
            sum += bytes;
            samples++;
            if (DateTime.UtcNow >= nextKill)
            {
                int victim = random.Next(running.Count);
                running[victim].Kill();
                running[victim].WaitForExit();
                running[victim].Dispose();
                kills++;
                running[victim] = Start(["evict-hammer", dir, .. Args(victim).Split(' ')]);
                nextKill = DateTime.UtcNow.AddMilliseconds(random.Next(1000, 3000));
            }

            Thread.Sleep(50);
        }

        foreach (var p in running)
        {
            string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
            if (!p.WaitForExit(TimeSpan.FromSeconds(60)))
            {
                p.Kill();
                output += " HANG";
            }

            if (p.ExitCode != 0)
            {
                failed++;
            }

            outputs.Add(output.Trim());
        }

        Thread.Sleep(2500); // past the sweep's 2 s grace for new temps
        using (var trimmer = new DiskCodeCache(new DiskCodeCacheOptions { Directory = dir, MaxSize = maxSize }))
        {
            trimmer.Trim();
        }

        int temps = Directory.GetFiles(dir, ".tmp-*").Length;
        long after = new DirectoryInfo(dir).EnumerateFiles().Where(f => !f.Name.StartsWith('.')).Sum(f => f.Exists ? f.Length : 0);
        long ops = 0, hits = 0, bad = 0;
        foreach (var line in outputs)
        {
            foreach (var part in line.Split(' '))
            {
                if (part.StartsWith("ops=", StringComparison.Ordinal)) ops += long.Parse(part[4..], CultureInfo.InvariantCulture);
                if (part.StartsWith("hits=", StringComparison.Ordinal)) hits += long.Parse(part[5..], CultureInfo.InvariantCulture);
                if (part.StartsWith("problems=", StringComparison.Ordinal)) bad += long.Parse(part[9..], CultureInfo.InvariantCulture);
            }
        }

        bool clean = bad == 0 && temps == 0 && after <= maxSize && hits > 0;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"evict: {(clean ? "clean" : "FAILED")}: {processes} processes x {threads} threads x {seconds} s, MaxSize {maxSize >> 10} KiB against ~32 MiB of entries; "
            + $"{kills} processes SIGKILLed (their ops uncounted), {failed} survivors failed; survivors: {ops} ops, {hits} hits checked, {bad} bad; "
            + $"directory (entries + temps): peak {peak >> 10} KiB, mean {(samples == 0 ? 0 : sum / samples) >> 10} KiB; after the final trim {after >> 10} KiB and {temps} temp files"));
        return clean ? 0 : 1;
    }

    /// <summary>A lookup whose hit, if any, is checked byte for byte; counts hits and bad ones.</summary>
    public static void CheckedGet(DiskCodeCache cache, int keyId, ref int hits, ref int problems)
    {
        if (!cache.TryGet(TestKeys.Key(keyId), out var s))
        {
            return;
        }

        Interlocked.Increment(ref hits);
        using var m = new MemoryStream();
        s.CopyTo(m);
        s.Dispose();
        if (TestPayload.Check(m.ToArray(), keyId) is { } problem)
        {
            Console.Error.WriteLine(problem);
            Interlocked.Increment(ref problems);
        }
    }

    /// <summary>One caller process of <see cref="Evict"/>: random Add (60 %) and TryGet over 64 keys, every hit checked.</summary>
    public static int EvictHammer(string dir, int threads, int millis, long maxSize)
    {
        var until = DateTime.UtcNow.AddMilliseconds(millis);
        var cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = dir, MaxSize = maxSize, Durability = DiskDurability.None });
        int problems = 0, hits = 0;
        long ops = 0;
        var tasks = Enumerable.Range(0, threads).Select(t => Task.Run(() =>
        {
            var random = new Random((Environment.ProcessId * 31) + t);
            while (DateTime.UtcNow < until)
            {
                int keyId = random.Next(64);
                var key = TestKeys.Key(keyId);
                Interlocked.Increment(ref ops);
                if (random.Next(10) < 6)
                {
                    cache.Add(key, new MemoryStream(TestPayload.Create(keyId, Environment.ProcessId, (256 << 10) + random.Next(512 << 10))));
                }
                else
                {
                    CheckedGet(cache, keyId, ref hits, ref problems);
                }
            }
        })).ToArray();
        Task.WaitAll(tasks);
        Console.WriteLine($"ops={ops} hits={hits} problems={problems}");
        return problems == 0 ? 0 : 1;
    }

    private static int Kills(string dir, int kills, out int valid, out int temps, out int unswept)
    {
        var random = new Random(1000);
        for (int i = 0; i < kills; i++)
        {
            using var writer = Start("write-loop", dir);
            if (writer.StandardOutput.ReadLine() != "ready")
            {
                throw new InvalidOperationException("a writer did not start: " + writer.StandardError.ReadToEnd());
            }

            Thread.Sleep(random.Next(0, 60));
            writer.Kill(); // SIGKILL: no cleanup of any kind
            writer.WaitForExit();
        }

        temps = Directory.GetFiles(dir, ".tmp-*").Length;
        using var reader = new DiskCodeCache(new DiskCodeCacheOptions { Directory = dir, StaleTempFileAge = TimeSpan.FromMilliseconds(1), MaxSize = null });
        int torn = 0;
        valid = 0;
        for (int keyId = 0; keyId < 8; keyId++)
        {
            if (reader.TryGet(TestKeys.Key(keyId), out var s))
            {
                using (s)
                {
                    using var m = new MemoryStream();
                    s.CopyTo(m);
                    if (TestPayload.Check(m.ToArray(), keyId) is null)
                    {
                        valid++;
                    }
                    else
                    {
                        torn++;
                    }
                }
            }
        }

        Thread.Sleep(10);
        reader.Trim();
        unswept = Directory.GetFiles(dir, ".tmp-*").Length;
        return torn;
    }

    private static (int Accepted, string Kinds) Corruptions(string dir, int count)
    {
        var kinds = new[] { "flip", "truncate", "foreign", "swap", "rewrite", "fifo", "symlink", "flip-trailer" };
        var random = new Random(20261129);
        int accepted = 0;
        using var plain = new DiskCodeCache(new DiskCodeCacheOptions { Directory = Path.Join(dir, "plain"), MaxSize = null });
        using var keyed = new DiskCodeCache(new DiskCodeCacheOptions { Directory = Path.Join(dir, "keyed"), MaxSize = null, AuthenticationKey = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray() });
        for (int i = 0; i < count; i++)
        {
            var cache = (i & 1) == 0 ? plain : keyed;
            int keyId = random.Next(16), otherId = (keyId + 1 + random.Next(15)) % 16;
            var key = TestKeys.Key(keyId);
            string path = cache.GetPath(key);
            cache.Add(key, new MemoryStream(TestPayload.Create(keyId, i, TestPayload.MinimumLength + random.Next(64 * 1024))));
            string kind = kinds[random.Next(kinds.Length)];
            var bytes = File.ReadAllBytes(path);
            switch (kind)
            {
                case "flip":
                    bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
                    File.WriteAllBytes(path, bytes);
                    break;
                case "flip-trailer":
                    bytes[bytes.Length - 1 - random.Next(64)] ^= (byte)(1 << random.Next(8));
                    File.WriteAllBytes(path, bytes);
                    break;
                case "truncate":
                    File.WriteAllBytes(path, bytes[..random.Next(bytes.Length)]);
                    break;
                case "foreign":
                    var foreign = new byte[random.Next(1, 4096)];
                    random.NextBytes(foreign);
                    File.WriteAllBytes(path, foreign);
                    break;
                case "swap":
                    cache.Add(TestKeys.Key(otherId), new MemoryStream(TestPayload.Create(otherId, i, TestPayload.MinimumLength + random.Next(1024))));
                    File.Copy(cache.GetPath(TestKeys.Key(otherId)), path, overwrite: true);
                    break;
                case "rewrite":
                    using (var f = new FileStream(path, FileMode.Open, FileAccess.Write))
                    {
                        f.Position = random.Next(bytes.Length);
                        f.WriteByte((byte)~bytes[f.Position]);
                    }

                    break;
                case "fifo":
                    File.Delete(path);
                    using (var p = Process.Start("mkfifo", path))
                    {
                        p.WaitForExit();
                    }

                    break;
                case "symlink":
                    File.Delete(path);
                    File.CreateSymbolicLink(path, cache.GetPath(TestKeys.Key(otherId)));
                    break;
            }

            bool hit = (i % 3) switch
            {
                0 => cache.TryGet(key, out var s) && Dispose(s),
                1 => cache.TryGetFile(key, out var file) && Dispose(file),
                _ => cache.GetAsync(key).AsTask().GetAwaiter().GetResult() is { } a && Dispose(a),
            };
            if (hit)
            {
                accepted++;
                Console.Error.WriteLine($"corruption {i} ({kind}) was returned as a hit");
            }

            File.Delete(path); // whatever the cache left (it removes only what it may); a no-op when gone
        }

        return (accepted, string.Join(", ", kinds));
    }

    private static bool Dispose(IDisposable d)
    {
        d.Dispose();
        return true;
    }

    private static Process Start(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(typeof(Torture).Assembly.Location);
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        return Process.Start(info)!;
    }

    private static async Task<(int ExitCode, string Output)> Self(TimeSpan timeout, params string[] args)
    {
        using var process = Start(args);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            return (-1, "HANG: " + string.Join(' ', args));
        }

        return (process.ExitCode, await stdout + await stderr);
    }
}
