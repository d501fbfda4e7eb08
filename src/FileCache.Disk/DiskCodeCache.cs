using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Diagnostics.Metrics;
using System.IO.MemoryMappedFiles;
using System.Security.Cryptography;
using FileCache.Diagnostics;
using FileCache.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;

namespace FileCache.Disk;

/// <summary>
/// A directory of compiled-code entries, one file per key named by the key's 64 lowercase hex
/// characters (as in wazero). Writes are atomic (unique temp file, flush, rename); every entry is
/// verified on read (length, XXH3 checksum, optional HMAC) and a bad one is a miss that is removed.
/// Safe for many threads and processes sharing the directory.
/// </summary>
/// <remarks>
/// Construction does no I/O; the directory is created by the first Add. Hits return the verified
/// bytes in memory, so a reader is unaffected by later deletes, overwrites or eviction.
/// </remarks>
public sealed partial class DiskCodeCache : IWasmCodeCache, ICacheEntryFileSource, IDisposable
{
    private const string TempPrefix = ".tmp-";
    private const string LockFileName = ".trim.lock";
    private const int CopyBufferSize = 1 << 20;
    private const int ReadChunkSize = 4 << 20;

    private readonly DiskCodeCacheOptions _options;
    private readonly byte[]? _authenticationKey;
    private readonly WasmCodeCacheMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _disposed = new();
    private long _approximateSize = -1; // unknown until the first scan
    private long _lastScanTimestamp; // 0: never scanned
    private readonly SemaphoreSlim _trimGate = new(1, 1); // one trim at a time in this process
    private int _directoryChecked;

    /// <summary>Creates a cache over a directory. Does no I/O.</summary>
    /// <param name="options">The options; <see langword="null"/> for the defaults (the user cache folder).</param>
    /// <param name="meterFactory">Creates the meter; optional.</param>
    /// <param name="logger">Receives corrupt entries, evictions and warnings; optional.</param>
    /// <param name="timeProvider">The clock for use times and eviction; optional.</param>
    public DiskCodeCache(DiskCodeCacheOptions? options = null, IMeterFactory? meterFactory = null, ILogger<DiskCodeCache>? logger = null, TimeProvider? timeProvider = null)
    {
        _options = options ?? new DiskCodeCacheOptions();
        if (_options.AuthenticationKey is { Length: < 16 } shortKey)
        {
            throw new ArgumentException($"DiskCodeCacheOptions.AuthenticationKey has {shortKey.Length} bytes; at least 16 are required.", nameof(options));
        }

        Directory = Path.GetFullPath(_options.Directory ?? DiskCodeCacheOptions.DefaultDirectory);
        _authenticationKey = _options.AuthenticationKey?.ToArray(); // later changes by the caller do not apply
        _metrics = new WasmCodeCacheMetrics(meterFactory, "disk");
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Creates a cache over <paramref name="directory"/> with default options.</summary>
    /// <param name="directory">The cache directory.</param>
    public DiskCodeCache(string directory)
        : this(new DiskCodeCacheOptions { Directory = directory })
    {
    }

    /// <summary>The cache directory's full path.</summary>
    public string Directory { get; }

    /// <summary>The path of the entry file for <paramref name="key"/>.</summary>
    /// <param name="key">The key.</param>
    /// <returns><see cref="Directory"/> joined with the key's 64 lowercase hex characters.</returns>
    public string GetPath(CacheKey key) => Path.Join(Directory, key.ToString());

    /// <inheritdoc/>
    public bool TryGet(CacheKey key, [NotNullWhen(true)] out Stream? content)
    {
        content = null;
        using var handle = OpenEntry(key, out string path);
        if (handle is null)
        {
            _metrics.Miss();
            return false;
        }

        long length = RandomAccess.GetLength(handle);
        if (!TryCheckLength(key, path, handle, length))
        {
            return false;
        }

        return ReadVerified(key, path, handle, (int)length, out content);
    }

    /// <inheritdoc/>
    public async ValueTask<Stream?> GetAsync(CacheKey key, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using var handle = OpenEntry(key, out string path, FileOptions.Asynchronous);
        if (handle is null)
        {
            _metrics.Miss();
            return null;
        }

        long length = RandomAccess.GetLength(handle);
        if (!TryCheckLength(key, path, handle, length))
        {
            return null;
        }

        var bytes = GC.AllocateUninitializedArray<byte>((int)length);
        int read = 0;
        while (read < bytes.Length)
        {
            int n = await RandomAccess.ReadAsync(handle, bytes.AsMemory(read), read, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                break; // shorter than at open: the frame check below rejects it
            }

            read += n;
        }

        // A file shorter than at open is rejected by the frame check.
        return Verified(key, path, handle, read == bytes.Length ? bytes : bytes[..read], out var content) ? content : null;
    }

    /// <inheritdoc/>
    public bool TryGetFile(CacheKey key, [NotNullWhen(true)] out CacheEntryFile? file)
    {
        file = null;
        string? fdDirectory = OperatingSystem.IsLinux() ? "/proc/self/fd/" : OperatingSystem.IsMacOS() ? "/dev/fd/" : null;
        if (fdDirectory is null)
        {
            return false; // no way to pin the verified file: callers fall back to TryGet
        }

        var handle = OpenEntry(key, out string path);
        if (handle is null)
        {
            _metrics.Miss();
            return false;
        }

        try
        {
            long length = RandomAccess.GetLength(handle);
            if (!TryCheckLength(key, path, handle, length))
            {
                handle.Dispose();
                return false;
            }

            Span<byte> trailer = stackalloc byte[EntryFrame.TrailerSize];
            var status = length < EntryFrame.TrailerSize
                ? FrameStatus.TooShort
                : RandomAccess.Read(handle, trailer, length - EntryFrame.TrailerSize) == EntryFrame.TrailerSize
                    ? EntryFrame.ReadTrailer(length, trailer, _authenticationKey, out _)
                    : FrameStatus.TooShort;
            if (status == FrameStatus.Valid)
            {
                status = VerifyMapped(key, handle, length, trailer);
            }

            if (status != FrameStatus.Valid)
            {
                OnCorrupt(key, path, handle, status);
                handle.Dispose();
                return false;
            }

            RefreshUseTime(handle);
            _metrics.Hit(length - EntryFrame.TrailerSize);
            // The path names this process's descriptor, so it opens the verified inode even if the
            // entry is replaced or deleted before the loader opens it.
            file = new CacheEntryFile(fdDirectory + handle.DangerousGetHandle().ToString(System.Globalization.CultureInfo.InvariantCulture), length - EntryFrame.TrailerSize, handle);
            return true;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public void Add(CacheKey key, Stream content)
    {
        ArgumentNullException.ThrowIfNull(content);
        ThrowIfReadOnly("add", key);
        EnsureDirectory();
        string temp = NewTempPath();
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
    public async ValueTask AddAsync(CacheKey key, Stream content, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        cancellationToken.ThrowIfCancellationRequested();
        ThrowIfReadOnly("add", key);
        EnsureDirectory();
        string temp = NewTempPath();
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
        try
        {
            File.Delete(GetPath(key));
        }
        catch (DirectoryNotFoundException)
        {
            // No directory, no entry: deleting a missing key is not an error.
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

    /// <summary>Stops background maintenance and waits for a running trim to end. Entries stay on disk.</summary>
    public void Dispose()
    {
        if (_disposed.IsCancellationRequested)
        {
            return;
        }

        _disposed.Cancel();
        // After Dispose nothing of this cache touches the directory (a test or an operator may remove it).
        if (_trimGate.Wait(TimeSpan.FromSeconds(10)))
        {
            _trimGate.Release();
        }
    }

    private SafeFileHandle? OpenEntry(CacheKey key, out string path, FileOptions options = FileOptions.None)
    {
        path = GetPath(key);
        WarnIfDirectoryIsShared();
        try
        {
            // FileShare.Delete: a writer may rename over, or a deleter remove, an entry we are reading.
            return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, options);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
    }

    private bool TryCheckLength(CacheKey key, string path, SafeFileHandle handle, long length)
    {
        if (length <= Array.MaxLength)
        {
            return true;
        }

        // A real entry is never this large; treat it like any other unusable file.
        OnCorrupt(key, path, handle, FrameStatus.LengthMismatch);
        return false;
    }

    private bool Verified(CacheKey key, string path, SafeFileHandle handle, byte[] bytes, [NotNullWhen(true)] out Stream? content)
    {
        var status = EntryFrame.Verify(key, bytes, _authenticationKey, out long payloadLength);
        if (status != FrameStatus.Valid)
        {
            OnCorrupt(key, path, handle, status);
            content = null;
            return false;
        }

        content = Hit(handle, bytes, (int)payloadLength);
        return true;
    }

    private MemoryStream Hit(SafeFileHandle handle, byte[] bytes, int payloadLength)
    {
        RefreshUseTime(handle);
        _metrics.Hit(payloadLength);
        // The array is this hit's own copy, so exposing it (TryGetBuffer) lets a caller skip a copy.
        return new MemoryStream(bytes, 0, payloadLength, writable: false, publiclyVisible: true);
    }

    private unsafe FrameStatus VerifyMapped(CacheKey key, SafeFileHandle handle, long length, ReadOnlySpan<byte> trailer)
    {
        long payloadLength = length - EntryFrame.TrailerSize;
        if (payloadLength > int.MaxValue)
        {
            return FrameStatus.LengthMismatch;
        }

        // Hash the mapped pages in place: no copy of a 30 MB entry just to check it.
        using var map = MemoryMappedFile.CreateFromFile(handle, null, length, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
        using var view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
        byte* pointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        try
        {
            var payload = new ReadOnlySpan<byte>(pointer + view.PointerOffset, (int)payloadLength);
            return EntryFrame.VerifyPayload(key, payload, trailer, _authenticationKey);
        }
        finally
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
    }

    /// <summary>
    /// Reads a whole entry while another core checks the chunks already read, so a large hit costs
    /// about one read instead of a read followed by a hash. Nothing is handed out unverified.
    /// </summary>
    private bool ReadVerified(CacheKey key, string path, SafeFileHandle handle, int length, [NotNullWhen(true)] out Stream? content)
    {
        content = null;
        if (length < 2 * ReadChunkSize)
        {
            // Small: one read, then the one-shot check (nothing to overlap, nothing to allocate).
            var whole = GC.AllocateUninitializedArray<byte>(length);
            int got = 0, n;
            while (got < length && (n = RandomAccess.Read(handle, whole.AsSpan(got), got)) > 0)
            {
                got += n;
            }

            return Verified(key, path, handle, got == length ? whole : whole[..got], out content);
        }

        var bytes = GC.AllocateUninitializedArray<byte>(length);
        int payloadEnd = length - EntryFrame.TrailerSize;
        using var verifier = new EntryFrame.Verifier(key, _authenticationKey);
        Task hashing = Task.CompletedTask;
        int read = 0, hashed = 0;
        while (read < length)
        {
            int n = RandomAccess.Read(handle, bytes.AsSpan(read, Math.Min(ReadChunkSize, length - read)), read);
            if (n == 0)
            {
                break; // shorter than at open: rejected below
            }

            read += n;
            int upto = Math.Min(read, payloadEnd);
            if (upto > hashed)
            {
                hashing.GetAwaiter().GetResult(); // the verifier takes chunks in order
                int from = hashed;
                hashed = upto;
                hashing = Task.Run(() => verifier.Append(bytes.AsSpan(from, upto - from)));
            }
        }

        hashing.GetAwaiter().GetResult();
        var status = read < length
            ? FrameStatus.TooShort
            : EntryFrame.ReadTrailer(length, bytes.AsSpan(payloadEnd), _authenticationKey, out _);
        if (status == FrameStatus.Valid)
        {
            status = verifier.Finish(bytes.AsSpan(payloadEnd));
        }

        if (status != FrameStatus.Valid)
        {
            OnCorrupt(key, path, handle, status);
            return false;
        }

        content = Hit(handle, bytes, payloadEnd);
        return true;
    }

    private void OnCorrupt(CacheKey key, string path, SafeFileHandle handle, FrameStatus status)
    {
        _metrics.Corrupt();
        _metrics.Miss();
        LogCorruptEntry(_logger, key, path, status.ToString());
        if (_options.ReadOnly)
        {
            return;
        }

        try
        {
            // Remove it only if the name still points at the file we checked: a writer may have
            // published a good entry in the meantime.
            var info = new FileInfo(path);
            if (info.Exists && info.Length == RandomAccess.GetLength(handle) && info.LastWriteTimeUtc == File.GetLastWriteTimeUtc(handle))
            {
                File.Delete(path);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogDeleteFailed(_logger, path, e);
        }
    }

    private void RefreshUseTime(SafeFileHandle handle)
    {
        if (_options.ReadOnly)
        {
            return;
        }

        try
        {
            var now = _time.GetUtcNow().UtcDateTime;
            if (now - File.GetLastWriteTimeUtc(handle) >= _options.UseTimeResolution)
            {
                File.SetLastWriteTimeUtc(handle, now);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: a file owned by another user of a shared cache cannot be touched.
        }
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

    private FileStreamOptions TempFileOptions(FileOptions options)
    {
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

    private void EnsureDirectory()
    {
        if (System.IO.Directory.Exists(Directory))
        {
            return;
        }

        if (File.Exists(Directory))
        {
            throw new IOException($"The cache directory '{Directory}' exists but is not a directory.");
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

        WarnIfDirectoryIsShared();
    }

    private void WarnIfDirectoryIsShared()
    {
        if (OperatingSystem.IsWindows() || _authenticationKey is not null || Volatile.Read(ref _directoryChecked) != 0)
        {
            return;
        }

        try
        {
            var mode = File.GetUnixFileMode(Directory);
            Volatile.Write(ref _directoryChecked, 1);
            if ((mode & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
            {
                LogSharedDirectory(_logger, Directory, Convert.ToString((int)mode, 8));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not there yet: checked again after it is created.
        }
    }

    private void ThrowIfReadOnly(string operation, CacheKey key)
    {
        if (_options.ReadOnly)
        {
            throw new ReadOnlyWasmCodeCacheException($"Cannot {operation} key {key}: the disk cache at '{Directory}' is read-only.");
        }
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

    private static bool IsEntryName(ReadOnlySpan<char> name) => name.Length == CacheKey.HexLength && CacheKey.TryParse(name, out var key) && name.SequenceEqual(key.ToString());

    private static bool IsTempName(ReadOnlySpan<char> name) => name.StartsWith(TempPrefix, StringComparison.Ordinal);
}
