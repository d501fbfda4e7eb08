using System.Diagnostics;
using FileCache.Diagnostics;
using FileCache.Disk.Internal;
using FileCache.Specification.Tests;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace FileCache.Disk.Tests;

/// <summary>
/// The trust boundary (docs/security.md), tried as an attacker who shares the machine would: planted
/// entries and directories, special files under entry names, links, in-place rewrites. Each of these
/// succeeded against the cache before the trust checks existed.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class DiskTrustTests : IDisposable
{
    private static readonly byte[] Key32 = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
    private readonly TempDirectory _dir = new();
    private readonly ScopedMeters _meters = new();

    public void Dispose()
    {
        _meters.Dispose();
        _dir.Dispose();
    }

    private DiskCodeCache NewCache(byte[]? key = null, string? directory = null)
        => new(new DiskCodeCacheOptions { Directory = directory ?? _dir.Path, AuthenticationKey = key }, _meters.Factory);

    private string PrivateDir()
    {
        Directory.CreateDirectory(_dir.Path);
        File.SetUnixFileMode(_dir.Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return _dir.Path;
    }

    [SkippableTheory]
    [InlineData(0b111_101_101)] // 0755
    [InlineData(0b111_111_111)] // 0777
    public void DirectoryOwnedByAnotherUser_WithoutKey_IsRefused_NamingDirectoryOwnerModeAndFixes(int mode)
    {
        Skip.IfNot(Unix.IsRoot, Unix.NeedsRoot);
        PrivateDir();
        File.SetUnixFileMode(_dir.Path, (UnixFileMode)mode);
        Unix.Chown(_dir.Path, Unix.OtherUser, Unix.OtherUser);
        using var cache = NewCache();
        var e = Assert.Throws<InsecureCacheDirectoryException>(() => cache.TryGet(TestKeys.Key(1), out _));
        Assert.Equal(_dir.Path, e.Directory);
        Assert.Contains(_dir.Path, e.Message);
        Assert.Contains($"uid {Unix.OtherUser}", e.Message);
        Assert.Contains(Convert.ToString(mode, 8), e.Message);
        Assert.Contains("AuthenticationKey", e.Message);
        Assert.Contains("only this user can write", e.Message);
        Assert.Throws<InsecureCacheDirectoryException>(() => cache.Add(TestKeys.Key(1), new MemoryStream([1])));
        Assert.Throws<InsecureCacheDirectoryException>(() => cache.TryGetFile(TestKeys.Key(1), out _));
        Assert.Empty(_dir.Files());
    }

    [SkippableTheory]
    [InlineData(0b111_111_111)] // 0777
    [InlineData(0b111_111_000)] // 0770
    [InlineData(0b111_101_111)] // 0757
    public void OwnDirectoryWritableByOthers_WithoutKey_IsRefused_AtStartAndOnUse(int mode)
    {
        Skip.IfNot(Unix.IsUnix, "Unix modes.");
        PrivateDir();
        File.SetUnixFileMode(_dir.Path, (UnixFileMode)mode);
        using var cache = NewCache();
        Assert.Throws<InsecureCacheDirectoryException>(() => cache.TryGet(TestKeys.Key(1), out _));

        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddWasmCodeCache().UseDisk(_dir.Path);
        using var host = builder.Build();
        var start = Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync()).GetAwaiter().GetResult();
        Assert.Contains(_dir.Path, start.Message);
        Assert.Contains("AuthenticationKey", start.Message);
    }

    [SkippableFact]
    public void SharedDirectory_WithKey_IsUsed()
    {
        Skip.IfNot(Unix.IsUnix, "Unix modes.");
        PrivateDir();
        File.SetUnixFileMode(_dir.Path, (UnixFileMode)0b111_111_111);
        using var cache = NewCache(Key32);
        cache.Add(TestKeys.Key(1), new MemoryStream([1, 2, 3]));
        Assert.Equal([1, 2, 3], cache.GetBytes(TestKeys.Key(1)));
    }

    [SkippableFact]
    public void ParentWritableByOthers_NotSticky_IsRefused_StickyParentIsAccepted()
    {
        Skip.IfNot(Unix.IsUnix, "Unix modes.");
        string parent = PrivateDir();
        string cacheDir = Path.Join(parent, "cache");
        Directory.CreateDirectory(cacheDir);
        File.SetUnixFileMode(cacheDir, (UnixFileMode)0b111_000_000);
        File.SetUnixFileMode(parent, (UnixFileMode)0b111_111_111); // anyone can rename 'cache' away and plant their own
        using (var cache = NewCache(directory: cacheDir))
        {
            var e = Assert.Throws<InsecureCacheDirectoryException>(() => cache.TryGet(TestKeys.Key(1), out _));
            Assert.Contains($"'{parent}'", e.Message);
        }

        File.SetUnixFileMode(parent, (UnixFileMode)0b1_111_111_111); // 1777, like /tmp
        using (var cache = NewCache(directory: cacheDir))
        {
            Assert.False(cache.TryGet(TestKeys.Key(1), out _));
        }
    }

    [SkippableFact]
    public void SymlinkedRoot_IsFollowedOnlyToADirectoryThatPassesTheSameCheck()
    {
        Skip.IfNot(Unix.IsUnix, "Unix modes.");
        string root = PrivateDir();
        string target = Path.Join(root, "real");
        Directory.CreateDirectory(target);
        File.SetUnixFileMode(target, (UnixFileMode)0b111_000_000);
        string link = Path.Join(root, "link");
        File.CreateSymbolicLink(link, target);
        using (var cache = NewCache(directory: link))
        {
            cache.Add(TestKeys.Key(1), new MemoryStream([7]));
            Assert.Equal([7], cache.GetBytes(TestKeys.Key(1)));
        }

        File.SetUnixFileMode(target, (UnixFileMode)0b111_111_111);
        using (var cache = NewCache(directory: link))
        {
            var e = Assert.Throws<InsecureCacheDirectoryException>(() => cache.TryGet(TestKeys.Key(1), out _));
            Assert.Contains(target, e.Message);
        }
    }

    [SkippableFact]
    public void PlantedEntry_OwnedByAnotherUser_WithoutKey_IsAMiss_CountedWithReason_AndRemoved()
    {
        Skip.IfNot(Unix.IsRoot, Unix.NeedsRoot);
        using var reasons = _meters.Collect("filecache.corrupt_entries");
        using var cache = NewCache();
        // A perfectly framed entry (anyone can compute the public checksum), owned by someone else.
        cache.Add(TestKeys.Key(1), new MemoryStream([6, 6, 6]));
        string path = cache.GetPath(TestKeys.Key(1));
        Unix.Chown(path, Unix.OtherUser, Unix.OtherUser);
        Assert.False(cache.TryGet(TestKeys.Key(1), out _));
        Assert.Equal(1, reasons.Sum(WasmCodeCacheMetrics.ReasonTag, "ForeignOwner"));
        Assert.False(File.Exists(path));

        cache.Add(TestKeys.Key(2), new MemoryStream([6]));
        Unix.Chown(cache.GetPath(TestKeys.Key(2)), Unix.OtherUser, Unix.OtherUser);
        Assert.False(cache.TryGetFile(TestKeys.Key(2), out _));
        Assert.Equal(2, reasons.Sum(WasmCodeCacheMetrics.ReasonTag, "ForeignOwner"));
    }

    [SkippableFact]
    public void EntryWritableByOthers_OrWithASecondLink_WithoutKey_IsAMiss()
    {
        Skip.IfNot(Unix.IsUnix, "Unix modes.");
        using var reasons = _meters.Collect("filecache.corrupt_entries");
        using var cache = NewCache();
        cache.Add(TestKeys.Key(1), new MemoryStream([1]));
        File.SetUnixFileMode(cache.GetPath(TestKeys.Key(1)), (UnixFileMode)0b110_110_110);
        Assert.False(cache.TryGet(TestKeys.Key(1), out _));
        Assert.Equal(1, reasons.Sum(WasmCodeCacheMetrics.ReasonTag, "WritableByOthers"));

        cache.Add(TestKeys.Key(2), new MemoryStream([2]));
        string outside = Path.Join(Path.GetTempPath(), "filecache-link-" + Guid.NewGuid().ToString("N"));
        Unix.Run("ln", cache.GetPath(TestKeys.Key(2)), outside); // a second name the owner may not control
        try
        {
            Assert.False(cache.TryGetAsync(TestKeys.Key(2)));
            Assert.Equal(1, reasons.Sum(WasmCodeCacheMetrics.ReasonTag, "MultipleLinks"));
            Assert.True(File.Exists(outside), "only the cache's own name is removed");
        }
        finally
        {
            File.Delete(outside);
        }
    }

    [SkippableTheory]
    [InlineData("fifo")]
    [InlineData("directory")]
    [InlineData("symlink")]
    public void SpecialFileUnderAnEntryName_IsAMiss_WithoutBlocking_AndALinkTargetIsUntouched(string kind)
    {
        Skip.IfNot(Unix.IsUnix, "Unix special files.");
        using var reasons = _meters.Collect("filecache.corrupt_entries");
        using var cache = NewCache();
        cache.Add(TestKeys.Key(9), new MemoryStream([9])); // creates the private directory
        string path = cache.GetPath(TestKeys.Key(1));
        string target = cache.GetPath(TestKeys.Key(9)); // a valid entry of another key
        switch (kind)
        {
            case "fifo": Unix.MakeFifo(path); break;
            case "directory": Directory.CreateDirectory(path); break;
            default: File.CreateSymbolicLink(path, target); break;
        }

        foreach (var lookup in new Func<bool>[] { () => cache.TryGet(TestKeys.Key(1), out _), () => cache.TryGetFile(TestKeys.Key(1), out _), () => cache.TryGetAsync(TestKeys.Key(1)) })
        {
            var clock = Stopwatch.StartNew();
            var result = Task.Run(lookup);
            // Opening a FIFO for reading used to block until a writer came: bounded here so a
            // regression fails instead of hanging the run.
            Assert.True(result.Wait(TimeSpan.FromSeconds(5)), $"a lookup of a {kind} blocked");
            Assert.False(result.Result);
            Assert.True(clock.ElapsedMilliseconds < 1000, $"a lookup of a {kind} took {clock.ElapsedMilliseconds} ms");
        }

        Assert.True(reasons.Sum() >= 1);
        Assert.Equal(kind == "symlink" ? "SymbolicLink" : "NotRegularFile", reasons.GetMeasurementSnapshot()[0].Tags[WasmCodeCacheMetrics.ReasonTag]);
        Assert.Equal([9], cache.GetBytes(TestKeys.Key(9)));
        Assert.Equal(kind == "directory", Directory.Exists(path)); // a directory is never removed; a FIFO or link is
    }

    [SkippableFact]
    public void SymlinkedTrimLock_ItsTargetIsNeverCreated()
    {
        Skip.IfNot(Unix.IsUnix, "Unix links.");
        PrivateDir();
        string victim = Path.Join(Path.GetTempPath(), "filecache-victim-" + Guid.NewGuid().ToString("N"));
        File.CreateSymbolicLink(Path.Join(_dir.Path, ".trim.lock"), victim);
        using var cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = _dir.Path, MaxSize = 10 });
        cache.Add(TestKeys.Key(1), new MemoryStream(new byte[100])); // over the limit: trims synchronously, logs the failure
        var e = Assert.Throws<IOException>(() => cache.Trim());
        Assert.Contains(".trim.lock", e.Message);
        Assert.False(File.Exists(victim), "the trim lock followed a planted link");
    }

    [SkippableFact]
    public void TrimLock_GetsTheConfiguredMode_OnItsHandle_WhateverTheUmask()
    {
        Skip.IfNot(Unix.IsUnix, "Unix modes.");
        var mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite;
        using var cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = _dir.Path, AuthenticationKey = Key32, FileMode = mode, DirectoryMode = (UnixFileMode)0b111_111_000 });
        cache.Add(TestKeys.Key(1), new MemoryStream([1]));
        cache.Trim();
        Assert.Equal(mode, File.GetUnixFileMode(Path.Join(_dir.Path, ".trim.lock")));
    }

    [SkippableFact]
    public void WithoutKey_TheLeaseIsTheEntryFileItself_WithKey_ASealedPrivateCopy()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "memfd and /proc are Linux's.");
        var payload = TestPayload.Create(1, 1, 100_000);
        using (var cache = NewCache())
        {
            cache.Add(TestKeys.Key(1), new MemoryStream(payload));
            Assert.True(cache.TryGetFile(TestKeys.Key(1), out var lease));
            using (lease)
            {
                Assert.Equal(cache.GetPath(TestKeys.Key(1)), new FileInfo(lease.Path).ResolveLinkTarget(false)!.FullName);
            }
        }

        using var authenticated = NewCache(Key32, Path.Join(_dir.Path, "auth"));
        authenticated.Add(TestKeys.Key(1), new MemoryStream(payload));
        Assert.True(authenticated.TryGetFile(TestKeys.Key(1), out var sealedLease));
        using (sealedLease)
        {
            Assert.StartsWith("/memfd:filecache-", File.ResolveLinkTarget(sealedLease.Path, false)!.ToString().Replace(Path.GetDirectoryName(sealedLease.Path) + "/", "/", StringComparison.Ordinal));
            Assert.Equal(payload, File.ReadAllBytes(sealedLease.Path));
            // Sealed: not even root can write to it.
            Assert.ThrowsAny<SystemException>(() =>
            {
                using var writer = new FileStream(sealedLease.Path, FileMode.Open, FileAccess.Write);
                writer.Write([1, 2, 3, 4]);
                writer.Flush();
            });
            Assert.Equal(payload, File.ReadAllBytes(sealedLease.Path));
        }
    }

    [SkippableFact]
    public void AuthenticatedEntry_PatchedOrTruncatedAfterVerification_TheLeaseKeepsTheVerifiedBytes()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "memfd and /proc are Linux's.");
        var payload = TestPayload.Create(1, 1, 20 << 20); // large: the overlapped read path
        using var cache = NewCache(Key32);
        cache.Add(TestKeys.Key(1), new MemoryStream(payload));
        string entry = cache.GetPath(TestKeys.Key(1));
        Assert.True(cache.TryGetFile(TestKeys.Key(1), out var lease));
        using (lease)
        {
            using (var f = new FileStream(entry, FileMode.Open, FileAccess.Write))
            {
                f.Position = 1000;
                f.Write([0xDE, 0xAD, 0xBE, 0xEF]); // in place: same inode, like dd conv=notrunc
            }

            Assert.Equal(payload, File.ReadAllBytes(lease.Path));
            File.WriteAllBytes(entry, []); // truncated
            Assert.Equal(payload, File.ReadAllBytes(lease.Path));
        }

        Assert.False(cache.TryGet(TestKeys.Key(1), out _));
    }

    [Fact]
    public void Add_AboveTheLargestEntry_IsRefused_NamingKeyAndSize_WithoutWriting()
    {
        using var cache = NewCache();
        var huge = new LengthOnlyStream(DiskCodeCache.MaxEntrySize + 1);
        var e = Assert.Throws<ArgumentException>(() => cache.Add(TestKeys.Key(1), huge));
        Assert.Contains(TestKeys.Key(1).ToString(), e.Message);
        Assert.Contains((DiskCodeCache.MaxEntrySize + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message);
        Assert.Equal(0, huge.Reads);
        Assert.Empty(_dir.Files());
    }

    /// <summary>A seekable stream that claims a length and counts reads.</summary>
    private sealed class LengthOnlyStream(long length) : Stream
    {
        public int Reads { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position { get; set; }

        public override int Read(byte[] buffer, int offset, int count)
        {
            Reads++;
            return 0;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

internal static class AsyncLookup
{
    public static bool TryGetAsync(this IWasmCodeCache cache, CacheKey key)
    {
        using var s = cache.GetAsync(key).AsTask().GetAwaiter().GetResult();
        return s is not null;
    }
}

/// <summary>A group-shared authenticated cache used by two real users.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class SharedCacheTests : IDisposable
{
    private const int Group = 4242;
    private readonly string _base = Path.Join(Path.GetTempPath(), "filecache-shared-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_base))
        {
            Directory.Delete(_base, recursive: true);
        }
    }

    [SkippableFact]
    public async Task TwoUsersOfOneGroup_BothRead_Add_AndTrim()
    {
        Skip.IfNot(Unix.IsRoot && OperatingSystem.IsLinux(), "Running processes as two other users (setpriv) needs root on Linux; CI runs as root.");
        Directory.CreateDirectory(_base);
        File.SetUnixFileMode(_base, (UnixFileMode)0b111_101_101); // 0755: both users can reach the cache below
        string cache = Path.Join(_base, "cache");
        Directory.CreateDirectory(cache);
        Unix.Chown(cache, 1001, Group);
        Unix.Run("chmod", "2770", cache); // setgid: entries and the lock belong to the group
        var alice = (1001, Group);
        var bob = (1002, Group);
        const string Roomy = "10000000";

        var a = await Worker.RunAsAsync(alice, TimeSpan.FromMinutes(1), "shared", cache, "1", Roomy);
        Assert.True(a.ExitCode == 0, a.Output);
        Assert.Contains("hits=1 ", a.Output);

        var b = await Worker.RunAsAsync(bob, TimeSpan.FromMinutes(1), "shared", cache, "2", Roomy);
        Assert.True(b.ExitCode == 0, b.Output);
        Assert.Contains("hits=1,2 ", b.Output); // bob reads alice's entry

        // Alice reads bob's entry, then trims below two entries: she can take the lock bob may have
        // created and remove an entry bob owns.
        var trim = await Worker.RunAsAsync(alice, TimeSpan.FromMinutes(1), "shared", cache, "3", "100000");
        Assert.True(trim.ExitCode == 0, trim.Output);
        Assert.Contains("hits=1,2,3 ", trim.Output);
        Assert.DoesNotContain("trimmed=0", trim.Output);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite, File.GetUnixFileMode(Path.Join(cache, ".trim.lock")));
    }
}

/// <summary>The disk tier's compile lock (one compile per machine).</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class CompileLockTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [SkippableFact]
    public void OneHolderAtATime_TheWaiterGetsItAfterRelease_AndTheFileGoes()
    {
        Skip.IfNot(Unix.IsUnix, "flock is Unix's.");
        using var cache = new DiskCodeCache(_dir.Path);
        using var other = new DiskCodeCache(_dir.Path); // another process, as far as the lock is concerned
        var key = TestKeys.Key(1);
        var held = cache.TryAcquireCompileLock(key, TimeSpan.Zero);
        Assert.NotNull(held);
        Assert.Null(other.TryAcquireCompileLock(key, TimeSpan.FromMilliseconds(100))); // times out
        Assert.NotNull(other.TryAcquireCompileLock(TestKeys.Key(2), TimeSpan.Zero)); // per key
        var waiter = Task.Run(() => other.TryAcquireCompileLock(key, TimeSpan.FromSeconds(10)));
        Thread.Sleep(50);
        held!.Dispose();
        using var next = waiter.Result;
        Assert.NotNull(next);
        next!.Dispose();
        Assert.DoesNotContain(_dir.Files(), f => f == ".compile-" + key);
    }

    [SkippableFact]
    public void APlantedLinkUnderTheLockName_IsRefused_ItsTargetNeverCreated()
    {
        Skip.IfNot(Unix.IsUnix, "Unix links.");
        using var cache = new DiskCodeCache(_dir.Path);
        cache.Add(TestKeys.Key(9), new MemoryStream([9]));
        string victim = Path.Join(Path.GetTempPath(), "filecache-victim-" + Guid.NewGuid().ToString("N"));
        File.CreateSymbolicLink(Path.Join(_dir.Path, ".compile-" + TestKeys.Key(1)), victim);
        var e = Assert.Throws<IOException>(() => cache.TryAcquireCompileLock(TestKeys.Key(1), TimeSpan.Zero));
        Assert.Contains(".compile-", e.Message);
        Assert.False(File.Exists(victim));
    }
}
