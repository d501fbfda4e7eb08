namespace FileCache.Disk.Tests;

/// <summary>A fresh directory under the system temp folder, removed on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Join(Root, Guid.NewGuid().ToString("N"));
    }

    /// <summary>
    /// The parent of every test directory, 0755: tests that run a worker as another user (uid 1654) need
    /// to pass through it. Created here, before any cache could create it as a parent of its own
    /// directory (a cache creates missing levels 0700, and which test ran first would decide).
    /// </summary>
    private static string Root { get; } = CreateRoot();

    private static string CreateRoot()
    {
        string root = System.IO.Path.Join(System.IO.Path.GetTempPath(), "filecache-tests");
        Directory.CreateDirectory(root);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(root, (UnixFileMode)0b111_101_101);
        }

        return root;
    }

    /// <summary>The directory's path; it does not exist until something creates it.</summary>
    public string Path { get; }

    public string[] Files() => Directory.Exists(Path) ? Directory.GetFiles(Path).Select(f => System.IO.Path.GetFileName(f)).ToArray() : [];

    public void Dispose()
    {
        try
        {
            if (Directory.Exists(Path))
            {
                Directory.Delete(Path, recursive: true);
            }
        }
        catch (IOException)
        {
            // A child process may still be closing; the OS temp cleaner takes the rest.
        }
    }
}
