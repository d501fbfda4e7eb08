namespace FileCache.Disk;

/// <summary>
/// The disk tier refused its directory: no authentication key is configured and another user can
/// write to the directory (or to a directory above it), so an entry there could be someone else's
/// machine code. The message names the directory, its owner and mode, and the two fixes.
/// </summary>
internal sealed class InsecureCacheDirectoryException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="directory">The refused cache directory.</param>
    /// <param name="message">What is wrong and how to fix it.</param>
    public InsecureCacheDirectoryException(string directory, string message)
        : base(message)
    {
        Directory = directory;
    }

    /// <summary>The refused cache directory.</summary>
    public string Directory { get; }
}
