using FileCache.Disk.Internal;
using FileCache.Internal;
using Microsoft.Win32.SafeHandles;

namespace FileCache.Disk;

/// <summary>
/// The trust policy (docs/security.md): which directory and which files this cache may take machine
/// code from. A file's name is never trusted: every entry is opened without following links or
/// blocking and judged on its open handle.
/// </summary>
internal sealed partial class DiskCodeCache
{
    private const int TrustUnchecked = 0, TrustPrivate = 1, TrustShared = 2;
    private int _trust; // TrustUnchecked until the directory exists and has been checked
    private FileIdentity _checkedDirectory; // the directory the verdict is about (device and inode)

    /// <summary>
    /// Whether Wasmtime may map entry files themselves: only with no authentication key, where the
    /// directory and every entry used are private to this user (or root). Otherwise a loader gets a
    /// sealed private copy of the verified bytes.
    /// </summary>
    private bool MapsEntryFiles => _authenticationKey is null && Volatile.Read(ref _trust) == TrustPrivate;

    /// <summary>
    /// Checks the directory once it exists: private, or shared with an authentication key.
    /// </summary>
    /// <returns><see langword="false"/> when the directory does not exist yet.</returns>
    /// <exception cref="InsecureCacheDirectoryException">Others can write there and no key is set, or its path goes through a link others control.</exception>
    private bool EnsureTrustedDirectory()
    {
        if (Volatile.Read(ref _trust) != TrustUnchecked)
        {
            return true;
        }

        var verdict = DirectoryTrust.Check(Directory);
        switch (verdict.Kind)
        {
            case DirectoryVerdictKind.Missing:
                return false;
            case DirectoryVerdictKind.Refused:
                throw new InsecureCacheDirectoryException(Directory, DirectoryTrust.LinkRefusal(verdict.Problem!));
            case DirectoryVerdictKind.Shared when _authenticationKey is null:
                throw new InsecureCacheDirectoryException(Directory, DirectoryTrust.Refusal(verdict.Problem!));
            case DirectoryVerdictKind.Shared:
                // Entries are authenticated and handed out as private copies: a shared directory is fine.
                LogSharedDirectory(_logger, Directory, verdict.Problem!);
                break;
        }

        _checkedDirectory = verdict.Identity;
        Volatile.Write(ref _trust, verdict.Kind == DirectoryVerdictKind.Private ? TrustPrivate : TrustShared);
        return true;
    }

    /// <summary>
    /// <see cref="EnsureTrustedDirectory"/> for lookups. A read-only tier (code shipped with the app,
    /// perhaps published by another user) that cannot be trusted or examined is a miss, logged once
    /// and counted: it must never stop an app from starting or loading.
    /// </summary>
    private bool EnsureReadableDirectory()
    {
        try
        {
            return EnsureTrustedDirectory();
        }
        catch (Exception e) when (_options.ReadOnly && e is InsecureCacheDirectoryException or IOException or UnauthorizedAccessException)
        {
            _metrics.Corrupt(e is InsecureCacheDirectoryException ? "UntrustedDirectory" : "UnreadableDirectory");
            if (Interlocked.Exchange(ref _unusableLogged, 1) == 0)
            {
                LogReadOnlyUnusable(_logger, Directory, e.Message);
            }

            return false;
        }
    }

    private int _unusableLogged;

    /// <summary>
    /// Before anything that creates, renames or removes files: the path must still lead to the
    /// directory that was checked. If it leads elsewhere now (the directory was replaced, a link
    /// above it changed), the verdict is made again for what is there, so a swap can never turn a
    /// checked path into a write or delete somewhere unchecked.
    /// </summary>
    /// <returns><see langword="false"/> when the directory does not exist (any more).</returns>
    private bool EnsureSameDirectory()
    {
        using var directory = OpenSameDirectory(out bool exists);
        return exists;
    }

    /// <summary>
    /// <see cref="EnsureSameDirectory"/>, keeping the directory's handle open for the caller (to flush
    /// it after a rename): <see langword="null"/> where the platform has no handle checks.
    /// </summary>
    private SafeFileHandle? OpenSameDirectory(out bool exists)
    {
        for (int check = 0; ; check++)
        {
            exists = EnsureTrustedDirectory();
            if (!exists || !UnixFile.IsSupported)
            {
                return null;
            }

            // A second time round, the verdict was just made for what is there now.
            var directory = UnixFile.OpenDirectoryIfExists(Directory);
            if (check > 0 || (directory is not null && UnixFile.Stat(directory).SameFileAs(_checkedDirectory)))
            {
                return directory;
            }

            directory?.Dispose();
            Volatile.Write(ref _trust, TrustUnchecked);
        }
    }

    /// <summary>
    /// Opens the entry of <paramref name="key"/> and checks the file itself: a regular file and,
    /// without a key, owned by this user or root, not writable by group or others, one link.
    /// </summary>
    /// <returns>The handle, or <see langword="null"/> on a miss (counted, and for a rejected file logged and removed).</returns>
    private SafeFileHandle? OpenEntry(CacheKey key, out string path) => OpenEntry(key, out path, out _);

    /// <inheritdoc cref="OpenEntry(CacheKey, out string)"/>
    /// <param name="key">The key.</param>
    /// <param name="path">The entry's path.</param>
    /// <param name="file">The opened file as checked (default where the platform has no handle checks).</param>
    private SafeFileHandle? OpenEntry(CacheKey key, out string path, out FileIdentity file)
    {
        file = default;
        path = GetPath(key);
        if (!EnsureReadableDirectory())
        {
            _metrics.Miss();
            return null;
        }

        if (!UnixFile.IsSupported)
        {
            return OpenEntryWindows(path);
        }

        var handle = UnixFile.OpenNoFollow(path, out var refusal);
        if (handle is null)
        {
            if (refusal == OpenRefusal.Missing)
            {
                _metrics.Miss();
            }
            else
            {
                OnRejected(key, path, null, refusal == OpenRefusal.SymbolicLink ? FrameStatus.SymbolicLink : FrameStatus.Unreadable);
            }

            return null;
        }

        file = UnixFile.Stat(handle);
        var status = CheckEntryFile(file);
        if (status != FrameStatus.Valid)
        {
            OnRejected(key, path, file, status);
            handle.Dispose();
            return null;
        }

        return handle;
    }

    private SafeFileHandle? OpenEntryWindows(string path)
    {
        try
        {
            // FileShare.Delete: a writer may rename over, or a deleter remove, an entry we are reading.
            return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            _metrics.Miss();
            return null;
        }
    }

    private FrameStatus CheckEntryFile(in FileIdentity file)
    {
        if (file.Kind != FileKind.Regular)
        {
            return FrameStatus.NotRegularFile;
        }

        if (_authenticationKey is null)
        {
            // Without a key, who can write the file is the only guarantee of whose code it is.
            uint me = UnixFile.EffectiveUser;
            if (file.Owner != me && file.Owner != 0)
            {
                return FrameStatus.ForeignOwner;
            }

            if (file.SharedWritable)
            {
                return FrameStatus.WritableByOthers;
            }

            if (file.Links != 1)
            {
                return FrameStatus.MultipleLinks; // another name for it may sit where others can write
            }
        }

        return FrameStatus.Valid;
    }

    /// <summary>
    /// Counts and logs an unusable entry, and removes it when it is still the very file that was
    /// checked (same device and inode; a writer may have published a good entry meanwhile) and this
    /// cache may remove it. Directories are never removed. <paramref name="checkedFile"/> is the file
    /// as checked on its handle, or <see langword="null"/> when it could not be opened.
    /// </summary>
    private void OnRejected(CacheKey key, string path, FileIdentity? checkedFile, FrameStatus status)
    {
        t_lastRejection = status.ToString();
        _metrics.Corrupt(status.ToString());
        _metrics.Miss();
        LogCorruptEntry(_logger, key, path, status.ToString());
        if (_options.ReadOnly || status == FrameStatus.Unreadable)
        {
            return;
        }

        try
        {
            if (!UnixFile.IsSupported)
            {
                File.Delete(path);
                return;
            }

            if (!EnsureSameDirectory())
            {
                return;
            }

            DeleteRecord(key); // whatever happens to the file, a record of it is stale
            var now = UnixFile.LStat(path);
            bool same = now is { } n && n.Kind != FileKind.Directory
                && (checkedFile is { } c ? n.SameFileAs(c) : n.Kind == FileKind.SymbolicLink);
            if (same)
            {
                File.Delete(path); // unlink: removes a link itself, never its target
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogDeleteFailed(_logger, path, e);
        }
    }

    private void OnCorrupt(CacheKey key, string path, SafeFileHandle handle, FrameStatus status)
        => OnRejected(key, path, UnixFile.IsSupported ? UnixFile.Stat(handle) : null, status);
}
