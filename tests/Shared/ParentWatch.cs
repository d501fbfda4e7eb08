namespace FileCache.Tests;

/// <summary>
/// Ends a test worker process when the test host that started it is gone (on Linux an orphan is
/// re-parented), so a test host that crashes or is killed never leaves workers running, such as
/// the writers that add entries until they are killed.
/// </summary>
internal static class ParentWatch
{
    public static void Start()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        // The launcher names the process to outlive no longer (FILECACHE_TEST_PARENT: a test host may
        // be gone before this process gets here); else the parent this process started under.
        int watched = int.TryParse(Environment.GetEnvironmentVariable("FILECACHE_TEST_PARENT"), out int named) ? named : ParentId();
        var thread = new Thread(() =>
        {
            while (Alive(watched))
            {
                Thread.Sleep(500);
            }

            Environment.Exit(137);
        })
        { IsBackground = true, Name = "parent watch" };
        thread.Start();
    }

    private static bool Alive(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[stat.LastIndexOf(')') + 2] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static int ParentId()
    {
        // /proc/self/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after the last ')'.
        string stat = File.ReadAllText("/proc/self/stat");
        return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
    }
}
