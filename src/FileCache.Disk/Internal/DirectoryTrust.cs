namespace FileCache.Disk.Internal;

/// <summary>
/// Decides whether a cache directory can be trusted without an authentication key: only the
/// effective user (or root) can change what is in it. The rule OpenSSH applies to authorized_keys:
/// the directory is owned by the user or root and not writable by group or others, and so is every
/// directory above it, unless that one is sticky (like /tmp), where others cannot rename or remove
/// what is ours. A symbolic link to the directory is followed, and the directory it reaches and
/// the real path above it are checked.
/// </summary>
internal static class DirectoryTrust
{
    /// <summary>Checks <paramref name="directory"/>.</summary>
    /// <returns><see langword="null"/> when it does not exist; otherwise <see langword="true"/> when only
    /// this user or root can change it, <see langword="false"/> with <paramref name="problem"/> saying who else can.</returns>
    /// <exception cref="IOException">The path exists but is not a directory, or cannot be examined.</exception>
    public static bool? IsPrivate(string directory, out string? problem)
    {
        problem = null;
        if (!UnixFile.IsSupported)
        {
            return System.IO.Directory.Exists(directory) ? true : null; // Windows: the user profile's ACLs decide
        }

        FileIdentity dir;
        string real;
        try
        {
            using (var handle = UnixFile.OpenDirectory(directory))
            {
                dir = UnixFile.Stat(handle);
            }

            real = UnixFile.RealPath(directory);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (IOException e) when (e.HResult == 20 /* ENOTDIR */)
        {
            throw new IOException($"The cache directory '{directory}' exists but is not a directory.", e);
        }

        uint me = UnixFile.EffectiveUser;
        if (!Trusted(dir.Owner, me) || dir.SharedWritable)
        {
            problem = $"The cache directory '{directory}'{(real != directory ? $" (really '{real}')" : "")} is owned by uid {dir.Owner} with mode {dir.ModeText}";
            return false;
        }

        for (string? parent = Path.GetDirectoryName(real); parent is not null; parent = Path.GetDirectoryName(parent))
        {
            if (UnixFile.LStat(parent) is not { } above)
            {
                continue; // removed meanwhile: the next check sees it again
            }

            if (!Trusted(above.Owner, me) || (above.SharedWritable && !above.Sticky))
            {
                problem = $"The directory '{parent}' above the cache directory '{directory}' is owned by uid {above.Owner} with mode {above.ModeText}, so others can replace the cache directory";
                return false;
            }
        }

        return true;
    }

    /// <summary>The full refusal message: what is wrong and the two fixes.</summary>
    public static string Refusal(string problem)
        => $"{problem}; this process runs as uid {UnixFile.EffectiveUser}. Without an authentication key, a cache is used only if no other user can write to it: "
         + "anyone who can write there could plant machine code that this process would run. Fix: use a directory that only this user can write "
         + "(owned by this user or root, mode 0700, in a path that others cannot change), or set DiskCodeCacheOptions.AuthenticationKey to verify every entry.";

    private static bool Trusted(uint owner, uint me) => owner == me || owner == 0;
}
