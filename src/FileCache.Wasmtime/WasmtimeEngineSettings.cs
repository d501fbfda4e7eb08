using Wasmtime;

namespace FileCache.Wasmtime;

/// <summary>
/// The Wasmtime settings that change compiled machine code, as a cache key type: the generated
/// <c>DeriveKey</c> hashes every property, the major version of the Wasmtime assembly the process
/// runs (read at run time) and the CPU features, so an engine with other settings, another major
/// Wasmtime or another CPU never sees a foreign entry. Only the major version, because that is what
/// Wasmtime records in a serialized module and checks when it loads one (its default
/// <c>ModuleVersionStrategy::WasmtimeVersion</c>): a patch or minor upgrade keeps every entry, and
/// Wasmtime's own check stays the safety net (an entry it refuses is replaced on this host).
/// <see cref="CreateEngine"/> builds the engine with exactly these settings.
/// </summary>
/// <remarks>
/// Defaults follow Wasmtime's; a nullable property left null keeps Wasmtime's own default. Every
/// Wasmtime 50 <c>Config</c> setting that changes compiled code is a property here (a test
/// enumerates <c>Config</c>'s methods and fails on any that is neither covered nor listed as
/// code-neutral with its reason). Create engines with <see cref="CreateEngine"/>: the loader refuses
/// an engine made any other way, since it could not know whether the key describes its code.
/// </remarks>
[WasmCodeCacheKey("filecache/wasmtime-engine", Version = 1, RuntimeMajorVersionOf = [typeof(Engine)], IncludeCpuFeatures = true)]
public sealed partial record WasmtimeEngineSettings
{
    /// <summary>Cranelift's optimization level (default <see cref="OptimizationLevel.Speed"/>).</summary>
    public OptimizationLevel Optimization { get; init; } = OptimizationLevel.Speed;

    /// <summary>WebAssembly SIMD (default on).</summary>
    public bool Simd { get; init; } = true;

    /// <summary>Relaxed SIMD (default off).</summary>
    public bool RelaxedSimd { get; init; }

    /// <summary>Deterministic results for relaxed SIMD (default off).</summary>
    public bool RelaxedSimdDeterministic { get; init; }

    /// <summary>The threads proposal (default off).</summary>
    public bool Threads { get; init; }

    /// <summary>Fuel metering, which instruments compiled code (default off).</summary>
    public bool ConsumeFuel { get; init; }

    /// <summary>Epoch interruption, which instruments compiled code (default off).</summary>
    public bool EpochInterruption { get; init; }

    /// <summary>64-bit memories (default off).</summary>
    public bool Memory64 { get; init; }

    /// <summary>Multiple memories (default off).</summary>
    public bool MultiMemory { get; init; }

    /// <summary>Bulk memory operations (default on).</summary>
    public bool BulkMemory { get; init; } = true;

    /// <summary>Multi-value (default on).</summary>
    public bool MultiValue { get; init; } = true;

    /// <summary>Reference types (default on).</summary>
    public bool ReferenceTypes { get; init; } = true;

    /// <summary>Tail calls (default on).</summary>
    public bool TailCalls { get; init; } = true;

    /// <summary>Typed function references (default off).</summary>
    public bool FunctionReferences { get; init; }

    /// <summary>Garbage collection (default off; needs function references).</summary>
    public bool GarbageCollection { get; init; }

    /// <summary>Exception handling (default off).</summary>
    public bool Exceptions { get; init; }

    /// <summary>NaN canonicalization in Cranelift (default off).</summary>
    public bool NaNCanonicalization { get; init; }

    /// <summary>DWARF debug info in compiled code (default off).</summary>
    public bool DebugInfo { get; init; }

    /// <summary>The memory reservation in bytes, which decides bounds-check elision; null keeps Wasmtime's default.</summary>
    public ulong? MemoryReservation { get; init; }

    /// <summary>The guard region after memories in bytes, which decides bounds-check elision; null keeps Wasmtime's default.</summary>
    public ulong? MemoryGuardSize { get; init; }

    /// <summary>Extra reservation for memory growth in bytes (<c>WithMemoryReservationForGrowth</c>); null keeps Wasmtime's default.</summary>
    public ulong? MemoryReservationForGrowth { get; init; }

    /// <summary>Whether linear memories may move when they grow (<c>WithMemoryMayMove</c>); null keeps Wasmtime's default.</summary>
    public bool? MemoryMayMove { get; init; }

    /// <summary>Traps through signal handlers instead of explicit checks in the code (<c>WithSignalsBasedTraps</c>); null keeps Wasmtime's default.</summary>
    public bool? SignalsBasedTraps { get; init; }

    /// <summary>Unwind information in compiled code (<c>WithUnwindInfo</c>); null keeps Wasmtime's default.</summary>
    public bool? UnwindInfo { get; init; }

    /// <summary>The component model (<c>WithComponentModel</c>); null keeps Wasmtime's default.</summary>
    public bool? ComponentModel { get; init; }

    /// <summary>The compiler (<c>WithCompilerStrategy</c>; default <see cref="global::Wasmtime.CompilerStrategy.Auto"/>, which is Cranelift).</summary>
    public CompilerStrategy CompilerStrategy { get; init; } = CompilerStrategy.Auto;

    /// <summary>Branch hinting (default off).</summary>
    public bool BranchHinting { get; init; }

    /// <summary>Wide arithmetic (default off).</summary>
    public bool WideArithmetic { get; init; }

    /// <summary>The pooling instance allocator with its default configuration (<c>WithPoolingAllocationStrategy</c>; default off).</summary>
    public bool PoolingAllocator { get; init; }

    /// <summary>Creates a Wasmtime configuration with exactly these settings.</summary>
    /// <returns>A new configuration that the caller owns (an <see cref="Engine"/> takes it over).</returns>
    public Config CreateConfig()
    {
        var config = new Config()
            .WithOptimizationLevel(Optimization)
            .WithSIMD(Simd)
            .WithRelaxedSIMD(RelaxedSimd, RelaxedSimdDeterministic)
            .WithWasmThreads(Threads)
            .WithFuelConsumption(ConsumeFuel)
            .WithEpochInterruption(EpochInterruption)
            .WithMemory64(Memory64)
            .WithMultiMemory(MultiMemory)
            .WithBulkMemory(BulkMemory)
            .WithMultiValue(MultiValue)
            .WithReferenceTypes(ReferenceTypes)
            .WithTailCalls(TailCalls)
            .WithFunctionReferences(FunctionReferences)
            .WithGc(GarbageCollection)
            .WithExceptions(Exceptions)
            .WithCraneliftNaNCanonicalization(NaNCanonicalization)
            .WithDebugInfo(DebugInfo)
            .WithCompilerStrategy(CompilerStrategy)
            .WithBranchHinting(BranchHinting)
            .WithWideArithmetic(WideArithmetic);
        if (MemoryReservation is { } reservation)
        {
            config = config.WithStaticMemoryMaximumSize(reservation);
        }

        if (MemoryGuardSize is { } guard)
        {
            config = config.WithMemoryGuardSize(guard);
        }

        if (MemoryReservationForGrowth is { } growth)
        {
            config = config.WithMemoryReservationForGrowth(growth);
        }

        if (MemoryMayMove is { } mayMove)
        {
            config = config.WithMemoryMayMove(mayMove);
        }

        if (SignalsBasedTraps is { } signals)
        {
            config = config.WithSignalsBasedTraps(signals);
        }

        if (UnwindInfo is { } unwind)
        {
            config = config.WithUnwindInfo(unwind);
        }

        if (ComponentModel is { } components)
        {
            config = config.WithComponentModel(components);
        }

        if (PoolingAllocator)
        {
            using var pooling = new PoolingAllocationConfig();
            config = config.WithPoolingAllocationStrategy(pooling);
        }

        return config;
    }

    /// <summary>Creates an engine with exactly these settings, bound to them: <see cref="WasmtimeModuleCache"/>
    /// refuses to load with it under other settings.</summary>
    /// <returns>A new engine that the caller owns.</returns>
    public Engine CreateEngine()
    {
        var engine = new Engine(CreateConfig());
        EngineBindings.AddOrUpdate(engine, this);
        return engine;
    }

    /// <summary>The settings <paramref name="engine"/> was created from by <see cref="CreateEngine"/>, if any.</summary>
    internal static WasmtimeEngineSettings? BoundTo(Engine engine) => EngineBindings.TryGetValue(engine, out var settings) ? settings : null;

    // Weak on the engine: a binding lives as long as its engine.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Engine, WasmtimeEngineSettings> EngineBindings = new();
}
