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
        var options = builder.AddTier<DiskCodeCacheOptions, DiskCodeCacheOptionsValidator>(Create);
        if (configure is not null)
        {
            options.Configure(configure);
        }

        return builder;
    }

    /// <summary>
    /// Adds the compiled code that ships with the app as a read-only disk tier in front of every
    /// other: the directory that <c>dotnet publish -p:WasmPrecompile=true</c> writes next to the app
    /// (<c>wasm-precompiled</c> under <see cref="AppContext.BaseDirectory"/>). A host whose CPU,
    /// Wasmtime or engine settings differ from the publishing machine's derives other keys, misses
    /// there and uses its writable tiers. A missing directory is a miss, not an error.
    /// </summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="configure">Configures the tier (for example <see cref="DiskCodeCacheOptions.AuthenticationKey"/>,
    /// when the entries were precompiled with one); it stays read-only.</param>
    /// <returns>The builder.</returns>
    public static IWasmCodeCacheBuilder UsePrecompiled(this IWasmCodeCacheBuilder builder, Action<DiskCodeCacheOptions>? configure = null)
    {
        var options = builder.AddTier<DiskCodeCacheOptions, DiskCodeCacheOptionsValidator>(Create, first: true)
            .Configure(o => o.Directory = Path.Join(AppContext.BaseDirectory, PrecompiledDirectoryName));
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.PostConfigure(o => o.ReadOnly = true);
        return builder;
    }

    private static DiskCodeCache Create(IServiceProvider services, DiskCodeCacheOptions options)
        => new(options, services.GetService<IMeterFactory>(), services.GetLogger<DiskCodeCache>(), services.GetService<TimeProvider>());

    /// <summary>The directory name, next to the app, of the precompiled tier (<see cref="UsePrecompiled"/>).</summary>
    public const string PrecompiledDirectoryName = "wasm-precompiled";
}
