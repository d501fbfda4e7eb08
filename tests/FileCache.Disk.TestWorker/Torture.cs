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
