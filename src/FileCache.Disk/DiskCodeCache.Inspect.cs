using FileCache.Internal;
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
internal sealed partial class DiskCodeCache
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
    /// Reads and verifies one entry as a lookup does (the file checks of docs/security.md, then the
    /// frame), hashing every byte even when a verification record says the file is unchanged: a scrub. A bad entry is counted and, unless the cache is read-only, removed, as on
    /// every lookup; a good one counts as used unless the cache is read-only.
    /// </summary>
    /// <param name="key">The entry's key.</param>
    /// <param name="problem">Why the entry is unusable (a <c>filecache.reason</c> value such as
    /// <c>ChecksumMismatch</c> or <c>ForeignOwner</c>); <see langword="null"/> when it is valid or missing.</param>
    /// <returns><see langword="true"/> when the entry exists and is valid.</returns>
    public bool Verify(CacheKey key, out string? problem)
    {
        t_lastRejection = null;
        if (TryGetCore(key, scrub: true, out var content)) // every byte, whatever a verification record says
        {
            content.Dispose();
            problem = null;
            return true;
        }

        problem = t_lastRejection;
        return false;
    }

    /// <summary>
    /// Reads an entry exactly as it is stored (the payload followed by its frame, with its tag when the
    /// cache is authenticated), after checking it as a lookup does: what <c>filecache export</c> writes,
    /// so that an import can verify every entry with the key instead of trusting the archive.
    /// </summary>
    /// <param name="key">The entry's key.</param>
    /// <param name="storedEntry">The stored bytes when the entry exists and is valid.</param>
    /// <returns><see langword="true"/> when the entry exists and is valid.</returns>
    public bool TryReadStoredEntry(CacheKey key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out byte[]? storedEntry)
    {
        storedEntry = null;
        using var handle = OpenEntry(key, out string path);
        if (handle is null || !TryGetLength(key, path, handle, out int length))
        {
            return false;
        }

        var bytes = GC.AllocateUninitializedArray<byte>(length);
        if (ReadAt(handle, bytes, 0) != length)
        {
            OnCorrupt(key, path, handle, FrameStatus.TooShort);
            return false;
        }

        var status = EntryFrame.Verify(key, bytes, _authenticationKey, out _);
        if (status != FrameStatus.Valid)
        {
            OnCorrupt(key, path, handle, status);
            return false;
        }

        storedEntry = bytes;
        return true;
    }

    /// <summary>
    /// Adds an entry stored by another cache (<see cref="TryReadStoredEntry"/>, an export) after checking
    /// its frame under <paramref name="key"/> with this cache's authentication key: with a key, only an
    /// entry tagged with the same key (by someone who holds it) is accepted, so an archive cannot bring in
    /// code under a key it was not made for. Without a key nothing proves who made the entry (its
    /// checksum can be recomputed by anyone), so it is refused unless <paramref name="trustUnauthenticated"/>.
    /// </summary>
    /// <param name="key">The key the archive names the entry by.</param>
    /// <param name="storedEntry">The stored bytes (payload and frame).</param>
    /// <param name="trustUnauthenticated">Accept entries this cache cannot authenticate (it has no key): the caller vouches for the archive.</param>
    /// <param name="problem">Why the entry was refused (a <c>filecache.reason</c> value such as <c>BadTag</c>, <c>TooLarge</c> or <c>NotAuthenticated</c>).</param>
    /// <returns><see langword="true"/> when the entry was added.</returns>
    public bool TryImportStoredEntry(CacheKey key, Stream storedEntry, bool trustUnauthenticated, out string? problem)
    {
        ArgumentNullException.ThrowIfNull(storedEntry);
        ThrowIfReadOnly("import", key);
        problem = null;
        if (_authenticationKey is null && !trustUnauthenticated)
        {
            problem = "NotAuthenticated";
            return false;
        }

        // Bounded before anything is kept: a stream that goes on past the largest entry is refused.
        long limit = _options.MaxEntrySize + EntryFrame.TrailerSize;
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int n;
        while ((n = storedEntry.Read(chunk, 0, chunk.Length)) > 0)
        {
            if (buffer.Length + n > limit)
            {
                problem = FrameStatus.TooLarge.ToString();
                return false;
            }

            buffer.Write(chunk, 0, n);
        }

        var bytes = buffer.GetBuffer().AsSpan(0, (int)buffer.Length);
        var status = EntryFrame.Verify(key, bytes, _authenticationKey, out long payloadLength);
        if (status != FrameStatus.Valid)
        {
            problem = status.ToString();
            _metrics.Corrupt(problem);
            return false;
        }

        Add(key, new MemoryStream(buffer.GetBuffer(), 0, (int)payloadLength, writable: false));
        return true;
    }
}
