using System.Globalization;
using System.Security.Cryptography;

namespace FileCache;

/// <summary>
/// What a cache key takes from a module's bytes: its length and the SHA-256 of each 1 MiB chunk
/// (docs/key-encoding.md). <see cref="CacheKeyBuilder.Finish(WasmDigest)"/> gives the same key as
/// <see cref="CacheKeyBuilder.Finish(ReadOnlySpan{byte})"/> of the bytes, so a digest computed at
/// build time (a <c>&lt;WasmModule&gt;</c> item) spares every load the hashing.
/// </summary>
public sealed class WasmDigest : IEquatable<WasmDigest>
{
    private readonly byte[] _chunkDigests;

    private WasmDigest(long length, byte[] chunkDigests)
    {
        Length = length;
        _chunkDigests = chunkDigests;
    }

    /// <summary>The module's length in bytes.</summary>
    public long Length { get; }

    /// <summary>The SHA-256 of each <see cref="CacheKeyBuilder.WasmChunkSize"/> chunk, in order (32 bytes each).</summary>
    public ReadOnlySpan<byte> ChunkDigests => _chunkDigests;

    /// <summary>Digests <paramref name="wasm"/> (its chunks on all cores when it is large).</summary>
    /// <param name="wasm">The module's bytes.</param>
    /// <returns>The digest.</returns>
    public static WasmDigest Compute(ReadOnlySpan<byte> wasm) => new(wasm.Length, CacheKeyBuilder.ChunkDigests(wasm));

    /// <summary>A digest computed elsewhere, for example at build time (the generated code of <c>&lt;WasmModule&gt;</c> items).</summary>
    /// <param name="length">The module's length.</param>
    /// <param name="chunkDigestsHex">The chunk digests as hexadecimal text, 64 characters per chunk.</param>
    /// <returns>The digest.</returns>
    /// <exception cref="FormatException">The text is not hexadecimal, or its length does not match <paramref name="length"/>'s number of chunks.</exception>
    public static WasmDigest FromHex(long length, string chunkDigestsHex)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentNullException.ThrowIfNull(chunkDigestsHex);
        long chunks = (length + CacheKeyBuilder.WasmChunkSize - 1) / CacheKeyBuilder.WasmChunkSize;
        if (chunkDigestsHex.Length != chunks * CacheKey.Size * 2)
        {
            throw new FormatException(string.Format(CultureInfo.InvariantCulture, "A module of {0} bytes has {1} chunk digests ({2} hex characters); {3} characters were given.", length, chunks, chunks * CacheKey.Size * 2, chunkDigestsHex.Length));
        }

        return new(length, Convert.FromHexString(chunkDigestsHex));
    }

    /// <summary>Whether <paramref name="wasm"/> has this digest (for a module loaded from elsewhere; costs what <see cref="Compute"/> costs).</summary>
    /// <param name="wasm">The bytes.</param>
    /// <returns><see langword="true"/> when they match.</returns>
    public bool Matches(ReadOnlySpan<byte> wasm) => wasm.Length == Length && CryptographicOperations.FixedTimeEquals(CacheKeyBuilder.ChunkDigests(wasm), _chunkDigests);

    /// <inheritdoc/>
    public bool Equals(WasmDigest? other) => other is not null && other.Length == Length && other._chunkDigests.AsSpan().SequenceEqual(_chunkDigests);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as WasmDigest);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Length, _chunkDigests.Length > 0 ? BitConverter.ToInt32(_chunkDigests) : 0);

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Length} bytes, {_chunkDigests.Length / CacheKey.Size} chunks");
}
