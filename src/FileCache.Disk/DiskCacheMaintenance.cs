using System.Diagnostics.CodeAnalysis;

namespace FileCache.Disk;

/// <summary>
/// An operator's handle on a disk cache directory (what the <c>filecache</c> tool does): list, verify,
/// trim, delete, export and import entries. Applications do not need it: they register the disk tier
/// with <c>UseDisk()</c>. Every rule of the disk tier (docs/security.md) applies here too.
/// </summary>
public sealed class DiskCacheMaintenance : IDisposable
{
    private readonly DiskCodeCache _tier;

    /// <summary>Opens the cache directory the options name. Does no I/O.</summary>
    /// <param name="options">The options; <see langword="null"/> for the defaults (the user cache folder).</param>
    /// <exception cref="ArgumentException">The options are invalid (a short authentication key, an entry size out of range).</exception>
    public DiskCacheMaintenance(DiskCodeCacheOptions? options = null) => _tier = new DiskCodeCache(options);

    /// <summary>The cache directory's full path.</summary>
    public string Directory => _tier.Directory;

    /// <summary>
    /// The cache as the stream contract, to fill it (for example through a Wasmtime loader created over
    /// it). It stays usable until this object is disposed.
    /// </summary>
    public IWasmCodeCache Cache => _tier;

    /// <summary>The path of the entry file for <paramref name="key"/>.</summary>
    /// <param name="key">The key.</param>
    /// <returns><see cref="Directory"/> joined with the key's 64 lowercase hex characters.</returns>
    public string GetPath(CacheKey key) => _tier.GetPath(key);

    /// <summary>
    /// Lists the entries: regular files named by a key (temp files, locks and anything else are
    /// skipped). Nothing is opened or verified; a file may go away while the list is read.
    /// </summary>
    /// <returns>The entries, in directory order; none when the directory does not exist.</returns>
    /// <exception cref="InsecureCacheDirectoryException">Others can write to the directory and no key is set.</exception>
    public IEnumerable<DiskCacheEntryInfo> EnumerateEntries() => _tier.EnumerateEntries();

    /// <summary>
    /// Reads and verifies one entry as a lookup does, hashing every byte (a scrub). A bad entry is
    /// counted and, unless the cache is read-only, removed.
    /// </summary>
    /// <param name="key">The entry's key.</param>
    /// <param name="problem">Why the entry is unusable (a <c>filecache.reason</c> value such as
    /// <c>ChecksumMismatch</c> or <c>ForeignOwner</c>); <see langword="null"/> when it is valid or missing.</param>
    /// <returns><see langword="true"/> when the entry exists and is valid.</returns>
    public bool Verify(CacheKey key, out string? problem) => _tier.Verify(key, out problem);

    /// <summary>Removes entries least recently used first until the directory is below its size limit, and sweeps dead writers' temp files.</summary>
    /// <returns>How many entries were removed.</returns>
    public int Trim() => _tier.Trim();

    /// <summary>Removes the entry for <paramref name="key"/>; a missing entry is not an error.</summary>
    /// <param name="key">The key.</param>
    public void Delete(CacheKey key) => _tier.Delete(key);

    /// <summary>
    /// Reads an entry exactly as it is stored (the payload followed by its frame), after checking it as
    /// a lookup does: what <c>filecache export</c> writes.
    /// </summary>
    /// <param name="key">The entry's key.</param>
    /// <param name="storedEntry">The stored bytes when the entry exists and is valid.</param>
    /// <returns><see langword="true"/> when the entry exists and is valid.</returns>
    public bool TryReadStoredEntry(CacheKey key, [NotNullWhen(true)] out byte[]? storedEntry) => _tier.TryReadStoredEntry(key, out storedEntry);

    /// <summary>
    /// Adds an entry stored by another cache after checking its frame under <paramref name="key"/> with
    /// this cache's authentication key; without a key it is refused unless <paramref name="trustUnauthenticated"/>.
    /// </summary>
    /// <param name="key">The key the archive names the entry by.</param>
    /// <param name="storedEntry">The stored bytes (payload and frame).</param>
    /// <param name="trustUnauthenticated">Accept entries this cache cannot authenticate (it has no key): the caller vouches for the archive.</param>
    /// <param name="problem">Why the entry was refused (a <c>filecache.reason</c> value such as <c>BadTag</c>, <c>TooLarge</c> or <c>NotAuthenticated</c>).</param>
    /// <returns><see langword="true"/> when the entry was added.</returns>
    public bool TryImportStoredEntry(CacheKey key, Stream storedEntry, bool trustUnauthenticated, out string? problem)
        => _tier.TryImportStoredEntry(key, storedEntry, trustUnauthenticated, out problem);

    /// <summary>Stops background maintenance and waits for a running trim to end. Entries stay on disk.</summary>
    public void Dispose() => _tier.Dispose();
}
