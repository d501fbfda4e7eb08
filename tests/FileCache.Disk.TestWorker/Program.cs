using System.Globalization;
using FileCache;
using FileCache.Disk;
using FileCache.Specification.Tests;

// Modes (all keys are TestKeys.Key(0..n)):
//   write-loop <dir>                   Add large entries forever; prints "ready" after the first one.
//   hammer <dir> <threads> <millis>    Random Add/TryGet/Delete; exit 0 when every hit was valid.
//   fill <dir> <maxSize> <count> <id>  Add <count> 256 KiB entries with eviction on; exit 0.
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
                        if (cache.TryGet(key, out var s))
                        {
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

                        break;
                }
            }
        })).ToArray();
        Task.WaitAll(tasks);
        Console.WriteLine($"ops={ops} hits={hits} problems={problems}");
        return problems == 0 && hits > 0 ? 0 : 1;
    }

    case "fill":
    {
        long maxSize = long.Parse(args[2], CultureInfo.InvariantCulture);
        int count = int.Parse(args[3], CultureInfo.InvariantCulture);
        int id = int.Parse(args[4], CultureInfo.InvariantCulture);
        using var cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = dir, MaxSize = maxSize, UseTimeResolution = TimeSpan.Zero });
        for (int i = 0; i < count; i++)
        {
            int keyId = 1000 * id + i;
            cache.Add(TestKeys.Key(keyId), new MemoryStream(TestPayload.Create(keyId, id, 256 * 1024)));
        }

        return 0;
    }
}

Console.Error.WriteLine($"unknown mode {mode}");
return 2;
