using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using FileCache.Disk;

namespace FileCache.Benchmarks;

/// <summary>
/// The disk backend against the raw file operations it wraps, side by side in one run:
/// TryGet + reading the whole entry vs File.ReadAllBytes, and Add vs temp file + flush + rename.
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class DiskBenchmarks
{
    private string _dir = "";
    private DiskCodeCache _cache = null!;
    private byte[] _payload = [];
    private CacheKey _key;
    private string _rawPath = "";

    [Params(4 * 1024, 1024 * 1024, 32 * 1024 * 1024)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Join(Path.GetTempPath(), "filecache-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        _cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = Path.Join(_dir, "cache"), MaxSize = null });
        _payload = RandomNumberGenerator.GetBytes(Size);
        _key = CacheKey.Compute(_payload);
        _cache.Add(_key, new MemoryStream(_payload));
        _rawPath = Path.Join(_dir, "raw.bin");
        File.WriteAllBytes(_rawPath, _payload);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _cache.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark(Baseline = true), BenchmarkCategory("read")]
    public byte[] Raw_ReadAllBytes() => File.ReadAllBytes(_rawPath);

    [Benchmark, BenchmarkCategory("read")]
    public byte[] Cache_TryGet_ReadToEnd()
    {
        if (!_cache.TryGet(_key, out var stream))
        {
            throw new InvalidOperationException("miss");
        }

        using (stream)
        {
            var bytes = new byte[stream.Length];
            stream.ReadExactly(bytes);
            return bytes;
        }
    }

    /// <summary>A caller that takes the verified bytes of the hit itself (MemoryStream.TryGetBuffer) instead of copying them.</summary>
    [Benchmark, BenchmarkCategory("read")]
    public int Cache_TryGet_Buffer()
    {
        if (!_cache.TryGet(_key, out var stream) || stream is not MemoryStream memory || !memory.TryGetBuffer(out var bytes))
        {
            throw new InvalidOperationException("miss or no buffer");
        }

        using (stream)
        {
            return bytes.Count;
        }
    }

    [Benchmark(Baseline = true), BenchmarkCategory("write")]
    public void Raw_WriteTempFlushRename()
    {
        string temp = Path.Join(_dir, ".raw-" + Guid.NewGuid().ToString("N"));
        using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 0))
        {
            file.Write(_payload);
            file.Flush(flushToDisk: true);
        }

        File.Move(temp, _rawPath + ".w", overwrite: true);
    }

    [Benchmark, BenchmarkCategory("write")]
    public void Cache_Add() => _cache.Add(_key, new MemoryStream(_payload, writable: false));
}
