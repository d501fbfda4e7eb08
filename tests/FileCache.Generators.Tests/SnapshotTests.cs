namespace FileCache.Generators.Tests;

/// <summary>
/// The generated source for representative inputs, against checked-in files in Snapshots/.
/// Set UPDATE_SNAPSHOTS=1 to rewrite them after an intended change, then review the diff.
/// </summary>
public sealed class SnapshotTests
{
    public static TheoryData<string, string> Cases() => new()
    {
        {
            "EngineSettings",
            """
            using FileCache;
            namespace My.Host;
            public enum OptimizationLevel { None, Speed, SpeedAndSize }
            [WasmCodeCacheKey("my-host/engine", Version = 3, VersionOf = new[] { typeof(object) }, IncludeCpuFeatures = true)]
            public readonly partial record struct EngineSettings(OptimizationLevel Optimization, bool Simd, bool Fuel, long? MaxMemory, int? MaxTables);
            """
        },
        {
            "NestedAndCollections",
            """
            using System;
            using System.Collections.Immutable;
            using FileCache;
            [WasmCodeCacheKey("limits")]
            public partial struct Limits { public int Pages; public string? Name; }
            public static partial class Outer
            {
                [WasmCodeCacheKey("outer/plugin")]
                public partial class Plugin
                {
                    public Limits Limits { get; set; }
                    public string[]? Features { get; set; }
                    public ImmutableArray<byte> Salt { get; set; }
                    public ReadOnlyMemory<byte> Extra { get; set; }
                    public Guid Id { get; set; }
                }
            }
            """
        },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void GeneratedSource_MatchesSnapshot(string name, string source)
    {
        var (_, diagnostics, result) = GeneratorHarness.Run(source);
        Assert.Empty(diagnostics);
        var generated = string.Join("\n// ----\n", result.GeneratedTrees.OrderBy(t => t.FilePath, StringComparer.Ordinal).Select(t => t.GetText().ToString()));
        string version = typeof(KeyDerivationGenerator).Assembly.GetName().Version!.ToString();
        generated = generated.Replace(version, "%VERSION%", StringComparison.Ordinal);

        string file = Path.Join(AppContext.BaseDirectory, "Snapshots", name + ".g.cs.txt");
        if (Environment.GetEnvironmentVariable("UPDATE_SNAPSHOTS") == "1")
        {
            string sourceFile = Path.Join(FindTestsDirectory(), "Snapshots", name + ".g.cs.txt");
            File.WriteAllText(sourceFile, generated);
            return;
        }

        Assert.True(File.Exists(file), $"No snapshot {file}; run with UPDATE_SNAPSHOTS=1 to create it.");
        Assert.Equal(File.ReadAllText(file).ReplaceLineEndings("\n"), generated);
    }

    private static string FindTestsDirectory() => Path.Join(PackagingTests.RepositoryRoot(), "tests", "FileCache.Generators.Tests");
}
