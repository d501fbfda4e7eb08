using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Threading;
using FileCache.Generators.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace FileCache.Generators.Parsing;

/// <summary>Turns one attributed type into a <see cref="KeyTypeModel"/> or diagnostics. The only place that touches symbols.</summary>
internal static class Parser
{
    public const string AttributeName = "FileCache.WasmCodeCacheKeyAttribute";

    private static readonly SymbolDisplayFormat TypeFormat = SymbolDisplayFormat.FullyQualifiedFormat
        .WithMiscellaneousOptions(SymbolDisplayMiscellaneousOptions.UseSpecialTypes | SymbolDisplayMiscellaneousOptions.IncludeNullableReferenceTypeModifier);

    public static ParseResult Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        var type = (INamedTypeSymbol)context.TargetSymbol;
        var syntax = (TypeDeclarationSyntax)context.TargetNode;
        var attribute = context.Attributes[0];
        var attributeLocation = LocationInfo.From(attribute.ApplicationSyntaxReference?.GetSyntax(cancellationToken).GetLocation());
        var diagnostics = new List<DiagnosticInfo>();
        string display = type.ToDisplayString();

        void Report(DiagnosticDescriptor descriptor, Location? location, params string[] args)
            => ReportAt(descriptor, LocationInfo.From(location), args);

        void ReportAt(DiagnosticDescriptor descriptor, LocationInfo? location, params string[] args)
            => diagnostics.Add(new DiagnosticInfo(descriptor.Id, location, args.ToEquatableArray()));

        string domain = attribute.ConstructorArguments.Length > 0 ? attribute.ConstructorArguments[0].Value as string ?? "" : "";
        int version = 1;
        bool includeCpu = false;
        var versionOf = new List<AssemblyVersionModel>();
        foreach (var named in attribute.NamedArguments)
        {
            switch (named.Key)
            {
                case "Version" when named.Value.Value is int v:
                    version = v;
                    break;
                case "IncludeCpuFeatures" when named.Value.Value is bool b:
                    includeCpu = b;
                    break;
                case "VersionOf" when !named.Value.IsNull:
                    foreach (var item in named.Value.Values)
                    {
                        if (item.Value is ITypeSymbol t && t.ContainingAssembly is { } assembly)
                        {
                            versionOf.Add(new AssemblyVersionModel(assembly.Identity.Name, assembly.Identity.Version.ToString()));
                        }
                    }

                    break;
                case "RuntimeVersionOf" or "RuntimeMajorVersionOf" when !named.Value.IsNull:
                    foreach (var item in named.Value.Values)
                    {
                        if (item.Value is ITypeSymbol t && t.ContainingAssembly is { } assembly)
                        {
                            versionOf.Add(new AssemblyVersionModel(assembly.Identity.Name, "", t.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat), MajorOnly: named.Key == "RuntimeMajorVersionOf"));
                        }
                    }

                    break;
            }
        }

        if (domain.Length == 0)
        {
            ReportAt(DiagnosticDescriptors.EmptyDomain, attributeLocation, display);
        }

        if (version < 1)
        {
            ReportAt(DiagnosticDescriptors.VersionNotPositive, attributeLocation, display, version.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        if (type.IsGenericType)
        {
            Report(DiagnosticDescriptors.GenericType, syntax.Identifier.GetLocation(), display);
        }

        var containers = new List<ContainerModel>();
        for (var outer = type.ContainingType; outer is not null; outer = outer.ContainingType)
        {
            if (outer.DeclaringSyntaxReferences.FirstOrDefault()?.GetSyntax(cancellationToken) is not TypeDeclarationSyntax outerSyntax
                || !outerSyntax.Modifiers.Any(SyntaxKind.PartialKeyword))
            {
                Report(DiagnosticDescriptors.NotPartial, syntax.Identifier.GetLocation(), outer.ToDisplayString());
                continue;
            }

            containers.Insert(0, new ContainerModel(Keyword(outerSyntax), outer.Name));
        }

        if (!syntax.Modifiers.Any(SyntaxKind.PartialKeyword))
        {
            Report(DiagnosticDescriptors.NotPartial, syntax.Identifier.GetLocation(), display);
        }

        var members = new List<MemberModel>();
        foreach (var member in type.GetMembers())
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!TryGetKeyMember(member, out var memberType))
            {
                continue;
            }

            var shape = Shape(memberType, out string? problem, out bool unmarked);
            if (shape is null)
            {
                var location = member.Locations.FirstOrDefault();
                if (unmarked)
                {
                    Report(DiagnosticDescriptors.UnmarkedNestedType, location, member.Name, display, memberType.ToDisplayString());
                }
                else
                {
                    Report(DiagnosticDescriptors.UnsupportedMemberType, location, member.Name, display, memberType.ToDisplayString(), problem ?? "unsupported");
                }

                continue;
            }

            members.Add(new MemberModel(member.Name, memberType.ToDisplayString(TypeFormat), shape));
        }

        if (diagnostics.Count > 0)
        {
            return new ParseResult(null, diagnostics.ToEquatableArray(), attributeLocation);
        }

        var model = new KeyTypeModel(
            type.ContainingNamespace.IsGlobalNamespace ? "" : type.ContainingNamespace.ToDisplayString(),
            containers.ToEquatableArray(),
            Keyword(syntax),
            type.Name,
            display,
            domain,
            version,
            members.ToEquatableArray(),
            versionOf.ToEquatableArray(),
            includeCpu,
            Fingerprint(domain, version, members));
        return new ParseResult(model, EquatableArray<DiagnosticInfo>.Empty, attributeLocation);
    }

    /// <summary>Instance fields and readable instance properties, in declaration order.</summary>
    private static bool TryGetKeyMember(ISymbol member, out ITypeSymbol type)
    {
        type = null!;
        if (member.IsStatic || member.IsImplicitlyDeclared && member is not IPropertySymbol)
        {
            return false;
        }

        switch (member)
        {
            case IFieldSymbol { IsConst: false, AssociatedSymbol: null } field:
                type = field.Type;
                return true;
            case IPropertySymbol { IsIndexer: false, GetMethod: not null } property when property.Name != "EqualityContract":
                type = property.Type;
                return true;
            default:
                return false;
        }
    }

    private static ValueShape? Shape(ITypeSymbol type, out string? problem, out bool unmarked)
    {
        problem = null;
        unmarked = false;
        string name = type.ToDisplayString(TypeFormat);
        switch (type.SpecialType)
        {
            case SpecialType.System_Boolean:
            case SpecialType.System_Byte:
            case SpecialType.System_SByte:
            case SpecialType.System_Int16:
            case SpecialType.System_UInt16:
            case SpecialType.System_Int32:
            case SpecialType.System_UInt32:
            case SpecialType.System_Int64:
            case SpecialType.System_UInt64:
            case SpecialType.System_Char:
            case SpecialType.System_Single:
            case SpecialType.System_Double:
            case SpecialType.System_String:
                return new ValueShape(ShapeKind.Direct, name);
            case SpecialType.System_Decimal:
                problem = "decimal has several encodings of one value; use a scaled integer";
                return null;
            case SpecialType.System_Object:
                problem = "object has no fixed encoding";
                return null;
            case SpecialType.System_IntPtr:
            case SpecialType.System_UIntPtr:
                problem = "native-sized integers differ between processes";
                return null;
        }

        if (type is INamedTypeSymbol { TypeKind: TypeKind.Enum, EnumUnderlyingType: { } underlying })
        {
            return new ValueShape(ShapeKind.Enum, underlying.ToDisplayString(TypeFormat));
        }

        string original = type.OriginalDefinition.ToDisplayString();
        if (type is INamedTypeSymbol named)
        {
            switch (original)
            {
                case "System.Guid":
                case "System.TimeSpan":
                    return new ValueShape(ShapeKind.Direct, name);
                case "T?" when named.ConstructedFrom.SpecialType == SpecialType.System_Nullable_T:
                case "System.Nullable<T>":
                {
                    var inner = Shape(named.TypeArguments[0], out problem, out unmarked);
                    return inner is null ? null : new ValueShape(ShapeKind.Nullable, name, inner);
                }

                case "System.Collections.Immutable.ImmutableArray<T>":
                {
                    var inner = Shape(named.TypeArguments[0], out problem, out unmarked);
                    return inner is null ? null : new ValueShape(ShapeKind.ImmutableArray, name, inner);
                }

                case "System.ReadOnlyMemory<T>":
                case "System.Memory<T>":
                    if (named.TypeArguments[0].SpecialType == SpecialType.System_Byte)
                    {
                        return new ValueShape(ShapeKind.ByteMemory, name);
                    }

                    problem = "only memory of bytes is supported";
                    return null;
            }

            if (named.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == AttributeName))
            {
                return new ValueShape(named.IsValueType ? ShapeKind.KeyStruct : ShapeKind.KeyClass, name);
            }

            if (named.TypeKind is TypeKind.Struct or TypeKind.Class && named.ContainingNamespace?.ToDisplayString().StartsWith("System", System.StringComparison.Ordinal) != true)
            {
                unmarked = true;
                return null;
            }
        }

        if (type is IArrayTypeSymbol { Rank: 1 } array)
        {
            var inner = Shape(array.ElementType, out problem, out unmarked);
            return inner is null ? null : new ValueShape(ShapeKind.Array, name, inner);
        }

        problem ??= type is IArrayTypeSymbol
            ? "only single-dimensional arrays are supported"
            : "supported are numbers, bool, char, string, enums, Guid, TimeSpan, Nullable<T>, arrays, ImmutableArray<T>, ReadOnlyMemory<byte> and [WasmCodeCacheKey] types";
        return null;
    }

    private static string Keyword(TypeDeclarationSyntax syntax) => syntax switch
    {
        RecordDeclarationSyntax record => record.ClassOrStructKeyword.IsKind(SyntaxKind.StructKeyword) ? "record struct" : "record",
        StructDeclarationSyntax => "struct",
        InterfaceDeclarationSyntax => "interface",
        _ => "class",
    };

    /// <summary>SHA-256 of the schema text: domain, version and each member's name and declared type in order.</summary>
    private static string Fingerprint(string domain, int version, List<MemberModel> members)
    {
        var text = new StringBuilder();
        text.Append(domain).Append('\n').Append(version.ToString(System.Globalization.CultureInfo.InvariantCulture)).Append('\n');
        foreach (var member in members)
        {
            text.Append(member.Name).Append(':').Append(member.DeclaredType).Append('\n');
        }

        using var sha = SHA256.Create();
        var hash = sha.ComputeHash(Encoding.UTF8.GetBytes(text.ToString()));
        return string.Concat(hash.Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));
    }
}
