using System.Buffers;
using System.Security.Cryptography;
using FileCache.Internal;
using FileCache.Disk.Internal;
using Microsoft.Win32.SafeHandles;

namespace FileCache.Disk;

/// <summary>Adds and deletes: a unique temp file, the payload and its frame, flush, rename.</summary>
internal sealed partial class DiskCodeCache
{
    private const string TempPrefix = ".tmp-";
    private const int CopyBufferSize = 1 << 20;

    /// <summary>The largest payload an entry can hold: a reader holds a whole entry in one array.</summary>
    public static long MaxEntrySize => Array.MaxLength - EntryFrame.TrailerSize;

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">The content is larger than <see cref="MaxEntrySize"/>.</exception>
    public void Add(CacheKey key, Stream content) => Completed.Result(Add<Blocking>(key, content, CancellationToken.None));

    /// <inheritdoc/>
    /// <remarks>The same algorithm as <see cref="Add"/>; only the content is read asynchronously (the file
    /// is local: written synchronously).</remarks>
    /// <exception cref="ArgumentException">The content is larger than <see cref="MaxEntrySize"/>.</exception>
    public ValueTask AddAsync(CacheKey key, Stream content, CancellationToken cancellationToken = default)
        => Add<NonBlocking>(key, content, cancellationToken);

    private async ValueTask Add<TMode>(CacheKey key, Stream content, CancellationToken cancellationToken)
        where TMode : struct, IIoMode
    {
        cancellationToken.ThrowIfCancellationRequested();
        string temp = BeginAdd(key, content);
        long length;
        try
        {
            using (var file = new FileStream(temp, TempFileOptions(FileOptions.None)))
            using (var frame = new EntryFrame.Writer(key, _authenticationKey))
            {
                ClaimTemp(file.SafeFileHandle, temp);
                var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferSize + EntryFrame.TrailerSize);
                try
                {
                    while (true)
                    {
                        // Fill the buffer so that a small entry and its frame go out in one write.
                        int filled = 0, n;
                        while (filled < CopyBufferSize && (n = TMode.IsAsync
                            ? await content.ReadAsync(buffer.AsMemory(filled, CopyBufferSize - filled), cancellationToken).ConfigureAwait(false)
                            : content.Read(buffer, filled, CopyBufferSize - filled)) > 0)
                        {
                            filled += n;
                        }

                        frame.Append(buffer.AsSpan(0, filled));
                        ThrowIfTooLarge(key, frame.Length, nameof(content));
                        if (filled < CopyBufferSize)
                        {
                            frame.WriteTrailer(buffer.AsSpan(filled, EntryFrame.TrailerSize));
                            file.Write(buffer, 0, filled + EntryFrame.TrailerSize);
                            break;
                        }

                        file.Write(buffer, 0, filled);
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }

                length = frame.Length;
                if (_options.Durability == DiskDurability.Flush)
                {
                    file.Flush(flushToDisk: true);
                }

                cancellationToken.ThrowIfCancellationRequested(); // last point where a cancel leaves the old entry
                PublishWhileLocked(temp, key);
            }

            PublishAfterClose(temp, key);
        }
        catch
        {
            TryDeleteFile(temp);
            throw;
        }

        OnAdded(length);
    }

    /// <summary>
    /// Renames a complete temp file over the entry and, under <see cref="DiskDurability.Flush"/>,
    /// flushes the directory: until then the new name is in memory only, and a power cut could
    /// bring back the old entry (or none) after this Add returned.
    /// </summary>
    private void Publish(string temp, CacheKey key)
    {
        using var directory = OpenSameDirectory(out bool exists);
        if (!exists)
        {
            throw new DirectoryNotFoundException($"Cannot add key {key}: the cache directory '{Directory}' was removed while the entry was written.");
        }

        File.Move(temp, GetPath(key), overwrite: true);
        if (_options.Durability == DiskDurability.Flush && directory is not null)
        {
            UnixFile.FlushDirectory(directory, Directory); // the checked directory's handle, opened before the rename
        }
    }

    // On Unix the temp is renamed while its writer still holds it (and its lock), so the sweep can
    // never take a finished temp for an abandoned one; Windows cannot rename a file open without sharing.
    private void PublishWhileLocked(string temp, CacheKey key)
    {
        if (UnixFile.IsSupported)
        {
            Publish(temp, key);
        }
    }

    private void PublishAfterClose(string temp, CacheKey key)
    {
        if (!UnixFile.IsSupported)
        {
            Publish(temp, key);
        }
    }

    /// <inheritdoc/>
    public void Delete(CacheKey key)
    {
        ThrowIfReadOnly("delete", key);
        if (!EnsureSameDirectory())
        {
            _metrics.Deleted(); // no directory, no entry: deleting a missing key is not an error
            return;
        }

        try
        {
            File.Delete(GetPath(key)); // unlink: a link planted under the name goes, never its target
            DeleteRecord(key);
        }
        catch (DirectoryNotFoundException)
        {
            // Removed meanwhile: no entry either.
        }

        _metrics.Deleted();
    }

    /// <inheritdoc/>
    public ValueTask DeleteAsync(CacheKey key, CancellationToken cancellationToken = default)
        => Completed.Synchronously(() => Delete(key), cancellationToken);

    /// <summary>The checks every Add makes before writing; returns the new temp file's path.</summary>
    private string BeginAdd(CacheKey key, Stream content)
    {
        ArgumentNullException.ThrowIfNull(content);
        ThrowIfReadOnly("add", key);
        if (content.CanSeek)
        {
            ThrowIfTooLarge(key, content.Length - content.Position, nameof(content));
        }

        EnsureDirectory();
        return NewTempPath();
    }

    private void ThrowIfTooLarge(CacheKey key, long length, string paramName)
    {
        if (length > _options.MaxEntrySize)
        {
            throw new ArgumentException($"Cannot add key {key}: the content has {(length == _options.MaxEntrySize + 1 ? "more than " : "")}{length} bytes; this disk cache holds entries of at most {_options.MaxEntrySize} bytes (DiskCodeCacheOptions.MaxEntrySize).", paramName);
        }
    }

    private void EnsureDirectory()
    {
        if (EnsureSameDirectory())
        {
            return;
        }

        if (UnixFile.IsSupported)
        {
            CreateDirectoryByHandles();
        }
        else
        {
            System.IO.Directory.CreateDirectory(Directory);
        }

        // Whoever created it, it is used only if it passes the same check.
        EnsureTrustedDirectory();
    }

    /// <summary>
    /// Creates each missing level with <c>mkdirat</c> in its parent's open handle and sets the mode
    /// on the new directory's own handle (opened without following links, checked to be ours), never
    /// by path: a level swapped for a link between the two calls is refused, so no file elsewhere can
    /// be made to take the mode. Under <see cref="DiskDurability.Flush"/> each parent is flushed, so
    /// the new levels survive a power cut with the entries in them.
    /// </summary>
    private void CreateDirectoryByHandles()
    {
        var missing = new Stack<string>();
        string existing = Directory;
        SafeFileHandle? parent;
        while ((parent = UnixFile.OpenDirectoryIfExists(existing)) is null)
        {
            missing.Push(Path.GetFileName(existing));
            existing = Path.GetDirectoryName(existing) ?? throw new IOException($"Could not create the cache directory '{Directory}': no level of its path exists.");
        }

        try
        {
            string path = existing;
            while (missing.Count > 0)
            {
                string name = missing.Pop();
                path = Path.Join(path, name);
                var child = UnixFile.MakeDirectoryAt(parent, name, _options.DirectoryMode, path, out bool created);
                try
                {
                    var made = UnixFile.Stat(child);
                    if (created && made.Owner == UnixFile.EffectiveUser && made.Mode != _options.DirectoryMode)
                    {
                        UnixFile.SetMode(child, _options.DirectoryMode, path); // the umask may have stripped bits
                    }

                    if (created && _options.Durability == DiskDurability.Flush)
                    {
                        UnixFile.FlushDirectory(parent, Path.GetDirectoryName(path)!);
                    }
                }
                catch
                {
                    child.Dispose();
                    throw;
                }

                parent.Dispose();
                parent = child;
            }
        }
        finally
        {
            parent.Dispose();
        }
    }

    /// <summary>
    /// Sets the temp file's mode and takes an exclusive lock on it for as long as this writer lives:
    /// the sweep removes a temp whose lock it can take (its writer died), whatever its age.
    /// </summary>
    private void ClaimTemp(SafeFileHandle handle, string path)
    {
        SetFileMode(handle);
        if (UnixFile.IsSupported)
        {
            UnixFile.TryLockExclusive(handle, path); // new and ours: nobody else can hold it
        }
    }

    private FileStreamOptions TempFileOptions(FileOptions options)
    {
        // CreateNew is O_CREAT | O_EXCL: it never follows a link planted under the name.
        var result = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
            BufferSize = 0,
            Options = options,
        };
        if (!OperatingSystem.IsWindows())
        {
            result.UnixCreateMode = _options.FileMode;
        }

        return result;
    }

    private void SetFileMode(SafeFileHandle handle)
    {
        // The create mode is masked by the umask, the option is not: chmod when the mode grants
        // group or other bits (a usual umask strips those; owner-only modes survive it as they are).
        const UnixFileMode GroupOrOther = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
            | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
        if (!OperatingSystem.IsWindows() && (_options.FileMode & GroupOrOther) != 0)
        {
            File.SetUnixFileMode(handle, _options.FileMode);
        }
    }

    private string NewTempPath()
    {
        // Starts with '.', so it can never be taken for a 64-hex-character entry.
        Span<byte> random = stackalloc byte[8];
        RandomNumberGenerator.Fill(random);
        return Path.Join(Directory, $"{TempPrefix}{Environment.ProcessId}-{Convert.ToHexStringLower(random)}");
    }

    private void TryDeleteFile(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogDeleteFailed(_logger, path, e);
        }
    }

    private static bool IsTempName(ReadOnlySpan<char> name) => name.StartsWith(TempPrefix, StringComparison.Ordinal);
}
