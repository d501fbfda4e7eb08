using System.ComponentModel;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace FileCache.Disk.Internal;

/// <summary>
/// The few POSIX calls .NET does not expose: open without following links or blocking, the
/// owner, link count, device and inode of an open handle, the effective user, advisory locks
/// and sealed memory files. Hand-written because no maintained NuGet package offers them with
/// NativeAOT-safe <c>LibraryImport</c> bindings and correct layouts for every Unix; these are a
/// handful of stable system calls. Linux uses <c>statx</c>, whose layout is the same on every
/// architecture; macOS uses its 64-bit-inode <c>struct stat</c>.
/// </summary>
internal static partial class UnixFile
{
    private const string LibC = "libc";
    private const int ENOENT = 2, EINTR = 4, EACCES = 13, EPERM = 1, ENOTDIR = 20;
    private static readonly bool IsLinux = OperatingSystem.IsLinux();
    private static readonly bool IsArm64 = RuntimeInformation.ProcessArchitecture == Architecture.Arm64;

    /// <summary>Whether this platform has the calls (Linux and macOS).</summary>
    [System.Runtime.Versioning.UnsupportedOSPlatformGuard("windows")]
    public static bool IsSupported { get; } = OperatingSystem.IsLinux() || OperatingSystem.IsMacOS();

    private static int O_NONBLOCK => IsLinux ? 0x800 : 0x4;

    private static int O_NOFOLLOW => IsLinux ? (IsArm64 ? 0x8000 : 0x20000) : 0x100;

    private static int O_CLOEXEC => IsLinux ? 0x80000 : 0x1000000;

    private static int O_DIRECTORY => IsLinux ? (IsArm64 ? 0x4000 : 0x10000) : 0x100000;

    /// <summary>The effective user id, read once: it is compared on every entry open.</summary>
    public static uint EffectiveUser { get; } = IsSupported ? geteuid() : 0;

    /// <summary>
    /// Opens <paramref name="path"/> read-only without following a final symbolic link and without
    /// blocking (a FIFO opens at once), close-on-exec.
    /// </summary>
    /// <returns>The handle; <see langword="null"/> with <paramref name="refusal"/> set when the name is
    /// missing (<see cref="OpenRefusal.Missing"/>), a symbolic link, or not readable by this user.</returns>
    /// <exception cref="IOException">Any other failure, naming the path and the cause.</exception>
    public static SafeFileHandle? OpenNoFollow(string path, out OpenRefusal refusal)
    {
        refusal = OpenRefusal.None;
        int fd;
        do
        {
            fd = open(path, O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        }
        while (fd < 0 && Marshal.GetLastPInvokeError() == EINTR);

        if (fd >= 0)
        {
            return new SafeFileHandle(fd, ownsHandle: true);
        }

        int errno = Marshal.GetLastPInvokeError();
        refusal = errno switch
        {
            ENOENT or ENOTDIR => OpenRefusal.Missing,
            // Linux says ELOOP (40), macOS ELOOP (62) for O_NOFOLLOW on a link.
            40 when IsLinux => OpenRefusal.SymbolicLink,
            62 when !IsLinux => OpenRefusal.SymbolicLink,
            EACCES or EPERM => OpenRefusal.Unreadable,
            _ => OpenRefusal.None,
        };
        return refusal != OpenRefusal.None ? null : throw Error(errno, "open", path);
    }

    /// <summary>Opens a directory (following links: the caller checks what it reached).</summary>
    public static SafeFileHandle OpenDirectory(string path)
    {
        int fd;
        do
        {
            fd = open(path, O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
        }
        while (fd < 0 && Marshal.GetLastPInvokeError() == EINTR);

        return fd >= 0 ? new SafeFileHandle(fd, ownsHandle: true) : throw Error(Marshal.GetLastPInvokeError(), "open directory", path);
    }

    /// <summary>
    /// Creates the directory <paramref name="name"/> inside the open directory <paramref name="parent"/>
    /// (<c>mkdirat</c>) and opens what is there without following a link (<c>openat</c> with
    /// <c>O_DIRECTORY | O_NOFOLLOW</c>), so a name swapped for a link between the two calls is refused.
    /// </summary>
    /// <param name="parent">The directory to create in.</param>
    /// <param name="name">One path component.</param>
    /// <param name="mode">The mode to create with (the umask applies).</param>
    /// <param name="display">The full path, for messages.</param>
    /// <param name="created">Whether this call created it (it did not exist).</param>
    /// <returns>The new (or existing) directory's handle.</returns>
    /// <exception cref="IOException">It cannot be created, or the name is not a directory (a link, a file), naming the path.</exception>
    public static SafeFileHandle MakeDirectoryAt(SafeFileHandle parent, string name, UnixFileMode mode, string display, out bool created)
    {
        const int EEXIST = 17;
        int result;
        do
        {
            result = mkdirat(Fd(parent), name, (int)mode);
        }
        while (result < 0 && Marshal.GetLastPInvokeError() == EINTR);

        int errno = result < 0 ? Marshal.GetLastPInvokeError() : 0;
        if (result < 0 && errno != EEXIST)
        {
            throw Error(errno, "create directory", display);
        }

        created = result == 0;
        return OpenDirectoryAt(parent, name, display);
    }

    /// <summary>Opens the directory <paramref name="name"/> inside <paramref name="parent"/> without following a link.</summary>
    public static SafeFileHandle OpenDirectoryAt(SafeFileHandle parent, string name, string display)
    {
        int fd;
        do
        {
            fd = openat(Fd(parent), name, O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        }
        while (fd < 0 && Marshal.GetLastPInvokeError() == EINTR);

        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw errno is 40 or 62 or ENOTDIR
                ? new IOException($"Could not open directory '{display}': it is a symbolic link or not a directory, and is not followed (errno {errno}).", errno)
                : Error(errno, "open directory", display);
        }

        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>Sets the mode of an open file (<c>fchmod</c>): never by name, so no link is followed.</summary>
    public static void SetMode(SafeFileHandle handle, UnixFileMode mode, string display)
    {
        if (fchmod(Fd(handle), (int)mode) != 0)
        {
            throw Error(Marshal.GetLastPInvokeError(), "set the mode of", display);
        }
    }

    /// <summary>
    /// Flushes a directory's entries to the device (<c>fsync</c> on the directory), so a rename or a
    /// new name in it survives a power loss (POSIX leaves a new name volatile until then).
    /// </summary>
    public static void FlushDirectory(SafeFileHandle directory, string display)
    {
        int result;
        do
        {
            result = fsync(Fd(directory));
        }
        while (result < 0 && Marshal.GetLastPInvokeError() == EINTR);

        // EINVAL: a file system that cannot sync directories (some FUSE and network ones); nothing more to do.
        if (result != 0 && Marshal.GetLastPInvokeError() is int errno && errno != 22)
        {
            throw Error(errno, "flush directory", display);
        }
    }

    /// <summary>Opens a directory like <see cref="OpenDirectory"/>, or <see langword="null"/> when no such name exists.</summary>
    public static SafeFileHandle? OpenDirectoryIfExists(string path)
    {
        try
        {
            return OpenDirectory(path);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    /// <summary>
    /// Tries to take an exclusive lock on <paramref name="path"/> without waiting, opened without
    /// following links or blocking. A temp file whose lock can be taken has no writer any more.
    /// </summary>
    /// <returns><see langword="true"/> with the file's identity when the lock was free (it is released again);
    /// <see langword="false"/> when a writer holds it or the name is gone or not a regular file.</returns>
    public static bool IsUnlocked(string path, out FileIdentity file)
    {
        file = default;
        using var handle = OpenNoFollow(path, out _);
        if (handle is null)
        {
            return false;
        }

        file = Stat(handle);
        return file.Kind == FileKind.Regular && TryLockExclusive(handle, path);
    }

    private static int Fd(SafeFileHandle handle) => (int)handle.DangerousGetHandle();

    /// <summary>Describes an open file.</summary>
    public static FileIdentity Stat(SafeFileHandle handle)
    {
        bool added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            return StatCore((int)handle.DangerousGetHandle(), null, "the open file");
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>Describes the file a name points at, without following a final link.</summary>
    /// <returns><see langword="null"/> when the name does not exist.</returns>
    public static FileIdentity? LStat(string path)
    {
        try
        {
            return StatCore(-1, path, path);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Takes an exclusive advisory lock without waiting.</summary>
    /// <returns><see langword="false"/> when another holder has it.</returns>
    public static bool TryLockExclusive(SafeFileHandle handle, string path)
    {
        const int LOCK_EX = 2, LOCK_NB = 4, EWOULDBLOCK_LINUX = 11, EWOULDBLOCK_MAC = 35;
        int result;
        do
        {
            result = flock((int)handle.DangerousGetHandle(), LOCK_EX | LOCK_NB);
        }
        while (result < 0 && Marshal.GetLastPInvokeError() == EINTR);

        if (result == 0)
        {
            return true;
        }

        int errno = Marshal.GetLastPInvokeError();
        return errno is EWOULDBLOCK_LINUX or EWOULDBLOCK_MAC ? false : throw Error(errno, "lock", path);
    }

    /// <summary>The canonical path with every link resolved.</summary>
    public static unsafe string RealPath(string path)
    {
        nint resolved = realpath(path, 0);
        if (resolved == 0)
        {
            throw Error(Marshal.GetLastPInvokeError(), "resolve", path);
        }

        try
        {
            return Marshal.PtrToStringUTF8(resolved)!;
        }
        finally
        {
            NativeMemory.Free((void*)resolved);
        }
    }

    /// <summary>
    /// Creates an anonymous memory file (Linux <c>memfd_create</c>) of <paramref name="length"/> bytes
    /// that can be sealed; <see langword="null"/> where the platform has none.
    /// </summary>
    public static SafeFileHandle? CreateSealableMemoryFile(string name, long length)
    {
        if (!IsLinux)
        {
            return null;
        }

        const uint MFD_CLOEXEC = 1, MFD_ALLOW_SEALING = 2;
        int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            return errno == 38 /* ENOSYS */ ? null : throw Error(errno, "memfd_create", name);
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        if (ftruncate(fd, length) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            handle.Dispose();
            throw Error(errno, "size", name);
        }

        return handle;
    }

    /// <summary>Seals a memory file against writes, shrinking, growing and further sealing.</summary>
    public static void Seal(SafeFileHandle handle)
    {
        const int F_ADD_SEALS = 1033, F_SEAL_SEAL = 1, F_SEAL_SHRINK = 2, F_SEAL_GROW = 4, F_SEAL_WRITE = 8;
        if (fcntl((int)handle.DangerousGetHandle(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0)
        {
            throw Error(Marshal.GetLastPInvokeError(), "seal", "a memory file");
        }
    }

    /// <summary>The seals on a memory file (for tests).</summary>
    public static int GetSeals(SafeFileHandle handle)
    {
        const int F_GET_SEALS = 1034;
        return fcntl((int)handle.DangerousGetHandle(), F_GET_SEALS, 0);
    }

    private static unsafe FileIdentity StatCore(int fd, string? path, string what)
    {
        if (IsLinux)
        {
            const int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100, AT_EMPTY_PATH = 0x1000;
            const uint STATX_BASIC_STATS = 0x7ff;
            byte* buffer = stackalloc byte[256];
            int result;
            do
            {
                result = path is null
                    ? statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, buffer)
                    : statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, buffer);
            }
            while (result < 0 && Marshal.GetLastPInvokeError() == EINTR);

            if (result != 0)
            {
                throw Error(Marshal.GetLastPInvokeError(), "stat", what);
            }

            // struct statx: nlink u32 @16, uid u32 @20, mode u16 @28, ino u64 @32, size u64 @40,
            // ctime {i64 sec, u32 nsec} @96, mtime {i64 sec, u32 nsec} @112, dev_major u32 @136, dev_minor u32 @140.
            uint mode = *(ushort*)(buffer + 28);
            ulong device = ((ulong)*(uint*)(buffer + 136) << 32) | *(uint*)(buffer + 140);
            return Identity(mode, device, *(ulong*)(buffer + 32), *(uint*)(buffer + 20), *(uint*)(buffer + 16), *(long*)(buffer + 40), *(long*)(buffer + 112), *(uint*)(buffer + 120))
                with { ChangeSeconds = *(long*)(buffer + 96), ChangeNanoseconds = *(uint*)(buffer + 104) };
        }
        else
        {
            // macOS struct stat (64-bit inodes): dev i32 @0, mode u16 @4, nlink u16 @6, ino u64 @8,
            // uid u32 @16, mtimespec {i64, i64} @48, size i64 @96.
            byte* buffer = stackalloc byte[144];
            int result = path is null
                ? (IsArm64 ? fstat(fd, buffer) : fstat_inode64(fd, buffer))
                : (IsArm64 ? lstat(path, buffer) : lstat_inode64(path, buffer));
            if (result != 0)
            {
                throw Error(Marshal.GetLastPInvokeError(), "stat", what);
            }

            return Identity(*(ushort*)(buffer + 4), (ulong)*(int*)(buffer + 0), *(ulong*)(buffer + 8), *(uint*)(buffer + 16), *(ushort*)(buffer + 6), *(long*)(buffer + 96), *(long*)(buffer + 48), (uint)*(long*)(buffer + 56));
        }
    }

    private static FileIdentity Identity(uint mode, ulong device, ulong inode, uint owner, uint links, long size, long mtimeSeconds, uint mtimeNanoseconds)
    {
        var kind = (mode & 0xF000) switch
        {
            0x8000 => FileKind.Regular,
            0x4000 => FileKind.Directory,
            0xA000 => FileKind.SymbolicLink,
            0x1000 => FileKind.Fifo,
            _ => FileKind.Other,
        };
        var lastWrite = DateTime.UnixEpoch.AddTicks((mtimeSeconds * TimeSpan.TicksPerSecond) + (mtimeNanoseconds / 100));
        return new FileIdentity(kind, device, inode, owner, (UnixFileMode)(mode & 0x1FF), (mode & 0x200) != 0, links, size, lastWrite);
    }

    private static IOException Error(int errno, string operation, string path)
    {
        string cause = new Win32Exception(errno).Message;
        return errno == ENOENT
            ? new FileNotFoundException($"Could not {operation} '{path}': {cause}", path)
            : new IOException($"Could not {operation} '{path}': {cause} (errno {errno}).", errno);
    }
}
