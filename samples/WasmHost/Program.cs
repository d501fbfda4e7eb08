// WasmHost: loads a WebAssembly module through FileCache, calls one export and reports whether the
// machine code came from the cache.
//
//   WasmHost [module.wasm] [function] [args...] [--embedded] [--cache disk|memory|none] [--cache-dir DIR] [--load-only] [--opt none|speed]
//
// Without a module it runs a plugin generated from WebAssembly text (Workload.cs), whose compile takes
// about a second: the first run compiles and stores it, the next ones load it from the cache and say
// how long the first compile took and what the hit saved.
// --embedded runs fib.wasm instead (built from fib.wat), a <WasmModule> item: fib(90). Published with
// -p:WasmPrecompile=true, its machine code ships in wasm-precompiled next to the binary, and the
// first start on a machine like the publishing one is already a hit (UsePrecompiled below).
//
// --load-only loads (compiles or hits) and exits without instantiating: for modules whose imports
// (WASI, a JS runtime) this host does not provide, and for timing the load alone.
// --opt none compiles without optimizations: other engine settings, so other cache keys.
using System.Diagnostics;
using System.Globalization;
using FileCache;
using FileCache.Wasmtime;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wasmtime;
using WasmModule = Wasmtime.Module; // System.Reflection.Module would clash

var options = HostOptions.Parse(args);
if (options.Error is not null)
{
    Console.Error.WriteLine(options.Error);
    Console.Error.WriteLine("usage: WasmHost [module.wasm] [function] [args...] [--embedded] [--cache disk|memory|none] [--cache-dir DIR] [--load-only] [--opt none|speed]");
    return 2;
}

// A plain ServiceCollection, not the Generic Host: a command-line host starts in milliseconds, and
// the Generic Host's configuration and lifetime machinery alone cost about 45 ms here.
var services = new ServiceCollection();
// The logger factory is made here, not by AddLogging(): its options and open-generic loggers are
// types a NativeAOT process builds at run time on first use (about 2 ms here). See StderrLogger.cs.
services.AddSingleton<ILoggerFactory>(new LoggerFactory([new StderrLoggerProvider()], new LoggerFilterOptions { MinLevel = LogLevel.Warning }));
if (options.Cache != "none")
{
    services.AddWasmCodeCache(c =>
    {
        if (options.Cache == "memory")
        {
            c.UseMemory();
        }
        else
        {
            c.UsePrecompiled(); // wasm-precompiled next to the app, read-only, in front (see -p:WasmPrecompile=true)
            c.UseDisk(o => o.Directory = options.CacheDirectory); // null: the user cache folder
        }

        c.AddWasmtime();
    });
}

await using var provider = services.BuildServiceProvider();
WasmtimeModuleCache? loader;
try
{
    // Resolving the loader runs every options check (the ones IStartupValidator would run first).
    loader = provider.GetService<WasmtimeModuleCache>();
}
catch (OptionsValidationException e)
{
    Console.Error.WriteLine(e.Message); // names the option, the directory and the fix
    return 2;
}
byte[] wasm;
string name;
if (options.Embedded)
{
    wasm = WasmHost.WasmModules.Fib.Bytes.ToArray();
    name = "fib.wasm (embedded)";
}
else if (options.ModulePath is null)
{
    wasm = WasmModule.ConvertText(Workload.Text());
    name = Workload.Name;
}
else
{
    wasm = File.ReadAllBytes(options.ModulePath); // synchronous: an async read would start pool threads in a process that lives for milliseconds
    name = options.ModulePath;
}

var settings = new WasmtimeEngineSettings { Optimization = options.Optimization };
using var engine = settings.CreateEngine();
var loadTimer = Stopwatch.StartNew();
WasmModule module;
CacheKey? key = null;
bool hit = false;
IDisposable owner; // a Loaded<global::Wasmtime.Module> (dispose it, not its module: the loader may share the module) or the module
string origin;
if (loader is not null)
{
    // The embedded module's key comes from its build-time digest: nothing is hashed.
    var loaded = options.Embedded ? loader.Load(engine, WasmHost.WasmModules.Fib) : loader.Load(engine, new WasmSource(name, wasm, validate: true));
    (module, owner) = (loaded.Value, loaded);
    origin = loaded.IsHit ? $"hit ({loaded.Origin})" : $"miss ({loaded.Origin})";
    (key, hit) = (loaded.Key, loaded.IsHit);
}
else
{
    module = WasmModule.FromBytes(engine, name, wasm);
    owner = module;
    origin = "no cache";
}

loadTimer.Stop();
// On a hit: what the first compile of this key took, and what the hit saved (the same timer).
string? saving = key is { } k && options.Cache == "disk" ? Savings.Record(options.CacheDirectory, k, hit, loadTimer.Elapsed) : null;
if (options.LoadOnly)
{
    Console.WriteLine($"module: {name}, {wasm.Length} bytes; cache: {options.Cache}");
    Console.WriteLine($"load:   {origin} in {loadTimer.Elapsed.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture)} ms");
    PrintSaving(saving);
    owner.Dispose();
    return 0;
}

using (owner)
{
    using var store = new Store(engine);
    Instance instance;
    try
    {
        instance = new Instance(store, module);
    }
    catch (WasmtimeException e)
    {
        // Modules that import WASI or a JS runtime cannot be instantiated by this small host.
        Console.WriteLine($"load:   {origin} in {loadTimer.Elapsed.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture)} ms");
        Console.Error.WriteLine($"Cannot instantiate '{name}': {e.Message} (it needs imports this host does not provide; --load-only loads it without instantiating).");
        return 4;
    }

    var function = instance.GetFunction(options.Function);
    if (function is null)
    {
        Console.Error.WriteLine($"The module has no exported function '{options.Function}'.");
        return 3;
    }

    // Untyped Invoke: typed functions with tuple results do not work under NativeAOT.
    var arguments = options.Arguments.Length > 0 || options.ModulePath is not null ? options.Arguments : options.Embedded ? ["90"] : [Workload.Argument];
    if (arguments.Length != function.Parameters.Count)
    {
        Console.Error.WriteLine($"'{options.Function}' takes {function.Parameters.Count} arguments; {arguments.Length} given.");
        return 2;
    }

    var values = new ValueBox[arguments.Length];
    for (int i = 0; i < values.Length; i++)
    {
        values[i] = function.Parameters[i] switch
        {
            ValueKind.Int32 => int.Parse(arguments[i], CultureInfo.InvariantCulture),
            ValueKind.Int64 => long.Parse(arguments[i], CultureInfo.InvariantCulture),
            ValueKind.Float32 => float.Parse(arguments[i], CultureInfo.InvariantCulture),
            ValueKind.Float64 => double.Parse(arguments[i], CultureInfo.InvariantCulture),
            var kind => throw new NotSupportedException($"Parameter {i} of '{options.Function}' has type {kind}, which WasmHost cannot pass."),
        };
    }

    var callTimer = Stopwatch.StartNew();
    object? result = function.Invoke(values);
    callTimer.Stop();

    Console.WriteLine($"module: {name}, {wasm.Length} bytes; cache: {options.Cache}");
    Console.WriteLine($"load:   {origin} in {loadTimer.Elapsed.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture)} ms");
    Console.WriteLine($"call:   {options.Function}({string.Join(", ", arguments)}) = {Convert.ToString(result, CultureInfo.InvariantCulture)} in {callTimer.Elapsed.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture)} ms");
    PrintSaving(saving);
}

return 0;

static void PrintSaving(string? saving)
{
    if (saving is not null)
    {
        Console.WriteLine(saving);
    }
}

/// <summary>The command line.</summary>
internal sealed record HostOptions(string? ModulePath, string Function, string[] Arguments, string Cache, string? CacheDirectory, string? Error, bool LoadOnly = false, OptimizationLevel Optimization = OptimizationLevel.Speed, bool Embedded = false)
{
    public static HostOptions Parse(string[] args)
    {
        var positional = new List<string>();
        string cache = "disk";
        string? dir = null;
        bool loadOnly = false, embedded = false;
        var optimization = OptimizationLevel.Speed;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--cache" when i + 1 < args.Length:
                    cache = args[++i];
                    break;
                case "--cache-dir" when i + 1 < args.Length:
                    dir = args[++i];
                    break;
                case "--load-only":
                    loadOnly = true;
                    break;
                case "--embedded":
                    embedded = true;
                    break;
                case "--opt" when i + 1 < args.Length && args[i + 1] is "none" or "speed":
                    optimization = args[++i] == "none" ? OptimizationLevel.None : OptimizationLevel.Speed;
                    break;
                case "--cache" or "--cache-dir" or "--opt":
                    return new(null, "", [], cache, dir, $"{args[i]} needs a value{(args[i] == "--opt" ? ": none or speed" : "")}.");
                default:
                    positional.Add(args[i]);
                    break;
            }
        }

        if (cache is not ("disk" or "memory" or "none"))
        {
            return new(null, "", [], cache, dir, $"--cache must be disk, memory or none; got '{cache}'.");
        }

        string? path = positional.Count > 0 ? positional[0] : null;
        if (path is not null && !File.Exists(path))
        {
            return new(null, "", [], cache, dir, $"No module file at '{path}'.");
        }

        if (path is not null && embedded)
        {
            return new(null, "", [], cache, dir, "--embedded runs the embedded fib.wasm: give no module file with it.");
        }

        string function = positional.Count > 1 ? positional[1] : embedded ? "fib" : Workload.Function;
        return new(path, function, positional.Skip(2).ToArray(), cache, dir, null, loadOnly, optimization, embedded);
    }
}
