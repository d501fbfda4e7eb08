using Microsoft.CodeAnalysis;

namespace FileCache.Generators.Tests;

public sealed class DiagnosticTests
{
    private static Diagnostic Single(string source, string id) => Single(source, id, out _);

    private static Diagnostic Single(string source, string id, out string fullSource)
    {
        fullSource = "using FileCache;\n" + source;
        var (_, diagnostics, _) = GeneratorHarness.Run(fullSource);
        var matching = diagnostics.Where(d => d.Id == id).ToArray();
        Assert.True(matching.Length == 1, $"expected one {id}, got: {string.Join("; ", diagnostics)}");
        Assert.Equal(DiagnosticSeverity.Error, matching[0].Severity);
        // Diagnostics travel through the pipeline as equatable data, so they come back as file locations.
        Assert.NotEqual(LocationKind.None, matching[0].Location.Kind);
        Assert.True(matching[0].Location.SourceSpan.Length > 0, "the diagnostic has no place in the source");
        return matching[0];
    }

    [Fact]
    public void FCG001_TypeNotPartial()
    {
        var d = Single("[WasmCodeCacheKey(\"d\")] public struct S { public int X; }", "FCG001");
        Assert.Contains("'S' must be declared partial", d.GetMessage(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void FCG001_ContainingTypeNotPartial()
    {
        var d = Single("public class Outer { [WasmCodeCacheKey(\"d\")] public partial struct S { public int X; } }", "FCG001");
        Assert.Contains("'Outer'", d.GetMessage(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void FCG002_UnsupportedMemberType_SaysWhichAndWhy()
    {
        var d = Single("[WasmCodeCacheKey(\"d\")] public partial struct S { public decimal Rate; }", "FCG002", out string source);
        string message = d.GetMessage(System.Globalization.CultureInfo.InvariantCulture);
        Assert.Contains("'Rate'", message);
        Assert.Contains("decimal", message);
        Assert.Contains("scaled integer", message);
        Assert.Equal("Rate", source.Substring(d.Location.SourceSpan.Start, d.Location.SourceSpan.Length));
    }

    [Fact]
    public void FCG002_ObjectMember()
    {
        Single("[WasmCodeCacheKey(\"d\")] public partial class C { public object? Anything { get; set; } }", "FCG002");
    }

    [Fact]
    public void FCG003_NestedTypeNotMarked()
    {
        var d = Single("public struct Inner { public int A; } [WasmCodeCacheKey(\"d\")] public partial struct S { public Inner Inner; }", "FCG003");
        Assert.Contains("'Inner'", d.GetMessage(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void FCG004_DuplicateDomain()
    {
        var d = Single("[WasmCodeCacheKey(\"same\")] public partial struct A { } [WasmCodeCacheKey(\"same\")] public partial struct B { }", "FCG004");
        string message = d.GetMessage(System.Globalization.CultureInfo.InvariantCulture);
        Assert.Contains("'same'", message);
        Assert.Contains("'A'", message);
        Assert.Contains("'B'", message);
    }

    [Fact]
    public void FCG005_VersionNotPositive()
    {
        var d = Single("[WasmCodeCacheKey(\"d\", Version = 0)] public partial struct S { }", "FCG005");
        Assert.Contains("version 0", d.GetMessage(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void FCG006_GenericType()
    {
        Single("[WasmCodeCacheKey(\"d\")] public partial struct S<T> { public int X; }", "FCG006");
    }

    [Fact]
    public void FCG007_EmptyDomain()
    {
        Single("[WasmCodeCacheKey(\"\")] public partial struct S { }", "FCG007");
    }

    [Fact]
    public void ValidTypes_HaveNoDiagnostics_AndCompile()
    {
        var (output, diagnostics, _) = GeneratorHarness.Run(SnapshotTests.Cases().Select(r => (string)r[1]).ToArray());
        Assert.Empty(diagnostics);
        Assert.Empty(output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning));
    }
}
