using Microsoft.Extensions.Options;

namespace FileCache;

/// <summary>
/// Fails start-up when a registered cache has no tier. Hand-written because the rule is about
/// the builder's calls, which data annotations (and so <c>[OptionsValidator]</c>) cannot express.
/// </summary>
internal sealed class WasmCodeCacheOptionsValidator : IValidateOptions<WasmCodeCacheOptions>
{
    public ValidateOptionsResult Validate(string? name, WasmCodeCacheOptions options)
    {
        if (options.TierCount > 0)
        {
            return ValidateOptionsResult.Success;
        }

        string which = string.IsNullOrEmpty(name) ? "The wasm code cache" : $"The wasm code cache '{name}'";
        return ValidateOptionsResult.Fail(
            $"{which} has no tier. Add one on the builder that AddWasmCodeCache returns: UseDisk() (package FileCache.Disk, " +
            "the default: a disk cache in the user cache folder), UseMemory() (package FileCache.Memory) or UseCache(instance).");
    }
}
