using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Azure.Storage;
using Azure.Storage.Blobs;

namespace FileCache.AzureBlob.Tests;

/// <summary>
/// A real Azurite (the Azure Storage emulator, npm package azurite 3.37.0) for the tests, on a free
/// loopback port, in memory, without telemetry, accepting the SDK's newer service version. Found at
/// FILECACHE_AZURITE (the azurite-blob script), else in the test cache folder, where it is installed
/// with npm on first use; without Node the tests skip and say so. The server runs under a watchdog
/// that stops it when this test host is gone.
/// </summary>
internal sealed class Azurite
{
    public const string Version = "3.37.0";
    private const string Account = "devstoreaccount1";
    private const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="; // Azurite's well-known development key

    private static readonly Lazy<Azurite?> LazyShared = new(Start);
    private static string? s_unavailable;

    private Azurite(int port) => Port = port;

    public int Port { get; }

    public string ConnectionString => $"DefaultEndpointsProtocol=http;AccountName={Account};AccountKey={AccountKey};BlobEndpoint=http://127.0.0.1:{Port}/{Account};";

    /// <summary>The shared emulator; skips the calling test (with the reason) where none can run.</summary>
    public static Azurite Shared
    {
        get
        {
            var shared = LazyShared.Value;
            Skip.If(shared is null, s_unavailable);
            return shared!;
        }
    }

    /// <summary>A new, empty container on the shared emulator, with transfer validation off (see the tier).</summary>
    public BlobContainerClient NewContainer()
    {
        var options = new BlobClientOptions();
        options.TransferValidation.Upload.ChecksumAlgorithm = StorageChecksumAlgorithm.None;
        options.TransferValidation.Download.ChecksumAlgorithm = StorageChecksumAlgorithm.None;
        var container = new BlobContainerClient(ConnectionString, "t" + Guid.NewGuid().ToString("N"), options);
        container.CreateIfNotExists();
        return container;
    }

    private static Azurite? Start()
    {
        string? script = Find();
        if (script is null)
        {
            return null;
        }

        int port = FreePort();
        var process = StartWatched("node", script,
            "--blobHost", "127.0.0.1", "--blobPort", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry", "--silent");
        process.OutputDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        var until = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < until)
        {
            try
            {
                using var client = new TcpClient();
                client.Connect(IPAddress.Loopback, port);
                return new Azurite(port);
            }
            catch (SocketException)
            {
                Thread.Sleep(100);
            }
        }

        throw new InvalidOperationException($"Azurite ({script}) did not start on port {port} within 30 s.");
    }

    /// <summary>The azurite-blob entry script: FILECACHE_AZURITE, else the test cache's copy, installed with npm when missing.</summary>
    private static string? Find()
    {
        if (Environment.GetEnvironmentVariable("FILECACHE_AZURITE") is { Length: > 0 } configured)
        {
            return File.Exists(configured) ? configured : throw new FileNotFoundException($"FILECACHE_AZURITE names '{configured}', which does not exist.");
        }

        string home = Path.Join(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "filecache-tests", "azurite");
        string script = Path.Join(home, "node_modules", "azurite", "dist", "src", "blob", "main.js");
        if (File.Exists(script))
        {
            return script;
        }

        if (!OnPath("node") || !OnPath("npm"))
        {
            s_unavailable = "Azurite needs Node.js and npm (apt-get install nodejs npm); .ci/run installs them.";
            return null;
        }

        Directory.CreateDirectory(home);
        // Two test projects may start at once on a fresh machine: one installs, the other waits for it.
        using var installing = TakeInstallLock(Path.Join(home, ".install.lock"));
        if (File.Exists(script))
        {
            return script;
        }

        var info = new ProcessStartInfo("npm", ["install", "--no-audit", "--no-fund", "--silent", $"azurite@{Version}"]) { WorkingDirectory = home, RedirectStandardOutput = true, RedirectStandardError = true };
        using var npm = Process.Start(info)!;
        string output = npm.StandardOutput.ReadToEnd() + npm.StandardError.ReadToEnd();
        npm.WaitForExit();
        return npm.ExitCode == 0 && File.Exists(script)
            ? script
            : throw new InvalidOperationException($"npm install azurite@{Version} in '{home}' failed ({npm.ExitCode}): {output}");
    }

    private static FileStream TakeInstallLock(string path)
    {
        var until = DateTime.UtcNow.AddMinutes(5);
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < until)
            {
                Thread.Sleep(500);
            }
        }
    }

    /// <summary>Starts the server under a shell that stops it when this test host is gone (ended, crashed or killed).</summary>
    private static Process StartWatched(string file, params string[] args)
    {
        const string Watchdog = "\"$@\" & child=$!; trap 'kill $child 2>/dev/null; exit' TERM INT; "
            + "while kill -0 \"$FILECACHE_WATCH_PID\" 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5; done; kill $child 2>/dev/null; wait $child";
        var info = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, UseShellExecute = false };
        info.Environment["FILECACHE_WATCH_PID"] = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var arg in new[] { "-c", Watchdog, "watchdog", file }.Concat(args))
        {
            info.ArgumentList.Add(arg);
        }

        return Process.Start(info)!;
    }

    private static bool OnPath(string name)
        => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator).Any(d => File.Exists(Path.Join(d, name)));

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
