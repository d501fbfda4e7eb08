using System.Globalization;
using FileCache;
using FileCache.Disk;
using FileCache.Specification.Tests;

// Modes (all keys are TestKeys.Key(0..n)):
//   write-loop <dir>                   Add large entries forever; prints "ready" after the first one.
//   write-stall <dir>                  Begin one Add, print "stalled" once 1.5 MiB of its content was
//                                      read (the temp file exists and holds data), then hang: a kill
//                                      mid-write, placed exactly.
//   hammer <dir> <threads> <millis>    Random Add/TryGet/Delete; exit 0 when every hit was valid.
//   torture <dir> <kills> <corruptions> <processes> <threads> <seconds>   see Torture.cs
//   shared <dir> <id> <maxSize>        A member of a group-shared authenticated cache (0770/0660):
//                                      Add key <id>, read keys 0..9, trim; print what it saw.
//   powerloss-write / powerloss-check  the two halves of a power-loss run (PowerLoss.cs)
//   evict-torture <dir> <processes> <threads> <seconds> <maxSize>   eviction under fire (Torture.Evict)
//   readonly-get <dir> <keyId>         Validate and open a read-only tier, look up one key: hit or miss.
//   add-one <dir>                      Add one entry into a directory the cache creates.
//   fill <dir> <maxSize> <count> <id>  Add <count> 256 KiB entries with eviction on; print the
//                                      largest directory size seen right after one of its Adds.
FileCache.Tests.ParentWatch.Start(); // never outlive the test host
string mode = args[0];
string dir = args[1];
switch (mode)
{
    case "write-loop":
    {
        var cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = dir, MaxSize = null });
        var random = new Random();
        bool announced = false;
        while (true)
        {
            int keyId = random.Next(8);
            cache.Add(TestKeys.Key(keyId), new MemoryStream(TestPayload.Create(keyId, Environment.ProcessId, (1 << 20) + random.Next(4 << 20))));
            if (!announced)
            {
                Console.WriteLine("ready");
                announced = true;
            }
        }
    }

    case "write-stall":
    {
        var cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = dir, MaxSize = null });
        int keyId = Environment.ProcessId % 8;
        var payload = TestPayload.Create(keyId, Environment.ProcessId, 4 << 20);
        cache.Add(TestKeys.Key(keyId), new StallingStream(payload, 3 << 19));
        return 1; // unreachable: the stream never ends
    }

    case "hammer":
    {
        int threads = int.Parse(args[2], CultureInfo.InvariantCulture);
        var until = DateTime.UtcNow.AddMilliseconds(int.Parse(args[3], CultureInfo.InvariantCulture));
        var cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = dir, MaxSize = null });
        int problems = 0, hits = 0, ops = 0;
        var tasks = Enumerable.Range(0, threads).Select(t => Task.Run(() =>
        {
            var random = new Random(Environment.ProcessId * 31 + t);
            while (DateTime.UtcNow < until)
            {
                int keyId = random.Next(4);
                var key = TestKeys.Key(keyId);
                Interlocked.Increment(ref ops);
                switch (random.Next(10))
                {
                    case < 3:
                        cache.Add(key, new MemoryStream(TestPayload.Create(keyId, Environment.ProcessId, TestPayload.MinimumLength + random.Next(256 * 1024))));
                        break;
                    case 3:
                        cache.Delete(key);
                        break;
                    default:
                        Torture.CheckedGet(cache, keyId, ref hits, ref problems);

                        break;
                }
            }
        })).ToArray();
        Task.WaitAll(tasks);
        Console.WriteLine($"ops={ops} hits={hits} problems={problems}");
        return problems == 0 && hits > 0 ? 0 : 1;
    }

    case "readonly-get":
    {
        // The precompiled tier of an app started as another user: validated at start like DI does,
        // then one lookup. A tier it cannot use must be a miss, never a failure (exit 0 either way).
        var options = new DiskCodeCacheOptions { Directory = dir, ReadOnly = true };
        var failures = options.Validate(new System.ComponentModel.DataAnnotations.ValidationContext(options)).ToList();
        if (failures.Count > 0)
        {
            Console.WriteLine($"start refused: {string.Join("; ", failures.Select(f => f.ErrorMessage))}");
            return 2;
        }

        using var cache = new DiskCodeCache(options);
        bool hit = cache.TryGet(TestKeys.Key(int.Parse(args[2], CultureInfo.InvariantCulture)), out var found);
        found?.Dispose();
        Console.WriteLine(hit ? "hit" : "miss");
        return 0;
    }

    case "add-one":
    {
        // One Add into a directory the cache creates (for strace: which calls set modes).
        using var cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = dir, MaxSize = null });
        cache.Add(TestKeys.Key(1), new MemoryStream(TestPayload.Create(1, 1, TestPayload.MinimumLength)));
        Console.WriteLine("added");
        return 0;
    }

    case "powerloss-write":
        return PowerLoss.Write(dir, args[2] == "flush", int.Parse(args[3], CultureInfo.InvariantCulture), int.Parse(args[4], CultureInfo.InvariantCulture), int.Parse(args[5], CultureInfo.InvariantCulture), args[6]);

    case "powerloss-check":
        return PowerLoss.Check(dir, args[2], args[3] == "flush");

    case "evict-torture":
        return Torture.Evict(dir, int.Parse(args[2], CultureInfo.InvariantCulture), int.Parse(args[3], CultureInfo.InvariantCulture), int.Parse(args[4], CultureInfo.InvariantCulture), long.Parse(args[5], CultureInfo.InvariantCulture));

    case "evict-hammer":
        return Torture.EvictHammer(dir, int.Parse(args[2], CultureInfo.InvariantCulture), int.Parse(args[3], CultureInfo.InvariantCulture), long.Parse(args[4], CultureInfo.InvariantCulture));

    case "torture":
    {
        int Arg(int i) => int.Parse(args[i], CultureInfo.InvariantCulture);
        return Torture.Run(dir, Arg(2), Arg(3), Arg(4), Arg(5), Arg(6));
    }

    case "shared":
    {
        int id = int.Parse(args[2], CultureInfo.InvariantCulture);
        const UnixFileMode GroupReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite;
        DiskCodeCacheOptions Options(long? maxSize) => new()
        {
            Directory = dir,
            AuthenticationKey = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray(),
            FileMode = GroupReadWrite,
            DirectoryMode = GroupReadWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute,
            MaxSize = maxSize,
        };
        int[] hits;
        using (var cache = new DiskCodeCache(Options(null)))
        {
            cache.Add(TestKeys.Key(id), new MemoryStream(TestPayload.Create(id, id, 64 * 1024)));
            hits = Enumerable.Range(0, 10).Where(k => cache.TryGet(TestKeys.Key(k), out var s) && TestPayload.Check(ReadAll(s), k) is null).ToArray();
        }

        using var trimmer = new DiskCodeCache(Options(long.Parse(args[3], CultureInfo.InvariantCulture)));
        int trimmed = trimmer.Trim();
        Console.WriteLine($"hits={string.Join(',', hits)} trimmed={trimmed}");
        return 0;
    }

    case "fill":
    {
        long maxSize = long.Parse(args[2], CultureInfo.InvariantCulture);
        int count = int.Parse(args[3], CultureInfo.InvariantCulture);
        int id = int.Parse(args[4], CultureInfo.InvariantCulture);
        using var cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = dir, MaxSize = maxSize, UseTimeResolution = TimeSpan.Zero });
        long peak = 0;
        for (int i = 0; i < count; i++)
        {
            int keyId = 1000 * id + i;
            cache.Add(TestKeys.Key(keyId), new MemoryStream(TestPayload.Create(keyId, id, 256 * 1024)));
            long size = 0;
            foreach (var file in new DirectoryInfo(dir).EnumerateFiles())
            {
                try
                {
                    size += file.Name.StartsWith('.') ? 0 : file.Length;
                }
                catch (FileNotFoundException)
                {
                    // Evicted by the other process meanwhile.
                }
            }

            peak = Math.Max(peak, size);
        }

        Console.WriteLine($"peak={peak}");
        return 0;
    }
}

Console.Error.WriteLine($"unknown mode {mode}");
return 2;

static byte[] ReadAll(Stream s)
{
    using (s)
    {
        using var m = new MemoryStream();
        s.CopyTo(m);
        return m.ToArray();
    }
}

/// <summary>Serves <c>stallAt</c> bytes, says "stalled" and then blocks forever.</summary>
internal sealed class StallingStream(byte[] data, int stallAt) : MemoryStream(data, writable: false)
{
    public override int Read(byte[] buffer, int offset, int count)
    {
        if (Position >= stallAt)
        {
            Console.WriteLine("stalled");
            Thread.Sleep(Timeout.Infinite);
        }

        return base.Read(buffer, offset, (int)Math.Min(count, stallAt - Position));
    }
}
