using Wasmtime;

namespace FileCache.Wasmtime;

/// <summary>
/// The Wasmtime settings that change compiled machine code, as a cache key type: the generated
/// <c>DeriveKey</c> hashes every property, Wasmtime's assembly version and the CPU features, so
/// an engine with other settings, another Wasmtime or another CPU never sees a foreign entry.
/// <see cref="CreateEngine"/> builds the engine with exactly these settings.
/// </summary>
/// <remarks>
/// Defaults follow Wasmtime's. Configure anything else that changes code (pooling allocator,
/// custom memory settings) through these properties, not on the engine afterwards, or keys stop
/// describing the code.
/// </remarks>
[WasmCodeCacheKey("filecache/wasmtime-engine", Version = 1, VersionOf = [typeof(Engine)], IncludeCpuFeatures = true)]
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
            .WithDebugInfo(DebugInfo);
        if (MemoryReservation is { } reservation)
        {
            config = config.WithStaticMemoryMaximumSize(reservation);
        }

        if (MemoryGuardSize is { } guard)
        {
            config = config.WithMemoryGuardSize(guard);
        }

        return config;
    }

    /// <summary>Creates an engine with exactly these settings.</summary>
    /// <returns>A new engine that the caller owns.</returns>
    public Engine CreateEngine() => new(CreateConfig());
}
