using System.Collections.Immutable;
using System.Linq;
using System.Text;
using FileCache.Generators.Emission;
using FileCache.Generators.Model;
using FileCache.Generators.Parsing;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace FileCache.Generators;

/// <summary>
/// Emits reflection-free key derivation for every <c>[WasmCodeCacheKey]</c> type. Pipeline: parse
/// each attributed type to an equatable model (the only step that sees symbols), emit source from
/// the model alone, report diagnostics from a separate branch.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class KeyDerivationGenerator : IIncrementalGenerator
{
    /// <summary>Tracking names of the pipeline's steps, for incrementality tests.</summary>
    public static class StepNames
    {
        /// <summary>Parsing an attributed type (model, diagnostics and the attribute's place).</summary>
        public const string Parse = "Parse";

        /// <summary>The equatable model that source is emitted from.</summary>
        public const string Model = "Model";
    }

    private static readonly string Version = typeof(KeyDerivationGenerator).Assembly.GetName().Version?.ToString() ?? "0.0.0.0";

    /// <inheritdoc/>
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var parsed = context.SyntaxProvider.ForAttributeWithMetadataName(
                Parser.AttributeName,
                static (node, _) => node is Microsoft.CodeAnalysis.CSharp.Syntax.TypeDeclarationSyntax,
                static (ctx, ct) => Parser.Parse(ctx, ct))
            .WithTrackingName(StepNames.Parse);

        // Source: only from the model, so it re-runs only when a model changes.
        var models = parsed.Select(static (r, _) => r.Model).Where(static m => m is not null).WithTrackingName(StepNames.Model);
        context.RegisterSourceOutput(models, static (spc, model) =>
            spc.AddSource(HintName(model!), SourceText.From(Emitter.Emit(model!, Version), Encoding.UTF8)));

        // Diagnostics: per type, then the one cross-type rule (unique domains).
        context.RegisterSourceOutput(parsed.Select(static (r, _) => r.Diagnostics), static (spc, diagnostics) =>
        {
            foreach (var d in diagnostics)
            {
                spc.ReportDiagnostic(d.ToDiagnostic());
            }
        });

        var domains = parsed
            .Select(static (r, _) => r.Model is null ? null : new DomainUse(r.Model.Domain, r.Model.FullName, r.AttributeLocation))
            .Where(static d => d is not null)
            .Collect();
        context.RegisterSourceOutput(domains, static (spc, uses) => ReportDuplicateDomains(spc, uses!));
    }

    private static void ReportDuplicateDomains(SourceProductionContext context, ImmutableArray<DomainUse> uses)
    {
        foreach (var group in uses.GroupBy(u => u.Domain).Where(g => g.Count() > 1))
        {
            var ordered = group.OrderBy(u => u.TypeName, System.StringComparer.Ordinal).ToArray();
            for (int i = 1; i < ordered.Length; i++)
            {
                context.ReportDiagnostic(Diagnostic.Create(
                    DiagnosticDescriptors.DuplicateDomain,
                    ordered[i].Location?.ToLocation() ?? Location.None,
                    group.Key,
                    ordered[0].TypeName,
                    ordered[i].TypeName));
            }
        }
    }

    private static string HintName(KeyTypeModel model) => model.FullName.Replace('<', '_').Replace('>', '_') + ".WasmCodeCacheKey.g.cs";

    private sealed record DomainUse(string Domain, string TypeName, LocationInfo? Location);
}
