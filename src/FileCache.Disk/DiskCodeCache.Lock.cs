using FileCache.Internal;
using FileCache.Disk.Internal;
using Microsoft.Win32.SafeHandles;

namespace FileCache.Disk;

/// <summary>
/// Compile locks: one lock file per key being compiled, under the same no-follow rules as entries,
/// so processes sharing the directory compile a missing key once.
/// </summary>
internal sealed partial class DiskCodeCache : ICompileLockSource
{
    private const string CompileLockPrefix = ".compile-";
    private const int LockPollInterval = 20; // milliseconds

    /// <inheritdoc/>
    /// <remarks>
    /// The lock is an OS file lock (flock) on <c>.compile-&lt;key&gt;</c>: a holder that dies releases it.
    /// The holder removes the file before releasing it, and a waiter that locks a file no longer
    /// under that name (removed meanwhile) tries again, so two processes never hold "the" lock at once.
    /// Returns <see langword="null"/> where the platform has no such locks (Windows) or when read-only.
    /// </remarks>
    public IDisposable? TryAcquireCompileLock(CacheKey key, TimeSpan timeout, CancellationToken cancellationToken = default)
        => Completed.Result(AcquireCompileLock<Blocking>(key, timeout, cancellationToken));

    /// <inheritdoc/>
    public ValueTask<IDisposable?> TryAcquireCompileLockAsync(CacheKey key, TimeSpan timeout, CancellationToken cancellationToken = default)
        => AcquireCompileLock<NonBlocking>(key, timeout, cancellationToken);

    private async ValueTask<IDisposable?> AcquireCompileLock<TMode>(CacheKey key, TimeSpan timeout, CancellationToken cancellationToken)
        where TMode : struct, IIoMode
    {
        if (!StartLock(key, timeout, out string path, out long deadline))
        {
            return null;
        }

        CompileLock? held;
        while (!LockOrGiveUp(path, deadline, cancellationToken, out held))
        {
            // Polled rather than a blocking flock: the wait honours the timeout and cancellation.
            if (TMode.IsAsync)
            {
                await Task.Delay(LockPollInterval, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                cancellationToken.WaitHandle.WaitOne(LockPollInterval);
            }
        }

        return held;
    }

    /// <summary>Where the lock of <paramref name="key"/> lives and when to stop waiting; <see langword="false"/> when there is no lock to take.</summary>
    [System.Runtime.Versioning.UnsupportedOSPlatformGuard("windows")]
    private bool StartLock(CacheKey key, TimeSpan timeout, out string path, out long deadline)
    {
        path = Path.Join(Directory, CompileLockPrefix + key.ToString());
        deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        if (_options.ReadOnly || !UnixFile.IsSupported)
        {
            return false;
        }

        EnsureDirectory();
        return true;
    }

    /// <summary>One attempt; <see langword="true"/> when the wait is over (the lock is held, or the deadline passed).</summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private bool LockOrGiveUp(string path, long deadline, CancellationToken cancellationToken, out CompileLock? held)
    {
        cancellationToken.ThrowIfCancellationRequested();
        held = TryLockOnce(path);
        return held is not null || Environment.TickCount64 >= deadline;
    }

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private CompileLock? TryLockOnce(string path)
    {
        var handle = OpenLockFile(path);
        try
        {
            var file = UnixFile.Stat(handle);
            if (!UnixFile.TryLockExclusive(handle, path))
            {
                handle.Dispose();
                return null;
            }

            // Locked: is it still the file under that name? A holder may have removed it meanwhile.
            if (UnixFile.LStat(path) is not { } now || !now.SameFileAs(file))
            {
                handle.Dispose();
                return null;
            }

            return new CompileLock(path, handle);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens a lock file without following a link planted under its name; creates it (O_EXCL, never
    /// through a link) with <see cref="DiskCodeCacheOptions.FileMode"/> applied on the handle, so every
    /// member of a group-shared cache can take it.
    /// </summary>
    /// <exception cref="IOException">Something other than a regular file is under the name.</exception>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private SafeFileHandle OpenLockFile(string path)
    {
        while (true)
        {
            var handle = UnixFile.OpenNoFollow(path, out var refusal);
            if (handle is not null)
            {
                if (UnixFile.Stat(handle).Kind == FileKind.Regular)
                {
                    return handle;
                }

                handle.Dispose();
                throw new IOException($"The lock file '{path}' is not a regular file; remove it.");
            }

            if (refusal != OpenRefusal.Missing)
            {
                throw new IOException($"The lock file '{path}' cannot be used ({refusal}); remove it.");
            }

            try
            {
                var create = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.ReadWrite, BufferSize = 0, UnixCreateMode = _options.FileMode };
                using var created = new FileStream(path, create);
                File.SetUnixFileMode(created.SafeFileHandle, _options.FileMode);
            }
            catch (IOException) when (File.Exists(path))
            {
                // Another process created it first: open that one.
            }
        }
    }

    private sealed class CompileLock(string path, SafeFileHandle handle) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) != 0)
            {
                return;
            }

            try
            {
                File.Delete(path); // while still locked: the next locker re-checks the name
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Left behind: the next holder reuses and removes it.
            }

            handle.Dispose(); // releases the lock
        }
    }
}
