using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace FileCache.Disk;

/// <summary>The health probe: the directory exists (or can be made), passes the trust check, and takes a file.</summary>
internal sealed partial class DiskCodeCache : IHealthCheck
{
    /// <inheritdoc/>
    /// <remarks>
    /// Creates the directory like a first Add would, checks it like every operation does, and (unless
    /// read-only) writes and removes a probe file. Unusable or insecure is the registration's failure status.
    /// </remarks>
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        var data = new Dictionary<string, object> { ["directory"] = Directory };
        try
        {
            if (_options.ReadOnly)
            {
                if (!EnsureTrustedDirectory())
                {
                    return Task.FromResult(new HealthCheckResult(context.Registration.FailureStatus, $"the read-only cache directory '{Directory}' does not exist", data: data));
                }
            }
            else
            {
                EnsureDirectory();
                string probe = Path.Join(Directory, $"{TempPrefix}health-{Environment.ProcessId}-{Guid.NewGuid():N}");
                using (new FileStream(probe, TempFileOptions(FileOptions.DeleteOnClose)))
                {
                }
            }

            string trust = MapsEntryFiles ? "private" : _authenticationKey is null ? "checked" : "authenticated entries";
            data["trust"] = trust;
            return Task.FromResult(HealthCheckResult.Healthy($"'{Directory}' is usable ({trust}{(_options.ReadOnly ? ", read-only" : "")})", data));
        }
        catch (Exception e) when (e is InsecureCacheDirectoryException or IOException or UnauthorizedAccessException)
        {
            return Task.FromResult(new HealthCheckResult(context.Registration.FailureStatus, $"'{Directory}' is not usable: {e.Message}", e, data));
        }
    }
}
