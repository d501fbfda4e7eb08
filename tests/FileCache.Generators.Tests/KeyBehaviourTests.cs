using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Microsoft.CodeAnalysis;

namespace FileCache.Generators.Tests;

public sealed class KeyBehaviourTests
{
    private static readonly byte[] Wasm = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

    // The documented vectors (docs/key-encoding.md), for a 64-bit x86 process without CPU features.
    private const string Vector1 = "022859c1117ce0735cba35833580862bb43e9e19a07e67511a129fb7eb0135ac";
    private const string Vector2 = "e5ad20e70119f99c6224ff61cf1cbedad070c35f2ed51bcca29011abb28e0f68";

    [Fact]
    public void Fingerprint_IsSha256OfTheSchemaText()
    {
        string text = "filecache/test-vector\n1\nLevel:int\nSimd:bool\nName:string?\n";
        Assert.Equal(VectorSettings.SchemaFingerprint, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text))));
    }

    [Fact]
    public void GeneratedKey_EqualsTheHandWrittenEncoding()
    {
        var b = CacheKeyBuilder.Create("filecache/test-vector", 1);
        b.AppendRaw(Convert.FromHexString(VectorSettings.SchemaFingerprint));
        b.Append(2);
        b.Append(true);
        b.Append("x");
        b.AppendCount(0);
        b.AppendTarget(false);
        var expected = b.Finish(Wasm);
        Assert.Equal(expected, new VectorSettings(2, true, "x").DeriveKey(Wasm));
    }

    [Fact]
    public void GeneratedKey_ForEveryShape_EqualsTheHandWrittenEncoding()
    {
        var value = new VectorAll
        {
            Mode = VectorMode.Small,
            Limit = 65536,
            Numbers = [1, -1],
            Tags = ["a", "bé"],
            Salt = new byte[] { 9, 8 },
            Inner = new VectorInner { Pages = 7 },
            Ratio = 0.5,
        };
        var b = CacheKeyBuilder.Create("filecache/test-vector-all", 1);
        b.AppendRaw(Convert.FromHexString(VectorAll.SchemaFingerprint));
        b.Append((byte)2);
        b.AppendPresence(true);
        b.Append(65536L);
        b.AppendCount(2);
        b.Append(1);
        b.Append(-1);
        b.AppendCount(2);
        b.Append("a");
        b.Append("bé");
        b.AppendCount(2);
        b.AppendRaw([9, 8]);
        b.AppendRaw(Convert.FromHexString(VectorInner.SchemaFingerprint));
        b.Append((ushort)7);
        b.Append(0.5);
        b.AppendCount(0);
        b.AppendTarget(false);
        Assert.Equal(b.Finish(Wasm), value.DeriveKey(Wasm));
    }

    [SkippableFact]
    public void Keys_MatchTheDocumentedVectors()
    {
        // The vectors include the architecture; other platforms are covered by the hand-written equivalence tests.
        Skip.IfNot(System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.X64, "The documented vectors are for X64 processes.");
        Assert.Equal(Vector1, new VectorSettings(2, true, "x").DeriveKey(Wasm).ToString());
        Assert.Equal(Vector2, new VectorSettings(0, false, null).DeriveKey([]).ToString());
    }

    [Fact]
    public void LargeWasm_TreeHash_EqualsTheDocumentedSequentialDefinition()
    {
        // 5.5 MiB: six chunks, hashed in parallel by Finish; here one by one, as the docs define it.
        var wasm = new byte[(11 << 20) / 2];
        new Random(7).NextBytes(wasm);
        var expected = CacheKeyBuilder.Create("filecache/tree", 1);
        expected.Append((ulong)wasm.Length);
        for (int start = 0; start < wasm.Length; start += CacheKeyBuilder.WasmChunkSize)
        {
            expected.AppendRaw(SHA256.HashData(wasm.AsSpan(start, Math.Min(CacheKeyBuilder.WasmChunkSize, wasm.Length - start))));
        }

        var before = CacheKeyBuilder.Create("filecache/tree", 1).Finish(wasm);
        Assert.Equal(expected.ToKey(), before);

        wasm[^1] ^= 1; // the last byte of the last, short chunk counts too
        Assert.NotEqual(before, CacheKeyBuilder.Create("filecache/tree", 1).Finish(wasm));
    }

    [Fact]
    public void SameSettingsAndBytes_GiveTheSameKey_DifferentBytesDoNot()
    {
        var s = new VectorSettings(1, false, "n");
        Assert.Equal(s.DeriveKey(Wasm), new VectorSettings(1, false, "n").DeriveKey(Wasm));
        Assert.NotEqual(s.DeriveKey(Wasm), s.DeriveKey(Wasm.Append((byte)0).ToArray()));
    }

    [Fact]
    public void EverySingleMemberChange_ChangesTheKey()
    {
        var keys = new[]
        {
            new VectorSettings(1, false, "n"),
            new VectorSettings(2, false, "n"),
            new VectorSettings(1, true, "n"),
            new VectorSettings(1, false, "m"),
            new VectorSettings(1, false, null),
            new VectorSettings(1, false, ""),
        }.Select(s => s.DeriveKey(Wasm)).ToArray();
        Assert.Equal(keys.Length, keys.Distinct().Count());

        var inner = new[] { new VectorAll(), new VectorAll { Inner = new VectorInner { Pages = 1 } }, new VectorAll { Numbers = [] }, new VectorAll { Tags = [] }, new VectorAll { Limit = 0 } }
            .Select(v => v.DeriveKey(Wasm)).ToArray();
        Assert.Equal(inner.Length, inner.Distinct().Count());
    }

    private const string Template = """
        using FileCache;
        [WasmCodeCacheKey("%DOMAIN%", Version = %VERSION%%VERSIONOF%)]
        public partial struct Settings { %MEMBERS% }
        public static class Probe
        {
            public static string Key(byte[] wasm) { var s = new Settings(); %INIT% return s.DeriveKey(wasm).ToString(); }
        }
        """;

    private static string Variant(string domain = "b/test", int version = 1, string members = "public int Level; public bool Simd;", string init = "s.Level = 3; s.Simd = true;", string versionOf = "")
        => Template.Replace("%DOMAIN%", domain, StringComparison.Ordinal)
            .Replace("%VERSION%", version.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("%VERSIONOF%", versionOf, StringComparison.Ordinal)
            .Replace("%MEMBERS%", members, StringComparison.Ordinal)
            .Replace("%INIT%", init, StringComparison.Ordinal);

    [Fact]
    public void SchemaChanges_RenameReorderRetype_VersionAndDomain_ChangeTheKey()
    {
        string[] variants =
        [
            Variant(),
            Variant(members: "public int Level2; public bool Simd;", init: "s.Level2 = 3; s.Simd = true;"),   // rename
            Variant(members: "public bool Simd; public int Level;"),                                          // reorder
            Variant(members: "public long Level; public bool Simd;"),                                         // retype
            Variant(members: "public int Level; public bool Simd; public bool Fuel;"),                        // add
            Variant(version: 2),                                                                               // version bump
            Variant(domain: "b/other"),                                                                        // domain
        ];
        var keys = variants.Select(v => GeneratorHarness.ProbeKey(GeneratorHarness.Load(v), Wasm)).ToArray();
        Assert.Equal(keys.Length, keys.Distinct().Count());
        Assert.Equal(keys[0], GeneratorHarness.ProbeKey(GeneratorHarness.Load(Variant()), Wasm)); // and is stable
    }

    [Fact]
    public void NamedAssemblyVersion_IsBakedIn_AndChangesTheKey()
    {
        var dep1 = Dependency("1.0.0.0");
        var dep2 = Dependency("2.0.0.0");
        string source = Variant(versionOf: ", VersionOf = new[] { typeof(Dep.Marker) }");
        string key1 = GeneratorHarness.ProbeKey(LoadWith(source, dep1), Wasm);
        string key2 = GeneratorHarness.ProbeKey(LoadWith(source, dep2), Wasm);
        Assert.NotEqual(key1, key2);
        Assert.Equal(key1, GeneratorHarness.ProbeKey(LoadWith(source, dep1), Wasm));
    }

    [Fact]
    public void RuntimeVersionOf_IsReadWhenTheProcessRuns_NotWhenItWasCompiled()
    {
        byte[] dep1 = DependencyImage("1.0.0.0"), dep2 = DependencyImage("2.0.0.0");
        string source = Variant(versionOf: ", RuntimeVersionOf = new[] { typeof(Dep.Marker) }");
        string builtWith1RunningWith2 = GeneratorHarness.ProbeKey(LoadWith(source, MetadataReference.CreateFromImage(dep1), runWith: dep2), Wasm);
        string builtWith2RunningWith2 = GeneratorHarness.ProbeKey(LoadWith(source, MetadataReference.CreateFromImage(dep2), runWith: dep2), Wasm);
        string builtWith1RunningWith1 = GeneratorHarness.ProbeKey(LoadWith(source, MetadataReference.CreateFromImage(dep1), runWith: dep1), Wasm);
        Assert.Equal(builtWith2RunningWith2, builtWith1RunningWith2); // the version that runs decides
        Assert.NotEqual(builtWith1RunningWith1, builtWith1RunningWith2); // an updated dependency changes the key
    }

    [Fact]
    public void RuntimeMajorVersionOf_APatchOrMinorReleaseKeepsTheKey_ANewMajorChangesIt()
    {
        // The generated code itself, built once against 50.0.1 and run against each release.
        string source = Variant(versionOf: ", RuntimeMajorVersionOf = new[] { typeof(Dep.Marker) }");
        var built = MetadataReference.CreateFromImage(DependencyImage("50.0.1.0"));
        string Running(string version) => GeneratorHarness.ProbeKey(LoadWith(source, built, runWith: DependencyImage(version)), Wasm);
        string v5001 = Running("50.0.1.0");
        Assert.Equal(v5001, Running("50.0.2.0"));
        Assert.Equal(v5001, Running("50.4.0.0"));
        Assert.NotEqual(v5001, Running("51.0.0.0"));

        // And it is not the full-version key: with RuntimeVersionOf the patch release changes the key.
        string full = Variant(versionOf: ", RuntimeVersionOf = new[] { typeof(Dep.Marker) }");
        Assert.NotEqual(
            GeneratorHarness.ProbeKey(LoadWith(full, built, runWith: DependencyImage("50.0.1.0")), Wasm),
            GeneratorHarness.ProbeKey(LoadWith(full, built, runWith: DependencyImage("50.0.2.0")), Wasm));
    }

    private static MetadataReference Dependency(string version) => MetadataReference.CreateFromImage(DependencyImage(version));

    private static byte[] DependencyImage(string version)
    {
        var compilation = GeneratorHarness.Compile($"[assembly: System.Reflection.AssemblyVersion(\"{version}\")] namespace Dep {{ public sealed class Marker {{ }} }}")
            .WithAssemblyName("Dep");
        using var pe = new MemoryStream();
        Assert.True(compilation.Emit(pe).Success);
        return pe.ToArray();
    }

    private static Assembly LoadWith(string source, MetadataReference dependency, byte[]? runWith = null)
    {
        var compilation = GeneratorHarness.Compile(source).AddReferences(dependency);
        GeneratorHarness.Driver().RunGeneratorsAndUpdateCompilation(compilation, out var output, out var diagnostics);
        Assert.Empty(diagnostics);
        using var pe = new MemoryStream();
        var emit = output.Emit(pe);
        Assert.True(emit.Success, string.Join("\n", emit.Diagnostics));
        // With VersionOf the probe never touches Dep at run time (the version was read at compile
        // time); with RuntimeVersionOf this context hands it the Dep image given as runWith.
        var context = new System.Runtime.Loader.AssemblyLoadContext(null, isCollectible: true);
        if (runWith is not null)
        {
            context.Resolving += (ctx, name) => name.Name == "Dep" ? ctx.LoadFromStream(new MemoryStream(runWith)) : null;
        }

        return context.LoadFromStream(new MemoryStream(pe.ToArray()));
    }
}
