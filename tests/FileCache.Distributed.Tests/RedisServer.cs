using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Garnet;

namespace FileCache.Distributed.Tests;

/// <summary>
/// A real Redis-protocol server for the tests, so every distributed test runs on a machine with
/// only the .NET SDK. In order: the server named by FILECACHE_REDIS=host:port (CI starts a
/// redis-server); else, unless FILECACHE_STORE=garnet, a private redis-server on a free loopback
/// port when one is on PATH; else Microsoft Garnet, a Redis-compatible server written in .NET,
/// started in this process on a free loopback port.
/// </summary>
internal sealed class RedisServer : IDisposable
{
    private Process? _process;
    private GarnetServer? _garnet;

    private RedisServer(int port, string kind)
    {
        Port = port;
        Kind = kind;
    }

    public int Port { get; }

    /// <summary>"external", "redis-server" or "garnet".</summary>
    public string Kind { get; }

    /// <summary>Whether this object started the server (and may stop and restart it).</summary>
    public bool Owned => Kind != "external";

    public string Endpoint => $"127.0.0.1:{Port}";

    /// <summary>The shared server for tests that only need a store.</summary>
    public static RedisServer Shared => LazyShared.Value;

    private static readonly Lazy<RedisServer> LazyShared = new(() =>
        Environment.GetEnvironmentVariable("FILECACHE_REDIS") is { Length: > 0 } endpoint
            ? new RedisServer(int.Parse(endpoint[(endpoint.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture), "external")
            : StartPrivate());

    /// <summary>Starts a private server (for tests that stop and restart it).</summary>
    public static RedisServer StartPrivate()
    {
        bool garnet = Environment.GetEnvironmentVariable("FILECACHE_STORE") == "garnet" || FindRedisServer() is null;
        var server = new RedisServer(FreePort(), garnet ? "garnet" : "redis-server");
        server.Start();
        return server;
    }

    public void Start()
    {
        if (Kind == "garnet")
        {
            if (_garnet is null)
            {
                // The server shares this test host's thread pool with tests that block threads on
                // purpose; it must answer the child processes whatever those tests do. (The callers
                // under test run in child processes, whose pools start at their defaults.)
                ThreadPool.GetMinThreads(out int workers, out int io);
                ThreadPool.SetMinThreads(Math.Max(workers, 64), Math.Max(io, 64));
                _garnet = new GarnetServer(["--bind", "127.0.0.1", "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--lua", "true"]);
                _garnet.Start();
            }

            WaitForPort("Garnet");
            return;
        }

        if (!Owned || _process is { HasExited: false })
        {
            return;
        }

        _process = StartWatched(Environment.ProcessId, FindRedisServer()!, "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no");
        _process.OutputDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        WaitForPort("redis-server");
    }

    /// <summary>
    /// Starts <paramref name="file"/> under a watchdog shell that stops it when the process
    /// <paramref name="parent"/> is gone, so a test host that ends, crashes or is killed never leaves
    /// a server behind (the shared server is never disposed: it lives as long as the test host).
    /// </summary>
    internal static Process StartWatched(int parent, string file, params string[] args)
    {
        const string Watchdog = "\"$@\" & child=$!; trap 'kill $child 2>/dev/null; exit' TERM INT; "
            + "while kill -0 \"$FILECACHE_WATCH_PID\" 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5; done; kill $child 2>/dev/null; wait $child";
        var info = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, UseShellExecute = false };
        info.Environment["FILECACHE_WATCH_PID"] = parent.ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var arg in new[] { "-c", Watchdog, "watchdog", file }.Concat(args))
        {
            info.ArgumentList.Add(arg);
        }

        return Process.Start(info)!;
    }

    public void Stop()
    {
        if (_garnet is not null)
        {
            _garnet.Dispose(); // closes the listener and every connection, like a killed server
            _garnet = null;
        }

        if (Owned && _process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true); // the watchdog and the server under it
            _process.WaitForExit();
        }
    }

    public void Dispose()
    {
        Stop();
        _process?.Dispose();
    }

    private void WaitForPort(string what)
    {
        var until = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < until)
        {
            try
            {
                using var client = new TcpClient();
                client.Connect(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException)
            {
                Thread.Sleep(50);
            }
        }

        throw new InvalidOperationException($"{what} did not start on port {Port}.");
    }

    private static string? FindRedisServer()
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator).Append("/usr/bin").Append("/usr/sbin"))
        {
            string candidate = Path.Join(dir, "redis-server");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}

/// <summary>
/// Tests that stop and restart a server, and tests that load one heavily, run one after the other:
/// in-process Garnet servers share process-wide state (its epoch protection and the test host's
/// thread pool), and stopping one while another serves 64 callers stalled them once in CI.
/// </summary>
[CollectionDefinition(Name)]
public sealed class StoreServerCollection
{
    public const string Name = "store servers";
}

/// <summary>The watchdog that keeps a test host from leaving servers behind.</summary>
public sealed class WatchdogTests
{
    [SkippableFact]
    public async Task AServerStartedByATestHost_StopsWhenTheHostEnds_EvenWhenItIsKilled()
    {
        Skip.If(OperatingSystem.IsWindows(), "The watchdog is a POSIX shell.");

        // A stand-in test host, killed without any chance to clean up, and a long-lived "server" under it.
        using var host = System.Diagnostics.Process.Start("sleep", "600");
        using var watched = RedisServer.StartWatched(host.Id, "sleep", "601");
        await Task.Delay(500);
        int server = ServerPid(watched.Id);
        Assert.True(server > 0, "the watched process did not start");

        host.Kill();
        await host.WaitForExitAsync();
        var until = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < until && IsAlive(server))
        {
            await Task.Delay(100);
        }

        Assert.False(IsAlive(server), "the server outlived its test host");
        await watched.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
    }

    private static int ServerPid(int watchdog)
        => File.ReadAllText($"/proc/{watchdog}/task/{watchdog}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).FirstOrDefault();

    private static bool IsAlive(int pid) => File.Exists($"/proc/{pid}/stat") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal);
}
