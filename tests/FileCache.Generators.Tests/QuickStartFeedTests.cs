using System.Text.RegularExpressions;

namespace FileCache.Generators.Tests;

/// <summary>
/// The README's quick start, as a newcomer follows it: the packages packed into a local feed, a
/// console project outside the solution referencing them, and the README's Program.cs copied verbatim.
/// </summary>
public sealed class QuickStartFeedTests : IDisposable
{
    private readonly string _root = Path.Join(Path.GetTempPath(), "filecache-quickstart-" + Guid.NewGuid().ToString("N"));

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
    public void TheReadmesProgram_BuildsFromALocalFeed_AndRunsCompiledThenMapped()
    {
        string repository = PackagingTests.RepositoryRoot();
        string readme = File.ReadAllText(Path.Join(repository, "README.md"));
        var block = Regex.Match(readme, "<!-- quickstart:program -->\\s*```csharp\\n(?<code>.*?)```\\s*<!-- /quickstart:program -->", RegexOptions.Singleline);
        Assert.True(block.Success, "README.md has no quickstart:program block");

        string feed = Path.Join(_root, "feed");
        string version = "0.0.0-quickstart" + DateTime.UtcNow.ToString("yyyyMMddHHmmssfff", System.Globalization.CultureInfo.InvariantCulture);
        foreach (var package in new[] { "FileCache.Abstractions", "FileCache", "FileCache.Disk", "FileCache.Wasmtime" })
        {
            PackagingTests.Run(repository, "dotnet", "pack", Path.Join(repository, "src", package, package + ".csproj"), "-c", "Release", "-o", feed, "-p:Version=" + version, "-p:ContinuousIntegrationBuild=false");
        }

        string app = Path.Join(_root, "MyHost");
        Directory.CreateDirectory(app);
        File.WriteAllText(Path.Join(app, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="filecache-local" value="{feed}" />
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(Path.Join(app, "MyHost.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="FileCache.Wasmtime" Version="{version}" />
                <PackageReference Include="FileCache.Disk" Version="{version}" />
                <PackageReference Include="Microsoft.Extensions.DependencyInjection" Version="10.0.0" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Join(app, "Program.cs"), block.Groups["code"].Value);

        // The default disk tier is the user cache folder: point it at this test's own folder.
        var environment = new Dictionary<string, string> { ["XDG_CACHE_HOME"] = Path.Join(_root, "xdg") };
        var (code, first) = PackagingTests.RunAllowingFailure(app, environment, "dotnet", "run");
        Assert.True(code == 0, first);
        Assert.Contains("Compiled: answer() = 42", first);
        (code, string second) = PackagingTests.RunAllowingFailure(app, environment, "dotnet", "run");
        Assert.True(code == 0, second);
        Assert.Contains("MappedFile: answer() = 42", second);
    }
}
