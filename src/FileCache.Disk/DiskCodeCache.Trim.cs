using FileCache.Disk.Internal;
using FileCache.Internal;
using Microsoft.Win32.SafeHandles;

namespace FileCache.Disk;

/// <summary>Eviction and sweeping: runs off the caller's path, one process at a time.</summary>
internal sealed partial class DiskCodeCache
{
    private const string LockFileName = ".trim.lock";
    private long _approximateSize = -1; // unknown until the first scan
    private long _lastScanTimestamp; // 0: never scanned
    private readonly SemaphoreSlim _trimGate = new(1, 1); // one trim at a time in this process

    /// <summary>
    /// Runs maintenance now: removes temp files of killed writers, entries unused for longer than
    /// <see cref="DiskCodeCacheOptions.MaxAge"/>, and the least recently used entries while the
    /// directory holds more than <see cref="DiskCodeCacheOptions.MaxSize"/> (down to
    /// <see cref="DiskCodeCacheOptions.TrimRatio"/> of it). Adds call it in the background; it is
    /// public for operators and tests. Does nothing when read-only, when the directory does not
    /// exist, or when another process is trimming the same directory.
    /// </summary>
    /// <returns>How many entries and temp files were removed.</returns>
    public int Trim() => Trim(TimeSpan.Zero);

    private int Trim(TimeSpan lockWait)
    {
        if (_options.ReadOnly || !EnsureSameDirectory())
        {
            return 0;
        }

        // An exclusive lock on a file: the OS releases it when a process dies, so a crashed
        // trimmer can never block the others.
        SafeFileHandle? lockFile = null;
        long deadline = Environment.TickCount64 + (long)lockWait.TotalMilliseconds;
        while ((lockFile = TryLock()) is null)
        {
            if (Environment.TickCount64 >= deadline)
            {
                return 0; // another process is trimming
            }

            Thread.Sleep(5);
        }

        using (lockFile)
        {
            var now = _time.GetUtcNow().UtcDateTime;
            var entries = new List<(string Path, FileIdentity File)>();
            long total = 0;
            int removed = 0;
            int swept = 0;
            foreach (var path in System.IO.Directory.EnumerateFiles(Directory))
            {
                _disposed.Token.ThrowIfCancellationRequested();
                string name = Path.GetFileName(path);
                bool temp = IsTempName(name);
                if (IsRecordName(name))
                {
                    // A record whose entry is gone names an inode no entry has: remove it.
                    if (!File.Exists(Path.Join(Directory, name[RecordPrefix.Length..])) && Describe(path) is { } record && RemoveIfSame(path, record))
                    {
                        swept++;
                    }

                    continue;
                }

                if (!temp && !IsEntryName(name))
                {
                    continue;
                }

                if (Describe(path) is not { } file)
                {
                    continue; // deleted or replaced by someone else meanwhile
                }

                if (temp)
                {
                    if (IsAbandonedTemp(path, file, now) && RemoveIfSame(path, file))
                    {
                        swept++;
                    }
                    else
                    {
                        total += file.Length; // a live writer's bytes take room too
                    }
                }
                else if (_options.MaxAge is { } maxAge && now - file.LastWriteUtc > maxAge)
                {
                    removed += RemoveIfSame(path, file) ? 1 : 0;
                }
                else
                {
                    entries.Add((path, file));
                    total += file.Length;
                }
            }

            if (_options.MaxSize is long max && total > max)
            {
                long target = (long)(max * _options.TrimRatio);
                entries.Sort(static (a, b) => a.File.LastWriteUtc.CompareTo(b.File.LastWriteUtc));
                foreach (var (path, file) in entries)
                {
                    if (total <= target)
                    {
                        break;
                    }

                    // Readers hold their bytes (or an open handle), so removing a file under them is safe.
                    // A file replaced meanwhile is a fresh entry: it stays, and no longer counts as this one.
                    removed += RemoveIfSame(path, file) ? 1 : 0;
                    total -= file.Length;
                }
            }

            Interlocked.Exchange(ref _approximateSize, total);
            Interlocked.Exchange(ref _lastScanTimestamp, Math.Max(1, _time.GetTimestamp()));
            if (removed > 0)
            {
                _metrics.Evicted(removed);
            }

            if (removed + swept > 0)
            {
                LogTrimmed(_logger, Directory, removed, swept, total);
            }

            return removed + swept;
        }
    }

    /// <summary>
    /// Whether a temp file's writer is gone. Every writer holds an exclusive lock on its temp for as
    /// long as it lives and the OS drops it when the process dies, so a temp whose lock can be taken
    /// is abandoned whatever its age. The grace period covers the instant between a writer's create
    /// and its lock. Where there are no such locks (Windows), age alone decides.
    /// </summary>
    private bool IsAbandonedTemp(string path, in FileIdentity file, DateTime now)
    {
        if (now - file.LastWriteUtc > _options.StaleTempFileAge)
        {
            return true;
        }

        return UnixFile.IsSupported
            && now - file.LastWriteUtc > TempLockGrace
            && UnixFile.IsUnlocked(path, out var locked)
            && locked.SameFileAs(file);
    }

    /// <summary>How long a new temp file is left alone before its lock decides (see <see cref="IsAbandonedTemp"/>).</summary>
    internal static TimeSpan TempLockGrace { get; } = TimeSpan.FromSeconds(2);

    private static FileIdentity? Describe(string path)
    {
        if (UnixFile.IsSupported)
        {
            return UnixFile.LStat(path);
        }

        var info = new FileInfo(path);
        return info.Exists ? new FileIdentity(FileKind.Regular, 0, 0, 0, 0, false, 1, info.Length, info.LastWriteTimeUtc) : null;
    }

    /// <summary>Removes <paramref name="path"/> if it still names the file that was examined (same device and inode).</summary>
    private static bool RemoveIfSame(string path, in FileIdentity examined)
    {
        if (examined.Kind == FileKind.Directory || (UnixFile.IsSupported && (UnixFile.LStat(path) is not { } now || !now.SameFileAs(examined))))
        {
            return false;
        }

        try
        {
            File.Delete(path);
            return true;
        }
        catch (FileNotFoundException)
        {
            return false;
        }
    }

    /// <summary>Opens and locks <c>.trim.lock</c> (see <see cref="OpenLockFile"/>).</summary>
    /// <returns><see langword="null"/> when another process holds the lock.</returns>
    private SafeFileHandle? TryLock()
    {
        string path = Path.Join(Directory, LockFileName);
        if (!UnixFile.IsSupported)
        {
            try
            {
                return File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException)
            {
                return null;
            }
        }

        var handle = OpenLockFile(path);
        if (UnixFile.TryLockExclusive(handle, path))
        {
            return handle;
        }

        handle.Dispose();
        return null;
    }

    private void OnAdded(long payloadLength)
    {
        _metrics.Added(payloadLength);
        if (_options.ReadOnly || _disposed.IsCancellationRequested)
        {
            return;
        }

        long size = Interlocked.Add(ref _approximateSize, payloadLength + EntryFrame.TrailerSize);
        long lastScan = Interlocked.Read(ref _lastScanTimestamp);
        bool firstScan = lastScan == 0;
        // Start trimming half-way into the hysteresis band: other processes add too, and this
        // process only learns of their entries when it scans.
        bool overSize = _options.MaxSize is long max && size > (long)(max * (1 + _options.TrimRatio) / 2);
        bool periodic = !firstScan && _time.GetElapsedTime(lastScan) > MaintenanceInterval;
        if (_options.MaxSize is long limit && size > limit)
        {
            // Writers outran the background trim: this caller waits for one, so the directory
            // cannot grow without bound. The usual case below never blocks an Add.
            try
            {
                _trimGate.Wait(_disposed.Token);
            }
            catch (OperationCanceledException)
            {
                return; // disposed meanwhile
            }

            try
            {
                if (Interlocked.Read(ref _approximateSize) > limit)
                {
                    TrimAndLog(TimeSpan.FromSeconds(2)); // wait out another process's trim, then rescan
                }
            }
            finally
            {
                _trimGate.Release();
            }
        }
        else if ((firstScan || overSize || periodic) && _trimGate.Wait(0))
        {
            _ = Task.Run(() =>
            {
                try
                {
                    TrimAndLog();
                }
                finally
                {
                    _trimGate.Release();
                }
            });
        }
    }

    private void TrimAndLog(TimeSpan lockWait = default)
    {
        try
        {
            Trim(lockWait);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogTrimFailed(_logger, Directory, e);
        }
        catch (OperationCanceledException) when (_disposed.IsCancellationRequested)
        {
            // Disposed mid-trim: the next process or start trims instead.
        }
    }

    private TimeSpan MaintenanceInterval => _options.StaleTempFileAge < TimeSpan.FromMinutes(10) ? _options.StaleTempFileAge : TimeSpan.FromMinutes(10);
}
