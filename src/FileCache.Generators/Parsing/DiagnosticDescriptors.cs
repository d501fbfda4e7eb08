using Microsoft.CodeAnalysis;

namespace FileCache.Generators.Parsing;

/// <summary>The generator's diagnostics. Ids are stable; releases are tracked in AnalyzerReleases.*.md.</summary>
internal static class DiagnosticDescriptors
{
    private const string Category = "FileCache.Generators";

    public static readonly DiagnosticDescriptor NotPartial = new(
        "FCG001", "Key type must be partial",
        "'{0}' must be declared partial (and so must every type that contains it) so that the key derivation can be generated into it",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor UnsupportedMemberType = new(
        "FCG002", "Member type cannot be part of a key",
        "Member '{0}' of '{1}' has type '{2}', which cannot be encoded in a cache key: {3}",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor UnmarkedNestedType = new(
        "FCG003", "Nested type must be a key type",
        "Member '{0}' of '{1}' has type '{2}', which is not marked [WasmCodeCacheKey]; mark it so its members become part of the key",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor DuplicateDomain = new(
        "FCG004", "Key domain is used twice",
        "The key domain '{0}' is used by both '{1}' and '{2}'; give each key type its own domain",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor VersionNotPositive = new(
        "FCG005", "Key version must be positive",
        "'{0}' has key version {1}; the version must be 1 or more",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor GenericType = new(
        "FCG006", "Generic key types are not supported",
        "'{0}' is generic; a key type must not have type parameters, because its schema fingerprint is fixed at compile time",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor EmptyDomain = new(
        "FCG007", "Key domain must not be empty",
        "'{0}' has an empty key domain; name what the key is for, for example \"my-host/engine\"",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor DuplicateWasmModule = new(
        "FCG008", "Two <WasmModule> items have the same name",
        "The <WasmModule> items '{0}' and '{1}' both become WasmModules.{2}; give one of them another Name metadata",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor BadWasmDigest = new(
        "FCG009", "A <WasmModule> digest file is damaged",
        "The digest file '{0}' of a <WasmModule> item is not what the build wrote ({1}); delete the obj folder and build again",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static DiagnosticDescriptor ById(string id) => id switch
    {
        "FCG001" => NotPartial,
        "FCG002" => UnsupportedMemberType,
        "FCG003" => UnmarkedNestedType,
        "FCG004" => DuplicateDomain,
        "FCG005" => VersionNotPositive,
        "FCG006" => GenericType,
        _ => EmptyDomain,
    };
}
