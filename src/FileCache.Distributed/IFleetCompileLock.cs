using StackExchange.Redis;

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

/// <summary>
/// <see cref="IFleetCompileLock"/> on Redis (or Garnet) through StackExchange.Redis: <c>SET resource
/// token NX PX expiry</c> to take it, and a delete only while the value is still this holder's token to
/// release it (<see cref="IDatabaseAsync.LockTakeAsync"/> and <see cref="IDatabaseAsync.LockReleaseAsync"/>).
/// </summary>
/// <param name="redis">The connection (the same server as the distributed cache, or any other).</param>
public sealed class RedisFleetCompileLock(IConnectionMultiplexer redis) : IFleetCompileLock
{
    private readonly IConnectionMultiplexer _redis = redis ?? throw new ArgumentNullException(nameof(redis));

    /// <inheritdoc/>
    public async ValueTask<IAsyncDisposable?> TryAcquireAsync(string resource, TimeSpan expiry, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(resource);
        cancellationToken.ThrowIfCancellationRequested();
        var database = _redis.GetDatabase();
        string token = $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid():N}";
        return await database.LockTakeAsync(resource, token, expiry).ConfigureAwait(false) ? new Held(database, resource, token) : null;
    }

    private sealed class Held(IDatabase database, string resource, string token) : IAsyncDisposable
    {
        private int _released;

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                await database.LockReleaseAsync(resource, token).ConfigureAwait(false);
            }
        }
    }
}
