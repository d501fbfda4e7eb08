using System.Collections.Immutable;
using System.Reflection;
using System.Runtime.Loader;
using Basic.Reference.Assemblies;
using FileCache.Generators;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace FileCache.Generators.Tests;

/// <summary>Runs the generator on source text in memory, the way the compiler does.</summary>
internal static class GeneratorHarness
{
    public static readonly CSharpParseOptions ParseOptions = CSharpParseOptions.Default.WithLanguageVersion(LanguageVersion.Latest);

    private static readonly ImmutableArray<MetadataReference> References =
    [
        .. Net100.References.All,
        MetadataReference.CreateFromFile(typeof(CacheKey).Assembly.Location),
    ];

    public static CSharpCompilation Compile(params string[] sources) => CSharpCompilation.Create(
        "Consumer" + Guid.NewGuid().ToString("N"),
        sources.Select(s => CSharpSyntaxTree.ParseText(s, ParseOptions)),
        References,
        new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));

    public static GeneratorDriver Driver(bool track = false) => CSharpGeneratorDriver.Create(
        [new KeyDerivationGenerator().AsSourceGenerator()],
        parseOptions: ParseOptions,
        driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: track));

    /// <summary>Generates and returns the output compilation plus all diagnostics (generator and compiler).</summary>
    public static (Compilation Output, ImmutableArray<Diagnostic> GeneratorDiagnostics, GeneratorDriverRunResult Result) Run(params string[] sources)
    {
        var driver = Driver().RunGeneratorsAndUpdateCompilation(Compile(sources), out var output, out var diagnostics);
        return (output, diagnostics, driver.GetRunResult());
    }

    /// <summary>Generates, compiles and loads the assembly; fails the test on any error.</summary>
    public static Assembly Load(params string[] sources)
    {
        var (output, generatorDiagnostics, _) = Run(sources);
        Assert.Empty(generatorDiagnostics);
        using var pe = new MemoryStream();
        var emit = output.Emit(pe);
        Assert.True(emit.Success, string.Join("\n", emit.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error)));
        pe.Position = 0;
        var context = new AssemblyLoadContext(null, isCollectible: true);
        return context.LoadFromStream(pe);
    }

    /// <summary>Calls the static <c>Probe.Key(byte[])</c> that a test source defines.</summary>
    public static string ProbeKey(Assembly assembly, byte[] wasm)
        => (string)assembly.GetType("Probe")!.GetMethod("Key")!.Invoke(null, [wasm])!;
}
