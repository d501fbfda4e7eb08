using System.Diagnostics;

namespace FileCache.Disk.Tests;

/// <summary>Starts FileCache.Disk.TestWorker (copied next to the test assembly) as a real child process.</summary>
internal static class Worker
{
    public static Process Start(params string[] args) => StartAs(null, args);

    /// <summary>Starts the worker as another user and group (setpriv; needs root) when <paramref name="user"/> is set.</summary>
    public static Process StartAs((int Uid, int Gid)? user, params string[] args)
    {
        string dll = Path.Join(AppContext.BaseDirectory, "FileCache.Disk.TestWorker.dll");
        Assert.True(File.Exists(dll), $"Test worker not found at '{dll}'.");
        var info = new ProcessStartInfo(user is null ? "dotnet" : "setpriv") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (user is { } u)
        {
            info.ArgumentList.Add($"--reuid={u.Uid}");
            info.ArgumentList.Add($"--regid={u.Gid}");
            info.ArgumentList.Add("--clear-groups");
            info.ArgumentList.Add("dotnet");
            info.Environment["HOME"] = Path.GetTempPath(); // the runtime may look there; root's is not readable
            info.Environment["DOTNET_CLI_HOME"] = Path.GetTempPath();
        }

        info.Environment["FILECACHE_TEST_PARENT"] = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture); // it exits when this test host does
        info.ArgumentList.Add(dll);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        return Process.Start(info) ?? throw new InvalidOperationException("Could not start the test worker.");
    }

    public static Task<(int ExitCode, string Output)> RunAsync(TimeSpan timeout, params string[] args) => RunAsAsync(null, timeout, args);

    public static async Task<(int ExitCode, string Output)> RunAsAsync((int Uid, int Gid)? user, TimeSpan timeout, params string[] args)
    {
        using var process = StartAs(user, args);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        await process.WaitForExitAsync(cts.Token);
        return (process.ExitCode, await stdout + await stderr);
    }
}
