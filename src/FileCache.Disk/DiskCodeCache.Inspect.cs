using FileCache.Disk.Internal;

namespace FileCache.Disk;

/// <summary>An entry as the cache directory lists it, for operators and tools (the <c>filecache</c> command).</summary>
public sealed class DiskCacheEntryInfo
{
    internal DiskCacheEntryInfo(CacheKey key, long fileLength, DateTime lastUseUtc)
    {
        Key = key;
        FileLength = fileLength;
        LastUseUtc = lastUseUtc;
    }

    /// <summary>The entry's key (its file name).</summary>
    public CacheKey Key { get; }

    /// <summary>The file's length: the payload and its 64-byte frame.</summary>
    public long FileLength { get; }

    /// <summary>When it was last added or read (its file's modification time).</summary>
    public DateTime LastUseUtc { get; }
}

/// <summary>Listing and checking entries without loading them into a runtime.</summary>
public sealed partial class DiskCodeCache
{
    [ThreadStatic]
    private static string? t_lastRejection; // what OnRejected saw on this thread, for Verify

    /// <summary>
    /// Lists the entries: regular files named by a key (temp files, locks and anything else are
    /// skipped). Nothing is opened or verified; a file may go away while the list is read.
    /// </summary>
    /// <returns>The entries, in directory order; none when the directory does not exist.</returns>
    /// <exception cref="InsecureCacheDirectoryException">Others can write to the directory and no key is set.</exception>
    public IEnumerable<DiskCacheEntryInfo> EnumerateEntries()
    {
        if (!EnsureTrustedDirectory())
        {
            yield break;
        }

        foreach (var path in System.IO.Directory.EnumerateFiles(Directory))
        {
            string name = Path.GetFileName(path);
            if (IsEntryName(name) && Describe(path) is { Kind: FileKind.Regular } file)
            {
                yield return new DiskCacheEntryInfo(CacheKey.Parse(name), file.Length, file.LastWriteUtc);
            }
        }
    }

    /// <summary>
    /// Reads and verifies one entry exactly as a lookup does (the file checks of docs/security.md,
    /// then the frame). A bad entry is counted and, unless the cache is read-only, removed, as on
    /// every lookup; a good one counts as used unless the cache is read-only.
    /// </summary>
    /// <param name="key">The entry's key.</param>
    /// <param name="problem">Why the entry is unusable (a <c>filecache.reason</c> value such as
    /// <c>ChecksumMismatch</c> or <c>ForeignOwner</c>); <see langword="null"/> when it is valid or missing.</param>
    /// <returns><see langword="true"/> when the entry exists and is valid.</returns>
    public bool Verify(CacheKey key, out string? problem)
    {
        t_lastRejection = null;
        if (TryGet(key, out var content))
        {
            content.Dispose();
            problem = null;
            return true;
        }

        problem = t_lastRejection;
        return false;
    }
}
