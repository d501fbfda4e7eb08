// A rollout of one new module to a fleet, simulated in 10 ms steps: hosts start over a rolling window,
// look the module up, one compiles under the fleet lock, the others wait with the library's back-off and
// then download it. The store's published limits are parameters. Prints a table and draws
// benchmarks/rollout.png (hosts warm over time, store egress per second).
//
//   dotnet run -c Release --project benchmarks/FileCache.RolloutSimulation [-- output.png]
using System.Globalization;
using FileCache.RolloutSimulation;

var parameters = new Parameters();
Console.WriteLine(parameters.Describe());
Console.WriteLine();
Console.WriteLine("| fleet | tier | compiles | GETs | lock requests | PUTs | out of the store | all warm after | median host warm | peak body reads/s | cost in region | cost over internet |");
Console.WriteLine("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
var runs = new List<Result>();
foreach (int hosts in new[] { 100, 1_000, 10_000 })
{
    foreach (var tier in new[] { Tier.Blob, Tier.Redis, Tier.BlobWithRelays })
    {
        var result = new Simulation(parameters, hosts, tier, seed: 42).Run();
        runs.Add(result);
        Console.WriteLine(result.Row());
    }
}

Console.WriteLine();
foreach (var result in runs.Where(r => r.Tier == Tier.Blob))
{
    double naive = result.Hosts * parameters.RangesPerBody / parameters.BlobReadsPerSecond;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{result.Hosts,6} hosts: the body's {result.Hosts * parameters.RangesPerBody:N0} ranged reads need at least {naive:F1} s at the single-blob limit of {parameters.BlobReadsPerSecond:N0}/s; peak demand {result.PeakBodyReadsPerSecond:N0}/s{(result.PeakBodyReadsPerSecond >= parameters.BlobReadsPerSecond * 0.99 ? " (the blob's read limit is the bottleneck)" : "")}."));
}

string image = args.Length > 0 ? args[0] : Path.Join("benchmarks", "rollout.png");
Plot.Draw(runs, image);
Console.WriteLine();
Console.WriteLine($"Drew {image}.");
