using Microsoft.Extensions.Options;

namespace FileCache.AzureBlob;

/// <summary>Source-generated (reflection-free) validation of <see cref="AzureBlobCodeCacheOptions"/>.</summary>
[OptionsValidator]
internal sealed partial class AzureBlobCodeCacheOptionsValidator : IValidateOptions<AzureBlobCodeCacheOptions>;
