using StackExchange.Redis;

namespace FileCache.Distributed;

/// <summary>
/// <see cref="IFleetCompileLock"/> on Redis (or Garnet) through StackExchange.Redis: <c>SET resource
/// token NX PX expiry</c> to take it, and a delete only while the value is still this holder's token to
/// release it (<see cref="IDatabaseAsync.LockTakeAsync"/> and <see cref="IDatabaseAsync.LockReleaseAsync"/>).
/// A lock key that has no expiry (never set by a holder, which always sets one) is removed, not obeyed.
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
        if (await database.LockTakeAsync(resource, token, expiry).ConfigureAwait(false))
        {
            return new Held(database, resource, token);
        }

        // Every real holder sets an expiry. A lock key without one was set by someone else with write
        // access to the store, and would be obeyed for ever: remove it (only if it still has no expiry)
        // and try once more.
        if ((int)await database.ScriptEvaluateAsync(RemoveIfNoExpiry, [resource]).ConfigureAwait(false) == 1
            && await database.LockTakeAsync(resource, token, expiry).ConfigureAwait(false))
        {
            return new Held(database, resource, token);
        }

        return null;
    }

    // PTTL -1: the key exists without an expiry (-2: it is gone). Atomic, so a holder that just took the lock is never removed.
    private const string RemoveIfNoExpiry = "if redis.call('PTTL', KEYS[1]) == -1 then return redis.call('DEL', KEYS[1]) else return 0 end";

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
