using System.Buffers.Binary;
using FileCache.Diagnostics;
using FileCache.Specification.Tests;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace FileCache.Disk.Tests;

public sealed class DiskCodeCacheTests : IDisposable
{
    private const int Trailer = 64;
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private DiskCodeCache NewCache(Action<DiskCodeCacheOptions>? configure = null)
    {
        var options = new DiskCodeCacheOptions { Directory = _dir.Path };
        configure?.Invoke(options);
        return new DiskCodeCache(options);
    }

    private static byte[]? Get(IWasmCodeCache cache, CacheKey key) => cache.GetBytes(key);

    [Fact]
    public void Layout_OneFilePerKey_Named64LowercaseHex_StartingWithThePayload()
    {
        using var cache = NewCache();
        var key = new CacheKey([1, 2, 3, 4, 5, .. new byte[27]]);
        Assert.Equal(Path.Join(_dir.Path, "0102030405" + new string('0', 54)), cache.GetPath(key));
        cache.Add(key, new MemoryStream([9, 8, 7]));
        Assert.Equal([key.ToString()], _dir.Files().Where(f => !f.StartsWith('.')));
        var file = File.ReadAllBytes(cache.GetPath(key));
        Assert.Equal(3 + Trailer, file.Length);
        Assert.Equal([9, 8, 7], file[..3]);
        Assert.Equal("FCWC"u8.ToArray(), file[3..7]);
    }

    [Fact]
    public void Construction_DoesNoIo_DirectoryIsCreatedByFirstAdd()
    {
        string nested = Path.Join(_dir.Path, "a", "b", "c");
        using var cache = new DiskCodeCache(nested);
        Assert.False(cache.TryGet(TestKeys.Key(1), out _));
        cache.Delete(TestKeys.Key(1));
        Assert.False(Directory.Exists(_dir.Path));
        cache.Add(TestKeys.Key(1), new MemoryStream([1]));
        Assert.True(Directory.Exists(nested));
    }

    [Fact]
    public void RelativeDirectory_ResolvesAgainstCurrentDirectory()
    {
        using var cache = new DiskCodeCache("relative-cache-dir");
        Assert.Equal(Path.Join(Environment.CurrentDirectory, "relative-cache-dir"), cache.Directory);
    }

    [Fact]
    public void DefaultDirectory_IsTheUserCacheFolder()
    {
        using var cache = new DiskCodeCache();
        string expectedRoot = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg
            ? xdg
            : Path.Join(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        Assert.Equal(Path.Join(expectedRoot, "filecache"), cache.Directory);
    }

    [Fact]
    public async Task Options_PathThatIsAFile_FailsAtStart_NamingThePath()
    {
        Directory.CreateDirectory(_dir.Path);
        string file = Path.Join(_dir.Path, "not-a-dir");
        File.WriteAllText(file, "x");
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddWasmCodeCache().UseDisk(file);
        using var host = builder.Build();
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains(file, e.Message);
        Assert.Contains("not a directory", e.Message);
    }

    [Fact]
    public async Task Options_ShortAuthenticationKey_FailsAtStart()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddWasmCodeCache().UseDisk(o => { o.Directory = _dir.Path; o.AuthenticationKey = new byte[8]; });
        using var host = builder.Build();
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains("AuthenticationKey", e.Message);
    }

    [Fact]
    public void UseDisk_RegistersDiskCodeCache_OverTheGivenDirectory()
    {
        var services = new ServiceCollection();
        services.AddWasmCodeCache().UseDisk(_dir.Path);
        using var provider = services.BuildServiceProvider();
        var cache = Assert.IsType<DiskCodeCache>(provider.GetRequiredService<IWasmCodeCache>());
        Assert.Equal(_dir.Path, cache.Directory);
    }

    [Fact]
    public void FailedAdd_LeavesNoTempFile()
    {
        using var cache = NewCache();
        var value = TestPayload.Create(1, 1, 500_000);
        Assert.Throws<IOException>(() => cache.Add(TestKeys.Key(1), TestStreams.FailingAfter(value, 300_000)));
        Assert.DoesNotContain(_dir.Files(), f => f != ".trim.lock");
    }

    [Fact]
    public async Task CancelledAdd_LeavesNoTempFile_AndTheOldEntry()
    {
        using var cache = NewCache();
        var old = TestPayload.Create(1, 1, 1000);
        cache.Add(TestKeys.Key(1), new MemoryStream(old));
        using var cts = new CancellationTokenSource();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
            await cache.AddAsync(TestKeys.Key(1), TestStreams.CancellingAfterFirstRead(TestPayload.Create(1, 2, 3_000_000), cts), cts.Token));
        Assert.Equal(old, Get(cache, TestKeys.Key(1)));
        Assert.DoesNotContain(_dir.Files(), f => f.StartsWith(".tmp-", StringComparison.Ordinal));
    }

    public static TheoryData<string> Corruptions() => ["truncate", "flip", "foreign", "future-version", "old-version", "empty", "moved"];

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void CorruptEntry_IsAMiss_RemovedAndCounted(string kind)
    {
        using var meters = new ScopedMeters(); // exact counts: no other test records into it
        using var collector = meters.Collect("filecache.corrupt_entries");
        using var cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = _dir.Path }, meters.Factory);
        var value = TestPayload.Create(1, 1, 100_000);
        var key = TestKeys.Key(1);
        cache.Add(key, new MemoryStream(value));
        string path = cache.GetPath(key);
        var file = File.ReadAllBytes(path);
        // A fixed seed per kind (string hashes are randomised per process): a failure can be replayed.
        var random = new Random(20261129 + kind.Length);
        int cases = kind is "truncate" or "flip" ? 60 : 1;
        for (int i = 0; i < cases; i++)
        {
            byte[] bad = kind switch
            {
                "truncate" => file[..random.Next(file.Length)],
                "flip" => Flip(file, random.Next(file.Length), random),
                "foreign" => "#!/bin/sh\necho not machine code\n"u8.ToArray(),
                "future-version" => WithVersion(file, 3),
                "old-version" => WithVersion(file, 1), // format 1 (one whole-payload checksum): replaced by the next add
                "empty" => [],
                "moved" => File.ReadAllBytes(MakeEntryFor(cache, TestKeys.Key(2), value)),
                _ => throw new ArgumentException(kind),
            };
            File.WriteAllBytes(path, bad);
            Assert.False(cache.TryGet(key, out var s), $"{kind} #{i} was returned as a hit");
            Assert.Null(s);
            Assert.False(File.Exists(path), $"{kind} #{i} was not removed");
        }

        Assert.Equal(cases, collector.Sum());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LargeCorruptEntry_IsAMiss_OnTheOverlappedReadPath(bool authenticated)
    {
        // 20 MiB: read in chunks while another core checks them.
        using var cache = NewCache(o => o.AuthenticationKey = authenticated ? new byte[32] : null);
        var key = TestKeys.Key(1);
        var value = TestPayload.Create(1, 1, 20 << 20);
        cache.Add(key, new MemoryStream(value));
        Assert.Equal(value, Get(cache, key));
        var file = File.ReadAllBytes(cache.GetPath(key));
        foreach (int offset in new[] { 0, (5 << 20) + 3, 12 << 20, file.Length - 70, file.Length - 30 })
        {
            var bad = (byte[])file.Clone();
            bad[offset] ^= 0x01;
            File.WriteAllBytes(cache.GetPath(key), bad);
            Assert.Null(Get(cache, key));
            Assert.False(File.Exists(cache.GetPath(key)), $"flip at {offset} not removed");
        }

        File.WriteAllBytes(cache.GetPath(key), file[..(file.Length - 1000)]);
        Assert.Null(Get(cache, key));
    }

    [Fact]
    public async Task CorruptEntry_IsAMiss_ThroughAsyncAndFilePaths()
    {
        using var cache = NewCache();
        var key = TestKeys.Key(1);
        cache.Add(key, new MemoryStream(TestPayload.Create(1, 1, 10_000)));
        var file = File.ReadAllBytes(cache.GetPath(key));
        File.WriteAllBytes(cache.GetPath(key), Flip(file, 5000, new Random(1)));
        Assert.Null(await cache.GetAsync(key));
        Assert.False(File.Exists(cache.GetPath(key)));

        File.WriteAllBytes(cache.GetPath(key), Flip(file, 100, new Random(2)));
        Assert.False(cache.TryGetFile(key, out var lease));
        Assert.Null(lease);
        Assert.False(File.Exists(cache.GetPath(key)));
    }

    [Fact]
    public void Authentication_RejectsEntriesWithoutAValidTag()
    {
        byte[] keyA = Enumerable.Repeat((byte)1, 32).ToArray();
        byte[] keyB = Enumerable.Repeat((byte)2, 32).ToArray();
        var value = TestPayload.Create(1, 1, 20_000);
        var key = TestKeys.Key(1);

        using var unauthenticated = NewCache();
        using var withA = NewCache(o => o.AuthenticationKey = keyA);
        using var withB = NewCache(o => o.AuthenticationKey = keyB);

        // Written without a key: rejected by a cache that requires one, and removed.
        unauthenticated.Add(key, new MemoryStream(value));
        Assert.Null(Get(withA, key));
        Assert.False(File.Exists(withA.GetPath(key)));

        // Written with another key: rejected.
        withB.Add(key, new MemoryStream(value));
        Assert.Null(Get(withA, key));

        // Forged: the right frame and checksum but a made-up tag.
        withA.Add(key, new MemoryStream(value));
        var file = File.ReadAllBytes(withA.GetPath(key));
        file[^20] ^= 0xFF; // inside the tag
        File.WriteAllBytes(withA.GetPath(key), file);
        Assert.Null(Get(withA, key));

        // The right key: accepted, and readable by a cache without a key (checksum still verified).
        withA.Add(key, new MemoryStream(value));
        Assert.Equal(value, Get(withA, key));
        Assert.Equal(value, Get(unauthenticated, key));

        // Authenticated bytes moved to another key's name: rejected.
        File.Copy(withA.GetPath(key), withA.GetPath(TestKeys.Key(2)));
        Assert.Null(Get(withA, TestKeys.Key(2)));
    }

    [Fact]
    public void AuthenticationKey_IsCopied_LaterChangesDoNotApply()
    {
        var secret = Enumerable.Repeat((byte)7, 32).ToArray();
        var options = new DiskCodeCacheOptions { Directory = _dir.Path, AuthenticationKey = secret };
        using var cache = new DiskCodeCache(options);
        cache.Add(TestKeys.Key(1), new MemoryStream([1, 2, 3]));
        secret[0] = 0;
        Assert.Equal([1, 2, 3], Get(cache, TestKeys.Key(1)));
    }

    [SkippableFact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void Permissions_DefaultTo0600And0700()
    {
        Skip.IfNot(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), "Unix file modes only exist on Unix.");
        using var cache = NewCache();
        cache.Add(TestKeys.Key(1), new MemoryStream([1]));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(cache.GetPath(TestKeys.Key(1))));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_dir.Path));
    }

    [SkippableFact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void Permissions_AreExactlyWhatTheOptionsSay_WhateverTheUmask()
    {
        Skip.IfNot(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), "Unix file modes only exist on Unix.");
        const UnixFileMode file = (UnixFileMode)0b110_110_000;      // 0660
        const UnixFileMode directory = (UnixFileMode)0b111_111_000; // 0770
        using var cache = NewCache(o => { o.FileMode = file; o.DirectoryMode = directory; o.AuthenticationKey = new byte[16]; });
        cache.Add(TestKeys.Key(1), new MemoryStream([1]));
        Assert.Equal(file, File.GetUnixFileMode(cache.GetPath(TestKeys.Key(1))));
        Assert.Equal(directory, File.GetUnixFileMode(_dir.Path));
    }

    [Fact]
    public void ReadOnly_ServesHits_WritesNothing_RefusesAddAndDelete()
    {
        var value = TestPayload.Create(1, 1, 5000);
        using (var writer = NewCache())
        {
            writer.Add(TestKeys.Key(1), new MemoryStream(value));
        }

        string path = Path.Join(_dir.Path, TestKeys.Key(1).ToString());
        var old = new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(path, old);
        var before = _dir.Files().Where(f => f != ".trim.lock").ToArray(); // the writer's background trim may add its lock file

        using var cache = NewCache(o => { o.ReadOnly = true; o.UseTimeResolution = TimeSpan.Zero; o.MaxSize = 1; });
        Assert.Equal(value, Get(cache, TestKeys.Key(1)));
        Assert.True(cache.TryGetFile(TestKeys.Key(1), out var lease));
        lease.Dispose();
        Assert.True(cache.TryGetAsync(TestKeys.Key(1)));
        // Three hits with a zero resolution would each refresh the use time of a writable cache.
        Assert.Equal(old, File.GetLastWriteTimeUtc(path));
        var e = Assert.Throws<ReadOnlyWasmCodeCacheException>(() => cache.Add(TestKeys.Key(2), new MemoryStream([1])));
        Assert.Contains(_dir.Path, e.Message);
        Assert.Throws<ReadOnlyWasmCodeCacheException>(() => cache.Delete(TestKeys.Key(1)));
        Assert.Equal(0, cache.Trim());

        File.WriteAllBytes(path, [1, 2, 3]); // corrupt: a miss, but a read-only cache does not delete it
        Assert.Null(Get(cache, TestKeys.Key(1)));
        Assert.True(File.Exists(path));
        Assert.Equal(before, _dir.Files().Where(f => f != ".trim.lock"));
    }

    [Fact]
    public void Hit_RefreshesUseTime_AtMostOncePerResolution()
    {
        using var cache = NewCache(o => o.UseTimeResolution = TimeSpan.FromMinutes(30));
        cache.Add(TestKeys.Key(1), new MemoryStream([1]));
        string path = cache.GetPath(TestKeys.Key(1));

        var recent = DateTime.UtcNow.AddMinutes(-10);
        File.SetLastWriteTimeUtc(path, recent);
        Assert.NotNull(Get(cache, TestKeys.Key(1)));
        Assert.Equal(recent, File.GetLastWriteTimeUtc(path)); // within the resolution: no write

        var old = DateTime.UtcNow.AddHours(-2);
        File.SetLastWriteTimeUtc(path, old);
        Assert.NotNull(Get(cache, TestKeys.Key(1)));
        Assert.True(File.GetLastWriteTimeUtc(path) > DateTime.UtcNow.AddMinutes(-1));
    }

    [Fact]
    public void Trim_EvictsLeastRecentlyUsed_DownToTheRatio_AndHeldReadersSurvive()
    {
        const int size = 100_000;
        var values = Enumerable.Range(0, 12).Select(i => TestPayload.Create(i, 0, size)).ToArray();
        var start = DateTime.UtcNow.AddHours(-5);
        using (var filler = NewCache(o => o.MaxSize = null)) // no background trim while filling
        {
            for (int i = 0; i < 12; i++)
            {
                filler.Add(TestKeys.Key(i), new MemoryStream(values[i]));
                File.SetLastWriteTimeUtc(filler.GetPath(TestKeys.Key(i)), start.AddMinutes(i));
            }
        }

        // Reads never start a trim, so only the explicit Trim below evicts.
        using var cache = NewCache(o => { o.MaxSize = 10L * (size + Trailer); o.TrimRatio = 0.5; o.UseTimeResolution = TimeSpan.Zero; });

        // Entries 0..2 are the oldest by write, but read recently: they must survive.
        for (int i = 0; i < 3; i++)
        {
            Assert.NotNull(Get(cache, TestKeys.Key(i)));
        }

        Assert.True(cache.TryGet(TestKeys.Key(3), out var heldStream)); // held across its eviction
        Assert.True(cache.TryGetFile(TestKeys.Key(4), out var heldFile));
        File.SetLastWriteTimeUtc(cache.GetPath(TestKeys.Key(3)), start);
        File.SetLastWriteTimeUtc(cache.GetPath(TestKeys.Key(4)), start);

        Assert.Equal(7, cache.Trim()); // 12 entries over a limit of 10: down to 5 (the ratio)
        var left = Enumerable.Range(0, 12).Where(i => File.Exists(cache.GetPath(TestKeys.Key(i)))).ToArray();
        Assert.True(left.Length * (size + Trailer) <= 5 * (size + Trailer), $"{left.Length} entries left");
        Assert.Contains(0, left);
        Assert.Contains(1, left);
        Assert.Contains(2, left);
        Assert.DoesNotContain(3, left);
        Assert.DoesNotContain(4, left);

        using (heldStream)
        {
            using var m = new MemoryStream();
            heldStream.CopyTo(m);
            Assert.Equal(values[3], m.ToArray());
        }

        using (heldFile)
        {
            Assert.Equal(values[4], File.ReadAllBytes(heldFile.Path)[..(int)heldFile.PayloadLength]);
        }
    }

    [Fact]
    public void Trim_RemovesEntriesOlderThanMaxAge()
    {
        using var cache = NewCache(o => { o.MaxAge = TimeSpan.FromDays(1); o.MaxSize = null; });
        cache.Add(TestKeys.Key(1), new MemoryStream([1]));
        cache.Add(TestKeys.Key(2), new MemoryStream([2]));
        File.SetLastWriteTimeUtc(cache.GetPath(TestKeys.Key(1)), DateTime.UtcNow.AddDays(-2));
        SpinWait.SpinUntil(() => cache.Trim() > 0 || !File.Exists(cache.GetPath(TestKeys.Key(1))), TimeSpan.FromSeconds(10));
        Assert.False(File.Exists(cache.GetPath(TestKeys.Key(1))));
        Assert.True(File.Exists(cache.GetPath(TestKeys.Key(2))));
    }

    [Fact]
    public void Trim_SweepsStaleTemps_KeepsYoungTempsAndForeignFiles()
    {
        using var cache = NewCache(o => o.StaleTempFileAge = TimeSpan.FromMinutes(5));
        cache.Add(TestKeys.Key(1), new MemoryStream([1]));
        string stale = Path.Join(_dir.Path, ".tmp-1-00000000deadbeef");
        string young = Path.Join(_dir.Path, ".tmp-2-00000000cafebabe");
        string foreign = Path.Join(_dir.Path, "README");
        File.WriteAllBytes(stale, new byte[100]);
        File.WriteAllBytes(young, new byte[100]);
        File.WriteAllText(foreign, "not ours");
        File.SetLastWriteTimeUtc(stale, DateTime.UtcNow.AddHours(-1));

        SpinWait.SpinUntil(() => cache.Trim() > 0 || !File.Exists(stale), TimeSpan.FromSeconds(10));
        Assert.False(File.Exists(stale));
        Assert.True(File.Exists(young));
        Assert.True(File.Exists(foreign));
        Assert.True(File.Exists(cache.GetPath(TestKeys.Key(1))));
    }

    [SkippableFact]
    public void TryGetFile_PinsTheVerifiedFile_AgainstReplacementAndDeletion()
    {
        Skip.IfNot(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), "Pinning a verified file needs /proc/self/fd or /dev/fd.");
        using var cache = NewCache();
        var old = TestPayload.Create(1, 1, 300_000);
        cache.Add(TestKeys.Key(1), new MemoryStream(old));
        Assert.True(cache.TryGetFile(TestKeys.Key(1), out var lease));
        using (lease)
        {
            Assert.StartsWith(OperatingSystem.IsLinux() ? "/proc/self/fd/" : "/dev/fd/", lease.Path);
            Assert.Equal(old.Length, lease.PayloadLength);
            cache.Add(TestKeys.Key(1), new MemoryStream(TestPayload.Create(1, 2, 1000))); // replaced
            Assert.Equal(old, File.ReadAllBytes(lease.Path)[..old.Length]);
            cache.Delete(TestKeys.Key(1)); // deleted
            Assert.Equal(old, File.ReadAllBytes(lease.Path)[..old.Length]);
        }

        Assert.False(cache.TryGetFile(TestKeys.Key(1), out _));
    }

    private static byte[] Flip(byte[] file, int offset, Random random)
    {
        var copy = (byte[])file.Clone();
        copy[offset] ^= (byte)(1 << random.Next(8));
        return copy;
    }

    private static byte[] WithVersion(byte[] file, ushort version)
    {
        var copy = (byte[])file.Clone();
        BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(copy.Length - Trailer + 4), version);
        return copy;
    }

    private static string MakeEntryFor(DiskCodeCache cache, CacheKey key, byte[] value)
    {
        cache.Add(key, new MemoryStream(value));
        return cache.GetPath(key);
    }
}
