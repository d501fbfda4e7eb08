using System.Reflection;
using Wasmtime;

namespace FileCache.Wasmtime.Tests;

/// <summary>
/// Keys describe the code (issue 10): every Wasmtime <c>Config</c> setting is either a
/// <see cref="WasmtimeEngineSettings"/> property (so it is in the key) or listed here as code-neutral
/// with a reason. A Wasmtime upgrade that adds a setting fails this test until someone decides.
/// </summary>
public sealed class EngineSettingsCoverageTests
{
    private static readonly Dictionary<string, string> Covered = new()
    {
        ["WithBranchHinting"] = nameof(WasmtimeEngineSettings.BranchHinting),
        ["WithBulkMemory"] = nameof(WasmtimeEngineSettings.BulkMemory),
        ["WithCompilerStrategy"] = nameof(WasmtimeEngineSettings.CompilerStrategy),
        ["WithComponentModel"] = nameof(WasmtimeEngineSettings.ComponentModel),
        ["WithCraneliftNaNCanonicalization"] = nameof(WasmtimeEngineSettings.NaNCanonicalization),
        ["WithDebugInfo"] = nameof(WasmtimeEngineSettings.DebugInfo),
        ["WithEpochInterruption"] = nameof(WasmtimeEngineSettings.EpochInterruption),
        ["WithExceptions"] = nameof(WasmtimeEngineSettings.Exceptions),
        ["WithFuelConsumption"] = nameof(WasmtimeEngineSettings.ConsumeFuel),
        ["WithFunctionReferences"] = nameof(WasmtimeEngineSettings.FunctionReferences),
        ["WithGc"] = nameof(WasmtimeEngineSettings.GarbageCollection),
        ["WithMemory64"] = nameof(WasmtimeEngineSettings.Memory64),
        ["WithMemoryGuardSize"] = nameof(WasmtimeEngineSettings.MemoryGuardSize),
        ["WithMemoryMayMove"] = nameof(WasmtimeEngineSettings.MemoryMayMove),
        ["WithMemoryReservationForGrowth"] = nameof(WasmtimeEngineSettings.MemoryReservationForGrowth),
        ["WithMultiMemory"] = nameof(WasmtimeEngineSettings.MultiMemory),
        ["WithMultiValue"] = nameof(WasmtimeEngineSettings.MultiValue),
        ["WithOptimizationLevel"] = nameof(WasmtimeEngineSettings.Optimization),
        ["WithPoolingAllocationStrategy"] = nameof(WasmtimeEngineSettings.PoolingAllocator),
        ["WithReferenceTypes"] = nameof(WasmtimeEngineSettings.ReferenceTypes),
        ["WithRelaxedSIMD"] = nameof(WasmtimeEngineSettings.RelaxedSimd),
        ["WithSignalsBasedTraps"] = nameof(WasmtimeEngineSettings.SignalsBasedTraps),
        ["WithSIMD"] = nameof(WasmtimeEngineSettings.Simd),
        ["WithStaticMemoryMaximumSize"] = nameof(WasmtimeEngineSettings.MemoryReservation),
        ["WithTailCalls"] = nameof(WasmtimeEngineSettings.TailCalls),
        ["WithUnwindInfo"] = nameof(WasmtimeEngineSettings.UnwindInfo),
        ["WithWasmThreads"] = nameof(WasmtimeEngineSettings.Threads),
        ["WithWideArithmetic"] = nameof(WasmtimeEngineSettings.WideArithmetic),
    };

    private static readonly Dictionary<string, string> CodeNeutral = new()
    {
        ["WithCacheConfig"] = "where Wasmtime's own cache lives; FileCache replaces it",
        ["WithCraneliftDebugVerifier"] = "checks Cranelift's output; the output is the same",
        ["WithMacosMachPorts"] = "how traps reach the process on macOS, not what is compiled",
        ["WithMaximumStackSize"] = "a run-time limit read from the store, not compiled in",
        ["WithMemoryInitCopyOnWrite"] = "how instances initialise memory at instantiation",
        ["WithParallelCompilation"] = "how fast compiling runs, not what it produces",
        ["WithProfilingStrategy"] = "registers compiled code with a profiler at load time",
    };

    [Fact]
    public void EveryConfigSetting_IsCoveredOrListedAsCodeNeutral()
    {
        var settings = typeof(Config).GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly)
            .Where(m => m.Name.StartsWith("With", StringComparison.Ordinal)).Select(m => m.Name).Distinct().ToArray();
        var unknown = settings.Where(s => !Covered.ContainsKey(s) && !CodeNeutral.ContainsKey(s)).ToArray();
        Assert.True(unknown.Length == 0, "Wasmtime Config settings neither covered by WasmtimeEngineSettings nor listed as code-neutral: " + string.Join(", ", unknown));
        Assert.Empty(Covered.Keys.Concat(CodeNeutral.Keys).Except(settings)); // no stale entries
        foreach (var property in Covered.Values)
        {
            Assert.NotNull(typeof(WasmtimeEngineSettings).GetProperty(property));
        }
    }

    public static TheoryData<string> NewSettings() =>
        ["MemoryReservationForGrowth", "MemoryMayMove", "SignalsBasedTraps", "UnwindInfo", "ComponentModel", "CompilerStrategy", "BranchHinting", "WideArithmetic", "PoolingAllocator"];

    [Theory]
    [MemberData(nameof(NewSettings))]
    public void EachNewSetting_ChangesTheKey_AndMakesAWorkingEngine(string property)
    {
        var plain = new WasmtimeEngineSettings();
        var changed = property switch
        {
            "MemoryReservationForGrowth" => plain with { MemoryReservationForGrowth = 1 << 20 },
            "MemoryMayMove" => plain with { MemoryMayMove = false },
            "SignalsBasedTraps" => plain with { SignalsBasedTraps = false },
            "UnwindInfo" => plain with { UnwindInfo = false },
            "ComponentModel" => plain with { ComponentModel = false },
            "CompilerStrategy" => plain with { CompilerStrategy = CompilerStrategy.Cranelift },
            "BranchHinting" => plain with { BranchHinting = true },
            "WideArithmetic" => plain with { WideArithmetic = true },
            _ => plain with { PoolingAllocator = true },
        };
        var wasm = global::Wasmtime.Module.ConvertText("(module (func (export \"answer\") (result i32) i32.const 42))");
        Assert.NotEqual(plain.DeriveKey(wasm), changed.DeriveKey(wasm));
        using var engine = changed.CreateEngine();
        using var loaded = new WasmtimeModuleCache(new FileCache.Memory.MemoryCodeCache()).Load(engine, new WasmSource("m", wasm));
        using var store = new Store(engine);
        Assert.Equal(42, (int)new Instance(store, loaded.Value).GetFunction("answer")!.Invoke()!);
    }

    [Fact]
    public void AnEngineIsBoundToItsSettings()
    {
        var loader = new WasmtimeModuleCache(new FileCache.Memory.MemoryCodeCache());
        var plain = new WasmtimeEngineSettings();
        var wasm = global::Wasmtime.Module.ConvertText("(module)");
        var fuel = plain with { ConsumeFuel = true };
        using var fuelEngine = fuel.CreateEngine();
        using (var fromFuel = loader.Load(fuelEngine, new WasmSource("m", wasm)))
        {
            // The engine carries its settings: its code is filed under its own key, never another's.
            Assert.Equal(fuel.DeriveKey(wasm), fromFuel.Key);
            Assert.NotEqual(plain.DeriveKey(wasm), fromFuel.Key);
        }

        using var bare = new Engine(plain.CreateConfig());
        var unknown = Assert.Throws<ArgumentException>(() => loader.Load(bare, new WasmSource("m", wasm)));
        Assert.Contains("CreateEngine", unknown.Message);

        using var right = plain.CreateEngine();
        using var loaded = loader.Load(right, new WasmSource("m", wasm)); // equal settings, another instance
        Assert.Equal(ModuleOrigin.Compiled, loaded.Origin);
    }
}

/// <summary>The engine key carries what Wasmtime itself checks in a serialized module: its major version.</summary>
public sealed class WasmtimeVersionKeyTests
{
    [Fact]
    public void TheEngineKey_TakesWasmtimesMajorVersionOnly_SoAPatchUpgradeKeepsEveryEntry()
    {
        byte[] wasm = global::Wasmtime.Module.ConvertText("(module (func (export \"f\")))");
        var settings = new WasmtimeEngineSettings();
        var identity = typeof(global::Wasmtime.Engine).Assembly.GetName();
        Assert.Equal(50, identity.Version!.Major); // the pinned Wasmtime; update this test with the package

        CacheKey KeyWith(string version)
        {
            var builder = CacheKeyBuilder.Create(WasmtimeEngineSettings.KeyDomain, WasmtimeEngineSettings.KeyVersion);
            settings.AppendTo(ref builder);
            builder.AppendCount(1);
            builder.Append(identity.Name);
            builder.Append(version);
            builder.AppendTarget(includeCpuFeatures: true);
            return builder.Finish(wasm);
        }

        // The key is the one a major-only encoding gives ("50"), so 50.0.1 and 50.0.2 share it (the
        // encoding of a simulated release is tested in FileCache.Abstractions.Tests), and the full
        // version the key took before no longer enters it.
        Assert.Equal(KeyWith("50"), settings.DeriveKey(wasm));
        Assert.NotEqual(KeyWith(identity.Version.ToString()), settings.DeriveKey(wasm));
        Assert.NotEqual(KeyWith("51"), settings.DeriveKey(wasm));
    }
}
