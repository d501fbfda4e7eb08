using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using FileCache.Internal;
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


    /// <summary>Loads a core module, from the cache when possible.</summary>
    /// <param name="engine">The engine, created by <see cref="WasmtimeEngineSettings.CreateEngine"/>: its settings are part of the key.</param>
    /// <param name="source">The module: bytes (with their digest when known) or an embedded module.</param>
    /// <param name="cancellationToken">Cancels waiting for another caller's load of the same module.</param>
    /// <returns>The module and where it came from.</returns>
    /// <exception cref="ArgumentException">The engine was not created by <see cref="WasmtimeEngineSettings.CreateEngine"/>, or the source is an embedded component.</exception>
    /// <exception cref="WasmtimeException">The bytes are not a valid module for this engine.</exception>
    public Loaded<WasmModule> Load(Engine engine, WasmSource source, CancellationToken cancellationToken = default)
        => Finish<WasmModule>(Stopwatch.GetTimestamp(), RunBlocking(ModuleKind.Instance, engine, source, cancellationToken));

    /// <summary>Loads a core module, from the cache when possible, without blocking on the cache or on another caller's load.</summary>
    /// <param name="engine">The engine, created by <see cref="WasmtimeEngineSettings.CreateEngine"/>: its settings are part of the key.</param>
    /// <param name="source">The module: bytes (with their digest when known) or an embedded module.</param>
    /// <param name="cancellationToken">Cancels the lookup and waiting for another caller's load.</param>
    /// <returns>The module and where it came from.</returns>
    /// <exception cref="ArgumentException">The engine was not created by <see cref="WasmtimeEngineSettings.CreateEngine"/>, or the source is an embedded component.</exception>
    /// <exception cref="WasmtimeException">The bytes are not a valid module for this engine.</exception>
    public async ValueTask<Loaded<WasmModule>> LoadAsync(Engine engine, WasmSource source, CancellationToken cancellationToken = default)
    {
        long start = Stopwatch.GetTimestamp();
        return Finish<WasmModule>(start, await LoadCore<WasmModule, NonBlocking>(ModuleKind.Instance, engine, source, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>
    /// Loads a component (the component model: the engine needs <see cref="WasmtimeEngineSettings.ComponentModel"/>),
    /// from the cache when possible. Components share the tiers, live cache and single flight with
    /// modules under keys of their own domain; their bytes are always validated before a compile.
    /// </summary>
    /// <param name="engine">The engine, created by <see cref="WasmtimeEngineSettings.CreateEngine"/>.</param>
    /// <param name="source">The component: bytes or an embedded component.</param>
    /// <param name="cancellationToken">Cancels waiting for another caller's load of the same component.</param>
    /// <returns>The component and where it came from.</returns>
    /// <exception cref="ArgumentException">The engine was not created by <see cref="WasmtimeEngineSettings.CreateEngine"/>, or the source is an embedded core module.</exception>
    /// <exception cref="WasmtimeException">The bytes are not a valid component for this engine.</exception>
    public Loaded<Component> LoadComponent(Engine engine, WasmSource source, CancellationToken cancellationToken = default)
        => Finish<Component>(Stopwatch.GetTimestamp(), RunBlocking(ComponentKind.Instance, engine, source, cancellationToken));

    /// <summary>Loads a component without blocking on the cache or on another caller's load; see <see cref="LoadComponent"/>.</summary>
    /// <param name="engine">The engine, created by <see cref="WasmtimeEngineSettings.CreateEngine"/>.</param>
    /// <param name="source">The component: bytes or an embedded component.</param>
    /// <param name="cancellationToken">Cancels the lookup and waiting for another caller's load.</param>
    /// <returns>The component and where it came from.</returns>
    /// <exception cref="ArgumentException">The engine was not created by <see cref="WasmtimeEngineSettings.CreateEngine"/>, or the source is an embedded core module.</exception>
    /// <exception cref="WasmtimeException">The bytes are not a valid component for this engine.</exception>
    public async ValueTask<Loaded<Component>> LoadComponentAsync(Engine engine, WasmSource source, CancellationToken cancellationToken = default)
    {
        long start = Stopwatch.GetTimestamp();
        return Finish<Component>(start, await LoadCore<Component, NonBlocking>(ComponentKind.Instance, engine, source, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>
    /// Drops the live modules of <paramref name="engine"/> (modules still held by a
    /// <see cref="Loaded{T}"/> are disposed when it is). Call it before disposing an engine whose
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

    /// <summary>Counts a finished load once and records its duration.</summary>
    private Loaded<T> Finish<T>(long start, (LiveModules.Entry Lease, ModuleOrigin Origin) done)
        where T : class
    {
        var elapsed = Stopwatch.GetElapsedTime(start);
        var tags = new TagList { { "filecache.origin", done.Origin.ToString().ToLowerInvariant() }, { "filecache.artifact", typeof(T) == typeof(Component) ? "component" : "module" } };
        _loads.Add(1, tags);
        _loadDuration.Record(elapsed.TotalSeconds, tags);
        return new Loaded<T>(_live, done.Lease, done.Origin, elapsed);
    }
}
