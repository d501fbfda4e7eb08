using System.Diagnostics.Metrics;
using FileCache;
using FileCache.AzureBlob;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the Azure Blob Storage tier to a cache builder.</summary>
public static class AzureBlobCodeCacheBuilderExtensions
{
    /// <summary>
    /// Adds a fleet tier on Azure Blob Storage. Put it after the disk tier: a hit is verified, then
    /// written into the faster tiers, so a warm host never asks the store again. Set
    /// <see cref="AzureBlobCodeCacheOptions.AuthenticationKey"/> and a container (with the host's credential).
    /// </summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="configure">Configures the tier.</param>
    /// <returns>The builder.</returns>
    public static IWasmCodeCacheBuilder UseAzureBlob(this IWasmCodeCacheBuilder builder, Action<AzureBlobCodeCacheOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        builder.AddTier<AzureBlobCodeCacheOptions, AzureBlobCodeCacheOptionsValidator>(static (sp, o) => new AzureBlobCodeCache(
            o, sp.GetService<IMeterFactory>(), sp.GetLogger<AzureBlobCodeCache>(), sp.GetService<TimeProvider>())).Configure(configure);
        return builder;
    }
}
