using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using FileCache.Disk;
using Wasmtime;

namespace FileCache.Wasmtime.Tests;

/// <summary>
/// The trust boundary end to end: a module loaded through the cache runs the code its own Wasm
/// compiles to, never code that another user planted or rewrote, and a failing cache never fails a load.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class WasmtimeTrustTests : IDisposable
{
    private const int Nobody = 65534;
    private static readonly byte[] FleetKey = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
    private readonly string _dir = Path.Join(Path.GetTempPath(), "filecache-wasmtime-trust-" + Guid.NewGuid().ToString("N"));
    private readonly WasmtimeEngineSettings _settings = new();

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    /// <summary>Genuine and evil modules with the same shape: "answer" returns 1000 or 2000.</summary>
    private static byte[] Answer(int value) => global::Wasmtime.Module.ConvertText($"(module (func (export \"answer\") (result i32) i32.const {value}))");

    private static int CallAnswer(Loaded<global::Wasmtime.Module> loaded, Engine engine)
    {
        using var store = new Store(engine);
        return (int)new Instance(store, loaded.Value).GetFunction("answer")!.Invoke()!;
    }

    private byte[] Serialized(int value)
    {
        using var engine = _settings.CreateEngine();
        using var module = global::Wasmtime.Module.FromBytes(engine, "m", Answer(value));
        return module.Serialize();
    }

    private static bool IsRoot => OperatingSystem.IsLinux() && Environment.UserName == "root";

    private static void Run(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardError = true };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var p = Process.Start(info)!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }

    [SkippableTheory]
    [InlineData("0755", true)]
    [InlineData("0777", true)]
    [InlineData("0700", false)] // the directory is the victim's; only the entry is planted
    public void PlantedEntry_OfAnotherUser_IsNeverRun_TheModuleIsCompiledFresh(string mode, bool plantDirectory)
    {
        Skip.IfNot(IsRoot, "Planting as another user needs chown (root); CI runs as root.");
        var key = _settings.DeriveKey(Answer(1000));
        // The attacker frames their own machine code under the victim's key (the checksum is public).
        using (var attacker = new DiskCodeCache(_dir))
        {
            attacker.Add(key, new MemoryStream(Serialized(2000)));
        }

        Run("chown", "-R", $"{Nobody}:{Nobody}", plantDirectory ? _dir : Path.Join(_dir, key.ToString()));
        Run("chmod", mode, _dir);

        using var victim = new DiskCodeCache(_dir);
        var loader = new WasmtimeModuleCache(victim);
        using var engine = _settings.CreateEngine();
        using var loaded = loader.Load(engine, new WasmSource("m", Answer(1000)));
        Assert.Equal(ModuleOrigin.Compiled, loaded.Origin);
        Assert.Equal(1000, CallAnswer(loaded, engine));
    }

    [SkippableFact]
    public void AuthenticatedEntry_RewrittenInPlaceBetweenVerificationAndLoad_AndAfterIt_RunsTheVerifiedCode()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "Sealed copies are Linux's (memfd); elsewhere authenticated hits are read into memory.");
        var genuine = Serialized(1000);
        var evil = Serialized(2000);
        Assert.Equal(genuine.Length, evil.Length); // same shape, so an in-place rewrite keeps the length

        using var disk = new DiskCodeCache(new DiskCodeCacheOptions { Directory = _dir, AuthenticationKey = FleetKey });
        var key = _settings.DeriveKey(Answer(1000));
        disk.Add(key, new MemoryStream(genuine));
        string entry = disk.GetPath(key);
        void RewriteInPlace(byte[] bytes)
        {
            using var f = new FileStream(entry, FileMode.Open, FileAccess.Write); // same inode, like dd conv=notrunc
            f.Write(bytes);
        }

        // Between the cache's verification and Wasmtime's deserialize:
        var loader = new WasmtimeModuleCache(new AfterVerification(disk, () => RewriteInPlace(evil)));
        using var engine = _settings.CreateEngine();
        using var loaded = loader.Load(engine, new WasmSource("m", Answer(1000)));
        Assert.Equal(ModuleOrigin.MappedFile, loaded.Origin);
        Assert.Equal(1000, CallAnswer(loaded, engine));

        // After the load: the running module is unaffected, by a rewrite or by a truncation.
        RewriteInPlace(genuine);
        using var again = new WasmtimeModuleCache(disk).Load(engine, new WasmSource("m", Answer(1000)));
        RewriteInPlace(evil);
        Assert.Equal(1000, CallAnswer(again, engine));
        File.WriteAllBytes(entry, []);
        Assert.Equal(1000, CallAnswer(again, engine)); // no SIGBUS: nothing of the shared file is mapped
    }

    [SkippableTheory]
    [InlineData("fifo")]
    [InlineData("directory")]
    [InlineData("symlink")]
    public void SpecialFileUnderTheEntryName_LoadCompiles_WithoutBlocking(string kind)
    {
        Skip.IfNot(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), "Unix special files.");
        using var disk = new DiskCodeCache(_dir);
        disk.Add(CacheKey.Compute([1]), new MemoryStream([1])); // creates the private directory
        var key = _settings.DeriveKey(Answer(1000));
        string path = disk.GetPath(key);
        switch (kind)
        {
            case "fifo": Run("mkfifo", path); break;
            case "directory": Directory.CreateDirectory(path); break;
            default: File.CreateSymbolicLink(path, "/etc/passwd"); break;
        }

        var loader = new WasmtimeModuleCache(disk);
        using var engine = _settings.CreateEngine();
        var load = Task.Run(() => loader.Load(engine, new WasmSource("m", Answer(1000))));
        Assert.True(load.Wait(TimeSpan.FromSeconds(30)), $"Load blocked on a {kind}");
        using var loaded = load.Result;
        Assert.Equal(ModuleOrigin.Compiled, loaded.Origin);
        Assert.Equal(1000, CallAnswer(loaded, engine));
    }

    [Theory]
    [InlineData(typeof(NotSupportedException))]
    [InlineData(typeof(ArgumentException))]
    [InlineData(typeof(FormatException))]
    [InlineData(typeof(ApplicationException))]
    public async Task ACacheThatThrowsAnything_NeverFailsALoad(Type exception)
    {
        var loader = new WasmtimeModuleCache(new Throwing((Exception)Activator.CreateInstance(exception, "cache broke")!));
        using var engine = _settings.CreateEngine();
        using var loaded = loader.Load(engine, new WasmSource("m", Answer(1000)));
        Assert.Equal(ModuleOrigin.Compiled, loaded.Origin);
        Assert.Equal(1000, CallAnswer(loaded, engine));
        using var fresh = _settings.CreateEngine(); // not the live module: the async path asks the cache
        using var asyncLoaded = await loader.LoadAsync(fresh, new WasmSource("m", Answer(1000)));
        Assert.Equal(ModuleOrigin.Compiled, asyncLoaded.Origin);
        Assert.Equal(1000, CallAnswer(asyncLoaded, fresh));
    }

    /// <summary>Runs an action after the inner cache verified an entry and before the loader opens it.</summary>
    private sealed class AfterVerification(DiskCodeCache inner, Action between) : IWasmCodeCache, ICacheEntrySource
    {
        public bool TryGetEntry(CacheKey key, CacheLookupScope scope, [NotNullWhen(true)] out CacheEntry? entry)
        {
            bool found = inner.TryGetEntry(key, scope, out entry);
            between();
            return found;
        }

        public async ValueTask<CacheEntry?> GetEntryAsync(CacheKey key, CacheLookupScope scope, CancellationToken cancellationToken = default)
        {
            var entry = await inner.GetEntryAsync(key, scope, cancellationToken);
            between();
            return entry;
        }

        public bool TryGet(CacheKey key, [NotNullWhen(true)] out Stream? content) => inner.TryGet(key, out content);

        public void Add(CacheKey key, Stream content) => inner.Add(key, content);

        public void Delete(CacheKey key) => inner.Delete(key);

        public ValueTask<Stream?> GetAsync(CacheKey key, CancellationToken cancellationToken = default) => inner.GetAsync(key, cancellationToken);

        public ValueTask AddAsync(CacheKey key, Stream content, CancellationToken cancellationToken = default) => inner.AddAsync(key, content, cancellationToken);

        public ValueTask DeleteAsync(CacheKey key, CancellationToken cancellationToken = default) => inner.DeleteAsync(key, cancellationToken);
    }

    private sealed class Throwing(Exception e) : IWasmCodeCache, ICacheEntrySource, ICompileLockSource
    {
        public bool TryGetEntry(CacheKey key, CacheLookupScope scope, [NotNullWhen(true)] out CacheEntry? entry) => throw e;

        public ValueTask<CacheEntry?> GetEntryAsync(CacheKey key, CacheLookupScope scope, CancellationToken cancellationToken = default) => throw e;

        public IDisposable? TryAcquireCompileLock(CacheKey key, TimeSpan timeout, CancellationToken cancellationToken = default) => throw e;

        public ValueTask<IDisposable?> TryAcquireCompileLockAsync(CacheKey key, TimeSpan timeout, CancellationToken cancellationToken = default) => throw e;

        public bool TryGet(CacheKey key, [NotNullWhen(true)] out Stream? content) => throw e;

        public void Add(CacheKey key, Stream content) => throw e;

        public void Delete(CacheKey key) => throw e;

        public ValueTask<Stream?> GetAsync(CacheKey key, CancellationToken cancellationToken = default) => throw e;

        public ValueTask AddAsync(CacheKey key, Stream content, CancellationToken cancellationToken = default) => throw e;

        public ValueTask DeleteAsync(CacheKey key, CancellationToken cancellationToken = default) => throw e;
    }
}
