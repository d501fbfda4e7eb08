using Microsoft.Extensions.DependencyInjection;

namespace FileCache;

/// <summary>
/// Configures one cache registered by <c>AddWasmCodeCache</c> or <c>AddKeyedWasmCodeCache</c>.
/// Backend packages add <c>Use…</c> extensions; each call adds a tier, fastest first.
/// </summary>
public interface IWasmCodeCacheBuilder
{
    /// <summary>The service collection the cache is registered in.</summary>
    IServiceCollection Services { get; }

    /// <summary>The options name of this cache: <see cref="Microsoft.Extensions.Options.Options.DefaultName"/>
    /// for the unkeyed cache, the service key for a keyed one.</summary>
    string Name { get; }
}
