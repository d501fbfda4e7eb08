namespace FileCache.Disk.Tests;

/// <summary>A fresh directory under the system temp folder, removed on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Join(System.IO.Path.GetTempPath(), "filecache-tests", Guid.NewGuid().ToString("N"));
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
