using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using FileCache.Disk;

namespace FileCache.Benchmarks;

/// <summary>
/// What the directory fsync costs an Add (issue 18), side by side in one run: the raw I/O of an Add
/// before the fix (temp file, write, fsync, rename) and after it (the same plus fsync of the
/// directory), and the disk tier's Add under Flush (after the fix) and None.
/// </summary>
[MemoryDiagnoser]
public class AddDurabilityBenchmarks
{
    private string _dir = "";
    private DiskCodeCache _flush = null!;
    private DiskCodeCache _none = null!;
    private byte[] _payload = [];
    private CacheKey _key;

    [Params(100 * 1024, 4 * 1024 * 1024)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Join(Path.GetTempPath(), "filecache-bench-add-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        _flush = new DiskCodeCache(new DiskCodeCacheOptions { Directory = Path.Join(_dir, "flush"), MaxSize = null });
        _none = new DiskCodeCache(new DiskCodeCacheOptions { Directory = Path.Join(_dir, "none"), MaxSize = null, Durability = DiskDurability.None });
        _payload = RandomNumberGenerator.GetBytes(Size);
        _key = CacheKey.Compute(_payload);
        Directory.CreateDirectory(Path.Join(_dir, "raw"));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _flush.Dispose();
        _none.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark(Baseline = true)]
    public void Raw_Before_TempFsyncRename() => Raw(syncDirectory: false);

    [Benchmark]
    public void Raw_After_TempFsyncRenameFsyncDirectory() => Raw(syncDirectory: true);

    [Benchmark]
    public void Cache_Add_Flush() => _flush.Add(_key, new MemoryStream(_payload, writable: false));

    [Benchmark]
    public void Cache_Add_None() => _none.Add(_key, new MemoryStream(_payload, writable: false));

    private void Raw(bool syncDirectory)
    {
        string dir = Path.Join(_dir, "raw");
        string temp = Path.Join(dir, ".tmp-" + Guid.NewGuid().ToString("N"));
        using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 0))
        {
            file.Write(_payload);
            file.Flush(flushToDisk: true);
        }

        File.Move(temp, Path.Join(dir, "entry"), overwrite: true);
        if (syncDirectory)
        {
            // .NET opens no directory as a file: the two calls the disk tier makes (open O_DIRECTORY, fsync).
            int fd = open(dir, 0x10000 /* O_DIRECTORY */);
            if (fd < 0 || fsync(fd) != 0)
            {
                throw new IOException($"fsync of '{dir}' failed");
            }

            close(fd);
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int open([System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string path, int flags);

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int fsync(int fd);

    [System.Runtime.InteropServices.DllImport("libc")]
    private static extern int close(int fd);
}
