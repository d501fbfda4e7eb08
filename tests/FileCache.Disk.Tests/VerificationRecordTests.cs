using System.Diagnostics;
using FileCache.Disk.Internal;
using FileCache.Specification.Tests;

namespace FileCache.Disk.Tests;

/// <summary>
/// Verification records (issue 20): a hit of an unchanged entry is not hashed again, and anything that
/// can change the bytes makes the next hit hash them (and miss when they are bad). Every case uses a
/// real file; what is counted is the payload bytes the cache hashed.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
[Collection(nameof(BootIdCollection))] // one test replaces the (process-wide) boot id
public sealed class VerificationRecordTests : IDisposable
{
    private const int Length = 200_000;
    private readonly TempDirectory _dir = new();

    public VerificationRecordTests()
    {
        Directory.CreateDirectory(_dir.Path);
        File.SetUnixFileMode(_dir.Path, (UnixFileMode)0b111_000_000);
    }

    public void Dispose() => _dir.Dispose();

    private DiskCodeCache NewCache(string? dir = null, DiskVerification verification = DiskVerification.OncePerChange)
        => new(new DiskCodeCacheOptions { Directory = dir ?? Path.Join(_dir.Path, "cache"), MaxSize = null, Verification = verification });

    /// <summary>A mapped hit (the loader's path) and how many payload bytes it hashed.</summary>
    private static (bool Hit, long Hashed) Lease(DiskCodeCache cache, CacheKey key)
    {
        long before = Interlocked.Read(ref cache.HashedBytes);
        bool hit = cache.TryGetFile(key, out var file);
        file?.Dispose();
        return (hit, Interlocked.Read(ref cache.HashedBytes) - before);
    }

    private static (bool Hit, long Hashed, byte[]? Bytes) Get(DiskCodeCache cache, CacheKey key)
    {
        long before = Interlocked.Read(ref cache.HashedBytes);
        byte[]? bytes = cache.TryGet(key, out var s) ? ReadAll(s) : null;
        return (bytes is not null, Interlocked.Read(ref cache.HashedBytes) - before, bytes);
    }

    private static byte[] ReadAll(Stream s)
    {
        using (s)
        {
            using var m = new MemoryStream();
            s.CopyTo(m);
            return m.ToArray();
        }
    }

    private static void Settle() => Thread.Sleep(20); // past a timer tick, so a change cannot share the verified change time

    private (DiskCodeCache Cache, CacheKey Key, byte[] Payload) Verified()
    {
        var cache = NewCache();
        var key = TestKeys.Key(1);
        var payload = TestPayload.Create(1, 1, Length);
        cache.Add(key, new MemoryStream(payload));
        Assert.Equal((true, (long)Length), Lease(cache, key)); // the first hit hashes and records
        Assert.True(File.Exists(cache.RecordPath(key)));
        return (cache, key, payload);
    }

    [SkippableFact]
    public void ASecondHitOfAnUnchangedEntry_HashesNoPayloadByte_MappedOrRead()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "Records need Linux's boot id.");
        var (cache, key, payload) = Verified();
        using (cache)
        {
            Assert.Equal((true, 0L), Lease(cache, key));
            var (hit, hashed, bytes) = Get(cache, key);
            Assert.True(hit);
            Assert.Equal(0, hashed);
            Assert.Equal(payload, bytes);
            using var other = NewCache(); // another process's cache over the same directory trusts the record too
            Assert.Equal((true, 0L), Lease(other, key));
        }
    }

    [SkippableFact]
    public void AnInPlaceWrite_ddConvNotrunc_IsHashedAgain_AndMisses()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && File.Exists("/bin/dd"), "dd on Linux.");
        var (cache, key, _) = Verified();
        using (cache)
        {
            Settle();
            Unix.Run("/bin/dd", "if=/dev/zero", $"of={cache.GetPath(key)}", "bs=1", "count=8", "seek=1000", "conv=notrunc", "status=none");
            var (hit, hashed) = Lease(cache, key);
            Assert.False(hit);
            Assert.Equal(Length, hashed);
        }
    }

    [SkippableFact]
    public void ATruncateAndRestoreToTheSameBytes_IsHashedAgain_AndHits()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "Records need Linux's boot id.");
        var (cache, key, payload) = Verified();
        using (cache)
        {
            string path = cache.GetPath(key);
            byte[] original = File.ReadAllBytes(path);
            Settle();
            using (var file = new FileStream(path, FileMode.Open, FileAccess.Write))
            {
                file.SetLength(0);
                file.Write(original);
            }

            Assert.Equal(original.Length, new FileInfo(path).Length);
            var (hit, hashed, bytes) = Get(cache, key);
            Assert.True(hit);
            Assert.Equal(Length, hashed);
            Assert.Equal(payload, bytes);
        }
    }

    [SkippableFact]
    public void AnotherFileRenamedOverTheEntry_IsHashedAgain()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "Records need Linux's boot id.");
        var (cache, key, _) = Verified();
        using (cache)
        {
            // The same key's entry with other bytes, written elsewhere (a valid entry: it must be hashed, then used).
            string elsewhere = Path.Join(_dir.Path, "elsewhere");
            var newer = TestPayload.Create(1, 2, Length);
            using (var other = NewCache(elsewhere))
            {
                other.Add(key, new MemoryStream(newer));
            }

            File.Move(Path.Join(elsewhere, key.ToString()), cache.GetPath(key), overwrite: true);
            var (hit, hashed, bytes) = Get(cache, key);
            Assert.True(hit);
            Assert.Equal(Length, hashed);
            Assert.Equal(newer, bytes);
        }
    }

    [SkippableFact]
    public void AnotherBoot_IsHashedAgain()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "Records need Linux's boot id.");
        var (cache, key, _) = Verified();
        var boot = DiskCodeCache.BootId;
        try
        {
            DiskCodeCache.BootId = Guid.NewGuid().ToByteArray(); // a reboot: unsynced data may be gone
            Assert.Equal((true, (long)Length), Lease(cache, key));
            Assert.Equal((true, 0L), Lease(cache, key)); // and recorded for this boot
        }
        finally
        {
            DiskCodeCache.BootId = boot;
            cache.Dispose();
        }
    }

    [SkippableFact]
    public void ARecordCopiedFromAnotherEntry_IsNotTaken()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "Records need Linux's boot id.");
        var (cache, key, _) = Verified();
        using (cache)
        {
            var other = TestKeys.Key(2);
            cache.Add(other, new MemoryStream(TestPayload.Create(2, 1, Length)));
            Assert.Equal((true, (long)Length), Lease(cache, other));
            File.Copy(cache.RecordPath(key), cache.RecordPath(other), overwrite: true);
            Assert.Equal((true, (long)Length), Lease(cache, other));
        }
    }

    [SkippableFact]
    public void AForgedRecordOwnedByAnotherUser_IsNotTaken_TheChangedEntryMisses()
    {
        Skip.IfNot(Unix.IsRoot && OperatingSystem.IsLinux(), Unix.NeedsRoot);
        var (cache, key, _) = Verified();
        using (cache)
        {
            // Corrupt the entry, then plant a record that matches the corrupted file exactly.
            string path = cache.GetPath(key);
            Settle();
            using (var file = new FileStream(path, FileMode.Open, FileAccess.Write))
            {
                file.Position = 500;
                file.Write(new byte[16]);
            }

            var forged = new byte[DiskCodeCache.RecordSize];
            Assert.True(DiskCodeCache.Encode(key, UnixFile.LStat(path)!.Value, forged));
            File.WriteAllBytes(cache.RecordPath(key), forged);
            File.SetUnixFileMode(cache.RecordPath(key), (UnixFileMode)0b110_000_000);
            Unix.Chown(cache.RecordPath(key), Unix.OtherUser, Unix.OtherUser);
            var (hit, hashed) = Lease(cache, key);
            Assert.False(hit);
            Assert.Equal(Length, hashed);
        }
    }

    [SkippableFact]
    public void EveryRead_AndTheToolsVerify_HashEveryTime()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "Records need Linux's boot id.");
        var (cache, key, _) = Verified();
        using (cache)
        {
            using var strict = NewCache(verification: DiskVerification.EveryRead);
            Assert.Equal((true, (long)Length), Lease(strict, key));
            Assert.Equal((true, (long)Length), Lease(strict, key));
            long before = cache.HashedBytes;
            Assert.True(cache.Verify(key, out _)); // a scrub
            Assert.Equal(Length, cache.HashedBytes - before);
        }
    }

    [SkippableFact]
    public void WithAKey_NoRecordIsWritten_EveryReadIsHashed()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "Sealed copies need Linux.");
        using var cache = new DiskCodeCache(new DiskCodeCacheOptions { Directory = Path.Join(_dir.Path, "keyed"), AuthenticationKey = new byte[32], MaxSize = null });
        var key = TestKeys.Key(1);
        cache.Add(key, new MemoryStream(TestPayload.Create(1, 1, Length)));
        Assert.Equal((true, (long)Length), Lease(cache, key));
        Assert.Equal((true, (long)Length), Lease(cache, key));
        Assert.False(File.Exists(cache.RecordPath(key)));
    }

    [SkippableFact]
    public void ARecordWhoseEntryIsGone_IsRemovedByTrim_AndDeleteRemovesItsRecord()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "Records need Linux's boot id.");
        var (cache, key, _) = Verified();
        using (cache)
        {
            cache.Delete(key);
            Assert.False(File.Exists(cache.RecordPath(key)));
            var other = TestKeys.Key(3);
            cache.Add(other, new MemoryStream(TestPayload.Create(3, 1, Length)));
            Assert.True(Lease(cache, other).Hit);
            File.Delete(cache.GetPath(other)); // removed behind the cache's back
            cache.Trim();
            Assert.False(File.Exists(cache.RecordPath(other)));
        }
    }
}

[CollectionDefinition(nameof(BootIdCollection), DisableParallelization = true)]
public sealed class BootIdCollection;
