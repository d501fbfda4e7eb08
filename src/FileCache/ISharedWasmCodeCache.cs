using FileCache.Tiering;

namespace FileCache;

/// <summary>
/// Marks a cache whose entries are shared by hosts that may differ (other CPUs, Wasmtime versions,
/// authentication keys), such as a fleet-wide distributed tier. A host that cannot use an entry
/// must neither delete it nor replace it with its own: another host may be using it. Loaders reach
/// this through <see cref="LocalEntryExtensions"/>, never by looking inside tiers.
/// </summary>
internal interface ISharedWasmCodeCache
{
}

/// <summary>
/// Replace or remove an entry only where this host owns it: in every tier that is not an
/// <see cref="ISharedWasmCodeCache"/>. For a loader whose engine cannot use a cached entry.
/// </summary>
internal static class LocalEntryExtensions
{
    /// <summary>Removes <paramref name="key"/> from the caches this host owns; shared ones keep it.</summary>
    /// <param name="cache">A cache, tiers, or a shared cache (then nothing happens).</param>
    /// <param name="key">The key.</param>
    public static void DeleteLocal(this IWasmCodeCache cache, CacheKey key)
    {
        ArgumentNullException.ThrowIfNull(cache);
        switch (cache)
        {
            case TieredCodeCache tiered:
                tiered.DeleteLocal(key);
                break;
            case ISharedWasmCodeCache:
                break;
            default:
                cache.Delete(key);
                break;
        }
    }

    /// <summary>Stores <paramref name="content"/> under <paramref name="key"/> in the caches this host owns; shared ones are left as they are.</summary>
    /// <param name="cache">A cache, tiers, or a shared cache (then nothing happens).</param>
    /// <param name="key">The key.</param>
    /// <param name="content">The content; read once per local tier, so it must be seekable when there are several.</param>
    public static void AddLocal(this IWasmCodeCache cache, CacheKey key, Stream content)
    {
        ArgumentNullException.ThrowIfNull(cache);
        ArgumentNullException.ThrowIfNull(content);
        switch (cache)
        {
            case TieredCodeCache tiered:
                tiered.AddLocal(key, content);
                break;
            case ISharedWasmCodeCache:
                break;
            default:
                cache.Add(key, content);
                break;
        }
    }
}
