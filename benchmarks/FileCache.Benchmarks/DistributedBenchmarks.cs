using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using FileCache.Distributed;
using FileCache.Wasmtime;
using Microsoft.Extensions.Caching.StackExchangeRedis;
using StackExchange.Redis;
using WasmModule = Wasmtime.Module;

namespace FileCache.Benchmarks;

/// <summary>
/// A hit from Redis on loopback for the serialized esbuild.wasm (about 29 MB): FileCache's
/// distributed tier (a head and 1 MiB chunks read at once through RedisCache, each chunk digested as
/// it lands, HMAC over the digests) against a plain StackExchange.Redis StringGet of the same bytes
/// as one value. Starts its own redis-server (persistence off) on a free port.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class DistributedBenchmarks
{
    private Process? _redis;
    private ConnectionMultiplexer _plain = null!;
    private DistributedCodeCache _cache = null!;
    private DistributedCodeCache _plainApiCache = null!;
    private CacheKey _key;

    [GlobalSetup]
    public void Setup()
    {
        int port = FreePort();
        _redis = Process.Start(new ProcessStartInfo("redis-server", $"--port {port} --bind 127.0.0.1 --save \"\" --appendonly no") { RedirectStandardOutput = true })!;
        _redis.BeginOutputReadLine();
        WaitForPort(port);

        byte[] wasm = File.ReadAllBytes(Path.Join(ModulesDirectory(), "esbuild.wasm"));
        var settings = new WasmtimeEngineSettings();
        using var engine = settings.CreateEngine();
        using var module = WasmModule.FromBytes(engine, "esbuild", wasm);
        byte[] serialized = module.Serialize();
        _key = settings.DeriveKey(wasm);

        _plain = ConnectionMultiplexer.Connect($"127.0.0.1:{port},syncTimeout=30000,asyncTimeout=30000");
        _plain.GetDatabase().StringSet("plain", serialized);
        var store = new RedisCache(Microsoft.Extensions.Options.Options.Create(new RedisCacheOptions { Configuration = $"127.0.0.1:{port},syncTimeout=30000,asyncTimeout=30000" }));
        _cache = new DistributedCodeCache(store, new DistributedCodeCacheOptions { AuthenticationKey = new byte[32], Timeout = TimeSpan.FromSeconds(30) });
        _cache.Add(_key, new MemoryStream(serialized));
        _plainApiCache = new DistributedCodeCache(new PlainOnly(store), new DistributedCodeCacheOptions { AuthenticationKey = new byte[32], Timeout = TimeSpan.FromSeconds(30) });
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _plain.Dispose();
        _redis?.Kill();
    }

    [Benchmark(Baseline = true)]
    public int Plain_StringGet() => ((byte[])_plain.GetDatabase().StringGet("plain")!).Length;

    [Benchmark]
    public async Task<long> FileCache_GetAsync()
    {
        await using var hit = await _cache.GetAsync(_key) ?? throw new InvalidOperationException("miss");
        return hit.Length;
    }

    /// <summary>The same tier through IDistributedCache's byte[] API (IBufferDistributedCache hidden).</summary>
    [Benchmark]
    public async Task<long> FileCache_GetAsync_ByteArrayApi()
    {
        await using var hit = await _plainApiCache.GetAsync(_key) ?? throw new InvalidOperationException("miss");
        return hit.Length;
    }

    private sealed class PlainOnly(Microsoft.Extensions.Caching.Distributed.IDistributedCache inner) : Microsoft.Extensions.Caching.Distributed.IDistributedCache
    {
        public byte[]? Get(string key) => inner.Get(key);

        public Task<byte[]?> GetAsync(string key, CancellationToken token = default) => inner.GetAsync(key, token);

        public void Refresh(string key) => inner.Refresh(key);

        public Task RefreshAsync(string key, CancellationToken token = default) => inner.RefreshAsync(key, token);

        public void Remove(string key) => inner.Remove(key);

        public Task RemoveAsync(string key, CancellationToken token = default) => inner.RemoveAsync(key, token);

        public void Set(string key, byte[] value, Microsoft.Extensions.Caching.Distributed.DistributedCacheEntryOptions options) => inner.Set(key, value, options);

        public Task SetAsync(string key, byte[] value, Microsoft.Extensions.Caching.Distributed.DistributedCacheEntryOptions options, CancellationToken token = default) => inner.SetAsync(key, value, options, token);
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static void WaitForPort(int port)
    {
        for (int i = 0; i < 200; i++)
        {
            try
            {
                using var client = new TcpClient();
                client.Connect(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException)
            {
                Thread.Sleep(50);
            }
        }

        throw new InvalidOperationException("redis-server did not start");
    }

    private static string ModulesDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Join(dir.FullName, "benchmarks", "modules");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException("Run benchmarks/fetch-modules.sh first.");
    }
}
