// Stores and loads one entry through the embedded default: a disk cache in the user cache folder.
// Run it twice: the first run misses and stores, the second hits.
using System.Text;
using FileCache;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

var builder = Host.CreateApplicationBuilder(args);
builder.Services.AddWasmCodeCache().UseDisk();
using var host = builder.Build();
await host.StartAsync(); // validates the options

var cache = host.Services.GetRequiredService<IWasmCodeCache>();
byte[] wasm = Encoding.UTF8.GetBytes("(module) pretend this is a .wasm file");
var key = CacheKey.Compute(wasm);

await using (var hit = await cache.GetAsync(key))
{
    if (hit is not null)
    {
        using var reader = new StreamReader(hit);
        Console.WriteLine($"hit  {key}: {await reader.ReadToEndAsync()}");
        await host.StopAsync();
        return;
    }
}

await cache.AddAsync(key, new MemoryStream(Encoding.UTF8.GetBytes("pretend this is machine code")));
Console.WriteLine($"miss {key}: compiled and stored; run again for a hit");
await host.StopAsync();
