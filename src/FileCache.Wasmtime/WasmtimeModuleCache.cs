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

    /// <summary>Creates the loader over a cache.</summary>
    /// <param name="cache">The cache (any backend or tiers).</param>
    /// <param name="logger">Receives incompatible entries and cache failures; optional.</param>
    /// <param name="meterFactory">Creates the meter for <c>filecache.wasmtime.loads</c>; optional.</param>
    public WasmtimeModuleCache(IWasmCodeCache cache, ILogger<WasmtimeModuleCache>? logger = null, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(cache);
        _cache = cache;
        // A tier that can pin verified files lets Wasmtime map the entry instead of copying it.
        _files = cache as ICacheEntryFileSource ?? (cache as TieredCodeCache)?.Tiers.OfType<ICacheEntryFileSource>().FirstOrDefault();
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        var meter = meterFactory?.Create(new MeterOptions(Diagnostics.WasmCodeCacheMetrics.MeterName)) ?? SharedMeter;
        _loads = meter.CreateCounter<long>("filecache.wasmtime.loads", "{module}", "Modules loaded, tagged by filecache.origin (mappedfile, cachehit, compiled, recompiled, sharedcompile).");
    }

    private static readonly Meter SharedMeter = new(Diagnostics.WasmCodeCacheMetrics.MeterName);

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
        long start = Stopwatch.GetTimestamp();
        var key = settings.DeriveKey(wasm);
        bool hadIncompatible = false;
        if (TryLoadCached(engine, name, key, ref hadIncompatible) is { } hit)
        {
            return Done(hit.Module, hit.Origin, key, start);
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
                var bytes = running.WaitAsync(cancellationToken).GetAwaiter().GetResult();
                return Done(WasmModule.Deserialize(engine, name, bytes), ModuleOrigin.SharedCompile, key, start);
            }
        }

        try
        {
            // Another process may have added it while this one looked.
            if (!hadIncompatible && TryLoadCached(engine, name, key, ref hadIncompatible) is { } late)
            {
                compiled.SetResult(late.Module.Serialize()); // for callers that queued behind this one
                return Done(late.Module, late.Origin, key, start);
            }

            var module = Compile(engine, name, wasm, validate);
            var serialized = module.Serialize();
            compiled.SetResult(serialized);
            Store(key, serialized);
            return Done(module, hadIncompatible ? ModuleOrigin.Recompiled : ModuleOrigin.Compiled, key, start);
        }
        catch (Exception e)
        {
            compiled.TrySetException(e);
            throw;
        }
        finally
        {
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
        cancellationToken.ThrowIfCancellationRequested();
        long start = Stopwatch.GetTimestamp();
        var key = settings.DeriveKey(wasm.Span);
        if (_compiling.TryGetValue(key, out var running))
        {
            var bytes = await running.WaitAsync(cancellationToken).ConfigureAwait(false);
            return Done(WasmModule.Deserialize(engine, name, bytes), ModuleOrigin.SharedCompile, key, start);
        }

        // The lookup is asynchronous to the store, so a network tier holds no thread while it waits.
        var (hit, hadIncompatible) = await TryLoadCachedAsync(engine, name, key, cancellationToken).ConfigureAwait(false);
        if (hit is { } found)
        {
            return Done(found.Module, found.Origin, key, start);
        }

        // Compiling is CPU-bound work that Wasmtime does synchronously; keep it off the caller's thread.
        return await Task.Run(() => CompileOnce(engine, name, key, wasm.Span, validate, hadIncompatible, start, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask<((WasmModule Module, ModuleOrigin Origin)? Hit, bool HadIncompatible)> TryLoadCachedAsync(Engine engine, string name, CacheKey key, CancellationToken cancellationToken)
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
            var loaded = TryDeserializeBytes(engine, name, key, content, ref hadIncompatible);
            return (loaded is null ? null : (loaded, ModuleOrigin.CacheHit), hadIncompatible);
        }
    }

    /// <summary>Tries the file source; <see langword="true"/> when it answered (a mapped module, or an entry this engine cannot use).</summary>
    private bool TryLoadMapped(Engine engine, string name, CacheKey key, ref bool hadIncompatible, out (WasmModule Module, ModuleOrigin Origin)? result)
    {
        result = null;
        if (_files is null || !_files.TryGetFile(key, out var file))
        {
            return false;
        }

        using (file)
        {
            if (TryDeserialize(() => WasmModule.DeserializeFile(engine, name, file.Path), key, ref hadIncompatible) is { } mapped)
            {
                result = (mapped, ModuleOrigin.MappedFile);
            }

            return true;
        }
    }

    private (WasmModule Module, ModuleOrigin Origin)? TryLoadCached(Engine engine, string name, CacheKey key, ref bool hadIncompatible)
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
                var loaded = TryDeserializeBytes(engine, name, key, content, ref hadIncompatible);
                return loaded is null ? null : (loaded, ModuleOrigin.CacheHit);
            }
        }
        catch (Exception e) when (IsCacheFailure(e))
        {
            LogCacheFailed(_logger, "read", key, e);
            return null;
        }
    }

    private WasmModule? TryDeserializeBytes(Engine engine, string name, CacheKey key, Stream content, ref bool hadIncompatible)
    {
        var bytes = content is MemoryStream memory && memory.TryGetBuffer(out var segment)
            ? segment
            : new ArraySegment<byte>(ReadAll(content));
        return TryDeserialize(() => WasmModule.Deserialize(engine, name, bytes), key, ref hadIncompatible);
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
            hadIncompatible = true;
            LogIncompatible(_logger, key, e.Message);
            try
            {
                _cache.Delete(key);
            }
            catch (Exception d) when (IsCacheFailure(d))
            {
                LogCacheFailed(_logger, "delete", key, d);
            }

            return null;
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

    private void Store(CacheKey key, byte[] serialized)
    {
        try
        {
            using var content = new MemoryStream(serialized, writable: false);
            _cache.Add(key, content);
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

    private LoadedModule Done(WasmModule module, ModuleOrigin origin, CacheKey key, long start)
    {
        _loads.Add(1, new KeyValuePair<string, object?>("filecache.origin", origin.ToString().ToLowerInvariant()));
        return new LoadedModule(module, origin, key, Stopwatch.GetElapsedTime(start));
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "Cache entry {Key} cannot be used by this engine ({Reason}); deleted, compiling again")]
    private static partial void LogIncompatible(ILogger logger, CacheKey key, string reason);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "The code cache failed to {Operation} key {Key}; continuing without it")]
    private static partial void LogCacheFailed(ILogger logger, string operation, CacheKey key, Exception exception);
}
