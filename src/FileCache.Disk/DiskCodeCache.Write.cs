using System.Buffers;
using System.Security.Cryptography;
using FileCache.Internal;
using Microsoft.Win32.SafeHandles;

namespace FileCache.Disk;

/// <summary>Adds and deletes: a unique temp file, the payload and its frame, flush, rename.</summary>
public sealed partial class DiskCodeCache
{
    private const string TempPrefix = ".tmp-";
    private const int CopyBufferSize = 1 << 20;

    /// <summary>The largest payload an entry can hold: a reader holds a whole entry in one array.</summary>
    public static long MaxEntrySize => Array.MaxLength - EntryFrame.TrailerSize;

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">The content is larger than <see cref="MaxEntrySize"/>.</exception>
    public void Add(CacheKey key, Stream content)
    {
        string temp = BeginAdd(key, content);
        long length;
        try
        {
            using (var file = new FileStream(temp, TempFileOptions(FileOptions.None)))
            using (var frame = new EntryFrame.Writer(key, _authenticationKey))
            {
                SetFileMode(file.SafeFileHandle);
                var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferSize + EntryFrame.TrailerSize);
                try
                {
                    while (true)
                    {
                        // Fill the buffer so that a small entry and its frame go out in one write.
                        int filled = 0, n;
                        while (filled < CopyBufferSize && (n = content.Read(buffer, filled, CopyBufferSize - filled)) > 0)
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
            }

            File.Move(temp, GetPath(key), overwrite: true);
        }
        catch
        {
            TryDeleteFile(temp);
            throw;
        }

        OnAdded(length);
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">The content is larger than <see cref="MaxEntrySize"/>.</exception>
    public async ValueTask AddAsync(CacheKey key, Stream content, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        string temp = BeginAdd(key, content);
        long length;
        try
        {
            var file = new FileStream(temp, TempFileOptions(FileOptions.Asynchronous));
            await using (file.ConfigureAwait(false))
            {
                using var frame = new EntryFrame.Writer(key, _authenticationKey);
                SetFileMode(file.SafeFileHandle);
                var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferSize);
                try
                {
                    int n;
                    while ((n = await content.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                    {
                        frame.Append(buffer.AsSpan(0, n));
                        ThrowIfTooLarge(key, frame.Length, nameof(content));
                        await file.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                    }

                    length = frame.Length;
                    frame.WriteTrailer(buffer);
                    await file.WriteAsync(buffer.AsMemory(0, EntryFrame.TrailerSize), cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }

                if (_options.Durability == DiskDurability.Flush)
                {
                    file.Flush(flushToDisk: true);
                }
            }

            cancellationToken.ThrowIfCancellationRequested(); // last point where a cancel leaves the old entry
            File.Move(temp, GetPath(key), overwrite: true);
        }
        catch
        {
            TryDeleteFile(temp);
            throw;
        }

        OnAdded(length);
    }

    /// <inheritdoc/>
    public void Delete(CacheKey key)
    {
        ThrowIfReadOnly("delete", key);
        if (!EnsureTrustedDirectory())
        {
            _metrics.Deleted(); // no directory, no entry: deleting a missing key is not an error
            return;
        }

        try
        {
            File.Delete(GetPath(key)); // unlink: a link planted under the name goes, never its target
        }
        catch (DirectoryNotFoundException)
        {
            // Removed meanwhile: no entry either.
        }

        _metrics.Deleted();
    }

    /// <inheritdoc/>
    public ValueTask DeleteAsync(CacheKey key, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        Delete(key);
        return ValueTask.CompletedTask;
    }

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

    private static void ThrowIfTooLarge(CacheKey key, long length, string paramName)
    {
        if (length > MaxEntrySize)
        {
            throw new ArgumentException($"Cannot add key {key}: the content has {(length == MaxEntrySize + 1 ? "more than " : "")}{length} bytes; a disk entry holds at most {MaxEntrySize} bytes.", paramName);
        }
    }

    private void EnsureDirectory()
    {
        if (EnsureTrustedDirectory())
        {
            return;
        }

        if (OperatingSystem.IsWindows())
        {
            System.IO.Directory.CreateDirectory(Directory);
        }
        else
        {
            System.IO.Directory.CreateDirectory(Directory, _options.DirectoryMode);
            File.SetUnixFileMode(Directory, _options.DirectoryMode);
        }

        // Whoever created it, it is used only if it passes the same check.
        EnsureTrustedDirectory();
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
