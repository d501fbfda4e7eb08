using System.ComponentModel.DataAnnotations;

namespace FileCache.Distributed;

/// <summary>Options of <see cref="DistributedCodeCache"/>.</summary>
public sealed class DistributedCodeCacheOptions : IValidatableObject
{
    /// <summary>Prefixed to every store key (then the cache key's 64 hex characters and <c>:head</c>, or a
    /// chunk's content id and index), so several applications can share one store (default <c>filecache:</c>).</summary>
    [Required(AllowEmptyStrings = true, ErrorMessage = "DistributedCodeCacheOptions.KeyPrefix must not be null.")]
    public string KeyPrefix { get; set; } = "filecache:";

    /// <summary>
    /// The HMAC-SHA256 key that every entry is signed and checked with (at least 16 bytes; use 32
    /// random bytes shared by the fleet). Anything read from a network store is untrusted machine
    /// code: entries without a valid tag are rejected. Required unless
    /// <see cref="DangerouslyAcceptUnauthenticatedEntries"/> is set.
    /// </summary>
    public byte[]? AuthenticationKey { get; set; }

    /// <summary>
    /// Further keys that are accepted when reading and never used to sign, for rotating
    /// <see cref="AuthenticationKey"/> without a fleet-wide miss: first add the new key here on
    /// every node, then make it the <see cref="AuthenticationKey"/> and move the old one here, and
    /// finally remove the old one. Each at least 16 bytes.
    /// </summary>
    public IList<byte[]> AdditionalVerificationKeys { get; } = [];

    /// <summary>
    /// Accept entries that carry no authentication tag, so that anyone who can write to the store
    /// can make this process run their machine code. Only for stores nobody else can reach.
    /// </summary>
    public bool DangerouslyAcceptUnauthenticatedEntries { get; set; }

    /// <summary>Entries expire after this long unused (default 7 days); null for none.</summary>
    public TimeSpan? SlidingExpiration { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Entries expire this long after they were written; null (the default) for none.</summary>
    public TimeSpan? AbsoluteExpiration { get; set; }

    /// <summary>Entries larger than this are not sent to the store, and a stored head that claims more is
    /// rejected before its chunks are fetched (counted in <c>filecache.rejected_entries</c>; default 64 MiB).</summary>
    [Range(1L, int.MaxValue - 64, ErrorMessage = "DistributedCodeCacheOptions.MaxEntrySize must be between 1 byte and 2 GiB.")]
    public long MaxEntrySize { get; set; } = 64L << 20;

    /// <summary>
    /// Read each value (a head, a chunk) through <c>IBufferDistributedCache</c> into a writer bounded by
    /// the length it must have, so an oversized value stops the read before FileCache allocates for it
    /// (default <see langword="false"/>: read through the <c>byte[]</c> API and reject a value of the
    /// wrong length after it arrived). Either way, a head that claims more than <see cref="MaxEntrySize"/>
    /// stops the read before any chunk is fetched, and the store's client receives each value whole.
    /// </summary>
    public bool BoundReadsBeforeAllocation { get; set; }

    /// <summary>How long one store operation may take before the tier gives up on it (default 5 s).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>After repeated failures the store is skipped for this long before it is tried again (default 30 s).</summary>
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Opt-in: one compile per fleet. With a lock (for Redis or Garnet: <c>RedisFleetCompileLock</c>, package FileCache.Distributed.Redis),
    /// a host about to compile a missing key takes the key's lock in the store; other hosts wait for it
    /// (polling, within the loader's compile-lock timeout) and then find the entry the holder added.
    /// <see langword="null"/> (the default): every host that misses compiles.
    /// </summary>
    public IFleetCompileLock? FleetCompileLock { get; set; }

    /// <summary>How long a fleet compile lock lives if its holder never releases it, for example because it died (default 2 min).</summary>
    public TimeSpan FleetCompileLockExpiry { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Checks the settings that data annotations cannot express.</summary>
    /// <param name="validationContext">The validation context.</param>
    /// <returns>The problems found.</returns>
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext) => Problems();

    /// <summary>The same checks without a validation context (used by the constructor).</summary>
    internal IEnumerable<ValidationResult> Problems()
    {
        if (AuthenticationKey is null && !DangerouslyAcceptUnauthenticatedEntries)
        {
            yield return new ValidationResult(
                "DistributedCodeCacheOptions.AuthenticationKey is required: entries from a shared store are untrusted machine code. " +
                "Set a key of at least 16 random bytes shared by the fleet (or, only for a store nobody else can write, DangerouslyAcceptUnauthenticatedEntries).",
                [nameof(AuthenticationKey)]);
        }
        else if (AuthenticationKey is { Length: < 16 })
        {
            yield return new ValidationResult($"DistributedCodeCacheOptions.AuthenticationKey has {AuthenticationKey.Length} bytes; at least 16 are required.", [nameof(AuthenticationKey)]);
        }

        for (int i = 0; i < AdditionalVerificationKeys.Count; i++)
        {
            if (AdditionalVerificationKeys[i] is not { Length: >= 16 })
            {
                yield return new ValidationResult($"DistributedCodeCacheOptions.AdditionalVerificationKeys[{i}] has {AdditionalVerificationKeys[i]?.Length ?? 0} bytes; at least 16 are required.", [nameof(AdditionalVerificationKeys)]);
            }
        }

        if (Timeout <= TimeSpan.Zero || BreakDuration <= TimeSpan.Zero)
        {
            yield return new ValidationResult("DistributedCodeCacheOptions.Timeout and BreakDuration must be positive.", [nameof(Timeout), nameof(BreakDuration)]);
        }

        if (FleetCompileLockExpiry <= TimeSpan.Zero)
        {
            yield return new ValidationResult($"DistributedCodeCacheOptions.FleetCompileLockExpiry must be positive; it is {FleetCompileLockExpiry}.", [nameof(FleetCompileLockExpiry)]);
        }
    }
}
