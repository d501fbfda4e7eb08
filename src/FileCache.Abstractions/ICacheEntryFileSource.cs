using System.Diagnostics.CodeAnalysis;

namespace FileCache;

/// <summary>
/// An optional capability of a backend that stores entries as files: it hands a caller a verified
/// entry as a path that a memory-mapping loader (Wasmtime's <c>Module.DeserializeFile</c>) can open.
/// Callers detect it with a type test, as HybridCache detects <c>IBufferDistributedCache</c>.
/// </summary>
public interface ICacheEntryFileSource
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

/// <summary>A lease on a verified entry file, from <see cref="ICacheEntryFileSource.TryGetFile"/>.</summary>
/// <remarks>
/// The file starts with the payload, <see cref="PayloadLength"/> bytes, and may be followed by the
/// backend's integrity frame. Hand <see cref="Path"/> only to loaders that read the payload's own
/// length from its header and ignore trailing bytes (Wasmtime does; FileCache's tests prove it).
/// </remarks>
public sealed class CacheEntryFile : IDisposable
{
    private readonly IDisposable _owner;

    /// <summary>Creates a lease.</summary>
    /// <param name="path">A path that opens the verified content while the lease lives.</param>
    /// <param name="payloadLength">The payload's length in bytes.</param>
    /// <param name="owner">Released when the lease is disposed (for example the pinned file handle).</param>
    public CacheEntryFile(string path, long payloadLength, IDisposable owner)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfNegative(payloadLength);
        ArgumentNullException.ThrowIfNull(owner);
        Path = path;
        PayloadLength = payloadLength;
        _owner = owner;
    }

    /// <summary>The path to open while the lease lives.</summary>
    public string Path { get; }

    /// <summary>The payload's length; the file may be longer.</summary>
    public long PayloadLength { get; }

    /// <summary>Releases the lease.</summary>
    public void Dispose() => _owner.Dispose();
}
