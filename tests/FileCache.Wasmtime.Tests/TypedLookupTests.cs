using System.Diagnostics.CodeAnalysis;
using FileCache.Disk;
using FileCache.Memory;
using FileCache.Tiering;
using Wasmtime;

namespace FileCache.Wasmtime.Tests;

/// <summary>How many times a load asks each tier, through the typed lookup.</summary>
public sealed class TypedLookupTests : IDisposable
{
    private readonly string _dir = Path.Join(Path.GetTempPath(), "filecache-typed-" + Guid.NewGuid().ToString("N"));
    private readonly WasmtimeEngineSettings _settings = new();

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private static byte[] Wasm() => global::Wasmtime.Module.ConvertText("(module (func (export \"answer\") (result i32) i32.const 42))");

    [Fact]
    public void AColdLoad_AsksEveryTierOnce_AndAfterClaimingTheCompile_ReasksOnlyTheTiersOtherProcessesFill()
    {
        var memory = Counting.Create(new MemoryCodeCache(), processLocal: true);
        using var disk = new DiskCodeCache(_dir);
        var countedDisk = Counting.Create(disk, processLocal: false);
        var fleet = Counting.Create(new MemoryCodeCache(), processLocal: false); // stands in for a distributed tier
        var loader = new WasmtimeModuleCache(new TieredCodeCache([memory, countedDisk, fleet]));

        using (var engine = _settings.CreateEngine())
        using (var cold = loader.Load(engine, new WasmSource("m", Wasm())))
        {
            Assert.Equal(ModuleOrigin.Compiled, cold.Origin);
        }

        Assert.Equal((1, 2, 2), (memory.Lookups, countedDisk.Lookups, fleet.Lookups));

        using (var engine = _settings.CreateEngine())
        using (var warm = loader.Load(engine, new WasmSource("m", Wasm())))
        {
            Assert.Equal(ModuleOrigin.CacheHit, warm.Origin); // the memory tier answers first
        }

        Assert.Equal((2, 2, 2), (memory.Lookups, countedDisk.Lookups, fleet.Lookups));
    }

    [Fact]
    public async Task AColdAsyncLoad_AsksTheSameWay()
    {
        var memory = Counting.Create(new MemoryCodeCache(), processLocal: true);
        var fleet = Counting.Create(new MemoryCodeCache(), processLocal: false);
        var loader = new WasmtimeModuleCache(new TieredCodeCache([memory, fleet]));
        using var engine = _settings.CreateEngine();
        using var cold = await loader.LoadAsync(engine, new WasmSource("m", Wasm()));
        Assert.Equal(ModuleOrigin.Compiled, cold.Origin);
        Assert.Equal((1, 2), (memory.Lookups, fleet.Lookups));
        Assert.Equal((0, 0), (memory.SyncLookups, fleet.SyncLookups)); // async end to end: no synchronous lookup
    }

    [Fact]
    public void AFileHitBelowAFasterTier_IsMapped_AndNeverReadBackToFillTheFasterTier()
    {
        using (var seed = new DiskCodeCache(_dir))
        {
            var seeding = new WasmtimeModuleCache(seed);
            using var engine = _settings.CreateEngine();
            using var compiled = seeding.Load(engine, new WasmSource("m", Wasm()));
        }

        var memory = new MemoryCodeCache();
        using var disk = new DiskCodeCache(_dir);
        var loader = new WasmtimeModuleCache(new TieredCodeCache([memory, disk]));
        using var fresh = _settings.CreateEngine();
        using var hit = loader.Load(fresh, new WasmSource("m", Wasm()));
        Assert.Equal(ModuleOrigin.MappedFile, hit.Origin);

        // Wasmtime mapped the verified file; reading all of it again only to copy it into memory
        // would cost its length on every such hit (issue 19).
        Assert.Equal(0, memory.Count);
        Assert.False(memory.TryGet(hit.Key, out _));
    }

    [Fact]
    public void ABytesHitBelowAFasterTier_IsPromoted()
    {
        var fleet = new MemoryCodeCache(); // a tier whose hits are bytes, like a distributed one
        using (var seeding = new TieredCodeCache([fleet]))
        {
            using var engine = _settings.CreateEngine();
            using var compiled = new WasmtimeModuleCache(seeding).Load(engine, new WasmSource("m", Wasm()));
        }

        using var disk = new DiskCodeCache(_dir);
        var loader = new WasmtimeModuleCache(new TieredCodeCache([disk, fleet]));
        using var fresh = _settings.CreateEngine();
        using var hit = loader.Load(fresh, new WasmSource("m", Wasm()));
        Assert.Equal(ModuleOrigin.CacheHit, hit.Origin);
        Assert.True(disk.TryGet(hit.Key, out var promoted));
        using (promoted)
        {
            Assert.True(fleet.TryGet(hit.Key, out var original));
            using (original)
            {
                Assert.Equal(StreamToArray(original), StreamToArray(promoted));
            }
        }
    }

    [Fact]
    public void TheFallback_TakesAVisibleBufferWithoutCopying_AndReadsAnyOtherStream()
    {
        var bytes = new byte[] { 1, 2, 3, 4 };
        var visible = new StreamCache(() => new MemoryStream(bytes, 0, 4, writable: false, publiclyVisible: true));
        Assert.True(visible.TryGetEntry(TestKey, out var shared));
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(shared.Bytes, out var segment));
        Assert.Same(bytes, segment.Array);

        var hidden = new StreamCache(() => new BufferedStream(new MemoryStream(bytes)));
        Assert.True(hidden.TryGetEntry(TestKey, out var copied));
        Assert.Equal(bytes, copied.Bytes.ToArray());
        Assert.Null(copied.File);
    }

    private static readonly CacheKey TestKey = CacheKey.Compute([7]);

    private static byte[] StreamToArray(Stream s)
    {
        using var copy = new MemoryStream();
        s.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>A cache with only the stream contract, whose every hit comes from a factory.</summary>
    private sealed class StreamCache(Func<Stream> hit) : IWasmCodeCache
    {
        public bool TryGet(CacheKey key, [NotNullWhen(true)] out Stream? content)
        {
            content = hit();
            return true;
        }

        public void Add(CacheKey key, Stream content) => throw new NotSupportedException();

        public void Delete(CacheKey key) => throw new NotSupportedException();

        public ValueTask<Stream?> GetAsync(CacheKey key, CancellationToken cancellationToken = default) => ValueTask.FromResult<Stream?>(hit());

        public ValueTask AddAsync(CacheKey key, Stream content, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public ValueTask DeleteAsync(CacheKey key, CancellationToken cancellationToken = default) => throw new NotSupportedException();
    }

    /// <summary>Counts the lookups that reach a tier (the typed lookup's fallback goes through these).</summary>
    private class Counting(IWasmCodeCache inner) : IWasmCodeCache
    {
        private int _sync;
        private int _async;

        public int Lookups => _sync + _async;

        public int SyncLookups => _sync;

        public static Counting Create(IWasmCodeCache inner, bool processLocal) => processLocal ? new LocalCounting(inner) : new Counting(inner);

        public bool TryGet(CacheKey key, [NotNullWhen(true)] out Stream? content)
        {
            Interlocked.Increment(ref _sync);
            return inner.TryGet(key, out content);
        }

        public void Add(CacheKey key, Stream content) => inner.Add(key, content);

        public void Delete(CacheKey key) => inner.Delete(key);

        public ValueTask<Stream?> GetAsync(CacheKey key, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _async);
            return inner.GetAsync(key, cancellationToken);
        }

        public ValueTask AddAsync(CacheKey key, Stream content, CancellationToken cancellationToken = default) => inner.AddAsync(key, content, cancellationToken);

        public ValueTask DeleteAsync(CacheKey key, CancellationToken cancellationToken = default) => inner.DeleteAsync(key, cancellationToken);
    }

    private sealed class LocalCounting(IWasmCodeCache inner) : Counting(inner), IProcessLocalWasmCodeCache;
}
