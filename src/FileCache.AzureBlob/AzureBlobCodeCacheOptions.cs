using System.ComponentModel.DataAnnotations;
using Azure.Storage.Blobs;

namespace FileCache.AzureBlob;

/// <summary>Options of the Azure Blob Storage tier (<c>UseAzureBlob</c>).</summary>
public sealed class AzureBlobCodeCacheOptions : IValidatableObject
{
    /// <summary>
    /// The container, with the credential the host should use (a reader identity for hosts that only
    /// read, a writer identity for the hosts that compile). Takes precedence over
    /// <see cref="ConnectionString"/>.
    /// </summary>
    public BlobContainerClient? Container { get; set; }

    /// <summary>A storage connection string, used with <see cref="ContainerName"/> when <see cref="Container"/> is not set.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>The container's name with <see cref="ConnectionString"/> (default <c>filecache</c>); created on first use when missing.</summary>
    public string ContainerName { get; set; } = "filecache";

    /// <summary>Prefixed to every blob name (then <c>index/</c> or <c>body/</c>), so several applications can share a container.</summary>
    [Required(AllowEmptyStrings = true, ErrorMessage = "AzureBlobCodeCacheOptions.Prefix must not be null.")]
    public string Prefix { get; set; } = "";

    /// <summary>
    /// The HMAC-SHA256 key that index records are signed and checked with (at least 16 bytes; 32 random
    /// bytes shared by the hosts that write). Required: the store is never trusted, only this key.
    /// </summary>
    public byte[]? AuthenticationKey { get; set; }

    /// <summary>The size of each ranged read of a body when <see cref="MaxConcurrency"/> is above 1 (default 4 MiB; a multiple of 1 MiB).</summary>
    [Range(1 << 20, 256 << 20, ErrorMessage = "AzureBlobCodeCacheOptions.RangeSize must be between 1 MiB and 256 MiB.")]
    public int RangeSize { get; set; } = 4 << 20;

    /// <summary>
    /// How many ranges of one body are read at once (default 1). With 1, a body is one GET, read and
    /// verified 1 MiB at a time a few chunks ahead of its consumer: one request per host per rollout,
    /// and the fastest read measured (Azurite). Above 1, the body is read in <see cref="RangeSize"/>
    /// ranges, this many in parallel, each verified as it arrives (memory: this many ranges), for links
    /// where one stream cannot fill the pipe.
    /// </summary>
    [Range(1, 64, ErrorMessage = "AzureBlobCodeCacheOptions.MaxConcurrency must be between 1 and 64.")]
    public int MaxConcurrency { get; set; } = 1;

    /// <summary>The largest payload read or written (default 256 MiB); a larger index record is a miss before any body is read.</summary>
    [Range(1, long.MaxValue, ErrorMessage = "AzureBlobCodeCacheOptions.MaxEntrySize must be positive.")]
    public long MaxEntrySize { get; set; } = 256L << 20;

    /// <summary>How long one store call may take before it counts as a failure (default 30 s).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long the store is skipped after repeated failures (default 30 s); then one call probes it.</summary>
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// One compile per fleet (default on): before compiling a key, a host takes a lease on
    /// <c>{prefix}locks/{key}</c>, renewed while it compiles; the others wait with jittered back-off under
    /// the loader's deadline and then find its entry. A holder that dies stops blocking when its lease
    /// expires (<see cref="CompileLockDuration"/>).
    /// </summary>
    public bool FleetCompileLock { get; set; } = true;

    /// <summary>The lease's duration, renewed while the holder compiles (default 30 s; Azure allows 15 to 60 s).</summary>
    public TimeSpan CompileLockDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Read only: never write (a host with a reader identity). A write refused with 403 turns this on by itself.</summary>
    public bool ReadOnly { get; set; }

    /// <summary>
    /// The generation of the code this host writes, for example <c>wasmtime-50</c> (default none).
    /// Index records and bodies are written with the blob index tag <c>filecache-generation</c> set to
    /// it, so a lifecycle rule (<c>blobIndexMatch</c>) can expire an old engine's entries and
    /// <c>filecache --azure stats</c> counts entries per generation. Writing tags needs the tags
    /// permission (<c>t</c> in a SAS, or Storage Blob Data Owner); at most 256 characters of letters,
    /// digits, space and <c>+ - . / : = _</c>.
    /// </summary>
    public string? Generation { get; set; }

    /// <inheritdoc/>
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext) => Problems();

    internal IEnumerable<ValidationResult> Problems()
    {
        if (AuthenticationKey is not { Length: >= 16 })
        {
            yield return new ValidationResult("AzureBlobCodeCacheOptions.AuthenticationKey is required (at least 16 bytes): whatever the store returns is untrusted machine code until its index record verifies with the key.", [nameof(AuthenticationKey)]);
        }

        if (Container is null && string.IsNullOrEmpty(ConnectionString))
        {
            yield return new ValidationResult("Set AzureBlobCodeCacheOptions.Container (a BlobContainerClient with the host's credential) or ConnectionString.", [nameof(Container)]);
        }

        if (RangeSize % (1 << 20) != 0)
        {
            yield return new ValidationResult($"AzureBlobCodeCacheOptions.RangeSize is {RangeSize}; it must be a multiple of 1 MiB (the chunk each digest covers).", [nameof(RangeSize)]);
        }

        if (CompileLockDuration < TimeSpan.FromSeconds(15) || CompileLockDuration > TimeSpan.FromSeconds(60))
        {
            yield return new ValidationResult($"AzureBlobCodeCacheOptions.CompileLockDuration is {CompileLockDuration}; it must be between 15 and 60 seconds (Azure's lease limits).", [nameof(CompileLockDuration)]);
        }

        if (Generation is not null && (Generation.Length is 0 or > 256 || !Generation.All(c => char.IsAsciiLetterOrDigit(c) || " +-./:=_".Contains(c))))
        {
            yield return new ValidationResult($"AzureBlobCodeCacheOptions.Generation '{Generation}' is not a blob index tag value: 1 to 256 letters, digits, spaces and + - . / : = _.", [nameof(Generation)]);
        }

        if (Timeout <= TimeSpan.Zero || BreakDuration <= TimeSpan.Zero)
        {
            yield return new ValidationResult("AzureBlobCodeCacheOptions.Timeout and BreakDuration must be positive.", [nameof(Timeout)]);
        }
    }
}
