using System.Collections.Immutable;
using System.Reflection;
using System.Security.Cryptography;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;

namespace FileCache.Generators.Tests;

/// <summary>The &lt;WasmModule&gt; generator on digest files in memory, as the build target writes them.</summary>
public sealed class WasmModuleGeneratorTests
{
    private static byte[] Module(int length)
    {
        var bytes = new byte[length];
        new Random(length).NextBytes(bytes);
        return bytes;
    }

    /// <summary>The digest file the build target writes for <paramref name="bytes"/> (computed here independently: SHA-256 per MiB).</summary>
    private static string DigestFile(string name, byte[] bytes, string kind = "module")
    {
        var chunks = new System.Text.StringBuilder();
        for (int at = 0; at < bytes.Length; at += 1 << 20)
        {
            chunks.Append(Convert.ToHexStringLower(SHA256.HashData(bytes.AsSpan(at, Math.Min(1 << 20, bytes.Length - at)))));
        }

        return $"name={name}\nkind={kind}\nlength={bytes.Length}\nresource=FileCache.WasmModule/{name}\nchunks={chunks}\n";
    }

    private sealed class Text(string path, string content) : AdditionalText
    {
        public override string Path => path;

        public override SourceText GetText(CancellationToken cancellationToken = default) => SourceText.From(content);
    }

    private sealed class Options(ImmutableHashSet<string> digestFiles, string? rootNamespace) : AnalyzerConfigOptionsProvider
    {
        public override AnalyzerConfigOptions GlobalOptions => new Values(rootNamespace is null ? [] : new() { ["build_property.RootNamespace"] = rootNamespace });

        public override AnalyzerConfigOptions GetOptions(SyntaxTree tree) => new Values([]);

        public override AnalyzerConfigOptions GetOptions(AdditionalText textFile)
            => new Values(digestFiles.Contains(textFile.Path) ? new() { ["build_metadata.AdditionalFiles.FileCacheWasmDigest"] = "true" } : []);

        private sealed class Values(Dictionary<string, string> values) : AnalyzerConfigOptions
        {
            public override bool TryGetValue(string key, out string value) => values.TryGetValue(key, out value!);
        }
    }

    private static GeneratorDriver Driver(IEnumerable<AdditionalText> texts, string? rootNamespace = "My.App", bool track = false)
    {
        var list = texts.ToImmutableArray();
        return CSharpGeneratorDriver.Create(
            [new WasmModuleGenerator().AsSourceGenerator()],
            list,
            GeneratorHarness.ParseOptions,
            new Options(list.Where(t => t.Path.EndsWith(".wasmdigest", StringComparison.Ordinal)).Select(t => t.Path).ToImmutableHashSet(), rootNamespace),
            new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: track));
    }

    [Fact]
    public void DigestFiles_BecomeTypedAccessors_WhoseKeysEqualTheKeysOfTheBytes()
    {
        var small = Module(1000);
        var large = Module((5 << 20) / 2); // three chunks
        var texts = new AdditionalText[]
        {
            new Text("/obj/filecache/sql-wasm.wasm.wasmdigest", DigestFile("sql-wasm.wasm", small)),
            new Text("/obj/filecache/esbuild.wasm.wasmdigest", DigestFile("esbuild.wasm", large)),
            new Text("/src/notes.txt", "not a digest: no metadata"),
        };
        var compilation = GeneratorHarness.Compile("""
            using FileCache;
            [WasmCodeCacheKey("wasm-module-test", Version = 1)]
            public partial record struct Settings(int Level);
            public static class Probe
            {
                public static string[] Keys(byte[] small, byte[] large) =>
                [
                    new Settings(1).DeriveKey(My.App.WasmModules.SqlWasm.Digest).ToString(), new Settings(1).DeriveKey(small).ToString(),
                    new Settings(1).DeriveKey(My.App.WasmModules.Esbuild.Digest).ToString(), new Settings(1).DeriveKey(large).ToString(),
                    My.App.WasmModules.All.Count.ToString(), My.App.WasmModules.Esbuild.Name, My.App.WasmModules.Esbuild.Length.ToString(),
                ];
            }
            """);
        var driver = CSharpGeneratorDriver.Create(
            [new KeyDerivationGenerator().AsSourceGenerator(), new WasmModuleGenerator().AsSourceGenerator()],
            texts.ToImmutableArray(),
            GeneratorHarness.ParseOptions,
            new Options([texts[0].Path, texts[1].Path], "My.App"));
        driver.RunGeneratorsAndUpdateCompilation(compilation, out var output, out var diagnostics);
        Assert.Empty(diagnostics);
        using var pe = new MemoryStream();
        var emit = output.Emit(pe);
        Assert.True(emit.Success, string.Join("\n", emit.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error)));
        var assembly = new System.Runtime.Loader.AssemblyLoadContext(null, isCollectible: true).LoadFromStream(new MemoryStream(pe.ToArray()));
        var keys = (string[])assembly.GetType("Probe")!.GetMethod("Keys")!.Invoke(null, [small, large])!;
        Assert.Equal(keys[1], keys[0]); // the build-time digest gives the key of the bytes
        Assert.Equal(keys[3], keys[2]);
        Assert.Equal(["2", "esbuild.wasm", large.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)], keys[4..]);
    }

    [Fact]
    public void TwoItemsWithOneName_AreAnError_NamingBoth()
    {
        var bytes = Module(10);
        var driver = Driver([new Text("/a.wasmdigest", DigestFile("a-b.wasm", bytes)), new Text("/b.wasmdigest", DigestFile("a_b.wasm", bytes))]).RunGenerators(GeneratorHarness.Compile(""));
        var diagnostic = Assert.Single(driver.GetRunResult().Diagnostics);
        Assert.Equal("FCG008", diagnostic.Id);
        Assert.Contains("'a-b.wasm' and 'a_b.wasm'", diagnostic.GetMessage(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains("WasmModules.AB", diagnostic.GetMessage(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Theory]
    [InlineData("name=x.wasm\nkind=module\nlength=10\nresource=r\nchunks=00\n")] // too few digest characters for the length
    [InlineData("name=x.wasm\nkind=binary\nlength=0\nresource=r\nchunks=\n")] // unknown kind
    [InlineData("garbage")]
    public void ADamagedDigestFile_IsAnError_NamingIt(string content)
    {
        var driver = Driver([new Text("/obj/x.wasmdigest", content)]).RunGenerators(GeneratorHarness.Compile(""));
        var diagnostic = Assert.Single(driver.GetRunResult().Diagnostics);
        Assert.Equal("FCG009", diagnostic.Id);
        Assert.Contains("/obj/x.wasmdigest", diagnostic.GetMessage(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void PropertyNames_AreIdentifiers()
    {
        Assert.Equal("SqlWasm", WasmModuleGenerator.PropertyName("sql-wasm.wasm"));
        Assert.Equal("TreeSitterCpp", WasmModuleGenerator.PropertyName("tree_sitter-cpp.wasm"));
        Assert.Equal("_7zip", WasmModuleGenerator.PropertyName("7zip.wasm"));
        Assert.Equal("Module", WasmModuleGenerator.PropertyName("---.wasm"));
    }

    [Fact]
    public void AnUnchangedDigestFile_IsNotReadAgain_AChangedOneIs()
    {
        var a = new Text("/obj/a.wasm.wasmdigest", DigestFile("a.wasm", Module(100)));
        var b = new Text("/obj/b.wasm.wasmdigest", DigestFile("b.wasm", Module(200)));
        var compilation = GeneratorHarness.Compile("");
        var driver = Driver([a, b], track: true).RunGenerators(compilation);

        // Same files, a new compilation (an edit elsewhere): every module step is cached.
        driver = driver.RunGenerators(compilation.AddSyntaxTrees(CSharpSyntaxTree.ParseText("class Edited { }", GeneratorHarness.ParseOptions)));
        Assert.All(Reasons(driver), r => Assert.True(r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, r.ToString()));

        // b rebuilt with other bytes: only b's step runs again.
        var b2 = new Text(b.Path, DigestFile("b.wasm", Module(300)));
        driver = driver.ReplaceAdditionalText(b, b2).RunGenerators(compilation);
        var reasons = Reasons(driver);
        Assert.Equal(1, reasons.Count(r => r == IncrementalStepRunReason.Modified));
        Assert.Equal(1, reasons.Count(r => r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged));
    }

    private static IncrementalStepRunReason[] Reasons(GeneratorDriver driver)
        => driver.GetRunResult().Results[0].TrackedSteps[WasmModuleGenerator.StepNames.Module].SelectMany(s => s.Outputs).Select(o => o.Reason).ToArray();
}
