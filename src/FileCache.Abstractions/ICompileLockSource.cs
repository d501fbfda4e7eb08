using FileCache.Tiering;

namespace FileCache;

/// <summary>
/// An optional capability of a cache that processes on one machine share (the disk tier): a lock per
/// key, so that processes starting together compile a missing module once. The lock is released by
/// the operating system when its holder dies, so a crashed compiler never blocks the others.
/// Callers detect it with a type test or through <see cref="CompileLockExtensions.TryAcquireCompileLock"/>,
/// which also finds it among tiers.
/// </summary>
public interface ICompileLockSource
{
    /// <summary>Takes the compile lock of <paramref name="key"/>, waiting up to <paramref name="timeout"/>.</summary>
    /// <param name="key">The key about to be compiled.</param>
    /// <param name="timeout">How long to wait for another holder.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The lock, to dispose after the entry is added; <see langword="null"/> when the wait timed out.</returns>
    IDisposable? TryAcquireCompileLock(CacheKey key, TimeSpan timeout, CancellationToken cancellationToken = default);
}

/// <summary>Finds a compile lock in a cache or its tiers.</summary>
public static class CompileLockExtensions
{
    /// <summary>
    /// Takes the compile lock of <paramref name="key"/> from the cache, or from its first tier that
    /// offers one.
    /// </summary>
    /// <param name="cache">The cache.</param>
    /// <param name="key">The key about to be compiled.</param>
    /// <param name="timeout">How long to wait for another holder.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <param name="acquired">The lock when one was taken.</param>
    /// <returns><see langword="false"/> when no tier offers a lock; otherwise <see langword="true"/>, with
    /// <paramref name="acquired"/> <see langword="null"/> when the wait timed out.</returns>
    public static bool TryAcquireCompileLock(this IWasmCodeCache cache, CacheKey key, TimeSpan timeout, CancellationToken cancellationToken, out IDisposable? acquired)
    {
        ArgumentNullException.ThrowIfNull(cache);
        var source = cache as ICompileLockSource ?? (cache as TieredCodeCache)?.Tiers.OfType<ICompileLockSource>().FirstOrDefault();
        acquired = source?.TryAcquireCompileLock(key, timeout, cancellationToken);
        return source is not null;
    }
}
