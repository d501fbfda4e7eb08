using System.Runtime.InteropServices;

namespace FileCache.Disk.Internal;

// The libc entry points UnixFile calls (LibraryImport: NativeAOT-safe, no runtime marshalling stubs).
internal static partial class UnixFile
{
    [LibraryImport(LibC, EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int open(string path, int flags);

    [LibraryImport(LibC, SetLastError = true)]
    private static partial uint geteuid();

    [LibraryImport(LibC, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int mkdirat(int dirfd, string path, int mode);

    [LibraryImport(LibC, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int openat(int dirfd, string path, int flags);

    [LibraryImport(LibC, SetLastError = true)]
    private static partial int fchmod(int fd, int mode);

    [LibraryImport(LibC, SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport(LibC, SetLastError = true)]
    private static partial int flock(int fd, int operation);

    [LibraryImport(LibC, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial nint realpath(string path, nint resolved);

    [LibraryImport(LibC, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int memfd_create(string name, uint flags);

    [LibraryImport(LibC, SetLastError = true)]
    private static partial int ftruncate(int fd, long length);

    // fcntl is variadic; its int argument travels like a fixed one on Linux x64 and arm64 (the only
    // platforms that reach it: sealing is Linux-only).
    [LibraryImport(LibC, SetLastError = true)]
    private static partial int fcntl(int fd, int command, int argument);

    [LibraryImport(LibC, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport(LibC, SetLastError = true)]
    private static unsafe partial int fstat(int fd, byte* buffer);

    [LibraryImport(LibC, EntryPoint = "fstat$INODE64", SetLastError = true)]
    private static unsafe partial int fstat_inode64(int fd, byte* buffer);

    [LibraryImport(LibC, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int lstat(string path, byte* buffer);

    [LibraryImport(LibC, EntryPoint = "lstat$INODE64", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int lstat_inode64(string path, byte* buffer);
}
