namespace FileCache.Specification.Tests;

/// <summary>Small helpers for tests of caches.</summary>
internal static class TestCacheExtensions
{
    /// <summary>Looks a key up and returns the whole entry, or null on a miss; the hit's stream is disposed.</summary>
    /// <param name="cache">The cache.</param>
    /// <param name="key">The key.</param>
    /// <returns>The entry's bytes, or null.</returns>
    public static byte[]? GetBytes(this IWasmCodeCache cache, CacheKey key)
    {
        ArgumentNullException.ThrowIfNull(cache);
        if (!cache.TryGet(key, out var content))
        {
            return null;
        }

        using (content)
        {
            using var copy = new MemoryStream();
            content.CopyTo(copy);
            return copy.ToArray();
        }
    }
}
