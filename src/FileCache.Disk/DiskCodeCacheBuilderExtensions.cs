using System.Diagnostics.Metrics;
using FileCache;
using FileCache.Disk;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the disk tier to a cache builder.</summary>
public static class DiskCodeCacheBuilderExtensions
{
    /// <summary>Adds a disk tier over <paramref name="directory"/>.</summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="directory">The cache directory (relative paths resolve against the current directory).</param>
    /// <returns>The builder.</returns>
    public static IWasmCodeCacheBuilder UseDisk(this IWasmCodeCacheBuilder builder, string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        return builder.UseDisk(o => o.Directory = directory);
    }

    /// <summary>
    /// Adds a disk tier (<see cref="DiskCodeCache"/>). Without a configured directory it uses the
    /// platform's user cache folder (<see cref="DiskCodeCacheOptions.DefaultDirectory"/>): the
    /// embedded default.
    /// </summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="configure">Configures the tier's options; optional.</param>
    /// <returns>The builder.</returns>
    public static IWasmCodeCacheBuilder UseDisk(this IWasmCodeCacheBuilder builder, Action<DiskCodeCacheOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        string tierName = builder.AddTier(static (sp, name) => new DiskCodeCache(
            sp.GetRequiredService<IOptionsMonitor<DiskCodeCacheOptions>>().Get(name),
            sp.GetService<IMeterFactory>(),
            sp.GetService<ILogger<DiskCodeCache>>(),
            sp.GetService<TimeProvider>()));

        var options = builder.Services.AddOptions<DiskCodeCacheOptions>(tierName).ValidateOnStart();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<DiskCodeCacheOptions>, DiskCodeCacheOptionsValidator>());
        return builder;
    }
}
