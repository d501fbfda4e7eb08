using System.Diagnostics.Metrics;
using System.Globalization;
using Azure.Storage;
using Azure.Storage.Blobs;
using FileCache.Wasmtime;
using Microsoft.Extensions.DependencyInjection;

namespace FileCache.FleetWorker;

/// <summary>
/// azureblob &lt;disk-dir&gt; &lt;connection-string&gt; &lt;container&gt; &lt;module.wasm&gt; &lt;tasks&gt;: one host of
/// a fleet (its own disk tier) in front of Azure Blob Storage, where <c>tasks</c> callers load one new
/// module at once, each on an engine of its own. Prints how many loads compiled and the blob requests
/// this host sent, by operation.
/// </summary>
internal static class BlobHost
{
    public static async Task<int> RunAsync(string disk, string connectionString, string containerName, string module, int tasks)
    {
        var requests = new Dictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "filecache.azureblob.requests")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            string operation = "";
            foreach (var tag in tags)
            {
                if (tag.Key == "filecache.operation")
                {
                    operation = (string)tag.Value!;
                }
            }

            lock (requests)
            {
                requests[operation] = requests.GetValueOrDefault(operation) + value;
            }
        });
        listener.Start();

        var clientOptions = new BlobClientOptions();
        clientOptions.TransferValidation.Upload.ChecksumAlgorithm = StorageChecksumAlgorithm.None;
        clientOptions.TransferValidation.Download.ChecksumAlgorithm = StorageChecksumAlgorithm.None;
        var services = new ServiceCollection();
        services.AddWasmCodeCache(c => c
            .UseDisk(disk)
            .UseAzureBlob(o =>
            {
                o.Container = new BlobContainerClient(connectionString, containerName, clientOptions);
                o.AuthenticationKey = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
            })
            .AddWasmtime(o => o.CompileLockTimeout = TimeSpan.FromMinutes(1)));
        using var provider = services.BuildServiceProvider();
        var loader = provider.GetRequiredService<WasmtimeModuleCache>();
        var wasm = File.ReadAllBytes(module);
        var settings = new WasmtimeEngineSettings();
        var origins = await Task.WhenAll(Enumerable.Range(0, tasks).Select(_ => Task.Run(async () =>
        {
            using var engine = settings.CreateEngine();
            using var loaded = await loader.LoadAsync(engine, new WasmSource("stampede", wasm));
            return loaded.Origin;
        })));

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"compiled={origins.Count(o => o is ModuleOrigin.Compiled or ModuleOrigin.Recompiled)}"));
        Console.WriteLine("origins=" + string.Join(",", origins.GroupBy(o => o).Select(g => $"{g.Key}:{g.Count()}")));
        lock (requests)
        {
            Console.WriteLine("requests=" + string.Join(",", requests.OrderBy(r => r.Key).Select(r => string.Create(CultureInfo.InvariantCulture, $"{r.Key}:{r.Value}"))));
        }

        return 0;
    }
}
