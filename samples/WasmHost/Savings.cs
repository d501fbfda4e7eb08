using System.Globalization;
using FileCache;
using FileCache.Disk;

/// <summary>
/// Remembers how long a compile took, per cache key, so that a later hit can say what it saved. A
/// sample's own note beside the cache (<c>&lt;cache directory&gt;-wasmhost/</c>), never inside it.
/// </summary>
internal static class Savings
{
    /// <summary>On a miss, records the load's time; on a hit, returns the line that compares it with the recorded compile.</summary>
    public static string? Record(string? cacheDirectory, CacheKey key, bool hit, TimeSpan elapsed)
    {
        try
        {
            string notes = Path.GetFullPath(cacheDirectory ?? DiskCodeCacheOptions.DefaultDirectory).TrimEnd('/', '\\') + "-wasmhost";
            string file = Path.Join(notes, key.ToString() + ".compile-ms");
            if (!hit)
            {
                Directory.CreateDirectory(notes);
                File.WriteAllText(file, elapsed.TotalMilliseconds.ToString("R", CultureInfo.InvariantCulture));
                return null;
            }

            if (!File.Exists(file) || !double.TryParse(File.ReadAllText(file), NumberStyles.Float, CultureInfo.InvariantCulture, out double compiled))
            {
                return null; // compiled elsewhere (the precompiled tier, another host)
            }

            double now = elapsed.TotalMilliseconds;
            return string.Create(CultureInfo.InvariantCulture, $"saved:  the first run compiled this module in {compiled:0.#} ms; this hit took {now:0.###} ms: {compiled - now:0.#} ms saved ({compiled / Math.Max(now, 0.001):0}x faster)");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // only a sample's note: never fail a load for it
        }
    }
}
