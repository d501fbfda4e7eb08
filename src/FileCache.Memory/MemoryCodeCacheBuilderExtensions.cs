using System.Diagnostics.Metrics;
using FileCache;
using FileCache.Memory;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the in-memory tier to a cache builder.</summary>
public static class MemoryCodeCacheBuilderExtensions
{
    /// <summary>Adds an in-process, size-bounded LRU tier (<see cref="MemoryCodeCache"/>).</summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="configure">Configures the tier's options; optional.</param>
    /// <returns>The builder.</returns>
    public static IWasmCodeCacheBuilder UseMemory(this IWasmCodeCacheBuilder builder, Action<MemoryCodeCacheOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        string tierName = builder.AddTier(static (sp, name) => new MemoryCodeCache(
            sp.GetRequiredService<IOptionsMonitor<MemoryCodeCacheOptions>>().Get(name),
            sp.GetService<IMeterFactory>(),
            sp.GetService<ILogger<MemoryCodeCache>>()));

        var options = builder.Services.AddOptions<MemoryCodeCacheOptions>(tierName).ValidateOnStart();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MemoryCodeCacheOptions>, MemoryCodeCacheOptionsValidator>());
        return builder;
    }
}
