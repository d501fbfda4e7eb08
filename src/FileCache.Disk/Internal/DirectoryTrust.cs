namespace FileCache.Disk.Internal;

/// <summary>What <see cref="DirectoryTrust.Check"/> found.</summary>
internal enum DirectoryVerdictKind
{
    /// <summary>The directory (or a level above it) does not exist yet.</summary>
    Missing,

    /// <summary>Only this user or root can change it or anything on its path.</summary>
    Private,

    /// <summary>Others can write to it or replace it: usable only with an authentication key.</summary>
    Shared,

    /// <summary>Its path goes through a symbolic link that others could have placed or replaced: never used.</summary>
    Refused,
}

/// <summary>The verdict, why, and the directory that was checked (its identity, to notice a swap later).</summary>
internal readonly record struct DirectoryVerdict(DirectoryVerdictKind Kind, string? Problem, FileIdentity Identity);

/// <summary>
/// Decides whether a cache directory can be trusted without an authentication key: only the
/// effective user (or root) can change what is in it. The rule OpenSSH applies to authorized_keys:
/// the directory is owned by the user or root and not writable by group or others, and so is every
/// directory above it, unless that one is sticky (like /tmp), where others cannot rename or remove
/// what is ours. The path is walked as given, one component at a time: a symbolic link on it is
/// followed only if it is owned by the user or root and sits in a directory that others cannot
/// change (so nobody else could have placed or swapped it), and the path it leads to is walked by
/// the same rules. Anything else is refused, with or without a key.
/// </summary>
internal static class DirectoryTrust
{
    private const int MaxLinks = 40; // as the kernel's own limit for a path

    /// <summary>Checks <paramref name="directory"/> (a full path).</summary>
    /// <exception cref="IOException">The path exists but is not a directory, or cannot be examined.</exception>
    public static DirectoryVerdict Check(string directory)
    {
        if (!UnixFile.IsSupported)
        {
            // Windows: the user profile's ACLs decide.
            return new(System.IO.Directory.Exists(directory) ? DirectoryVerdictKind.Private : DirectoryVerdictKind.Missing, null, default);
        }

        uint me = UnixFile.EffectiveUser;
        var pending = new Stack<string>();
        Push(pending, directory);
        string current = "/";
        var root = UnixFile.LStat("/") ?? throw new IOException("Could not examine '/'.");
        bool currentChangeable = Changeable(root, me); // whether others can change entries of 'current'
        string? aboveProblem = currentChangeable ? Above("/", root, directory) : null;
        FileIdentity last = root;
        int links = 0;
        while (pending.Count > 0)
        {
            string component = pending.Pop();
            if (component is "" or ".")
            {
                continue;
            }

            if (component == "..")
            {
                // Lexical: the levels walked so far were real directories, so their parent is known.
                current = Path.GetDirectoryName(current) ?? "/";
                var up = UnixFile.LStat(current) ?? throw new IOException($"Could not examine '{current}' on the path of the cache directory '{directory}'.");
                currentChangeable = Changeable(up, me);
                last = up;
                continue;
            }

            string next = Path.Join(current, component);
            if (UnixFile.LStat(next) is not { } file)
            {
                return new(DirectoryVerdictKind.Missing, null, default);
            }

            if (file.Kind == FileKind.SymbolicLink)
            {
                if (++links > MaxLinks)
                {
                    throw new IOException($"The path of the cache directory '{directory}' has more than {MaxLinks} symbolic links.");
                }

                if (!Trusted(file.Owner, me) || currentChangeable)
                {
                    return new(DirectoryVerdictKind.Refused, $"The path of the cache directory '{directory}' goes through the symbolic link '{next}', owned by uid {file.Owner} in '{current}' (owned by uid {last.Owner} with mode {last.ModeText}), which others could have placed or replaced", default);
                }

                string target = new FileInfo(next).LinkTarget ?? throw new IOException($"Could not read the symbolic link '{next}'.");
                if (Path.IsPathRooted(target))
                {
                    current = "/";
                    currentChangeable = Changeable(root, me);
                    last = root;
                }

                Push(pending, target);
                continue;
            }

            if (file.Kind != FileKind.Directory)
            {
                throw new IOException(pending.Count == 0
                    ? $"The cache directory '{directory}' exists but is not a directory."
                    : $"'{next}' on the path of the cache directory '{directory}' is not a directory.", 20 /* ENOTDIR */);
            }

            if (pending.Count > 0 && Changeable(file, me))
            {
                aboveProblem ??= Above(next, file, directory);
            }

            currentChangeable = Changeable(file, me);
            current = next;
            last = file;
        }

        if (!Trusted(last.Owner, me) || last.SharedWritable)
        {
            return new(DirectoryVerdictKind.Shared, $"The cache directory '{directory}'{(current != directory ? $" (really '{current}')" : "")} is owned by uid {last.Owner} with mode {last.ModeText}", last);
        }

        return aboveProblem is null ? new(DirectoryVerdictKind.Private, null, last) : new(DirectoryVerdictKind.Shared, aboveProblem, last);
    }

    /// <summary>The full refusal message: what is wrong and the two fixes.</summary>
    public static string Refusal(string problem)
        => $"{problem}; this process runs as uid {UnixFile.EffectiveUser}. Without an authentication key, a cache is used only if no other user can write to it: "
         + "anyone who can write there could plant machine code that this process would run. Fix: use a directory that only this user can write "
         + "(owned by this user or root, mode 0700, in a path that others cannot change), or set DiskCodeCacheOptions.AuthenticationKey to verify every entry.";

    /// <summary>The message for a path through a link others control: refused whatever the key.</summary>
    public static string LinkRefusal(string problem)
        => $"{problem}. A cache never follows such a link, with or without an authentication key: it could redirect the cache's writes and deletes anywhere. "
         + "Fix: give the real directory's path, or keep the link in a directory only you (or root) can write.";

    private static string Above(string path, in FileIdentity file, string directory)
        => $"The directory '{path}' above the cache directory '{directory}' is owned by uid {file.Owner} with mode {file.ModeText}, so others can replace the cache directory";

    /// <summary>Whether users other than this one and root can add, rename or remove names in a directory.</summary>
    private static bool Changeable(in FileIdentity directory, uint me)
        => !Trusted(directory.Owner, me) || (directory.SharedWritable && !directory.Sticky);

    private static void Push(Stack<string> pending, string path)
    {
        var parts = path.Split('/');
        for (int i = parts.Length - 1; i >= 0; i--)
        {
            pending.Push(parts[i]);
        }
    }

    private static bool Trusted(uint owner, uint me) => owner == me || owner == 0;
}
