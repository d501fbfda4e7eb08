// FileCache's metrics through OpenTelemetry's console exporter: three loads of one module, each in a
// fresh engine (the first compiles, the others map the disk entry), then the exporter prints
// filecache.hits / misses / bytes_read / adds and filecache.wasmtime.loads and load.duration by origin.
//   dotnet run --project samples/Telemetry
using FileCache.Wasmtime;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;

string directory = Path.Join(Path.GetTempPath(), "filecache-telemetry-" + Guid.NewGuid().ToString("N"));
using (var meters = Sdk.CreateMeterProviderBuilder()
    .AddMeter("FileCache") // every FileCache instrument is on this one meter
    .AddConsoleExporter()
    .Build())
{
    var services = new ServiceCollection();
    services.AddWasmCodeCache(c => c.UseDisk(directory).AddWasmtime());
    using var provider = services.BuildServiceProvider();
    var loader = provider.GetRequiredService<WasmtimeModuleCache>();
    var settings = new WasmtimeEngineSettings();
    var wasm = Wasmtime.Module.ConvertText("(module (func (export \"answer\") (result i32) i32.const 42))");
    for (int i = 1; i <= 3; i++)
    {
        using var engine = settings.CreateEngine();
        using var loaded = loader.Load(engine, new WasmSource("answer", wasm));
        Console.WriteLine($"load {i}: {loaded.Origin} in {loaded.Elapsed.TotalMilliseconds:F2} ms");
    }

    meters.ForceFlush(); // print now rather than at the exporter's interval
}

Directory.Delete(directory, recursive: true);
