using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using FileCache.Wasmtime.Internal;
using Wasmtime;
using Wasmtime.Components;
using WasmModule = Wasmtime.Module; // System.Reflection.Module would clash

namespace FileCache.Wasmtime;

/// <summary>
/// Loads Wasmtime modules and components through an <see cref="IWasmCodeCache"/>: derive the key,
/// look once through the tiers' typed lookup (a verified file that Wasmtime memory-maps, or bytes),
/// otherwise compile, serialize and add. An entry this engine cannot use is removed from this host's
/// tiers and replaced. Inside a process one caller at a time loads a key (lookup, verification,
/// deserialize or compile): concurrent callers on the same engine share its live module. A failing
/// cache never fails a load.
/// </summary>
/// <remarks>
/// Each load is written once (<c>WasmtimeModuleCache.Pipeline.cs</c>); the synchronous methods run the
/// same code in a mode whose every step completes synchronously. <c>Internal/README.md</c> walks one load through it.
/// </remarks>
public sealed partial class WasmtimeModuleCache
{
    private readonly FileCache.Tiering.TieredCodeCache _tiers;
    private readonly bool _offersLock;
    private readonly ILogger _logger;
    private readonly Counter<long> _loads;
    private readonly Counter<long> _staleDigests;
    private readonly Histogram<double> _loadDuration;
    private readonly ConcurrentDictionary<CacheKey, Flight> _flights = new();
    private readonly LiveModules _live;
    private readonly TimeSpan _compileLockTimeout;

    /// <summary>For tests: called when a caller starts waiting for another caller's load of a key.</summary>
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
        // What the loader needs of the cache is read once, here: a lone backend becomes a set of one.
        _tiers = cache as FileCache.Tiering.TieredCodeCache ?? new FileCache.Tiering.TieredCodeCache([cache]);
        _offersLock = _tiers.Tiers.Any(static t => t is ICompileLockSource);
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
        var (lease, origin) = RunBlocking(ModuleKind.Instance, engine, settings, name, wasm, null, validate, cancellationToken);
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
        var (lease, origin) = await LoadCore<WasmModule, NonBlocking>(ModuleKind.Instance, engine, settings, name, wasm, null, validate, cancellationToken).ConfigureAwait(false);
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
        var (lease, origin) = RunBlocking(ModuleKind.Instance, engine, settings, name, wasm, digest, validate, cancellationToken);
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
        var (lease, origin) = await LoadCore<WasmModule, NonBlocking>(ModuleKind.Instance, engine, settings, name, wasm, digest, validate, cancellationToken).ConfigureAwait(false);
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
        var (lease, origin) = RunBlocking(ComponentKind.Instance, engine, settings, name, wasm, null, validate: true, cancellationToken);
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
        var (lease, origin) = await LoadCore<Component, NonBlocking>(ComponentKind.Instance, engine, settings, name, wasm, null, validate: true, cancellationToken).ConfigureAwait(false);
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
        var (lease, origin) = RunBlocking(ModuleKind.Instance, engine, settings, module.Name, module.Bytes, module.Digest, validate: true, cancellationToken);
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
        var (lease, origin) = await LoadCore<WasmModule, NonBlocking>(ModuleKind.Instance, engine, settings, module.Name, module.Bytes, module.Digest, validate: true, cancellationToken).ConfigureAwait(false);
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
        var (lease, origin) = RunBlocking(ComponentKind.Instance, engine, settings, module.Name, module.Bytes, module.Digest, validate: true, cancellationToken);
        return new LoadedComponent(_live, lease, origin, Measured(origin, "component", start));
    }

    /// <summary>Loads a component embedded by a <c>&lt;WasmModule&gt;</c> item without blocking while another caller compiles it.</summary>
    /// <param name="engine">The engine; it must have been created with <paramref name="settings"/>.</param>
    /// <param name="settings">The engine's settings as a key type.</param>
    /// <param name="module">The embedded component.</param>
    /// <param name="cancellationToken">Cancels the lookup and waiting for another caller's compile.</param>
    /// <returns>The component and where it came from.</returns>
    /// <exception cref="ArgumentException"><paramref name="module"/> is a core module.</exception>
    public async ValueTask<LoadedComponent> LoadComponentAsync(Engine engine, IWasmCodeCacheKey settings, EmbeddedWasmModule module, CancellationToken cancellationToken = default)
    {
        long start = Stopwatch.GetTimestamp();
        ThrowIfKind(module, component: true);
        var (lease, origin) = await LoadCore<Component, NonBlocking>(ComponentKind.Instance, engine, settings, module.Name, module.Bytes, module.Digest, validate: true, cancellationToken).ConfigureAwait(false);
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

    /// <summary>Counts a finished load and records its duration; returns the duration.</summary>
    private TimeSpan Measured(ModuleOrigin origin, string artifact, long start)
    {
        var elapsed = Stopwatch.GetElapsedTime(start);
        var tags = new TagList { { "filecache.origin", origin.ToString().ToLowerInvariant() }, { "filecache.artifact", artifact } };
        _loads.Add(1, tags);
        _loadDuration.Record(elapsed.TotalSeconds, tags);
        return elapsed;
    }

}
