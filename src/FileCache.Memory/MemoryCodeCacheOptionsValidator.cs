using Microsoft.Extensions.Options;

namespace FileCache.Memory;

/// <summary>Source-generated (reflection-free) validation of <see cref="MemoryCodeCacheOptions"/>.</summary>
[OptionsValidator]
internal sealed partial class MemoryCodeCacheOptionsValidator : IValidateOptions<MemoryCodeCacheOptions>;
