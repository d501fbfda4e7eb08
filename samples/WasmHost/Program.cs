// WasmHost: loads a WebAssembly module through FileCache, calls one export and reports whether the
// machine code came from the cache.
//
//   WasmHost [module.wasm] [function] [args...] [--cache disk|memory|none] [--cache-dir DIR] [--load-only] [--opt none|speed]
//
// --load-only loads (compiles or hits) and exits without instantiating: for modules whose imports
// (WASI, a JS runtime) this host does not provide, and for timing the load alone.
// --opt none compiles without optimizations: other engine settings, so other cache keys.
// Without a module it runs fib.wasm (built from fib.wat), a <WasmModule> item: fib(90). Published with
// -p:WasmPrecompile=true, its machine code ships in wasm-precompiled next to the binary, and the
// first start on a machine like the publishing one is already a hit (UsePrecompiled below).
using System.Diagnostics;
using System.Globalization;
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
    Console.Error.WriteLine("usage: WasmHost [module.wasm] [function] [args...] [--cache disk|memory|none] [--cache-dir DIR] [--load-only]");
    return 2;
}

// A plain ServiceCollection, not the Generic Host: a command-line host starts in milliseconds, and
// the Generic Host's configuration and lifetime machinery alone cost about 45 ms here.
var services = new ServiceCollection();
services.AddLogging(b => b.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning));
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
try
{
    provider.GetService<IStartupValidator>()?.Validate(); // the options checks a host runs at start
}
catch (OptionsValidationException e)
{
    Console.Error.WriteLine(e.Message); // names the option, the directory and the fix
    return 2;
}
byte[] wasm;
string name;
if (options.ModulePath is null)
{
    wasm = WasmHost.WasmModules.Fib.Bytes.ToArray();
    name = "fib.wasm (embedded)";
}
else
{
    wasm = await File.ReadAllBytesAsync(options.ModulePath);
    name = options.ModulePath;
}

var settings = new WasmtimeEngineSettings { Optimization = options.Optimization };
using var engine = settings.CreateEngine();
var loadTimer = Stopwatch.StartNew();
WasmModule module;
IDisposable owner; // a LoadedModule (dispose it, not its module: the loader may share the module) or the module
string origin;
if (provider.GetService<WasmtimeModuleCache>() is { } loader)
{
    // The embedded module's key comes from its build-time digest: nothing is hashed.
    var loaded = options.ModulePath is null ? loader.Load(engine, settings, WasmHost.WasmModules.Fib) : loader.Load(engine, settings, name, wasm, validate: true);
    (module, owner) = (loaded.Module, loaded);
    origin = loaded.IsHit ? $"hit ({loaded.Origin})" : $"miss ({loaded.Origin})";
}
else
{
    module = WasmModule.FromBytes(engine, name, wasm);
    owner = module;
    origin = "no cache";
}

loadTimer.Stop();
if (options.LoadOnly)
{
    Console.WriteLine($"module: {name}, {wasm.Length} bytes; cache: {options.Cache}");
    Console.WriteLine($"load:   {origin} in {loadTimer.Elapsed.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture)} ms");
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
    var arguments = options.Arguments.Length == 0 && options.ModulePath is null ? ["90"] : options.Arguments;
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
}

return 0;

/// <summary>The command line.</summary>
internal sealed record HostOptions(string? ModulePath, string Function, string[] Arguments, string Cache, string? CacheDirectory, string? Error, bool LoadOnly = false, OptimizationLevel Optimization = OptimizationLevel.Speed)
{
    public static HostOptions Parse(string[] args)
    {
        var positional = new List<string>();
        string cache = "disk";
        string? dir = null;
        bool loadOnly = false;
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

        string function = positional.Count > 1 ? positional[1] : "fib";
        return new(path, function, positional.Skip(2).ToArray(), cache, dir, null, loadOnly, optimization);
    }
}
