using System.Diagnostics.CodeAnalysis;

namespace FileCache;

/// <summary>Which tiers a typed lookup asks.</summary>
internal enum CacheLookupScope
{
    /// <summary>Every tier.</summary>
    All,

    /// <summary>
    /// Only tiers another process can fill (disk, distributed): what a caller re-checks after it
    /// looked once and then waited, when nothing in its own process can have added the entry.
    /// </summary>
    SharedTiers,
}

/// <summary>
/// An optional capability of a backend or tier set: one lookup that returns the entry in the form the
/// backend holds it, owned bytes or a verified file, so that a loader neither copies bytes nor looks
/// inside tiers. Callers use <see cref="CacheEntryExtensions.TryGetEntry"/>, which lights this up and
/// falls back to the stream contract for any other cache, as HybridCache detects <c>IBufferDistributedCache</c>.
/// </summary>
internal interface ICacheEntrySource
{
    /// <summary>Looks an entry up.</summary>
    /// <param name="key">The entry's key.</param>
    /// <param name="scope">Which tiers to ask.</param>
    /// <param name="entry">On a hit, the entry; the caller must dispose it.</param>
    /// <returns><see langword="true"/> on a hit.</returns>
    bool TryGetEntry(CacheKey key, CacheLookupScope scope, [NotNullWhen(true)] out CacheEntry? entry);

    /// <summary>Looks an entry up asynchronously.</summary>
    /// <param name="key">The entry's key.</param>
    /// <param name="scope">Which tiers to ask.</param>
    /// <param name="cancellationToken">Cancels the lookup.</param>
    /// <returns>The entry, which the caller must dispose, or <see langword="null"/> on a miss.</returns>
    ValueTask<CacheEntry?> GetEntryAsync(CacheKey key, CacheLookupScope scope, CancellationToken cancellationToken = default);
}

/// <summary>
/// Marks a cache whose entries live only in this process (the memory tier): a lookup with
/// <see cref="CacheLookupScope.SharedTiers"/> skips it.
/// </summary>
internal interface IProcessLocalWasmCodeCache
{
}

/// <summary>Typed lookups on any <see cref="IWasmCodeCache"/>.</summary>
internal static class CacheEntryExtensions
{
    /// <summary>
    /// Looks an entry up once and returns it as the backend holds it: through
    /// <see cref="ICacheEntrySource"/> when the cache offers it, else through
    /// <see cref="IWasmCodeCache.TryGet"/>, taking the hit's buffer when the stream exposes one.
    /// </summary>
    /// <param name="cache">The cache.</param>
    /// <param name="key">The entry's key.</param>
    /// <param name="entry">On a hit, the entry; the caller must dispose it.</param>
    /// <param name="scope">Which tiers to ask.</param>
    /// <returns><see langword="true"/> on a hit.</returns>
    public static bool TryGetEntry(this IWasmCodeCache cache, CacheKey key, [NotNullWhen(true)] out CacheEntry? entry, CacheLookupScope scope = CacheLookupScope.All)
    {
        ArgumentNullException.ThrowIfNull(cache);
        if (cache is ICacheEntrySource source)
        {
            return source.TryGetEntry(key, scope, out entry);
        }

        entry = null;
        return !Skips(cache, scope) && ReadEntry(cache, key, out entry);
    }

    /// <summary>Looks an entry up once, asynchronously; see <see cref="TryGetEntry"/>.</summary>
    /// <param name="cache">The cache.</param>
    /// <param name="key">The entry's key.</param>
    /// <param name="scope">Which tiers to ask.</param>
    /// <param name="cancellationToken">Cancels the lookup.</param>
    /// <returns>The entry, which the caller must dispose, or <see langword="null"/> on a miss.</returns>
    public static async ValueTask<CacheEntry?> GetEntryAsync(this IWasmCodeCache cache, CacheKey key, CacheLookupScope scope = CacheLookupScope.All, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(cache);
        if (cache is ICacheEntrySource source)
        {
            return await source.GetEntryAsync(key, scope, cancellationToken).ConfigureAwait(false);
        }

        return Skips(cache, scope) ? null : await ReadEntryAsync(cache, key, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A hit through the stream contract, as bytes (for a store without a typed lookup).</summary>
    internal static bool ReadEntry(IWasmCodeCache cache, CacheKey key, [NotNullWhen(true)] out CacheEntry? entry)
    {
        entry = null;
        if (!cache.TryGet(key, out var content))
        {
            return false;
        }

        using (content)
        {
            entry = CacheEntry.FromBytes(Bytes(content));
            return true;
        }
    }

    /// <summary>A hit through the stream contract, read asynchronously.</summary>
    internal static async ValueTask<CacheEntry?> ReadEntryAsync(IWasmCodeCache cache, CacheKey key, CancellationToken cancellationToken)
    {
        if (await cache.GetAsync(key, cancellationToken).ConfigureAwait(false) is not { } content)
        {
            return null;
        }

        await using (content.ConfigureAwait(false))
        {
            return CacheEntry.FromBytes(await BytesAsync(content, cancellationToken).ConfigureAwait(false));
        }
    }

    private static bool Skips(IWasmCodeCache cache, CacheLookupScope scope) => scope == CacheLookupScope.SharedTiers && cache is IProcessLocalWasmCodeCache;

    /// <summary>The one place that knows the hit-stream agreement: a backend whose hit is its own private copy returns a MemoryStream with a visible buffer, and taking that buffer saves copying the entry.</summary>
    internal static bool TryTakeBuffer(Stream content, out ReadOnlyMemory<byte> bytes)
    {
        if (content is MemoryStream memory && memory.TryGetBuffer(out var segment))
        {
            bytes = segment.AsMemory((int)memory.Position);
            return true;
        }

        bytes = default;
        return false;
    }

    private static ReadOnlyMemory<byte> Bytes(Stream content)
        => TryTakeBuffer(content, out var bytes) ? bytes : Internal.StreamBytes.ReadToEnd(content);

    private static async ValueTask<ReadOnlyMemory<byte>> BytesAsync(Stream content, CancellationToken cancellationToken)
        => TryTakeBuffer(content, out var bytes) ? bytes : await Internal.StreamBytes.ReadToEndAsync(content, cancellationToken).ConfigureAwait(false);
}
