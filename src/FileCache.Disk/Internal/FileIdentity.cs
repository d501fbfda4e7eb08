namespace FileCache.Disk.Internal;

/// <summary>What the disk tier needs to know about a file before it trusts it.</summary>
internal readonly record struct FileIdentity(
    FileKind Kind, ulong Device, ulong Inode, uint Owner, UnixFileMode Mode, bool Sticky, uint Links, long Length, DateTime LastWriteUtc, long ChangeSeconds = 0, uint ChangeNanoseconds = 0)
{
    /// <summary>Writable by group or others.</summary>
    public bool SharedWritable => (Mode & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0;

    public bool SameFileAs(in FileIdentity other) => Device == other.Device && Inode == other.Inode;

    public string ModeText => Convert.ToString((int)Mode | (Sticky ? 0x200 : 0), 8).PadLeft(4, '0');
}

internal enum FileKind
{
    Regular,
    Directory,
    SymbolicLink,
    Fifo,
    Other,
}

/// <summary>Why <see cref="UnixFile.OpenNoFollow"/> returned no handle.</summary>
internal enum OpenRefusal
{
    None,
    Missing,
    SymbolicLink,
    Unreadable,
}
