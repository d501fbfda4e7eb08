using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Wasmtime;

namespace FileCache.Wasmtime;

/// <summary>
/// Loads Wasmtime modules and components through an <see cref="IWasmCodeCache"/>: derive the key,
/// look once through the typed lookup (<see cref="CacheEntryExtensions.TryGetEntry"/>: a verified file
/// that Wasmtime memory-maps, or bytes), otherwise compile, serialize and add. An entry this engine cannot use is deleted and
/// replaced. Inside a process a key is compiled at most once at a time: concurrent callers wait
/// for that compile. A failing cache never fails a load.
/// </summary>
public sealed partial class WasmtimeModuleCache
{
    private readonly IWasmCodeCache _cache;
    private readonly ILogger _logger;
    private readonly Counter<long> _loads;
    private readonly Counter<long> _staleDigests;
    private readonly Histogram<double> _loadDuration;
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
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        var meter = Diagnostics.WasmCodeCacheMetrics.GetMeter(meterFactory);
        _loads = meter.CreateCounter<long>("filecache.wasmtime.loads", "{module}", "Modules and components loaded, tagged by filecache.origin (livemodule, mappedfile, cachehit, compiled, recompiled, sharedcompile) and filecache.artifact (module, component).");
        _staleDigests = meter.CreateCounter<long>("filecache.wasmtime.stale_digests", "{module}", "Modules whose bytes did not match the digest they were loaded with (a stale build's, or a stale stored one) when they were compiled: loaded under the key of their bytes instead.");
        _loadDuration = meter.CreateHistogram(
            "filecache.wasmtime.load.duration",
            "s",
            "How long a load took, key derivation and any compile included, tagged like filecache.wasmtime.loads: the compiled loads' durations against the hits' show the compile time the cache saves.",
            tags: null,
            // Hits take microseconds to milliseconds, compiles seconds: the exporters' default buckets (0, 5, 10 ... s) would put every hit in one.
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.00001, 0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] });
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
        long start = Stopwatch.GetTimestamp();
        var (lease, origin) = Load(ModuleKind.Instance, engine, settings, name, wasm, null, validate, cancellationToken);
        return new LoadedModule(_live, lease, origin, Measured(origin, "module", start));
    }

    /// <summary>Loads a module, from the cache when possible, without blocking while another caller compiles it.</summary>
    /// <param name="engine">The engine; it must have been created with <paramref name="settings"/>.</param>
    /// <param name="settings">The engine's settings as a key type.</param>
    /// <param name="name">The module's name.</param>
    /// <param name="wasm">The module's WebAssembly bytes.</param>
    /// <param name="validate">Validate the bytes before compiling them.</param>
    /// <param name="cancellationToken">Cancels the lookup and waiting for another caller's compile.</param>
    /// <returns>The module and where it came from.</returns>
    /// <exception cref="WasmtimeException">The bytes are not a valid module for this engine.</exception>
    public async ValueTask<LoadedModule> LoadAsync(Engine engine, IWasmCodeCacheKey settings, string name, ReadOnlyMemory<byte> wasm, bool validate = false, CancellationToken cancellationToken = default)
    {
        long start = Stopwatch.GetTimestamp();
        var (lease, origin) = await LoadAsync(ModuleKind.Instance, engine, settings, name, wasm, null, validate, cancellationToken).ConfigureAwait(false);
        return new LoadedModule(_live, lease, origin, Measured(origin, "module", start));
    }

    /// <summary>
    /// Loads a module known only at run time whose digest was computed once before
    /// (<see cref="WasmDigest.Compute"/>, kept beside the file: <see cref="WasmDigest.ChunkDigests"/> as
    /// hex, read back with <see cref="WasmDigest.FromHex"/>), so the key hashes nothing and a reload on the
    /// same engine is a dictionary lookup. A digest that does not match the bytes is caught before a
    /// compile (counted in <c>filecache.wasmtime.stale_digests</c>): the module is then filed under the key
    /// of its bytes, never under another module's.
    /// </summary>
    /// <param name="engine">The engine; it must have been created with <paramref name="settings"/>.</param>
    /// <param name="settings">The engine's settings as a key type.</param>
    /// <param name="name">The module's name.</param>
    /// <param name="wasm">The module's WebAssembly bytes.</param>
    /// <param name="digest">The bytes' digest, computed before.</param>
    /// <param name="validate">Validate the bytes before compiling them.</param>
    /// <param name="cancellationToken">Cancels waiting for another caller's compile.</param>
    /// <returns>The module and where it came from.</returns>
    /// <exception cref="WasmtimeException">The bytes are not a valid module for this engine.</exception>
    public LoadedModule Load(Engine engine, IWasmCodeCacheKey settings, string name, ReadOnlySpan<byte> wasm, WasmDigest digest, bool validate = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(digest);
        long start = Stopwatch.GetTimestamp();
        var (lease, origin) = Load(ModuleKind.Instance, engine, settings, name, wasm, digest, validate, cancellationToken);
        return new LoadedModule(_live, lease, origin, Measured(origin, "module", start));
    }

    /// <summary>As <see cref="Load(Engine, IWasmCodeCacheKey, string, ReadOnlySpan{byte}, WasmDigest, bool, CancellationToken)"/>, without blocking while another caller compiles it.</summary>
    /// <param name="engine">The engine; it must have been created with <paramref name="settings"/>.</param>
    /// <param name="settings">The engine's settings as a key type.</param>
    /// <param name="name">The module's name.</param>
    /// <param name="wasm">The module's WebAssembly bytes.</param>
    /// <param name="digest">The bytes' digest, computed before.</param>
    /// <param name="validate">Validate the bytes before compiling them.</param>
    /// <param name="cancellationToken">Cancels the lookup and waiting for another caller's compile.</param>
    /// <returns>The module and where it came from.</returns>
    /// <exception cref="WasmtimeException">The bytes are not a valid module for this engine.</exception>
    public async ValueTask<LoadedModule> LoadAsync(Engine engine, IWasmCodeCacheKey settings, string name, ReadOnlyMemory<byte> wasm, WasmDigest digest, bool validate = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(digest);
        long start = Stopwatch.GetTimestamp();
        var (lease, origin) = await LoadAsync(ModuleKind.Instance, engine, settings, name, wasm, digest, validate, cancellationToken).ConfigureAwait(false);
        return new LoadedModule(_live, lease, origin, Measured(origin, "module", start));
    }

    /// <summary>
    /// Loads a component (the component model: the engine needs <see cref="WasmtimeEngineSettings.ComponentModel"/>),
    /// from the cache when possible. Components share the tiers, live cache and single flight with
    /// modules under keys of their own domain.
    /// </summary>
    /// <param name="engine">The engine; it must have been created with <paramref name="settings"/>.</param>
    /// <param name="settings">The engine's settings as a key type.</param>
    /// <param name="name">The component's name (for logs).</param>
    /// <param name="wasm">The component's WebAssembly bytes.</param>
    /// <param name="cancellationToken">Cancels waiting for another caller's compile.</param>
    /// <returns>The component and where it came from.</returns>
    /// <exception cref="WasmtimeException">The bytes are not a valid component for this engine.</exception>
    public LoadedComponent LoadComponent(Engine engine, IWasmCodeCacheKey settings, string name, ReadOnlySpan<byte> wasm, CancellationToken cancellationToken = default)
    {
        long start = Stopwatch.GetTimestamp();
        var (lease, origin) = Load(ComponentKind.Instance, engine, settings, name, wasm, null, validate: true, cancellationToken);
        return new LoadedComponent(_live, lease, origin, Measured(origin, "component", start));
    }

    /// <summary>Loads a component without blocking while another caller compiles it; see <see cref="LoadComponent(Engine, IWasmCodeCacheKey, string, ReadOnlySpan{byte}, CancellationToken)"/>.</summary>
    /// <param name="engine">The engine; it must have been created with <paramref name="settings"/>.</param>
    /// <param name="settings">The engine's settings as a key type.</param>
    /// <param name="name">The component's name (for logs).</param>
    /// <param name="wasm">The component's WebAssembly bytes.</param>
    /// <param name="cancellationToken">Cancels the lookup and waiting for another caller's compile.</param>
    /// <returns>The component and where it came from.</returns>
    /// <exception cref="WasmtimeException">The bytes are not a valid component for this engine.</exception>
    public async ValueTask<LoadedComponent> LoadComponentAsync(Engine engine, IWasmCodeCacheKey settings, string name, ReadOnlyMemory<byte> wasm, CancellationToken cancellationToken = default)
    {
        long start = Stopwatch.GetTimestamp();
        var (lease, origin) = await LoadAsync(ComponentKind.Instance, engine, settings, name, wasm, null, validate: true, cancellationToken).ConfigureAwait(false);
        return new LoadedComponent(_live, lease, origin, Measured(origin, "component", start));
    }

    /// <summary>
    /// Loads a module embedded by a <c>&lt;WasmModule&gt;</c> item (the generated <c>WasmModules</c> class).
    /// Its key comes from the digest computed at build time, so a warm load hashes nothing; its bytes
    /// are the assembly's resource in place (no copy).
    /// </summary>
    /// <param name="engine">The engine; it must have been created with <paramref name="settings"/>.</param>
    /// <param name="settings">The engine's settings as a key type.</param>
    /// <param name="module">The embedded module.</param>
    /// <param name="cancellationToken">Cancels waiting for another caller's compile.</param>
    /// <returns>The module and where it came from.</returns>
    /// <exception cref="ArgumentException"><paramref name="module"/> is a component (use <see cref="LoadComponent(Engine, IWasmCodeCacheKey, EmbeddedWasmModule, CancellationToken)"/>).</exception>
    public LoadedModule Load(Engine engine, IWasmCodeCacheKey settings, EmbeddedWasmModule module, CancellationToken cancellationToken = default)
    {
        long start = Stopwatch.GetTimestamp();
        ThrowIfKind(module, component: false);
        var (lease, origin) = Load(ModuleKind.Instance, engine, settings, module.Name, module.Bytes.Span, module.Digest, validate: true, cancellationToken);
        return new LoadedModule(_live, lease, origin, Measured(origin, "module", start));
    }

    /// <summary>Loads a module embedded by a <c>&lt;WasmModule&gt;</c> item without blocking while another caller compiles it.</summary>
    /// <param name="engine">The engine; it must have been created with <paramref name="settings"/>.</param>
    /// <param name="settings">The engine's settings as a key type.</param>
    /// <param name="module">The embedded module.</param>
    /// <param name="cancellationToken">Cancels the lookup and waiting for another caller's compile.</param>
    /// <returns>The module and where it came from.</returns>
    /// <exception cref="ArgumentException"><paramref name="module"/> is a component.</exception>
    public async ValueTask<LoadedModule> LoadAsync(Engine engine, IWasmCodeCacheKey settings, EmbeddedWasmModule module, CancellationToken cancellationToken = default)
    {
        long start = Stopwatch.GetTimestamp();
        ThrowIfKind(module, component: false);
        var (lease, origin) = await LoadAsync(ModuleKind.Instance, engine, settings, module.Name, module.Bytes, module.Digest, validate: true, cancellationToken).ConfigureAwait(false);
        return new LoadedModule(_live, lease, origin, Measured(origin, "module", start));
    }

    /// <summary>Loads a component embedded by a <c>&lt;WasmModule&gt;</c> item; its key needs no hashing.</summary>
    /// <param name="engine">The engine; it must have been created with <paramref name="settings"/>.</param>
    /// <param name="settings">The engine's settings as a key type.</param>
    /// <param name="module">The embedded component.</param>
    /// <param name="cancellationToken">Cancels waiting for another caller's compile.</param>
    /// <returns>The component and where it came from.</returns>
    /// <exception cref="ArgumentException"><paramref name="module"/> is a core module (use <see cref="Load(Engine, IWasmCodeCacheKey, EmbeddedWasmModule, CancellationToken)"/>).</exception>
    public LoadedComponent LoadComponent(Engine engine, IWasmCodeCacheKey settings, EmbeddedWasmModule module, CancellationToken cancellationToken = default)
    {
        long start = Stopwatch.GetTimestamp();
        ThrowIfKind(module, component: true);
        var (lease, origin) = Load(ComponentKind.Instance, engine, settings, module.Name, module.Bytes.Span, module.Digest, validate: true, cancellationToken);
        return new LoadedComponent(_live, lease, origin, Measured(origin, "component", start));
    }

    private static void ThrowIfKind(EmbeddedWasmModule module, bool component)
    {
        ArgumentNullException.ThrowIfNull(module);
        if (module.IsComponent != component)
        {
            throw new ArgumentException($"'{module.Name}' is a {(module.IsComponent ? "component: load it with LoadComponent" : "core module: load it with Load")}.", nameof(module));
        }
    }

    private (LiveModules.Entry Lease, ModuleOrigin Origin) Load<T>(ArtifactKind<T> kind, Engine engine, IWasmCodeCacheKey settings, string name, ReadOnlySpan<byte> wasm, WasmDigest? digest, bool validate, CancellationToken cancellationToken)
        where T : class, IDisposable
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(name);
        ThrowIfNotBound(engine, settings);
        var key = kind.KeyOf(digest is null ? settings.DeriveKey(wasm) : settings.DeriveKey(digest));
        if (_live.TryLease(engine, key) is { } live)
        {
            return Done(live, ModuleOrigin.LiveModule);
        }

        bool hadIncompatible = false;
        if (TryLoadCached(kind, engine, name, key, CacheLookupScope.All, ref hadIncompatible) is { } hit)
        {
            return Done(engine, hit, key);
        }

        if (IsStale(digest, wasm, name, key))
        {
            return Load(kind, engine, settings, name, wasm, null, validate, cancellationToken);
        }

        // Claim the compile, or wait for the caller in this process that did.
        var compiled = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        while (!_compiling.TryAdd(key, compiled.Task))
        {
            if (_compiling.TryGetValue(key, out var running))
            {
                WaitingForCompile?.Invoke(key);
                var bytes = running.WaitAsync(cancellationToken).GetAwaiter().GetResult();
                return Shared(kind, engine, name, key, bytes);
            }
        }

        return Lead(kind, engine, name, key, wasm, validate, hadIncompatible, compiled, cancellationToken);
    }

    private async ValueTask<(LiveModules.Entry Lease, ModuleOrigin Origin)> LoadAsync<T>(ArtifactKind<T> kind, Engine engine, IWasmCodeCacheKey settings, string name, ReadOnlyMemory<byte> wasm, WasmDigest? digest, bool validate, CancellationToken cancellationToken)
        where T : class, IDisposable
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(name);
        ThrowIfNotBound(engine, settings);
        cancellationToken.ThrowIfCancellationRequested();
        var key = kind.KeyOf(digest is null ? settings.DeriveKey(wasm.Span) : settings.DeriveKey(digest));
        if (_live.TryLease(engine, key) is { } live)
        {
            return Done(live, ModuleOrigin.LiveModule);
        }

        // The lookup is asynchronous to the store, so a network tier holds no thread while it waits.
        var (hit, hadIncompatible) = await TryLoadCachedAsync(kind, engine, name, key, CacheLookupScope.All, cancellationToken).ConfigureAwait(false);
        if (hit is { } found)
        {
            return Done(engine, found, key);
        }

        if (IsStale(digest, wasm.Span, name, key))
        {
            return await LoadAsync(kind, engine, settings, name, wasm, null, validate, cancellationToken).ConfigureAwait(false);
        }

        // Claim the compile, or wait for the caller that did without holding a thread.
        var compiled = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        while (!_compiling.TryAdd(key, compiled.Task))
        {
            if (_compiling.TryGetValue(key, out var running))
            {
                WaitingForCompile?.Invoke(key);
                var bytes = await running.WaitAsync(cancellationToken).ConfigureAwait(false);
                return Shared(kind, engine, name, key, bytes);
            }
        }

        // As the claimant: wait for another process's compile (the machine lock), then re-check the
        // tiers another process can fill, all without holding a thread.
        IDisposable? machineLock = null;
        try
        {
            machineLock = await AcquireMachineLockAsync(key, cancellationToken).ConfigureAwait(false);
            if (!hadIncompatible)
            {
                (hit, hadIncompatible) = await TryLoadCachedAsync(kind, engine, name, key, CacheLookupScope.SharedTiers, cancellationToken).ConfigureAwait(false);
                if (hit is { } late)
                {
                    return LateHit(kind, engine, key, late, compiled);
                }
            }

            // Compiling is CPU-bound work that Wasmtime does synchronously; keep it off the caller's thread.
            var module = await Task.Run(() => kind.Compile(engine, name, wasm.Span, validate), CancellationToken.None).ConfigureAwait(false);
            var serialized = kind.Serialize(module);
            compiled.SetResult(serialized);
            await StoreAsync(key, serialized, localOnly: hadIncompatible, cancellationToken).ConfigureAwait(false);
            return Fresh(engine, key, module, serialized.Length, hadIncompatible);
        }
        catch (Exception e)
        {
            compiled.TrySetException(e);
            throw;
        }
        finally
        {
            EndClaim(key, compiled, machineLock);
        }
    }

    /// <summary>
    /// Before compiling an embedded module under its build-time digest's key: do the bytes have that
    /// digest? A stale build (a digest left from a previous module) must never file the new module's
    /// code under the old module's key, where every correct app would find it. A mismatch is logged
    /// and counted, and the load goes on under the key of the bytes. Costs one hash, only on a miss.
    /// </summary>
    private bool IsStale(WasmDigest? digest, ReadOnlySpan<byte> wasm, string name, CacheKey key)
    {
        if (digest is null || digest.Matches(wasm))
        {
            return false;
        }

        _staleDigests.Add(1);
        LogStaleDigest(_logger, name, key);
        return true;
    }

    /// <summary>As the caller that claimed <paramref name="key"/>: re-checks the shared tiers, compiles, stores, and hands the bytes to the waiters.</summary>
    private (LiveModules.Entry Lease, ModuleOrigin Origin) Lead<T>(ArtifactKind<T> kind, Engine engine, string name, CacheKey key, ReadOnlySpan<byte> wasm, bool validate, bool hadIncompatible, TaskCompletionSource<byte[]> compiled, CancellationToken cancellationToken)
        where T : class, IDisposable
    {
        IDisposable? machineLock = null;
        try
        {
            // One compile per machine: processes sharing the disk tier take its lock for this key,
            // and whoever waited finds the entry that the holder added.
            machineLock = AcquireMachineLock(key, cancellationToken);

            // Another process may have added it while this one looked, or waited: only the tiers it
            // can reach are asked again (nothing else in this process compiles this key).
            if (!hadIncompatible && TryLoadCached(kind, engine, name, key, CacheLookupScope.SharedTiers, ref hadIncompatible) is { } late)
            {
                return LateHit(kind, engine, key, late, compiled);
            }

            var module = kind.Compile(engine, name, wasm, validate);
            var serialized = kind.Serialize(module);
            compiled.SetResult(serialized);
            Store(key, serialized, localOnly: hadIncompatible);
            return Fresh(engine, key, module, serialized.Length, hadIncompatible);
        }
        catch (Exception e)
        {
            compiled.TrySetException(e);
            throw;
        }
        finally
        {
            EndClaim(key, compiled, machineLock);
        }
    }

    /// <summary>The entry arrived from another process while this one claimed the key: hand its bytes to the callers queued behind this one.</summary>
    private (LiveModules.Entry Lease, ModuleOrigin Origin) LateHit<T>(ArtifactKind<T> kind, Engine engine, CacheKey key, Loaded late, TaskCompletionSource<byte[]> compiled)
        where T : class, IDisposable
    {
        compiled.SetResult(kind.Serialize((T)late.Artifact));
        return Done(engine, late, key);
    }

    private (LiveModules.Entry Lease, ModuleOrigin Origin) Fresh(Engine engine, CacheKey key, IDisposable artifact, long size, bool hadIncompatible)
        => Done(engine, new Loaded(artifact, hadIncompatible ? ModuleOrigin.Recompiled : ModuleOrigin.Compiled, size), key);

    /// <summary>Ends a claim: releases the machine lock and lets the next caller claim the key.</summary>
    private void EndClaim(CacheKey key, TaskCompletionSource<byte[]> compiled, IDisposable? machineLock)
    {
        machineLock?.Dispose();
        _compiling.TryRemove(new KeyValuePair<CacheKey, Task<byte[]>>(key, compiled.Task));
    }

    private Loaded? TryLoadCached<T>(ArtifactKind<T> kind, Engine engine, string name, CacheKey key, CacheLookupScope scope, ref bool hadIncompatible)
        where T : class, IDisposable
    {
        CacheEntry? entry;
        try
        {
            if (!_cache.TryGetEntry(key, out entry, scope))
            {
                return null;
            }
        }
        catch (Exception e) when (IsCacheFailure(e))
        {
            LogCacheFailed(_logger, "read", key, e);
            return null;
        }

        using (entry)
        {
            return TryLoadEntry(kind, engine, name, key, entry, ref hadIncompatible);
        }
    }

    private async ValueTask<(Loaded? Hit, bool HadIncompatible)> TryLoadCachedAsync<T>(ArtifactKind<T> kind, Engine engine, string name, CacheKey key, CacheLookupScope scope, CancellationToken cancellationToken)
        where T : class, IDisposable
    {
        CacheEntry? entry;
        try
        {
            entry = await _cache.GetEntryAsync(key, scope, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsCacheFailure(e))
        {
            LogCacheFailed(_logger, "read", key, e);
            return (null, false);
        }

        if (entry is null)
        {
            return (null, false);
        }

        using (entry)
        {
            bool hadIncompatible = false;
            return (TryLoadEntry(kind, engine, name, key, entry, ref hadIncompatible), hadIncompatible);
        }
    }

    /// <summary>Turns a hit into a module: maps a verified file, else deserializes the bytes; an entry this engine cannot use is removed from this host's tiers.</summary>
    private Loaded? TryLoadEntry<T>(ArtifactKind<T> kind, Engine engine, string name, CacheKey key, CacheEntry entry, ref bool hadIncompatible)
        where T : class, IDisposable
    {
        ReadOnlyMemory<byte> bytes;
        if (entry.File is { } file)
        {
            try
            {
                return new Loaded(kind.DeserializeFile(engine, name, file.Path), ModuleOrigin.MappedFile, file.PayloadLength);
            }
            catch (WasmtimeException e)
            {
                // Mapping can fail for reasons of its own (no /proc, a descriptor limit): the verified
                // bytes decide whether the entry itself is unusable.
                LogMappedFailed(_logger, key, e.Message);
            }

            try
            {
                bytes = file.ReadPayload();
            }
            catch (Exception e) when (IsCacheFailure(e))
            {
                LogCacheFailed(_logger, "read", key, e);
                return null;
            }
        }
        else
        {
            bytes = entry.Bytes;
        }

        try
        {
            return new Loaded(kind.Deserialize(engine, name, bytes.Span), ModuleOrigin.CacheHit, bytes.Length);
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

    private async ValueTask<IDisposable?> AcquireMachineLockAsync(CacheKey key, CancellationToken cancellationToken)
    {
        if (_compileLockTimeout <= TimeSpan.Zero)
        {
            return null;
        }

        try
        {
            var (offered, acquired) = await _cache.TryAcquireCompileLockAsync(key, _compileLockTimeout, cancellationToken).ConfigureAwait(false);
            if (offered && acquired is null)
            {
                LogCompileLockTimedOut(_logger, key, _compileLockTimeout.TotalSeconds);
            }

            return acquired;
        }
        catch (Exception e) when (IsCacheFailure(e))
        {
            LogCacheFailed(_logger, "lock", key, e);
            return null;
        }
    }

    private async ValueTask StoreAsync(CacheKey key, byte[] serialized, bool localOnly, CancellationToken cancellationToken)
    {
        if (localOnly)
        {
            Store(key, serialized, localOnly); // local tiers only: the recompile after an unusable entry
            return;
        }

        try
        {
            using var content = new MemoryStream(serialized, writable: false);
            await _cache.AddAsync(key, content, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsCacheFailure(e))
        {
            LogCacheFailed(_logger, "add", key, e);
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

    private (LiveModules.Entry Lease, ModuleOrigin Origin) Shared<T>(ArtifactKind<T> kind, Engine engine, string name, CacheKey key, byte[] bytes)
        where T : class, IDisposable
        => _live.TryLease(engine, key) is { } live // the compiling caller used this engine too
            ? Done(live, ModuleOrigin.SharedCompile)
            : Done(engine, new Loaded(kind.Deserialize(engine, name, bytes), ModuleOrigin.SharedCompile, bytes.Length), key);

    private (LiveModules.Entry Lease, ModuleOrigin Origin) Done(Engine engine, Loaded loaded, CacheKey key)
        => Done(_live.Add(engine, key, loaded.Artifact, loaded.Size), loaded.Origin);

    private static (LiveModules.Entry Lease, ModuleOrigin Origin) Done(LiveModules.Entry lease, ModuleOrigin origin) => (lease, origin);

    /// <summary>Counts a finished load and records its duration; returns the duration.</summary>
    private TimeSpan Measured(ModuleOrigin origin, string artifact, long start)
    {
        var elapsed = Stopwatch.GetElapsedTime(start);
        var tags = new TagList { { "filecache.origin", origin.ToString().ToLowerInvariant() }, { "filecache.artifact", artifact } };
        _loads.Add(1, tags);
        _loadDuration.Record(elapsed.TotalSeconds, tags);
        return elapsed;
    }

    /// <summary>A module or component this call obtained, where from, and its serialized size (for the live budget).</summary>
    private readonly record struct Loaded(IDisposable Artifact, ModuleOrigin Origin, long Size);
    [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "Cache entry {Key} cannot be used by this engine ({Reason}); removed from this host's tiers, compiling again")]
    private static partial void LogIncompatible(ILogger logger, CacheKey key, string reason);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Waited {Seconds} s for another process compiling key {Key}; compiling it here too")]
    private static partial void LogCompileLockTimedOut(ILogger logger, CacheKey key, double seconds);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "Mapping the cache entry {Key} failed ({Reason}); trying its bytes")]
    private static partial void LogMappedFailed(ILogger logger, CacheKey key, string reason);

    [LoggerMessage(EventId = 5, Level = LogLevel.Warning, Message = "The module '{Name}' does not match the digest it was given (key {Key}): a stale build or a stale stored digest. Loading it under the key of its bytes; rebuild the app or compute the digest again")]
    private static partial void LogStaleDigest(ILogger logger, string name, CacheKey key);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "The code cache failed to {Operation} key {Key}; continuing without it")]
    private static partial void LogCacheFailed(ILogger logger, string operation, CacheKey key, Exception exception);
}
