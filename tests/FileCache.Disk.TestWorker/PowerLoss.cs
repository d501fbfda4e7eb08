using System.Buffers.Binary;
using System.Globalization;
using FileCache;
using FileCache.Disk;
using FileCache.Specification.Tests;

/// <summary>
/// The two halves of a power-loss run (tests/FileCache.Disk.Tests/PowerLossTests.cs).
/// <para><c>powerloss-write &lt;dir&gt; &lt;flush|none&gt; &lt;keys&gt; &lt;bytes&gt; &lt;gen&gt; &lt;add|forever|mixed&gt;</c>: one thread of
/// operations; before each it prints <c>begin add K G</c> (or <c>begin delete K</c>, <c>begin get K</c>,
/// <c>begin trim</c>) and the moment it returns <c>end</c>. <c>add</c> adds keys 0..keys-1 once with
/// generation <c>gen</c>; <c>forever</c> adds them round and round with rising generations; <c>mixed</c>
/// mixes adds with deletes, hits that refresh the use time, and trims. Stops at the first failure
/// (a crashed file system answers EIO) with <c>error</c>.</para>
/// <para><c>powerloss-check &lt;dir&gt; &lt;log&gt; &lt;flush|none&gt;</c>: reads every key after the crash and
/// checks both invariants against the writer's log: no hit is torn, corrupt or of another key (any
/// durability), and under flush every Add that returned is still there (or what the one operation in
/// flight made of it; a Delete is not made durable, so a deleted entry may come back). Then trims.
/// Prints a census and <c>verdict ok</c> or <c>verdict FAILED</c>.</para>
/// </summary>
internal static class PowerLoss
{
    public static int Write(string dir, bool flush, int keys, int bytes, int gen, string mode)
    {
        var cache = new DiskCodeCache(new DiskCodeCacheOptions
        {
            Directory = dir,
            Durability = flush ? DiskDurability.Flush : DiskDurability.None,
            MaxSize = null, // no eviction: every returned Add must be findable
            UseTimeResolution = TimeSpan.Zero, // every hit writes its use time: that write crashes too
        });
        var random = new Random(gen);
        try
        {
            if (mode == "add")
            {
                for (int k = 0; k < keys; k++)
                {
                    Add(cache, k, gen, bytes);
                }
            }
            else
            {
                for (int i = 0; ; i++)
                {
                    int k = i % keys;
                    int choice = mode == "mixed" ? random.Next(10) : 0;
                    switch (choice)
                    {
                        case < 6:
                            Add(cache, k, gen + i, bytes);
                            break;
                        case 6:
                            Console.WriteLine($"begin delete {k}");
                            cache.Delete(TestKeys.Key(k));
                            Console.WriteLine("end");
                            break;
                        case < 9:
                            Console.WriteLine($"begin get {k}");
                            if (cache.TryGet(TestKeys.Key(k), out var s))
                            {
                                s.Dispose();
                            }

                            Console.WriteLine("end");
                            break;
                        default:
                            Console.WriteLine("begin trim");
                            cache.Trim();
                            Console.WriteLine("end");
                            break;
                    }

                    if (mode == "mixed" && i >= keys * 4)
                    {
                        break;
                    }
                }
            }

            Console.WriteLine("done");
            return 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InsecureCacheDirectoryException)
        {
            Console.WriteLine($"error {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
            return 3;
        }
    }

    private static void Add(DiskCodeCache cache, int k, int gen, int bytes)
    {
        Console.WriteLine($"begin add {k} {gen}");
        cache.Add(TestKeys.Key(k), new MemoryStream(TestPayload.Create(k, gen, bytes)));
        Console.WriteLine("end");
    }

    public static int Check(string dir, string logPath, bool flush)
    {
        // What the log says each key must (or may) hold: a set of acceptable generations, -1 for none.
        var must = new Dictionary<int, HashSet<int>>(); // after the last completed operation
        var ever = new Dictionary<int, HashSet<int>>(); // every generation ever begun, and "none"
        var lastAdded = new Dictionary<int, int>();
        (string Kind, int Key, int Gen)? pending = null;
        int keys = 0;
        foreach (var line in File.ReadAllLines(logPath))
        {
            var w = line.Split(' ');
            if (w[0] == "begin" && w[1] != "trim")
            {
                int k = int.Parse(w[2], CultureInfo.InvariantCulture);
                keys = Math.Max(keys, k + 1);
                pending = (w[1], k, w.Length > 3 ? int.Parse(w[3], CultureInfo.InvariantCulture) : 0);
                Set(ever, k).Add(-1);
                if (w[1] == "add")
                {
                    Set(ever, k).Add(pending.Value.Gen);
                }
            }
            else if (w[0] == "begin")
            {
                pending = ("trim", -1, 0);
            }
            else if (w[0] == "end" && pending is { } done)
            {
                if (done.Kind == "add")
                {
                    must[done.Key] = [done.Gen];
                    lastAdded[done.Key] = done.Gen;
                }
                else if (done.Kind == "delete")
                {
                    // Not made durable: gone, or back as the entry it removed.
                    must[done.Key] = lastAdded.TryGetValue(done.Key, out int g) ? [-1, g] : [-1];
                }

                pending = null;
            }
        }

        // The one operation in flight may or may not have happened.
        if (pending is { Kind: "add" or "delete" } inFlight)
        {
            var now = must.TryGetValue(inFlight.Key, out var m) ? new HashSet<int>(m) : [-1];
            now.Add(inFlight.Kind == "add" ? inFlight.Gen : -1);
            must[inFlight.Key] = now;
        }

        int entryFiles = 0, empty = 0, hits = 0, rejected = 0, corrupt = 0, lost = 0;
        var problems = new List<string>();
        if (Directory.Exists(dir))
        {
            foreach (var f in new DirectoryInfo(dir).EnumerateFiles())
            {
                if (!f.Name.StartsWith('.'))
                {
                    entryFiles++;
                    empty += f.Length == 0 ? 1 : 0;
                }
            }
        }

        using var cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = dir, MaxSize = null });
        for (int k = 0; k < keys; k++)
        {
            int found = -1;
            bool present = File.Exists(cache.GetPath(TestKeys.Key(k)));
            if (cache.TryGet(TestKeys.Key(k), out var s))
            {
                hits++;
                using var copy = new MemoryStream();
                s.CopyTo(copy);
                s.Dispose();
                var bytes = copy.ToArray();
                if (TestPayload.Check(bytes, k) is { } problem)
                {
                    corrupt++;
                    problems.Add($"key {k}: {problem}");
                    continue;
                }

                found = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(4));
            }
            else if (present)
            {
                rejected++;
            }

            if (found >= 0 && !Set(ever, k).Contains(found))
            {
                corrupt++;
                problems.Add($"key {k}: holds generation {found}, which no Add wrote");
            }
            else if (flush && must.TryGetValue(k, out var ok) && !ok.Contains(found))
            {
                lost++;
                problems.Add($"key {k}: holds {(found < 0 ? "nothing" : "generation " + found)}; a returned Add left {string.Join(" or ", ok.Select(g => g < 0 ? "nothing" : "generation " + g))}");
            }
        }

        string trim;
        try
        {
            cache.Trim();
            trim = "ok";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InsecureCacheDirectoryException)
        {
            trim = "FAILED " + e.Message.ReplaceLineEndings(" ");
        }

        bool ok2 = corrupt == 0 && lost == 0 && trim == "ok";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"census entryfiles={entryFiles} empty={empty} rejected={rejected} hits={hits} keys={keys} corrupt={corrupt} lost={lost} trim={trim}"));
        foreach (var p in problems)
        {
            Console.WriteLine("problem " + p);
        }

        Console.WriteLine(ok2 ? "verdict ok" : "verdict FAILED");
        return ok2 ? 0 : 1;
    }

    private static HashSet<int> Set(Dictionary<int, HashSet<int>> map, int key)
        => map.TryGetValue(key, out var set) ? set : map[key] = [];
}
