using BenchmarkDotNet.Running;

// dotnet run -c Release --project benchmarks/FileCache.Benchmarks -- --filter '*Disk*'
// Exits non-zero when a benchmark failed to run, so scripts notice.
var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
