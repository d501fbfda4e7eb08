using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace FileCache.Distributed.Tests;

/// <summary>
/// A real redis-server for the tests: the one CI started (FILECACHE_REDIS=host:port), or a private
/// one this class starts on a free loopback port with persistence off. Without either, tests skip
/// with the reason, unless FILECACHE_REQUIRE_REDIS=1 (CI sets it), where they fail instead.
/// </summary>
internal sealed class RedisServer : IDisposable
{
    private Process? _process;

    private RedisServer(int port, bool owned)
    {
        Port = port;
        Owned = owned;
    }

    public int Port { get; }

    /// <summary>Whether this object started the server (and may stop and restart it).</summary>
    public bool Owned { get; }

    public string Endpoint => $"127.0.0.1:{Port}";

    /// <summary>The shared server for tests that only need a store.</summary>
    public static RedisServer Shared => LazyShared.Value;

    private static readonly Lazy<RedisServer> LazyShared = new(() =>
        Environment.GetEnvironmentVariable("FILECACHE_REDIS") is { Length: > 0 } endpoint
            ? new RedisServer(int.Parse(endpoint[(endpoint.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture), owned: false)
            : StartPrivate());

    /// <summary>Starts a private server (for tests that stop and restart it).</summary>
    public static RedisServer StartPrivate()
    {
        string? binary = FindRedisServer();
        bool required = Environment.GetEnvironmentVariable("FILECACHE_REQUIRE_REDIS") == "1";
        if (binary is null)
        {
            if (required)
            {
                throw new InvalidOperationException("FILECACHE_REQUIRE_REDIS=1 but no redis-server is on PATH.");
            }

            Xunit.Skip.If(true, "No Redis: install redis-server (apt-get install redis-server) or set FILECACHE_REDIS=host:port to run the Redis tests.");
        }

        var server = new RedisServer(FreePort(), owned: true);
        server.Start();
        return server;
    }

    public void Start()
    {
        if (!Owned || _process is { HasExited: false })
        {
            return;
        }

        var info = new ProcessStartInfo(FindRedisServer()!) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var arg in new[] { "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no" })
        {
            info.ArgumentList.Add(arg);
        }

        _process = Process.Start(info)!;
        _process.OutputDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
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

        throw new InvalidOperationException($"redis-server did not start on port {Port}.");
    }

    public void Stop()
    {
        if (Owned && _process is { HasExited: false })
        {
            _process.Kill();
            _process.WaitForExit();
        }
    }

    public void Dispose()
    {
        Stop();
        _process?.Dispose();
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
