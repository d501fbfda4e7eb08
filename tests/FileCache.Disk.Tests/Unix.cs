using System.Diagnostics;
using System.Runtime.InteropServices;

namespace FileCache.Disk.Tests;

/// <summary>Real Unix tools for the attack tests: other owners, FIFOs, links.</summary>
internal static partial class Unix
{
    /// <summary>A uid that no test runs as (nobody).</summary>
    public const int OtherUser = 65534;

    public static bool IsUnix => OperatingSystem.IsLinux() || OperatingSystem.IsMacOS();

    public static bool IsRoot => IsUnix && geteuid() == 0;

    public const string NeedsRoot = "Giving a file to another user (chown) needs root; CI runs as root. Run 'sudo dotnet test' to include this test.";

    public static void Run(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var p = Process.Start(info)!;
        string error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{file} {string.Join(' ', args)} failed: {error}");
    }

    public static void Chown(string path, int uid, int gid) => Run("chown", "-h", $"{uid}:{gid}", path);

    public static void MakeFifo(string path) => Run("mkfifo", path);

    [LibraryImport("libc")]
    private static partial uint geteuid();
}
