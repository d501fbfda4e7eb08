using System.ComponentModel.DataAnnotations;

namespace FileCache.Disk;

/// <summary>Options of <see cref="DiskCodeCache"/>.</summary>
public sealed class DiskCodeCacheOptions : IValidatableObject
{
    /// <summary>
    /// The cache directory. Relative paths resolve against the current directory when the cache is
    /// created. <see langword="null"/> (the default) means <see cref="DefaultDirectory"/>.
    /// </summary>
    public string? Directory { get; set; }

    /// <summary>Whether each Add flushes the entry to the storage device before publishing it
    /// (default <see cref="DiskDurability.Flush"/>).</summary>
    public DiskDurability Durability { get; set; } = DiskDurability.Flush;

    /// <summary>
    /// The most bytes of entries the directory holds before least recently used entries are evicted
    /// (default 1 GiB). <see langword="null"/> turns size-based eviction off.
    /// </summary>
    [Range(1L, long.MaxValue, ErrorMessage = "DiskCodeCacheOptions.MaxSize must be at least 1 byte (or null for no limit).")]
    public long? MaxSize { get; set; } = 1L << 30;

    /// <summary>
    /// The largest payload one entry may hold (default 256 MiB, far above real modules: esbuild's
    /// compiled code is 29 MiB). An entry file larger than this is rejected on its size before any
    /// byte is read or allocated (counted as <c>TooLarge</c>), and Add refuses larger content, so a
    /// planted sparse file cannot make a lookup allocate or copy gigabytes.
    /// </summary>
    public long MaxEntrySize { get; set; } = 256L << 20;

    /// <summary>
    /// How often an entry's bytes are checked (default <see cref="DiskVerification.OncePerChange"/>):
    /// once after each change of the entry file, remembered in a verification record, or on every read.
    /// Records are used only in a private cache (no <see cref="AuthenticationKey"/>, a directory only
    /// this user or root can write) on Linux; elsewhere every read is verified. See docs/security.md.
    /// </summary>
    public DiskVerification Verification { get; set; } = DiskVerification.OncePerChange;

    /// <summary>Eviction trims the directory to this fraction of <see cref="MaxSize"/>, so it does
    /// not run again on the next Add (default 0.8).</summary>
    [Range(0.1, 1.0, ErrorMessage = "DiskCodeCacheOptions.TrimRatio must be between 0.1 and 1.0.")]
    public double TrimRatio { get; set; } = 0.8;

    /// <summary>Entries not used for longer than this are evicted; <see langword="null"/> (the default) keeps them.</summary>
    public TimeSpan? MaxAge { get; set; }

    /// <summary>A hit refreshes its entry's last-use time at most once per this interval, so hits
    /// do not write on every read (default 1 hour).</summary>
    public TimeSpan UseTimeResolution { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Temporary files older than this are left-overs of killed writers and are swept
    /// (default 1 hour; a live writer's temp is younger).</summary>
    public TimeSpan StaleTempFileAge { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Serves hits but never writes: no Add, no Delete, no use-time refresh, no eviction. Add and
    /// Delete throw <see cref="ReadOnlyWasmCodeCacheException"/>. For caches baked into images.
    /// </summary>
    public bool ReadOnly { get; set; }

    /// <summary>
    /// When set, every entry carries an HMAC-SHA256 tag made with this key, and entries without a
    /// valid tag are rejected as corrupt. At least 16 bytes; 32 random bytes are recommended.
    /// </summary>
    public byte[]? AuthenticationKey { get; set; }

    /// <summary>The mode of entry files on Unix (default 0600, owner read/write).</summary>
    public UnixFileMode FileMode { get; set; } = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>The mode of the cache directory when this cache creates it, on Unix (default 0700).</summary>
    public UnixFileMode DirectoryMode { get; set; } = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>
    /// The platform's per-user cache folder plus <c>filecache</c>: <c>$XDG_CACHE_HOME/filecache</c> or
    /// <c>~/.cache/filecache</c> on Linux, <c>~/Library/Caches/filecache</c> on macOS,
    /// <c>%LOCALAPPDATA%\filecache</c> on Windows.
    /// </summary>
    public static string DefaultDirectory
    {
        get
        {
            string root;
            if (OperatingSystem.IsWindows())
            {
                root = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData);
            }
            else if (OperatingSystem.IsMacOS())
            {
                root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), "Library", "Caches");
            }
            else
            {
                string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
                root = !string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg)
                    ? xdg
                    : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            }

            return Path.Combine(root, "filecache");
        }
    }

    private static string? TrustProblem(string path, bool authenticated)
    {
        try
        {
            var verdict = Internal.DirectoryTrust.Check(path);
            return verdict.Kind switch
            {
                Internal.DirectoryVerdictKind.Refused => Internal.DirectoryTrust.LinkRefusal(verdict.Problem!),
                Internal.DirectoryVerdictKind.Shared when !authenticated => Internal.DirectoryTrust.Refusal(verdict.Problem!),
                _ => null,
            };
        }
        catch (IOException e)
        {
            return e.Message;
        }
    }

    private static string Octal(UnixFileMode mode) => Convert.ToString((int)mode, 8).PadLeft(4, '0');

    /// <summary>Checks the settings that data annotations cannot express, and that the directory,
    /// when it exists and no authentication key is set, is private (see <c>docs/security.md</c>).</summary>
    /// <param name="validationContext">The validation context.</param>
    /// <returns>The problems found.</returns>
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        string path = Path.GetFullPath(Directory ?? DefaultDirectory);
        if (File.Exists(path))
        {
            yield return new ValidationResult($"DiskCodeCacheOptions.Directory '{path}' exists but is not a directory.", [nameof(Directory)]);
            yield break;
        }

        const UnixFileMode SharedWrite = UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;
        if (AuthenticationKey is null && ((FileMode | DirectoryMode) & SharedWrite) != 0)
        {
            yield return new ValidationResult($"DiskCodeCacheOptions.FileMode ({Octal(FileMode)}) and DirectoryMode ({Octal(DirectoryMode)}) let group or others write, which a cache without an AuthenticationKey refuses to trust: set AuthenticationKey for a shared cache, or keep the modes owner-only.", [nameof(FileMode), nameof(DirectoryMode)]);
        }
        else if (!ReadOnly && TrustProblem(path, AuthenticationKey is not null) is { } problem)
        {
            // A read-only tier (code shipped with the app) never stops a start: what it cannot trust or
            // read is a logged, counted miss at run time.
            yield return new ValidationResult(problem, [nameof(Directory)]);
        }

        if (MaxEntrySize < 1 || MaxEntrySize > DiskCodeCache.MaxEntrySize)
        {
            yield return new ValidationResult($"DiskCodeCacheOptions.MaxEntrySize is {MaxEntrySize}; it must be between 1 and {DiskCodeCache.MaxEntrySize} bytes.", [nameof(MaxEntrySize)]);
        }

        if (AuthenticationKey is { Length: < 16 })
        {
            yield return new ValidationResult($"DiskCodeCacheOptions.AuthenticationKey has {AuthenticationKey.Length} bytes; at least 16 are required.", [nameof(AuthenticationKey)]);
        }

        if (UseTimeResolution < TimeSpan.Zero || StaleTempFileAge <= TimeSpan.Zero || MaxAge <= TimeSpan.Zero)
        {
            yield return new ValidationResult("DiskCodeCacheOptions.UseTimeResolution must not be negative; StaleTempFileAge and MaxAge must be positive.", [nameof(UseTimeResolution), nameof(StaleTempFileAge), nameof(MaxAge)]);
        }
    }
}

/// <summary>How hard an Add works to survive a power loss.</summary>
public enum DiskDurability
{
    /// <summary>Flush the entry to the device before publishing it (the default).</summary>
    Flush,

    /// <summary>Publish without flushing: faster; after a power loss an entry may be empty or
    /// truncated, which the integrity check then treats as a miss.</summary>
    None,
}

/// <summary>When the disk tier checks an entry's bytes against its frame.</summary>
public enum DiskVerification
{
    /// <summary>
    /// Once per change of the entry file: a verified entry gets a record of the file's identity
    /// (device, inode, size, change time, frame version) and the boot, and a later hit of the same,
    /// unchanged file after the same boot is not hashed again. Anything that can change the bytes
    /// changes one of those. Only in private caches; <c>filecache verify</c> re-checks every byte.
    /// </summary>
    OncePerChange,

    /// <summary>Every read hashes the whole entry (the behaviour before verification records).</summary>
    EveryRead,
}
