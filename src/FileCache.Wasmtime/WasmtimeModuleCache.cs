using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using FileCache.Tiering;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Wasmtime;
using WasmModule = Wasmtime.Module; // System.Reflection.Module would clash

namespace FileCache.Wasmtime;

/// <summary>
/// Loads Wasmtime modules through an <see cref="IWasmCodeCache"/>: derive the key, try the cache
/// (a memory-mapped verified file when a tier offers <see cref="ICacheEntryFileSource"/>, else the
/// bytes), otherwise compile, serialize and add. An entry this engine cannot use is deleted and
/// replaced. Inside a process a key is compiled at most once at a time: concurrent callers wait
/// for that compile. A failing cache never fails a load.
/// </summary>
public sealed partial class WasmtimeModuleCache
{
    private readonly IWasmCodeCache _cache;
    private readonly ICacheEntryFileSource? _files;
    private readonly ILogger _logger;
    private readonly Counter<long> _loads;
    private readonly ConcurrentDictionary<CacheKey, Task<byte[]>> _compiling = new();
    private readonly LiveModules _live;
    private readonly TimeSpan _compileLockTimeout;

    /// <summary>For tests: called when a caller starts waiting for another caller's compile of a key.</summary>
    internal Action<CacheKey>? WaitingForCompile { get; set; }

    /// <summary>Creates the loader over a cache.</summary>
    /// <param name="cache">The cache (any backend or tiers).</param>
    /// <param name="logger">Receives incompatible entries and cache failures; optional.</param>
    /// <param name="meterFactory">Creates the meter for <c>filecache.wasmtime.loads</c>; optional.</param>
    /// <param name="options">The options; <see langword="null"/> for the defaults.</param>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="WasmtimeModuleCacheOptions.LiveModuleBudget"/> is negative.</exception>
    public WasmtimeModuleCache(IWasmCodeCache cache, ILogger<WasmtimeModuleCache>? logger = null, IMeterFactory? meterFactory = null, WasmtimeModuleCacheOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(cache);
        options ??= new WasmtimeModuleCacheOptions();
        long budget = options.LiveModuleBudget;
        _compileLockTimeout = options.CompileLockTimeout;
        if (budget < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), budget, "WasmtimeModuleCacheOptions.LiveModuleBudget must not be negative.");
        }

        _live = new LiveModules(budget);
        _cache = cache;
        // A tier that can pin verified files lets Wasmtime map the entry instead of copying it.
        _files = cache as ICacheEntryFileSource ?? (cache as TieredCodeCache)?.Tiers.OfType<ICacheEntryFileSource>().FirstOrDefault();
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        var meter = Diagnostics.WasmCodeCacheMetrics.GetMeter(meterFactory);
        _loads = meter.CreateCounter<long>("filecache.wasmtime.loads", "{module}", "Modules loaded, tagged by filecache.origin (livemodule, mappedfile, cachehit, compiled, recompiled, sharedcompile).");
    }


    /// <summary>Loads a module, from the cache when possible.</summary>
    /// <param name="engine">The engine; it must have been created with <paramref name="settings"/>.</param>
    /// <param name="settings">The engine's settings as a key type (usually <see cref="WasmtimeEngineSettings"/>).</param>
    /// <param name="name">The module's name.</param>
    /// <param name="wasm">The module's WebAssembly bytes.</param>
    /// <param name="validate">Validate the bytes before compiling them (a hit needs no validation: its key covers the bytes).</param>
    /// <param name="cancellationToken">Cancels waiting for another caller's compile.</param>
    /// <returns>The module and where it came from.</returns>
    /// <exception cref="WasmtimeException">The bytes are not a valid module for this engine.</exception>
    public LoadedModule Load(Engine engine, IWasmCodeCacheKey settings, string name, ReadOnlySpan<byte> wasm, bool validate = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(name);
        ThrowIfNotBound(engine, settings);
        long start = Stopwatch.GetTimestamp();
        var key = settings.DeriveKey(wasm);
        if (_live.TryLease(engine, key) is { } live)
        {
            return Done(live, ModuleOrigin.LiveModule, start);
        }

        bool hadIncompatible = false;
        if (TryLoadCached(engine, name, key, ref hadIncompatible) is { } hit)
        {
            return Done(engine, hit, key, start);
        }

        return CompileOnce(engine, name, key, wasm, validate, hadIncompatible, start, cancellationToken);
    }

    /// <summary>After a miss: compiles the key once in this process; concurrent callers share the result.</summary>
    private LoadedModule CompileOnce(Engine engine, string name, CacheKey key, ReadOnlySpan<byte> wasm, bool validate, bool hadIncompatible, long start, CancellationToken cancellationToken)
    {
        var compiled = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        while (!_compiling.TryAdd(key, compiled.Task))
        {
            if (_compiling.TryGetValue(key, out var running))
            {
                WaitingForCompile?.Invoke(key);
                var bytes = running.WaitAsync(cancellationToken).GetAwaiter().GetResult();
                return Shared(engine, name, key, bytes, start);
            }
        }

        return Lead(engine, name, key, wasm, validate, hadIncompatible, start, compiled, cancellationToken);
    }

    /// <summary>As the caller that claimed <paramref name="key"/>: re-checks the cache, compiles, stores, and hands the bytes to the waiters.</summary>
    private LoadedModule Lead(Engine engine, string name, CacheKey key, ReadOnlySpan<byte> wasm, bool validate, bool hadIncompatible, long start, TaskCompletionSource<byte[]> compiled, CancellationToken cancellationToken)
    {
        IDisposable? machineLock = null;
        try
        {
            // One compile per machine: processes sharing the disk tier take its lock for this key,
            // and whoever waited finds the entry that the holder added.
            machineLock = AcquireMachineLock(key, cancellationToken);

            // Another process may have added it while this one looked, or waited.
            if (!hadIncompatible && TryLoadCached(engine, name, key, ref hadIncompatible) is { } late)
            {
                compiled.SetResult(late.Module.Serialize()); // for callers that queued behind this one
                return Done(engine, late, key, start);
            }

            var module = Compile(engine, name, wasm, validate);
            var serialized = module.Serialize();
            compiled.SetResult(serialized);
            Store(key, serialized, localOnly: hadIncompatible);
            return Done(engine, new Loaded(module, hadIncompatible ? ModuleOrigin.Recompiled : ModuleOrigin.Compiled, serialized.Length), key, start);
        }
        catch (Exception e)
        {
            compiled.TrySetException(e);
            throw;
        }
        finally
        {
            machineLock?.Dispose();
            _compiling.TryRemove(new KeyValuePair<CacheKey, Task<byte[]>>(key, compiled.Task));
        }
    }

    /// <summary>Loads a module, from the cache when possible, without blocking while another caller compiles it.</summary>
    /// <param name="engine">The engine; it must have been created with <paramref name="settings"/>.</param>
    /// <param name="settings">The engine's settings as a key type.</param>
    /// <param name="name">The module's name.</param>
    /// <param name="wasm">The module's WebAssembly bytes.</param>
    /// <param name="validate">Validate the bytes before compiling them.</param>
    /// <param name="cancellationToken">Cancels waiting for another caller's compile.</param>
    /// <returns>The module and where it came from.</returns>
    public async ValueTask<LoadedModule> LoadAsync(Engine engine, IWasmCodeCacheKey settings, string name, ReadOnlyMemory<byte> wasm, bool validate = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(name);
        ThrowIfNotBound(engine, settings);
        cancellationToken.ThrowIfCancellationRequested();
        long start = Stopwatch.GetTimestamp();
        var key = settings.DeriveKey(wasm.Span);
        if (_live.TryLease(engine, key) is { } live)
        {
            return Done(live, ModuleOrigin.LiveModule, start);
        }

        // The lookup is asynchronous to the store, so a network tier holds no thread while it waits.
        var (hit, hadIncompatible) = await TryLoadCachedAsync(engine, name, key, cancellationToken).ConfigureAwait(false);
        if (hit is { } found)
        {
            return Done(engine, found, key, start);
        }

        // Claim the compile, or wait for the caller that did without holding a thread.
        var compiled = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        while (!_compiling.TryAdd(key, compiled.Task))
        {
            if (_compiling.TryGetValue(key, out var running))
            {
                WaitingForCompile?.Invoke(key);
                var bytes = await running.WaitAsync(cancellationToken).ConfigureAwait(false);
                return Shared(engine, name, key, bytes, start);
            }
        }

        // Compiling is CPU-bound work that Wasmtime does synchronously; keep it off the caller's thread.
        // No token for Task.Run: the claim must always be completed and released by Lead.
        return await Task.Run(() => Lead(engine, name, key, wasm.Span, validate, hadIncompatible, start, compiled, cancellationToken), CancellationToken.None).ConfigureAwait(false);
    }

    private async ValueTask<(Loaded? Hit, bool HadIncompatible)> TryLoadCachedAsync(Engine engine, string name, CacheKey key, CancellationToken cancellationToken)
    {
        bool hadIncompatible = false;
        Stream? content;
        try
        {
            // A file source is local (the disk tier): its lookup costs a few system calls.
            if (TryLoadMapped(engine, name, key, ref hadIncompatible, out var mapped))
            {
                return (mapped, hadIncompatible);
            }

            content = await _cache.GetAsync(key, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsCacheFailure(e))
        {
            LogCacheFailed(_logger, "read", key, e);
            return (null, hadIncompatible);
        }

        if (content is null)
        {
            return (null, hadIncompatible);
        }

        using (content)
        {
            return (TryDeserializeBytes(engine, name, key, content, ref hadIncompatible), hadIncompatible);
        }
    }

    /// <summary>Tries the file source; <see langword="true"/> when it answered (a mapped module, or an entry this engine cannot use).</summary>
    private bool TryLoadMapped(Engine engine, string name, CacheKey key, ref bool hadIncompatible, out Loaded? result)
    {
        result = null;
        if (_files is null || !_files.TryGetFile(key, out var file))
        {
            return false;
        }

        using (file)
        {
            try
            {
                result = new Loaded(WasmModule.DeserializeFile(engine, name, file.Path), ModuleOrigin.MappedFile, file.PayloadLength);
                return true;
            }
            catch (WasmtimeException e)
            {
                // Mapping can fail for reasons of its own (no /proc, a descriptor limit): the verified
                // bytes decide whether the entry itself is unusable.
                LogMappedFailed(_logger, key, e.Message);
                return false;
            }
        }
    }

    private Loaded? TryLoadCached(Engine engine, string name, CacheKey key, ref bool hadIncompatible)
    {
        try
        {
            if (TryLoadMapped(engine, name, key, ref hadIncompatible, out var mapped))
            {
                return mapped;
            }

            if (!_cache.TryGet(key, out var content))
            {
                return null;
            }

            using (content)
            {
                return TryDeserializeBytes(engine, name, key, content, ref hadIncompatible);
            }
        }
        catch (Exception e) when (IsCacheFailure(e))
        {
            LogCacheFailed(_logger, "read", key, e);
            return null;
        }
    }

    private Loaded? TryDeserializeBytes(Engine engine, string name, CacheKey key, Stream content, ref bool hadIncompatible)
    {
        var bytes = content is MemoryStream memory && memory.TryGetBuffer(out var segment)
            ? segment
            : new ArraySegment<byte>(ReadAll(content));
        return TryDeserialize(() => WasmModule.Deserialize(engine, name, bytes), key, ref hadIncompatible) is { } module
            ? new Loaded(module, ModuleOrigin.CacheHit, bytes.Count)
            : null;
    }

    private WasmModule? TryDeserialize(Func<WasmModule> deserialize, CacheKey key, ref bool hadIncompatible)
    {
        try
        {
            return deserialize();
        }
        catch (WasmtimeException e)
        {
            // Built by another Wasmtime or with other settings under this key: useless to this engine.
            // Removed only where this host owns it: a shared (fleet) tier keeps it for hosts that can use it.
            hadIncompatible = true;
            LogIncompatible(_logger, key, e.Message);
            try
            {
                _cache.DeleteLocal(key);
            }
            catch (Exception d) when (IsCacheFailure(d))
            {
                LogCacheFailed(_logger, "delete", key, d);
            }

            return null;
        }
    }

    private IDisposable? AcquireMachineLock(CacheKey key, CancellationToken cancellationToken)
    {
        if (_compileLockTimeout <= TimeSpan.Zero)
        {
            return null;
        }

        try
        {
            if (_cache.TryAcquireCompileLock(key, _compileLockTimeout, cancellationToken, out var acquired) && acquired is null)
            {
                LogCompileLockTimedOut(_logger, key, _compileLockTimeout.TotalSeconds);
            }

            return acquired;
        }
        catch (Exception e) when (IsCacheFailure(e))
        {
            LogCacheFailed(_logger, "lock", key, e); // compiling without the lock only costs a duplicate compile
            return null;
        }
    }

    /// <summary>
    /// With <see cref="WasmtimeEngineSettings"/> the key must describe the engine's code, so the engine
    /// must come from <see cref="WasmtimeEngineSettings.CreateEngine"/> with equal settings. (A custom
    /// key type is the caller's promise.)
    /// </summary>
    private static void ThrowIfNotBound(Engine engine, IWasmCodeCacheKey settings)
    {
        if (settings is not WasmtimeEngineSettings wanted)
        {
            return;
        }

        var bound = WasmtimeEngineSettings.BoundTo(engine);
        if (bound is null)
        {
            throw new ArgumentException("The engine was not created by WasmtimeEngineSettings.CreateEngine(), so the loader cannot know that the settings describe its code; create it with settings.CreateEngine().", nameof(engine));
        }

        if (!bound.Equals(wanted))
        {
            throw new ArgumentException($"The engine was created from other settings than the ones passed ({bound} against {wanted}); its code would be cached under the wrong key.", nameof(settings));
        }
    }

    /// <summary>
    /// Whatever a cache throws is its own failure and never fails a load, except what no code can
    /// recover from (out of memory) and a cancellation the caller asked for.
    /// </summary>
    private static bool IsCacheFailure(Exception e) => e is not (OutOfMemoryException or OperationCanceledException);

    private static WasmModule Compile(Engine engine, string name, ReadOnlySpan<byte> wasm, bool validate)
    {
        if (validate && WasmModule.Validate(engine, wasm) is { } error)
        {
            throw new WasmtimeException($"Module '{name}' is not valid WebAssembly: {error}");
        }

        return WasmModule.FromBytes(engine, name, wasm);
    }

    private void Store(CacheKey key, byte[] serialized, bool localOnly)
    {
        try
        {
            using var content = new MemoryStream(serialized, writable: false);
            if (localOnly)
            {
                _cache.AddLocal(key, content); // the shared entry stays for the hosts that can use it
            }
            else
            {
                _cache.Add(key, content);
            }
        }
        catch (Exception e) when (IsCacheFailure(e))
        {
            // The module is compiled and usable; a cache that cannot store it only costs the next start.
            LogCacheFailed(_logger, "add", key, e);
        }
    }

    private static byte[] ReadAll(Stream content)
    {
        using var copy = new MemoryStream();
        content.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>
    /// Drops the live modules of <paramref name="engine"/> (modules still held by a
    /// <see cref="LoadedModule"/> are disposed when it is). Call it before disposing an engine whose
    /// modules should not wait for the engine to be collected.
    /// </summary>
    /// <param name="engine">The engine.</param>
    /// <returns>How many live modules were dropped.</returns>
    public int Forget(Engine engine)
    {
        ArgumentNullException.ThrowIfNull(engine);
        return _live.Forget(engine);
    }

    /// <summary>Bytes of live modules held (their serialized sizes), for diagnostics and tests.</summary>
    public long LiveModuleBytes => _live.Bytes;

    private LoadedModule Shared(Engine engine, string name, CacheKey key, byte[] bytes, long start)
        => _live.TryLease(engine, key) is { } live // the compiling caller used this engine too
            ? Done(live, ModuleOrigin.SharedCompile, start)
            : Done(engine, new Loaded(WasmModule.Deserialize(engine, name, bytes), ModuleOrigin.SharedCompile, bytes.Length), key, start);

    private LoadedModule Done(Engine engine, Loaded loaded, CacheKey key, long start)
        => Done(_live.Add(engine, key, loaded.Module, loaded.Size), loaded.Origin, start);

    private LoadedModule Done(LiveModules.Entry lease, ModuleOrigin origin, long start)
    {
        _loads.Add(1, new KeyValuePair<string, object?>("filecache.origin", origin.ToString().ToLowerInvariant()));
        return new LoadedModule(_live, lease, origin, Stopwatch.GetElapsedTime(start));
    }

    /// <summary>A module this call obtained, where from, and its serialized size (for the live budget).</summary>
    private readonly record struct Loaded(WasmModule Module, ModuleOrigin Origin, long Size);

    [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "Cache entry {Key} cannot be used by this engine ({Reason}); removed from this host's tiers, compiling again")]
    private static partial void LogIncompatible(ILogger logger, CacheKey key, string reason);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Waited {Seconds} s for another process compiling key {Key}; compiling it here too")]
    private static partial void LogCompileLockTimedOut(ILogger logger, CacheKey key, double seconds);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "Mapping the cache entry {Key} failed ({Reason}); trying its bytes")]
    private static partial void LogMappedFailed(ILogger logger, CacheKey key, string reason);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "The code cache failed to {Operation} key {Key}; continuing without it")]
    private static partial void LogCacheFailed(ILogger logger, string operation, CacheKey key, Exception exception);
}
