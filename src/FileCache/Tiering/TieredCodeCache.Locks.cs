using FileCache.Internal;
using FileCache.Diagnostics;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace FileCache.Tiering;

// Compile locks, health and disposal: each read from the tiers' traits.
internal sealed partial class TieredCodeCache
{
    /// <inheritdoc/>
    /// <remarks>
    /// Takes the lock of every tier that offers one, in order (the machine's disk lock, then the
    /// fleet's): processes on one machine queue locally and one of them asks the fleet. All of them
    /// share one deadline, <paramref name="timeout"/> from now. A tier whose wait timed out is skipped; <see langword="null"/> only when every such tier timed out (or none offers one).
    /// </remarks>
    public IDisposable? TryAcquireCompileLock(CacheKey key, TimeSpan timeout, CancellationToken cancellationToken = default)
        => Completed.Result(AcquireCompileLocks<Blocking>(key, timeout, cancellationToken));

    /// <inheritdoc/>
    /// <remarks>As <see cref="TryAcquireCompileLock"/>, without holding a thread while waiting.</remarks>
    public ValueTask<IDisposable?> TryAcquireCompileLockAsync(CacheKey key, TimeSpan timeout, CancellationToken cancellationToken = default)
        => AcquireCompileLocks<NonBlocking>(key, timeout, cancellationToken);

    private async ValueTask<IDisposable?> AcquireCompileLocks<TMode>(CacheKey key, TimeSpan timeout, CancellationToken cancellationToken)
        where TMode : struct, IIoMode
    {
        var held = new List<IDisposable>();
        long deadline = Deadline(timeout);
        try
        {
            foreach (var tier in _tiers)
            {
                if (tier.Lock is not { } source)
                {
                    continue;
                }

                var one = TMode.IsAsync
                    ? await source.TryAcquireCompileLockAsync(key, Remaining(deadline), cancellationToken).ConfigureAwait(false)
                    : source.TryAcquireCompileLock(key, Remaining(deadline), cancellationToken);
                if (one is not null)
                {
                    held.Add(one);
                }
            }
        }
        catch
        {
            Release(held);
            throw;
        }

        return Combined(held);
    }

    /// <inheritdoc/>
    /// <remarks>Checks every tier that has a probe; the worst status wins.</remarks>
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        => WasmCodeCacheHealthCheck.CombineAsync(_tiers, context, cancellationToken);

    // One deadline for every lock tier: the machine's wait and the fleet's together take at most the
    // timeout, not the timeout once per tier.
    private static long Deadline(TimeSpan timeout) => Environment.TickCount64 + (long)Math.Min(timeout.TotalMilliseconds, int.MaxValue);

    private static TimeSpan Remaining(long deadline) => TimeSpan.FromMilliseconds(Math.Max(0, deadline - Environment.TickCount64));

    private static IDisposable? Combined(List<IDisposable> held)
        => held.Count == 0 ? null : held.Count == 1 ? held[0] : new Locks(held);

    private static void Release(List<IDisposable> held)
    {
        for (int i = held.Count - 1; i >= 0; i--)
        {
            held[i].Dispose(); // the reverse order of taking
        }
    }

    private sealed class Locks(List<IDisposable> held) : IDisposable
    {
        public void Dispose() => Release(held);
    }

    /// <summary>Disposes the tiers this cache owns.</summary>
    public void Dispose()
    {
        foreach (var tier in _tiers)
        {
            if (tier.Owned)
            {
                (tier.Cache as IDisposable)?.Dispose();
            }
        }
    }

    /// <summary>Disposes the tiers this cache owns.</summary>
    /// <returns>A task that completes when the tiers are disposed.</returns>
    public async ValueTask DisposeAsync()
    {
        foreach (var tier in _tiers)
        {
            if (!tier.Owned)
            {
                continue;
            }

            if (tier.Cache is IAsyncDisposable asyncDisposable)
            {
                await asyncDisposable.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                (tier.Cache as IDisposable)?.Dispose();
            }
        }
    }
}
