using System.Diagnostics.CodeAnalysis;

namespace FileCache;

/// <summary>
/// An optional capability of a backend that stores entries as files: it hands a caller a verified
/// entry as a path that a memory-mapping loader (Wasmtime's <c>Module.DeserializeFile</c>) can open.
/// Callers detect it with a type test, as HybridCache detects <c>IBufferDistributedCache</c>.
/// </summary>
internal interface ICacheEntryFileSource
{
    /// <summary>
    /// Looks an entry up, verifies it, and returns a lease on a path whose content is that verified
    /// entry for as long as the lease is not disposed, even if another process replaces or deletes
    /// the entry meanwhile.
    /// </summary>
    /// <param name="key">The entry's key.</param>
    /// <param name="file">On success, the lease; the caller must dispose it.</param>
    /// <returns><see langword="false"/> on a miss, a corrupt entry, or when the platform cannot pin
    /// a verified file (the caller then uses <see cref="IWasmCodeCache.TryGet"/>).</returns>
    bool TryGetFile(CacheKey key, [NotNullWhen(true)] out CacheEntryFile? file);
}
