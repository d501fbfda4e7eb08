using System.Diagnostics.CodeAnalysis;
using System.IO.MemoryMappedFiles;
using FileCache.Disk.Internal;
using FileCache.Internal;
using Microsoft.Win32.SafeHandles;

namespace FileCache.Disk;

/// <summary>Lookups: open without trusting the name, read, verify, hand out only verified bytes.</summary>
internal sealed partial class DiskCodeCache
{
    private const int ReadChunkSize = 4 << 20;

    /// <inheritdoc/>
    public bool TryGet(CacheKey key, [NotNullWhen(true)] out Stream? content) => TryGetCore(key, scrub: false, out content);

    /// <summary>A lookup; <paramref name="scrub"/> hashes every byte even when a verification record says the file is unchanged.</summary>
    private bool TryGetCore(CacheKey key, bool scrub, [NotNullWhen(true)] out Stream? content)
    {
        content = null;
        using var handle = OpenEntry(key, out string path, out var file);
        if (handle is null || !TryGetLength(key, path, handle, out int length))
        {
            return false;
        }

        bool verified = !scrub && IsVerified(key, file);
        if (length < 2 * ReadChunkSize)
        {
            // Small: one read, then the one-shot check (nothing to overlap).
            var whole = GC.AllocateUninitializedArray<byte>(length);
            int got = ReadAt(handle, whole, 0);
            return Verified(key, path, handle, file, verified, got == length ? whole : whole[..got], out content);
        }

        if (!TryReadTrailer(key, path, handle, length, out var trailer))
        {
            return false;
        }

        var payload = GC.AllocateUninitializedArray<byte>(length - EntryFrame.TrailerSize);
        var status = verified
            ? (ReadAt(handle, payload, 0) == payload.Length ? FrameStatus.Valid : FrameStatus.TooShort)
            : ReadPayloadVerified(key, handle, payload, trailer);
        if (status != FrameStatus.Valid)
        {
            OnCorrupt(key, path, handle, status);
            return false;
        }

        content = Hit(key, handle, file, !verified, payload, payload.Length);
        return true;
    }

    /// <inheritdoc/>
    /// <remarks>Local file I/O is synchronous by nature: this runs the lookup of <see cref="TryGet"/>.</remarks>
    public ValueTask<Stream?> GetAsync(CacheKey key, CancellationToken cancellationToken = default)
        => Completed.Synchronously(() => TryGetCore(key, scrub: false, out var content) ? content : null, cancellationToken);

    /// <inheritdoc/>
    /// <remarks>
    /// Without an authentication key, in a private directory, the lease names the verified entry
    /// file itself (<c>/proc/self/fd/N</c>), which a loader maps. Otherwise (a key is set: the
    /// directory may be shared) it names a sealed private copy of the verified bytes (Linux: a
    /// memfd sealed against writes, shrinking and growing), so nothing written to the entry after
    /// verification can change the code that runs; where no sealed copy is possible it returns
    /// <see langword="false"/> and the caller reads the bytes with <see cref="TryGet"/>.
    /// </remarks>
    public bool TryGetFile(CacheKey key, [NotNullWhen(true)] out CacheEntryFile? file)
    {
        file = null;
        if (PinnedFileDirectory is not { } fdDirectory)
        {
            return false; // no way to pin verified bytes: callers fall back to TryGet
        }

        var handle = OpenEntry(key, out string path, out var opened);
        if (handle is null)
        {
            return false;
        }

        SafeFileHandle? leased = null;
        bool hashed = false;
        try
        {
            if (!TryGetLength(key, path, handle, out int length) || !TryReadTrailer(key, path, handle, length, out var trailer))
            {
                return false;
            }

            long payloadLength = length - EntryFrame.TrailerSize;
            FrameStatus status;
            if (MapsEntryFiles)
            {
                // Unchanged since it was verified (a record says so): nothing to hash, the map is all.
                hashed = !IsVerified(key, opened);
                status = hashed ? VerifyMapped(key, handle, length, trailer) : FrameStatus.Valid;
                leased = status == FrameStatus.Valid ? handle : null;
            }
            else
            {
                status = SealedCopy(key, handle, payloadLength, trailer, out leased);
            }

            if (status != FrameStatus.Valid)
            {
                OnCorrupt(key, path, handle, status);
                return false;
            }

            FinishHit(key, handle, opened, hashed);
            _metrics.Hit(payloadLength);
            // The path names this process's descriptor, so it opens the verified bytes even if the
            // entry is replaced or deleted before the loader opens it.
            file = new CacheEntryFile(fdDirectory + leased!.DangerousGetHandle().ToString(System.Globalization.CultureInfo.InvariantCulture), payloadLength, leased);
            return true;
        }
        finally
        {
            if (!ReferenceEquals(leased, handle))
            {
                handle.Dispose();
            }
        }
    }

    /// <inheritdoc/>
    /// <remarks>A verified file lease (<see cref="TryGetFile"/>) where the platform can pin one, else the verified bytes.</remarks>
    public bool TryGetEntry(CacheKey key, CacheLookupScope scope, [NotNullWhen(true)] out CacheEntry? entry)
    {
        entry = null;
        if (PinnedFileDirectory is not null)
        {
            if (!TryGetFile(key, out var file))
            {
                return false;
            }

            entry = CacheEntry.FromFile(file);
            return true;
        }

        if (!TryGet(key, out var content))
        {
            return false;
        }

        var bytes = (MemoryStream)content; // Hit: this hit's own array, exposed
        entry = CacheEntry.FromBytes(bytes.GetBuffer().AsMemory(0, (int)bytes.Length));
        return true;
    }

    /// <inheritdoc/>
    /// <remarks>Local and a few system calls: answered synchronously.</remarks>
    public ValueTask<CacheEntry?> GetEntryAsync(CacheKey key, CacheLookupScope scope, CancellationToken cancellationToken = default)
        => Completed.Synchronously(() => TryGetEntry(key, scope, out var entry) ? entry : null, cancellationToken);

    /// <summary>Where a descriptor can be named as a path, when this platform can pin verified bytes; else <see langword="null"/>.</summary>
    private string? PinnedFileDirectory
        => OperatingSystem.IsLinux() ? "/proc/self/fd/"
            : OperatingSystem.IsMacOS() && _authenticationKey is null ? "/dev/fd/" // a sealed copy needs Linux's memfd
            : null;

    private bool TryGetLength(CacheKey key, string path, SafeFileHandle handle, out int length)
    {
        // Checked on the open handle's size before anything is allocated or read: a planted sparse
        // file of gigabytes costs one fstat, not a copy.
        long size = RandomAccess.GetLength(handle);
        if (size <= _options.MaxEntrySize + EntryFrame.TrailerSize)
        {
            length = (int)size;
            return true;
        }

        length = 0;
        OnCorrupt(key, path, handle, FrameStatus.TooLarge);
        return false;
    }

    private bool TryReadTrailer(CacheKey key, string path, SafeFileHandle handle, int length, out byte[] trailer)
    {
        trailer = new byte[EntryFrame.TrailerSize];
        var status = length < EntryFrame.TrailerSize || RandomAccess.Read(handle, trailer, length - EntryFrame.TrailerSize) != EntryFrame.TrailerSize
            ? FrameStatus.TooShort
            : EntryFrame.ReadTrailer(length, trailer, _authenticationKey, out _);
        if (status != FrameStatus.Valid)
        {
            OnCorrupt(key, path, handle, status);
            return false;
        }

        return true;
    }

    /// <summary>Checks a whole entry read into <paramref name="bytes"/>: its frame, and, unless a record says the file is unchanged since it was verified (<paramref name="verified"/>), its checksum.</summary>
    private bool Verified(CacheKey key, string path, SafeFileHandle handle, in FileIdentity file, bool verified, byte[] bytes, [NotNullWhen(true)] out Stream? content)
    {
        long payloadLength;
        FrameStatus status;
        if (verified)
        {
            status = EntryFrame.ReadTrailer(bytes.Length, bytes.AsSpan(Math.Max(0, bytes.Length - EntryFrame.TrailerSize)), _authenticationKey, out payloadLength);
        }
        else
        {
            status = EntryFrame.Verify(key, bytes, _authenticationKey, out payloadLength);
            Interlocked.Add(ref HashedBytes, payloadLength);
        }

        if (status != FrameStatus.Valid)
        {
            OnCorrupt(key, path, handle, status);
            content = null;
            return false;
        }

        content = Hit(key, handle, file, !verified, bytes, (int)payloadLength);
        return true;
    }

    private MemoryStream Hit(CacheKey key, SafeFileHandle handle, in FileIdentity file, bool hashed, byte[] bytes, int payloadLength)
    {
        FinishHit(key, handle, file, hashed);
        _metrics.Hit(payloadLength);
        // The array is this hit's own copy, so exposing it (TryGetBuffer) lets a caller skip a copy.
        return new MemoryStream(bytes, 0, payloadLength, writable: false, publiclyVisible: true);
    }

    private static int ReadAt(SafeFileHandle handle, Span<byte> destination, long offset)
    {
        int got = 0, n;
        while (got < destination.Length && (n = RandomAccess.Read(handle, destination[got..], offset + got)) > 0)
        {
            got += n;
        }

        return got;
    }

    /// <summary>Verifies a private entry in place through a read-only map: no copy just to check it.</summary>
    private unsafe FrameStatus VerifyMapped(CacheKey key, SafeFileHandle handle, long length, byte[] trailer)
    {
        long payloadLength = length - EntryFrame.TrailerSize;
        Interlocked.Add(ref HashedBytes, payloadLength);
        if (payloadLength == 0)
        {
            return EntryFrame.VerifyPayload(key, [], trailer, _authenticationKey);
        }

        using var map = MemoryMappedFile.CreateFromFile(handle, null, length, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
        using var view = map.CreateViewAccessor(0, payloadLength, MemoryMappedFileAccess.Read);
        byte* pointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        try
        {
            return EntryFrame.VerifyPayload(key, new ReadOnlySpan<byte>(pointer + view.PointerOffset, (int)payloadLength), trailer, _authenticationKey);
        }
        finally
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
    }

    /// <summary>
    /// Reads the payload into a new sealed memory file and verifies what landed there. The shared
    /// file is read, never mapped, so truncating it cannot crash this process; the copy is sealed
    /// before anyone maps it, so nothing can change the verified bytes. One copy of the entry.
    /// </summary>
    private unsafe FrameStatus SealedCopy(CacheKey key, SafeFileHandle handle, long payloadLength, byte[] trailer, out SafeFileHandle? copy)
    {
        copy = UnixFile.CreateSealableMemoryFile("filecache-" + key.ToString()[..16], payloadLength);
        if (copy is null)
        {
            return FrameStatus.Unreadable; // unreachable on Linux, which has memfd since 3.17
        }

        var status = FrameStatus.Valid;
        if (payloadLength > 0)
        {
            using var map = MemoryMappedFile.CreateFromFile(copy, null, payloadLength, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: true);
            using var view = map.CreateViewAccessor(0, payloadLength, MemoryMappedFileAccess.ReadWrite);
            byte* pointer = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            try
            {
                status = ReadPayloadVerified(key, handle, new Span<byte>(pointer + view.PointerOffset, (int)payloadLength), trailer);
            }
            finally
            {
                view.SafeMemoryMappedViewHandle.ReleasePointer();
            }
        }
        else
        {
            status = EntryFrame.VerifyPayload(key, [], trailer, _authenticationKey);
        }

        if (status == FrameStatus.Valid)
        {
            UnixFile.Seal(copy); // the writable map is gone: no writer can remain
        }
        else
        {
            copy.Dispose();
            copy = null;
        }

        return status;
    }

    /// <summary>
    /// Reads the payload into <paramref name="destination"/> while another core checks the chunks
    /// already read, so a large hit costs about one read instead of a read followed by a hash.
    /// </summary>
    private unsafe FrameStatus ReadPayloadVerified(CacheKey key, SafeFileHandle handle, Span<byte> destination, byte[] trailer)
    {
        Interlocked.Add(ref HashedBytes, destination.Length);
        if (destination.Length < 2 * ReadChunkSize)
        {
            return ReadAt(handle, destination, 0) == destination.Length
                ? EntryFrame.VerifyPayload(key, destination, trailer, _authenticationKey)
                : FrameStatus.TooShort;
        }

        using var verifier = new EntryFrame.Verifier(key, _authenticationKey, trailer);
        fixed (byte* start = destination)
        {
            // A span cannot enter a lambda; the pinned address can.
            nint address = (nint)start;
            int length = destination.Length;
            Task hashing = Task.CompletedTask;
            int read = 0;
            while (read < length)
            {
                int n = RandomAccess.Read(handle, destination.Slice(read, Math.Min(ReadChunkSize, length - read)), read);
                if (n == 0)
                {
                    hashing.GetAwaiter().GetResult();
                    return FrameStatus.TooShort; // shorter than at open
                }

                hashing.GetAwaiter().GetResult(); // the verifier takes chunks in order
                int from = read;
                read += n;
                int count = n;
                hashing = Task.Run(() => verifier.Append(new ReadOnlySpan<byte>((byte*)address + from, count)));
            }

            hashing.GetAwaiter().GetResult();
        }

        return verifier.Finish(trailer);
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
}
