using System.Diagnostics;

namespace FileCache.Disk.Tests;

/// <summary>Starts FileCache.Disk.TestWorker (copied next to the test assembly) as a real child process.</summary>
internal static class Worker
{
    public static Process Start(params string[] args)
    {
        string dll = Path.Join(AppContext.BaseDirectory, "FileCache.Disk.TestWorker.dll");
        Assert.True(File.Exists(dll), $"Test worker not found at '{dll}'.");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(dll);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        return Process.Start(info) ?? throw new InvalidOperationException("Could not start the test worker.");
    }

    public static async Task<(int ExitCode, string Output)> RunAsync(TimeSpan timeout, params string[] args)
    {
        using var process = Start(args);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        await process.WaitForExitAsync(cts.Token);
        return (process.ExitCode, await stdout + await stderr);
    }
}
