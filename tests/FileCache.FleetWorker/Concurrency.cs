using System.Diagnostics;
using System.Globalization;
using FileCache.Wasmtime;
using Microsoft.Extensions.DependencyInjection;

namespace FileCache.FleetWorker;

/// <summary>
/// concurrency &lt;redis&gt; &lt;prefix&gt; &lt;sync|async|loadasync&gt; &lt;callers&gt; &lt;seconds&gt; [host-min-threads]:
/// callers loop over random Add / Delete / TryGet (or LoadAsync of one module) on the distributed
/// tier, from a fresh process whose thread pool starts at its defaults (or, with
/// <c>host-min-threads</c>, sized by the host for its blocking callers). Prints the operations done,
/// operations per second, and how long the slowest caller took for its first 20 operations; exits
/// 1 when some caller did not finish 20 operations in the time (a stall).
/// </summary>
internal static class Concurrency
{
    public static int Run(string redis, string prefix, string api, int callers, double seconds, bool hostSizesPool)
    {
        ThreadPool.GetMinThreads(out int minBefore, out _);
        if (hostSizesPool)
        {
            // What the README tells a host that blocks many pool threads on a fleet tier: size the pool
            // for them (the library never does; it waits at one task wait, which the runtime compensates for).
            ThreadPool.GetMinThreads(out _, out int io);
            ThreadPool.SetMinThreads(callers + Environment.ProcessorCount, io);
        }

        var services = new ServiceCollection();
        services.AddStackExchangeRedisCache(o => o.Configuration = redis);
        services.AddWasmCodeCache(c => c
            .UseDistributed(o => { o.AuthenticationKey = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray(); o.KeyPrefix = prefix; })
            .AddWasmtime(o => o.LiveModuleBudget = 0)); // every LoadAsync goes to the store, which is what this measures
        using var provider = services.BuildServiceProvider();
        var cache = provider.GetRequiredService<IWasmCodeCache>();
        var loader = provider.GetRequiredService<WasmtimeModuleCache>();
        var settings = new WasmtimeEngineSettings();
        using var engine = settings.CreateEngine();
        var wasm = global::Wasmtime.Module.ConvertText("(module (func (export \"answer\") (result i32) i32.const 42))");
        var key = CacheKey.Compute("concurrency"u8);
        var payload = new byte[64 * 1024 + 12 * 1024];
        Random.Shared.NextBytes(payload);
        cache.Add(key, new MemoryStream(payload)); // warm the connection and the entry
        loader.Load(engine, new WasmSource("m", wasm)).Dispose();

        long operations = 0;
        int started = 0;
        var first20 = new double[callers];
        var clock = Stopwatch.StartNew();
        var until = TimeSpan.FromSeconds(seconds);
        // The highest thread-pool minimum seen while the callers run, sampled off the pool: a library
        // that raised it while callers block and restored it afterwards shows here, not at the end.
        int minSeen = minBefore;
        var sampler = new Thread(() =>
        {
            while (clock.Elapsed < until)
            {
                ThreadPool.GetMinThreads(out int now, out _);
                minSeen = Math.Max(minSeen, now);
                Thread.Sleep(5);
            }
        }) { IsBackground = true };
        sampler.Start();
        var tasks = Enumerable.Range(0, callers).Select(c => Task.Run(async () =>
        {
            var random = new Random(c);
            int done = 0;
            first20[c] = double.NaN;
            Interlocked.Increment(ref started);
            while (clock.Elapsed < until)
            {
                switch (api)
                {
                    case "loadasync":
                        (await loader.LoadAsync(engine, new WasmSource("m", wasm))).Dispose();
                        break;
                    case "async":
                        switch (random.Next(3))
                        {
                            case 0: await cache.AddAsync(key, new MemoryStream(payload)); break;
                            case 1: await cache.DeleteAsync(key); break;
                            default: (await cache.GetAsync(key))?.Dispose(); break;
                        }

                        break;
                    default:
                        switch (random.Next(3))
                        {
                            case 0: cache.Add(key, new MemoryStream(payload)); break;
                            case 1: cache.Delete(key); break;
                            default:
                                if (cache.TryGet(key, out var s))
                                {
                                    s.Dispose();
                                }

                                break;
                        }

                        break;
                }

                Interlocked.Increment(ref operations);
                if (++done == 20)
                {
                    first20[c] = clock.Elapsed.TotalMilliseconds;
                }
            }
        })).ToArray();
        Task.WaitAll(tasks);
        sampler.Join();
        double elapsed = clock.Elapsed.TotalSeconds;
        ThreadPool.GetMinThreads(out int minAfter, out _);
        int stalled = first20.Count(double.IsNaN);
        double slowest = stalled > 0 ? double.PositiveInfinity : first20.Max();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"api={api} callers={callers} operations={operations} seconds={elapsed:F2} ops_per_second={operations / elapsed:F0} slowest_first_20_ms={slowest:F0} started_callers={started} stalled_callers={stalled} pool_min_before={minBefore} pool_min_during={minSeen} pool_min_after={minAfter}"));
        return stalled == 0 ? 0 : 1;
    }
}
