namespace FileCache;

/// <summary>
/// An optional capability of a cache that several processes share (the disk tier on a machine): a
/// lock per key, so that processes starting together compile a missing module once. The lock is
/// released by the operating system when its holder dies, so a crashed compiler never blocks the
/// others. <see cref="Tiering.TieredCodeCache"/> offers the lock of its tiers. Callers detect it with
/// a type test or through <see cref="CompileLockExtensions"/>.
/// </summary>
internal interface ICompileLockSource
{
    /// <summary>Takes the compile lock of <paramref name="key"/>, waiting up to <paramref name="timeout"/>.</summary>
    /// <param name="key">The key about to be compiled.</param>
    /// <param name="timeout">How long to wait for another holder.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The lock, to dispose after the entry is added; <see langword="null"/> when the wait timed out.</returns>
    IDisposable? TryAcquireCompileLock(CacheKey key, TimeSpan timeout, CancellationToken cancellationToken = default);

    /// <summary>Takes the compile lock of <paramref name="key"/> without holding a thread while it waits.</summary>
    /// <param name="key">The key about to be compiled.</param>
    /// <param name="timeout">How long to wait for another holder.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The lock, to dispose after the entry is added; <see langword="null"/> when the wait timed out.</returns>
    ValueTask<IDisposable?> TryAcquireCompileLockAsync(CacheKey key, TimeSpan timeout, CancellationToken cancellationToken = default);
}

/// <summary>Takes a compile lock from any cache that offers one.</summary>
internal static class CompileLockExtensions
{
    /// <summary>Takes the compile lock of <paramref name="key"/> when the cache offers <see cref="ICompileLockSource"/>.</summary>
    /// <param name="cache">The cache.</param>
    /// <param name="key">The key about to be compiled.</param>
    /// <param name="timeout">How long to wait for another holder.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <param name="acquired">The lock when one was taken.</param>
    /// <returns><see langword="false"/> when the cache offers no lock; otherwise <see langword="true"/>, with
    /// <paramref name="acquired"/> <see langword="null"/> when the wait timed out.</returns>
    public static bool TryAcquireCompileLock(this IWasmCodeCache cache, CacheKey key, TimeSpan timeout, CancellationToken cancellationToken, out IDisposable? acquired)
    {
        ArgumentNullException.ThrowIfNull(cache);
        var source = cache as ICompileLockSource;
        acquired = source?.TryAcquireCompileLock(key, timeout, cancellationToken);
        return source is not null;
    }

    /// <summary>Takes the compile lock of <paramref name="key"/> asynchronously when the cache offers one.</summary>
    /// <param name="cache">The cache.</param>
    /// <param name="key">The key about to be compiled.</param>
    /// <param name="timeout">How long to wait for another holder.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>Whether the cache offers a lock, and the lock (<see langword="null"/> when the wait timed out).</returns>
    public static async ValueTask<(bool Offered, IDisposable? Acquired)> TryAcquireCompileLockAsync(this IWasmCodeCache cache, CacheKey key, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(cache);
        return cache is ICompileLockSource source
            ? (true, await source.TryAcquireCompileLockAsync(key, timeout, cancellationToken).ConfigureAwait(false))
            : (false, null);
    }
}
