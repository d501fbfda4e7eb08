using System.ComponentModel.DataAnnotations;

namespace FileCache.Memory;

/// <summary>Options of <see cref="MemoryCodeCache"/>.</summary>
public sealed class MemoryCodeCacheOptions
{
    /// <summary>The default <see cref="SizeLimit"/>: 256 MiB.</summary>
    public const long DefaultSizeLimit = 256L * 1024 * 1024;

    /// <summary>
    /// The most payload bytes the cache holds. Adding past it evicts the least recently used entries
    /// first; an entry larger than the whole limit is not kept. Default 256 MiB.
    /// </summary>
    [Range(1, long.MaxValue, ErrorMessage = "MemoryCodeCacheOptions.SizeLimit must be at least 1 byte.")]
    public long SizeLimit { get; set; } = DefaultSizeLimit;
}
