using System.Diagnostics;
using System.IO.Compression;

namespace FileCache.Generators.Tests;

/// <summary>Packs FileCache.Abstractions and builds a consumer from that package alone.</summary>
public sealed class PackagingTests : IDisposable
{
    private readonly string _root = Path.Join(Path.GetTempPath(), "filecache-pack-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public void Package_ShipsTheGenerator_AndAConsumerGetsGeneratedCode()
    {
        string feed = Path.Join(_root, "feed");
        // A version of its own, so the machine's package cache never serves an older build.
        string version = "0.0.0-test" + DateTime.UtcNow.ToString("yyyyMMddHHmmssfff", System.Globalization.CultureInfo.InvariantCulture);
        string project = Path.Join(RepositoryRoot(), "src", "FileCache.Abstractions", "FileCache.Abstractions.csproj");
        Run(RepositoryRoot(), "dotnet", "pack", project, "-c", "Release", "-o", feed, "-p:Version=" + version, "-p:ContinuousIntegrationBuild=false");

        string package = Path.Join(feed, $"FileCache.Abstractions.{version}.nupkg");
        using (var zip = ZipFile.OpenRead(package))
        {
            var names = zip.Entries.Select(e => e.FullName).ToArray();
            Assert.Contains("analyzers/dotnet/cs/FileCache.Generators.dll", names);
            Assert.Contains("lib/net10.0/FileCache.Abstractions.dll", names);
            Assert.Contains("lib/net10.0/FileCache.Abstractions.xml", names);
            Assert.Contains("README.md", names);
            Assert.Contains("buildTransitive/FileCache.Abstractions.targets", names);
            Assert.Contains("build/FileCache.Abstractions.targets", names);
            using var nuspec = new StreamReader(zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open());
            string text = nuspec.ReadToEnd();
            Assert.Contains("<license type=\"expression\">Apache-2.0</license>", text);
            Assert.DoesNotContain("FileCache.Generators\"", text); // not a package dependency
        }

        string consumer = Path.Join(_root, "consumer");
        Directory.CreateDirectory(consumer);
        File.WriteAllText(Path.Join(consumer, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="local" value="{feed}" />
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(Path.Join(consumer, "Consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="FileCache.Abstractions" Version="{version}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Join(consumer, "Program.cs"), """
            using FileCache;
            System.Console.WriteLine(new VectorSettings(2, true, "x").DeriveKey(new byte[] { 0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00 }));
            [WasmCodeCacheKey("filecache/test-vector", Version = 1)]
            public readonly partial record struct VectorSettings(int Level, bool Simd, string? Name);
            """);
        string output = Run(consumer, "dotnet", "run");
        Assert.Equal(new VectorSettings(2, true, "x").DeriveKey([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]).ToString(), output.Trim().Split('\n').Last().Trim());

        WasmModuleItems(consumer, version);
    }

    /// <summary>
    /// &lt;WasmModule&gt; items in the consumer: embedded, digested at build time (the digest matches
    /// the bytes read back from the assembly, and the key of the digest is the key of the bytes),
    /// not hashed again when unchanged, and refused with FCW100/FCW101 when missing or not WebAssembly.
    /// </summary>
    private static void WasmModuleItems(string consumer, string version)
    {
        string modules = Path.Join(consumer, "modules");
        Directory.CreateDirectory(modules);
        File.WriteAllBytes(Path.Join(modules, "empty.wasm"), [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
        File.WriteAllBytes(Path.Join(modules, "big-one.wasm"), BigModule());
        File.WriteAllText(Path.Join(consumer, "Consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <RootNamespace>Consumer</RootNamespace>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="FileCache.Abstractions" Version="{version}" />
                <WasmModule Include="modules/*.wasm" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Join(consumer, "Program.cs"), """
            using FileCache;
            foreach (var m in Consumer.WasmModules.All)
            {
                var settings = new VectorSettings(2, true, "x");
                System.Console.WriteLine($"{m.Name} {m.Length} {m.IsComponent} {m.Digest.Matches(m.Bytes.Span)} {settings.DeriveKey(m.Digest) == settings.DeriveKey(m.Bytes.Span)}");
            }

            [WasmCodeCacheKey("filecache/test-vector", Version = 1)]
            public readonly partial record struct VectorSettings(int Level, bool Simd, string? Name);
            """);
        var lines = Run(consumer, "dotnet", "run").Trim().Split('\n').Select(l => l.Trim()).ToArray();
        Assert.Contains($"big-one.wasm {BigModule().Length} False True True", lines);
        Assert.Contains("empty.wasm 8 False True True", lines);

        // Unchanged modules are not digested again.
        string digest = Directory.GetFiles(Path.Join(consumer, "obj"), "big-one.wasm.wasmdigest", SearchOption.AllDirectories).Single();
        var written = File.GetLastWriteTimeUtc(digest);
        Run(consumer, "dotnet", "build");
        Assert.Equal(written, File.GetLastWriteTimeUtc(digest));

        // A module replaced by other bytes with an older file time (cp -p, tar x, rsync -t, npm's
        // 1985 dates) is digested again: timestamps never decide. First a plain rebuild, then one
        // after a code edit; each run's digest must be of the bytes it embeds.
        var replaced = BigModule();
        replaced[replaced.Length / 2] ^= 0x5a;
        string big = Path.Join(modules, "big-one.wasm");
        File.WriteAllBytes(big, replaced);
        File.SetLastWriteTimeUtc(big, new DateTime(1985, 10, 26, 8, 15, 0, DateTimeKind.Utc));
        lines = Run(consumer, "dotnet", "run").Trim().Split('\n').Select(l => l.Trim()).ToArray();
        Assert.Contains($"big-one.wasm {replaced.Length} False True True", lines);
        File.AppendAllText(Path.Join(consumer, "Program.cs"), "\n// an edit\n");
        lines = Run(consumer, "dotnet", "run").Trim().Split('\n').Select(l => l.Trim()).ToArray();
        Assert.Contains($"big-one.wasm {replaced.Length} False True True", lines);

        // A file that is not WebAssembly, and one that does not exist.
        File.WriteAllText(Path.Join(modules, "notes.wasm"), "just text");
        File.WriteAllText(Path.Join(consumer, "Directory.Build.targets"), """
            <Project>
              <ItemGroup>
                <WasmModule Include="modules/missing.wasm" />
              </ItemGroup>
            </Project>
            """);
        var (code, failed) = RunAllowingFailure(consumer, "dotnet", "build");
        Assert.NotEqual(0, code);
        Assert.Contains("FCW101", failed);
        Assert.Contains("notes.wasm' is not WebAssembly", failed);
        Assert.Contains("FCW100", failed);
        Assert.Contains("missing.wasm' of a <WasmModule> item does not exist", failed);
    }

    /// <summary>A valid module of 2.5 MiB (three digest chunks): the header and one custom section.</summary>
    private static byte[] BigModule()
    {
        const int payload = (5 << 20) / 2;
        var bytes = new List<byte> { 0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x00 }; // header, custom section id
        uint size = payload + 2; // name length byte + name "x" + payload
        do
        {
            byte b = (byte)(size & 0x7f);
            size >>= 7;
            bytes.Add(size == 0 ? b : (byte)(b | 0x80));
        }
        while (size != 0);
        bytes.Add(1);
        bytes.Add((byte)'x');
        bytes.AddRange(Enumerable.Range(0, payload).Select(i => (byte)(i % 251)));
        return [.. bytes];
    }

    /// <summary>Found from the test's output folder (CallerFilePath is path-mapped in CI builds).</summary>
    internal static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Join(dir.FullName, "FileCache.sln")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException("FileCache.sln not found above " + AppContext.BaseDirectory);
    }

    internal static string Run(string directory, string file, params string[] args)
    {
        var (code, output) = RunAllowingFailure(directory, file, args);
        Assert.True(code == 0, $"{file} {string.Join(' ', args)} failed in {directory}:\n{output}");
        return output;
    }

    internal static (int ExitCode, string Output) RunAllowingFailure(string directory, string file, params string[] args)
        => RunAllowingFailure(directory, null, file, args);

    internal static (int ExitCode, string Output) RunAllowingFailure(string directory, IReadOnlyDictionary<string, string>? environment, string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        // The repository's CI setting would make the consumer's restore treat the sample as CI; keep it plain.
        info.Environment.Remove("CI");
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, process.ExitCode == 0 ? stdout : stdout + "\n" + stderr.Result);
    }
}
