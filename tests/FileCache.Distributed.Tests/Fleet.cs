using System.Diagnostics;

namespace FileCache.Distributed.Tests;

/// <summary>Runs FileCache.FleetWorker (copied next to the test assembly) as a separate process.</summary>
internal static class Fleet
{
    public static async Task<(int ExitCode, string Output)> RunAsync(params string[] args)
    {
        string dll = Path.Join(AppContext.BaseDirectory, "FileCache.FleetWorker.dll");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(dll);
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }
}
