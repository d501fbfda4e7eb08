using Microsoft.Extensions.DependencyInjection;

namespace FileCache;

/// <summary>
/// Registration-time bookkeeping kept in the service collection itself: which caches are
/// registered (so repeated AddWasmCodeCache calls add nothing) and how many tiers each has
/// (so each tier gets its own options name).
/// </summary>
internal sealed class WasmCodeCacheRegistry
{
    private readonly HashSet<string> _caches = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _tierCounts = new(StringComparer.Ordinal);

    public static WasmCodeCacheRegistry For(IServiceCollection services)
    {
        foreach (var descriptor in services)
        {
            if (descriptor.ServiceType == typeof(WasmCodeCacheRegistry) && descriptor.ImplementationInstance is WasmCodeCacheRegistry existing)
            {
                return existing;
            }
        }

        var created = new WasmCodeCacheRegistry();
        services.AddSingleton(created);
        return created;
    }

    /// <summary>Returns true the first time a cache name is seen.</summary>
    public bool TryAddCache(string name)
    {
        lock (_caches)
        {
            return _caches.Add(name);
        }
    }

    /// <summary>Returns a new, unique options name for the next tier of a cache.</summary>
    public string NextTierName(string cacheName)
    {
        lock (_caches)
        {
            _tierCounts.TryGetValue(cacheName, out int count);
            _tierCounts[cacheName] = count + 1;
            return cacheName.Length == 0 ? $"tier{count}" : $"{cacheName}/tier{count}";
        }
    }
}
