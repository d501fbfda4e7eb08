using Microsoft.Extensions.Options;

namespace FileCache.Disk;

/// <summary>Source-generated (reflection-free) validation of <see cref="DiskCodeCacheOptions"/>.</summary>
[OptionsValidator]
internal sealed partial class DiskCodeCacheOptionsValidator : IValidateOptions<DiskCodeCacheOptions>;
