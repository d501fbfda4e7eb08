using Microsoft.Extensions.Options;

namespace FileCache.Distributed;

/// <summary>Source-generated (reflection-free) validation of <see cref="DistributedCodeCacheOptions"/>.</summary>
[OptionsValidator]
internal sealed partial class DistributedCodeCacheOptionsValidator : IValidateOptions<DistributedCodeCacheOptions>;
