using System.Buffers.Binary;
using FileCache.Disk.Internal;
using FileCache.Internal;

namespace FileCache.Disk;

/// <summary>
/// Verification records: an entry whose file cannot have changed since it was verified is not hashed
/// again (<see cref="DiskVerification.OncePerChange"/>). The record, <c>.verified-&lt;key&gt;</c>, binds the
/// key to the verified file's identity (device, inode, size, change time), the frame version and the
/// boot. Each of those changes with anything that can change the bytes: a write or a truncation
/// changes the change time (which no unprivileged user can set back), a replaced file has another
/// inode, and after a reboot unsynced data may be gone while the metadata survived.
/// </summary>
/// <remarks>
/// Only in private caches (no key, a directory only this user or root can write), where the record,
/// like an entry, can only have been written by this user or root, and is opened and checked like one.
/// Not with a key: there the directory is shared, and on kernels before 6.13 a file's change time has
/// the resolution of a timer tick, so another member racing within a tick of the last change could
/// rewrite an entry in place without changing its identity. Keyed caches verify every read.
/// </remarks>
internal sealed partial class DiskCodeCache
{
    private const string RecordPrefix = ".verified-";
    private const uint RecordMagic = 0x52564346; // "FCVR"
    internal const int RecordSize = 4 + 2 + 2 + 8 + 8 + 8 + 8 + 4 + 4 + 16 + CacheKey.Size;
    private static byte[]? s_bootId = ReadBootId();

    /// <summary>Payload bytes this cache has hashed to verify entries (tests count them).</summary>
    internal long HashedBytes;

    /// <summary>The boot's identity (Linux <c>/proc/sys/kernel/random/boot_id</c>); tests replace it to simulate a reboot.</summary>
    internal static byte[]? BootId
    {
        get => Volatile.Read(ref s_bootId);
        set => Volatile.Write(ref s_bootId, value);
    }

    /// <summary>Whether records are used: asked for, Linux, private, unauthenticated.</summary>
    private bool UsesRecords => _options.Verification == DiskVerification.OncePerChange && MapsEntryFiles && BootId is not null;

    internal string RecordPath(CacheKey key) => Path.Join(Directory, RecordPrefix + key.ToString());

    /// <summary>Whether a record says that <paramref name="file"/> (as just opened and checked) was verified under <paramref name="key"/>.</summary>
    private bool IsVerified(CacheKey key, in FileIdentity file)
    {
        if (!UsesRecords || file.Inode == 0)
        {
            return false;
        }

        using var handle = UnixFile.OpenNoFollow(RecordPath(key), out _);
        if (handle is null)
        {
            return false;
        }

        // The record is trusted like an entry: a regular file that only this user or root can change.
        var record = UnixFile.Stat(handle);
        if (record.Length != RecordSize || CheckEntryFile(record) != FrameStatus.Valid)
        {
            return false;
        }

        Span<byte> stored = stackalloc byte[RecordSize];
        Span<byte> expected = stackalloc byte[RecordSize];
        return RandomAccess.Read(handle, stored, 0) == RecordSize && Encode(key, file, expected) && stored.SequenceEqual(expected);
    }

    /// <summary>
    /// Ends a hit: refreshes the use time and, when the entry was hashed just now (<paramref name="hashed"/>)
    /// and did not change while it was (same identity as when it was opened, <paramref name="opened"/>),
    /// records it as verified, with its identity after the refresh (the refresh is this cache's own
    /// write, and it changes the change time).
    /// </summary>
    private void FinishHit(CacheKey key, Microsoft.Win32.SafeHandles.SafeFileHandle handle, in FileIdentity opened, bool hashed)
    {
        bool record = hashed && UsesRecords && !_options.ReadOnly && opened.Inode != 0 && SameContent(UnixFile.Stat(handle), opened);
        RefreshUseTime(handle);
        if (!record)
        {
            return;
        }

        Span<byte> bytes = stackalloc byte[RecordSize];
        if (!Encode(key, UnixFile.Stat(handle), bytes))
        {
            return;
        }

        // Temp file and rename, so a reader sees a whole record or none. No fsync: after a power
        // loss the boot changes, and with it every record.
        string temp = NewTempPath();
        try
        {
            using (var file = new FileStream(temp, TempFileOptions(FileOptions.None)))
            {
                file.Write(bytes);
            }

            File.Move(temp, RecordPath(key), overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDeleteFile(temp); // best effort: the next hit verifies again
        }
    }

    private static bool SameContent(in FileIdentity a, in FileIdentity b)
        => a.Device == b.Device && a.Inode == b.Inode && a.Length == b.Length && a.ChangeSeconds == b.ChangeSeconds && a.ChangeNanoseconds == b.ChangeNanoseconds;

    private void DeleteRecord(CacheKey key)
    {
        if (UsesRecords) // only a cache that writes records can have one to remove
        {
            try
            {
                File.Delete(RecordPath(key));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A stale record is harmless: it names an inode that no entry has any more.
            }
        }
    }

    internal static bool Encode(CacheKey key, in FileIdentity file, Span<byte> record)
    {
        if (BootId is not { Length: 16 } boot)
        {
            return false;
        }

        BinaryPrimitives.WriteUInt32LittleEndian(record, RecordMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(record[4..], 1); // the record's own format
        BinaryPrimitives.WriteUInt16LittleEndian(record[6..], EntryFrame.CurrentVersion);
        BinaryPrimitives.WriteUInt64LittleEndian(record[8..], file.Device);
        BinaryPrimitives.WriteUInt64LittleEndian(record[16..], file.Inode);
        BinaryPrimitives.WriteInt64LittleEndian(record[24..], file.Length);
        BinaryPrimitives.WriteInt64LittleEndian(record[32..], file.ChangeSeconds);
        BinaryPrimitives.WriteUInt32LittleEndian(record[40..], file.ChangeNanoseconds);
        BinaryPrimitives.WriteUInt32LittleEndian(record[44..], 0);
        boot.CopyTo(record[48..]);
        key.CopyTo(record[64..]);
        return true;
    }

    private static byte[]? ReadBootId()
    {
        try
        {
            return OperatingSystem.IsLinux() && Guid.TryParse(File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim(), out var boot) ? boot.ToByteArray() : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // no boot identity: no records, every read is verified
        }
    }

    private static bool IsRecordName(string name) => name.StartsWith(RecordPrefix, StringComparison.Ordinal);
}
