using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace FileCache.Generators.Model;

/// <summary>A diagnostic in equatable form: a descriptor id, a place and message arguments.</summary>
internal sealed record DiagnosticInfo(string Id, LocationInfo? Location, EquatableArray<string> Arguments)
{
    public Diagnostic ToDiagnostic() => Diagnostic.Create(
        Parsing.DiagnosticDescriptors.ById(Id),
        Location?.ToLocation() ?? Microsoft.CodeAnalysis.Location.None,
        System.Linq.Enumerable.ToArray<object>(Arguments));
}

/// <summary>A source location in equatable form (Location itself is not equatable across runs).</summary>
internal sealed record LocationInfo(string FilePath, TextSpan Span, LinePositionSpan LineSpan)
{
    public static LocationInfo? From(Location? location) => location is null || location.SourceTree is null
        ? null
        : new LocationInfo(location.SourceTree.FilePath, location.SourceSpan, location.GetLineSpan().Span);

    public Location ToLocation() => Microsoft.CodeAnalysis.Location.Create(FilePath, Span, LineSpan);
}

/// <summary>What parsing one attributed type produced.</summary>
internal sealed record ParseResult(KeyTypeModel? Model, EquatableArray<DiagnosticInfo> Diagnostics, LocationInfo? AttributeLocation);
