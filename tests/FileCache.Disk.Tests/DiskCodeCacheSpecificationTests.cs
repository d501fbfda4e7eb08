using FileCache.Memory;
using FileCache.Specification.Tests;
using FileCache.Tiering;

namespace FileCache.Disk.Tests;

/// <summary>The disk backend with default options passes the whole contract.</summary>
public sealed class DiskCodeCacheSpecificationTests : WasmCodeCacheSpecificationTests, IDisposable
{
    private readonly TempDirectory _dir = new();

    protected override IWasmCodeCache CreateCache() => new DiskCodeCache(new DiskCodeCacheOptions { Directory = Path.Join(_dir.Path, Guid.NewGuid().ToString("N")) });

    public void Dispose() => _dir.Dispose();
}

/// <summary>Authenticated entries, no flush: the same contract.</summary>
public sealed class AuthenticatedDiskCodeCacheSpecificationTests : WasmCodeCacheSpecificationTests, IDisposable
{
    private readonly TempDirectory _dir = new();

    protected override IWasmCodeCache CreateCache() => new DiskCodeCache(new DiskCodeCacheOptions
    {
        Directory = Path.Join(_dir.Path, Guid.NewGuid().ToString("N")),
        AuthenticationKey = new byte[32],
        Durability = DiskDurability.None,
    });

    public void Dispose() => _dir.Dispose();
}

/// <summary>Memory in front of disk: the same contract.</summary>
public sealed class MemoryOverDiskSpecificationTests : WasmCodeCacheSpecificationTests, IDisposable
{
    private readonly TempDirectory _dir = new();

    protected override IWasmCodeCache CreateCache() => new TieredCodeCache(
        [new MemoryCodeCache(), new DiskCodeCache(Path.Join(_dir.Path, Guid.NewGuid().ToString("N")))], ownsTiers: true);

    public void Dispose() => _dir.Dispose();
}
