using Xunit.Abstractions;
using System.Diagnostics;
using System.Text;

namespace FileCache.AzureBlob.Tests;

/// <summary>
/// A rollout in small: 8 host processes, each with its own disk tier and 16 callers, load one new
/// module at once through Azure Blob (Azurite). One compile for the fleet; every other host reads the
/// entry once; no host polls the store in a storm while it waits.
/// </summary>
public sealed class StampedeTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Path.Join(Path.GetTempPath(), "filecache-stampede-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    [SkippableFact]
    public async Task EightHostsOfSixteenCallers_CompileOnce_AndReadTheEntryOncePerHost()
    {
        var azurite = Azurite.Shared;
        var container = azurite.NewContainer();
        Directory.CreateDirectory(_dir);
        string module = Path.Join(_dir, "new.wasm");
        File.WriteAllBytes(module, NewModule());
        const int Hosts = 8;
        var runs = Enumerable.Range(0, Hosts).Select(i => RunHost(Path.Join(_dir, $"host{i}"), azurite.ConnectionString, container.Name, module)).ToArray();
        var results = await Task.WhenAll(runs);
        foreach (var (exitCode, output) in results)
        {
            Assert.True(exitCode == 0, output);
        }

        int compiled = results.Sum(r => int.Parse(Value(r.Output, "compiled"), System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(compiled == 1, "one compile for the fleet, got " + compiled + ":\n" + string.Join("\n", results.Select(r => r.Output)));

        var requests = results.Select(r => Value(r.Output, "requests").Split(',', StringSplitOptions.RemoveEmptyEntries)
            .ToDictionary(p => p.Split(':')[0], p => long.Parse(p.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture))).ToArray();
        output.WriteLine(string.Join("\n", results.Select(r => r.Output.Trim())));
        long indexGets = requests.Sum(r => r.GetValueOrDefault("get_index"));
        long leases = requests.Sum(r => r.GetValueOrDefault("lease"));
        // Each host asks for the record before and after the fleet lock: at most 2 per host, plus the
        // compiler's own conflict check. Every caller inside a host shares that host's single flight.
        Assert.True(indexGets <= (2 * Hosts) + 1, $"{indexGets} index reads for {Hosts} hosts");
        Assert.True(leases <= Hosts * 15, $"{leases} lease attempts: a polling storm (jittered back-off should keep it near the hosts' count)");
        Assert.Single(container.GetBlobs(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, "body/", CancellationToken.None));
    }

    private static string Value(string output, string name)
        => output.Split('\n').Single(l => l.StartsWith(name + "=", StringComparison.Ordinal))[(name.Length + 1)..].Trim();

    private static async Task<(int ExitCode, string Output)> RunHost(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Join(AppContext.BaseDirectory, "FileCache.FleetWorker.dll"));
        info.ArgumentList.Add("azureblob");
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        info.ArgumentList.Add("16");
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>A module of 4,000 functions: its compile takes long enough for the hosts to meet.</summary>
    private static byte[] NewModule()
    {
        var text = new StringBuilder("(module\n");
        for (int i = 0; i < 4000; i++)
        {
            text.Append("(func (export \"f").Append(i).Append("\") (param i32) (result i32) local.get 0 i32.const ").Append(i).Append(" i32.mul i32.const 11 i32.add)\n");
        }

        return global::Wasmtime.Module.ConvertText(text.Append(')').ToString());
    }
}
