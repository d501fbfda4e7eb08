namespace FileCache.Distributed;

/// <summary>
/// A lock held in the fleet's store, so that hosts cold-loading a new module compile it once
/// (<see cref="DistributedCodeCacheOptions.FleetCompileLock"/>). <c>IDistributedCache</c> has
/// no atomic set-if-absent, so the lock goes through the store's own client.
/// </summary>
public interface IFleetCompileLock
{
    /// <summary>Tries once to take the lock named <paramref name="resource"/>, which expires after <paramref name="expiry"/> if never released.</summary>
    /// <param name="resource">The lock's name in the store.</param>
    /// <param name="expiry">How long the lock lives if its holder never releases it (a holder that died).</param>
    /// <param name="cancellationToken">Cancels the attempt.</param>
    /// <returns>The held lock, to dispose when the entry is stored; <see langword="null"/> when another holder has it.</returns>
    ValueTask<IAsyncDisposable?> TryAcquireAsync(string resource, TimeSpan expiry, CancellationToken cancellationToken = default);
}
