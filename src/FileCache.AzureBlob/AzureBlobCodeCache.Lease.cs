using FileCache.Internal;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using FileCache.Diagnostics;
using Microsoft.Extensions.Logging;

namespace FileCache.AzureBlob;

// The fleet compile lock: a blob lease, renewed while its holder compiles.
internal sealed partial class AzureBlobCodeCache
{
    /// <inheritdoc/>
    /// <remarks>Waits for <see cref="TryAcquireCompileLockAsync"/> (the tier's one blocking point).</remarks>
    public IDisposable? TryAcquireCompileLock(CacheKey key, TimeSpan timeout, CancellationToken cancellationToken = default)
        => Completed.WaitForStore(TryAcquireCompileLockAsync(key, timeout, cancellationToken));

    /// <inheritdoc/>
    /// <remarks>
    /// Without the lock (turned off, read-only, or the store failing) a lock that holds nothing, at once:
    /// compiling without it costs only a duplicate compile. Otherwise tries the lease with jittered,
    /// growing pauses (0.2 to 2 s) until it is taken or <paramref name="timeout"/> passes
    /// (<see langword="null"/>): no polling storm when a thousand hosts wait for one compile.
    /// </remarks>
    public async ValueTask<IDisposable?> TryAcquireCompileLockAsync(CacheKey key, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        if (!_options.FleetCompileLock || _readOnly)
        {
            return NoLock.Instance;
        }

        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        var blob = _container.GetBlobClient(_options.Prefix + "locks/" + key.ToString());
        var lease = blob.GetBlobLeaseClient();
        double pause = 200;
        while (true)
        {
            try
            {
                if (await TryLeaseAsync(blob, lease, cancellationToken).ConfigureAwait(false))
                {
                    return new HeldLease(this, lease, key);
                }
            }
            catch (RequestFailedException e) when (e.Status == 403)
            {
                _readOnly = true;
                LogWritesRefused(_logger, key, e.ErrorCode);
                return NoLock.Instance;
            }
            catch (Exception e) when (IsStoreFailure(e, cancellationToken))
            {
                OnStoreFailure("lock", key, e);
                return NoLock.Instance;
            }

            long remaining = deadline - Environment.TickCount64;
            if (remaining <= 0)
            {
                return null;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(remaining, pause * (0.5 + Random.Shared.NextDouble()))), cancellationToken).ConfigureAwait(false);
            pause = Math.Min(pause * 1.5, 2000);
        }
    }

    /// <summary>One attempt: the lock blob exists (created once), then its lease; <see langword="false"/> while another holder has it.</summary>
    private async ValueTask<bool> TryLeaseAsync(BlobClient blob, BlobLeaseClient lease, CancellationToken cancellationToken)
    {
        return await _pipeline.ExecuteAsync(
            static async (state, ct) =>
            {
                await state.Self.EnsureContainerAsync(ct).ConfigureAwait(false);
                await state.Self.CreateOnceAsync(state.Blob, [], ct).ConfigureAwait(false);
                try
                {
                    state.Self._requests.Add(1, new KeyValuePair<string, object?>(WasmCodeCacheMetrics.OperationTag, "lease"));
                    await state.Lease.AcquireAsync(state.Self._options.CompileLockDuration, cancellationToken: ct).ConfigureAwait(false);
                    return true;
                }
                catch (RequestFailedException e) when (e.Status == 409)
                {
                    return false; // LeaseAlreadyPresent: another host compiles
                }
            },
            (Self: this, Blob: blob, Lease: lease),
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A lock that holds nothing: there is no fleet lock, or the store could not be asked.</summary>
    private sealed class NoLock : IDisposable
    {
        public static readonly NoLock Instance = new();

        public void Dispose()
        {
        }
    }

    /// <summary>A held lease: renewed in the background at a third of its duration until disposed, then released.</summary>
    private sealed class HeldLease : IDisposable
    {
        private readonly AzureBlobCodeCache _owner;
        private readonly BlobLeaseClient _lease;
        private readonly CacheKey _key;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _renewing;

        public HeldLease(AzureBlobCodeCache owner, BlobLeaseClient lease, CacheKey key)
        {
            _owner = owner;
            _lease = lease;
            _key = key;
            _renewing = RenewAsync();
        }

        private async Task RenewAsync()
        {
            var every = _owner._options.CompileLockDuration / 3;
            try
            {
                while (true)
                {
                    await Task.Delay(every, _stop.Token).ConfigureAwait(false);
                    await _lease.RenewAsync(cancellationToken: _stop.Token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                // released
            }
            catch (Exception e) when (IsStoreFailure(e, _stop.Token))
            {
                _owner.OnStoreFailure("renew", _key, e); // the lease then expires: at worst a duplicate compile
            }
        }

        public void Dispose()
        {
            if (_stop.IsCancellationRequested)
            {
                return;
            }

            _stop.Cancel();
            _ = ReleaseAsync();
        }

        private async Task ReleaseAsync()
        {
            try
            {
                await _renewing.ConfigureAwait(false);
                await _lease.ReleaseAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (IsStoreFailure(e, CancellationToken.None))
            {
                _owner.OnStoreFailure("unlock", _key, e); // it expires by itself
            }
            finally
            {
                _stop.Dispose();
            }
        }
    }
}
