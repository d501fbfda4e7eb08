using Microsoft.Win32.SafeHandles;

namespace FileCache;

/// <summary>
/// A hit from a typed lookup (<see cref="CacheEntryExtensions.TryGetEntry"/>): either bytes the
/// caller may keep (<see cref="Bytes"/>) or a lease on a verified file (<see cref="File"/>) that a
/// memory-mapping loader opens by path. Dispose it to release the lease.
/// </summary>
internal sealed class CacheEntry : IDisposable
{
    private CacheEntry(ReadOnlyMemory<byte> bytes, CacheEntryFile? file)
    {
        Bytes = bytes;
        File = file;
    }

    /// <summary>An entry held as bytes. The caller must not change the array behind them later.</summary>
    /// <param name="bytes">The entry's payload.</param>
    /// <returns>The entry.</returns>
    public static CacheEntry FromBytes(ReadOnlyMemory<byte> bytes) => new(bytes, null);

    /// <summary>An entry held as a verified file; disposing the entry disposes the lease.</summary>
    /// <param name="file">The lease.</param>
    /// <returns>The entry.</returns>
    public static CacheEntry FromFile(CacheEntryFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        return new(ReadOnlyMemory<byte>.Empty, file);
    }

    /// <summary>The payload when the entry is held as bytes; empty when it is a <see cref="File"/>.</summary>
    public ReadOnlyMemory<byte> Bytes { get; }

    /// <summary>The lease when the entry is a verified file; otherwise <see langword="null"/>.</summary>
    public CacheEntryFile? File { get; }

    /// <summary>The payload's length in bytes.</summary>
    public long Length => File?.PayloadLength ?? Bytes.Length;

    /// <summary>The payload as bytes: <see cref="Bytes"/>, or the file's verified payload read into a new array.</summary>
    /// <returns>The payload.</returns>
    public ReadOnlyMemory<byte> ReadBytes() => File is { } file ? file.ReadPayload() : Bytes;

    /// <summary>Releases the file lease, if any.</summary>
    public void Dispose() => File?.Dispose();
}

/// <summary>A lease on a verified entry file, from <see cref="ICacheEntryFileSource.TryGetFile"/> or a typed lookup.</summary>
/// <remarks>
/// The file starts with the payload, <see cref="PayloadLength"/> bytes, and may be followed by the
/// backend's integrity frame. Hand <see cref="Path"/> only to loaders that read the payload's own
/// length from its header and ignore trailing bytes (Wasmtime does; FileCache's tests prove it).
/// </remarks>
internal sealed class CacheEntryFile : IDisposable
{
    private readonly IDisposable _owner;
    private readonly SafeFileHandle? _handle;

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
        _handle = owner as SafeFileHandle;
    }

    /// <summary>The path to open while the lease lives.</summary>
    public string Path { get; }

    /// <summary>The payload's length; the file may be longer.</summary>
    public long PayloadLength { get; }

    /// <summary>
    /// Reads the verified payload into a new array: through the pinned handle when the lease holds one
    /// (no path is opened again, so it works where <see cref="Path"/> cannot be opened), else through <see cref="Path"/>.
    /// </summary>
    /// <returns>The payload.</returns>
    /// <exception cref="IOException">The file is shorter than <see cref="PayloadLength"/>.</exception>
    public byte[] ReadPayload()
    {
        if (PayloadLength > Array.MaxLength)
        {
            throw new IOException($"The cache entry file '{Path}' holds {PayloadLength} bytes, more than one array can.");
        }

        var bytes = GC.AllocateUninitializedArray<byte>((int)PayloadLength);
        if (_handle is not null)
        {
            int got = 0, n;
            while (got < bytes.Length && (n = RandomAccess.Read(_handle, bytes.AsSpan(got), got)) > 0)
            {
                got += n;
            }

            return got == bytes.Length ? bytes : throw new IOException($"The cache entry file '{Path}' ended after {got} of {PayloadLength} bytes.");
        }

        using var stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1);
        stream.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>Releases the lease.</summary>
    public void Dispose() => _owner.Dispose();
}
