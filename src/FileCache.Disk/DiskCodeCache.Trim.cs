namespace FileCache.Disk;

/// <summary>Eviction and sweeping: runs off the caller's path, one process at a time.</summary>
public sealed partial class DiskCodeCache
{
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
        if (_options.ReadOnly || !System.IO.Directory.Exists(Directory))
        {
            return 0;
        }

        // An exclusive lock on a file: the OS releases it when a process dies, so a crashed
        // trimmer can never block the others (on Unix .NET takes flock for FileShare.None).
        FileStream? lockFile = null;
        long deadline = Environment.TickCount64 + (long)lockWait.TotalMilliseconds;
        while (lockFile is null)
        {
            try
            {
                lockFile = OpenLockFile();
            }
            catch (IOException) when (Environment.TickCount64 < deadline)
            {
                Thread.Sleep(5);
            }
            catch (IOException)
            {
                return 0; // another process is trimming
            }
        }

        using (lockFile)
        {
            var now = _time.GetUtcNow().UtcDateTime;
            var entries = new List<(string Path, long Length, DateTime LastUse)>();
            long total = 0;
            int removed = 0;
            int swept = 0;
            foreach (var file in new DirectoryInfo(Directory).EnumerateFiles())
            {
                _disposed.Token.ThrowIfCancellationRequested();
                try
                {
                    if (IsTempName(file.Name))
                    {
                        if (now - file.LastWriteTimeUtc > _options.StaleTempFileAge)
                        {
                            file.Delete();
                            swept++;
                        }
                    }
                    else if (IsEntryName(file.Name))
                    {
                        if (_options.MaxAge is { } maxAge && now - file.LastWriteTimeUtc > maxAge)
                        {
                            file.Delete();
                            removed++;
                            continue;
                        }

                        entries.Add((file.FullName, file.Length, file.LastWriteTimeUtc));
                        total += file.Length;
                    }
                }
                catch (FileNotFoundException)
                {
                    // Deleted or replaced by someone else meanwhile.
                }
            }

            if (_options.MaxSize is long max && total > max)
            {
                long target = (long)(max * _options.TrimRatio);
                entries.Sort(static (a, b) => a.LastUse.CompareTo(b.LastUse));
                foreach (var entry in entries)
                {
                    if (total <= target)
                    {
                        break;
                    }

                    // Readers hold their bytes (or an open handle), so removing a file under them is safe.
                    File.Delete(entry.Path);
                    total -= entry.Length;
                    removed++;
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

    private FileStream OpenLockFile()
    {
        var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None, BufferSize = 0 };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = _options.FileMode;
        }

        return new FileStream(Path.Join(Directory, LockFileName), options);
    }
}
