using System.Collections;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace FileCache.Generators.Tests;

public sealed class IncrementalityTests
{
    private const string KeyType = """
        using FileCache;
        [WasmCodeCacheKey("inc/test", Version = 1)]
        public partial record struct Settings(int Level, bool Simd);
        """;

    private static (GeneratorDriver Driver, CSharpCompilation Compilation) First(string source)
    {
        var compilation = GeneratorHarness.Compile(source);
        return (GeneratorHarness.Driver(track: true).RunGenerators(compilation), compilation);
    }

    private static IncrementalStepRunReason[] Reasons(GeneratorDriver driver, string step)
        => driver.GetRunResult().Results[0].TrackedSteps[step].SelectMany(s => s.Outputs).Select(o => o.Reason).ToArray();

    private static CSharpCompilation Replace(CSharpCompilation compilation, string source)
        => compilation.ReplaceSyntaxTree(compilation.SyntaxTrees.First(), CSharpSyntaxTree.ParseText(source, GeneratorHarness.ParseOptions));

    [Fact]
    public void UnrelatedNewFile_LeavesTheModelCached()
    {
        var (driver, compilation) = First(KeyType);
        var next = compilation.AddSyntaxTrees(CSharpSyntaxTree.ParseText("public struct Unrelated { public int X; }", GeneratorHarness.ParseOptions));
        driver = driver.RunGenerators(next);
        Assert.All(Reasons(driver, KeyDerivationGenerator.StepNames.Model), r => Assert.True(r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, r.ToString()));
    }

    [Fact]
    public void UnrelatedEditInTheSameFile_LeavesTheModelUnchanged()
    {
        var (driver, compilation) = First(KeyType);
        driver = driver.RunGenerators(Replace(compilation, KeyType + "\npublic static class Helper { public static int Two() => 2; }\n"));
        Assert.All(Reasons(driver, KeyDerivationGenerator.StepNames.Model), r => Assert.True(r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, r.ToString()));
    }

    [Fact]
    public void VersionBump_ModifiesTheModel()
    {
        var (driver, compilation) = First(KeyType);
        driver = driver.RunGenerators(Replace(compilation, KeyType.Replace("Version = 1", "Version = 2", StringComparison.Ordinal)));
        Assert.Equal([IncrementalStepRunReason.Modified], Reasons(driver, KeyDerivationGenerator.StepNames.Model));
    }

    [Fact]
    public void MemberChange_ModifiesTheModel()
    {
        var (driver, compilation) = First(KeyType);
        driver = driver.RunGenerators(Replace(compilation, KeyType.Replace("bool Simd", "bool Simd, bool Fuel", StringComparison.Ordinal)));
        Assert.Equal([IncrementalStepRunReason.Modified], Reasons(driver, KeyDerivationGenerator.StepNames.Model));
    }

    [Fact]
    public void SameCompilationTwice_IsCached()
    {
        var (driver, compilation) = First(KeyType);
        driver = driver.RunGenerators(compilation);
        Assert.All(Reasons(driver, KeyDerivationGenerator.StepNames.Model), r => Assert.Equal(IncrementalStepRunReason.Cached, r));
    }

    [Fact]
    public void Model_HoldsNoSymbolSyntaxCompilationOrLocation()
    {
        var (driver, _) = First(SnapshotTests.Cases().Select(row => (string)row[1]).Last());
        var run = driver.GetRunResult().Results[0];
        var models = run.TrackedSteps[KeyDerivationGenerator.StepNames.Model].SelectMany(s => s.Outputs).Select(o => o.Value).ToArray();
        Assert.NotEmpty(models);
        foreach (var model in models)
        {
            Walk(model, new HashSet<object>(ReferenceEqualityComparer.Instance), "model");
        }
    }

    private static void Walk(object? node, HashSet<object> seen, string path)
    {
        if (node is null || node is string || node.GetType().IsPrimitive || node.GetType().IsEnum)
        {
            return;
        }

        Assert.False(node is ISymbol or Compilation or SyntaxNode or SyntaxTree or Location or SemanticModel, $"{path} holds a {node.GetType().Name}");
        if (!node.GetType().IsValueType && !seen.Add(node))
        {
            return;
        }

        if (node is IEnumerable items)
        {
            int i = 0;
            foreach (var item in items)
            {
                Walk(item, seen, $"{path}[{i++}]");
            }

            return;
        }

        foreach (var field in node.GetType().GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
        {
            Walk(field.GetValue(node), seen, $"{path}.{field.Name}");
        }
    }
}
