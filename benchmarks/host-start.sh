#!/usr/bin/env bash
# The NativeAOT WasmHost's warm start against its floors, side by side (issue 20, item 4): an empty
# NativeAOT program, one that only creates a Wasmtime engine, one that also deserializes the cached
# entry (no FileCache, no DI), and WasmHost itself (--embedded, and sql-wasm.wasm from run-time bytes
# when benchmarks/fetch-modules.sh has run). Whole processes, interleaved, RUNS each; prints medians.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-31}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
wasmtime=$(sed -n 's/.*Include="Wasmtime" Version="\([^"]*\)".*/\1/p' Directory.Packages.props)

reference() { # name, program text, extra package reference
  mkdir -p "$out/$1"
  cat > "$out/$1/$1.csproj" <<PROJ
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><PublishAot>true</PublishAot>
    <InvariantGlobalization>true</InvariantGlobalization><ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally>
    <ImportDirectoryBuildProps>false</ImportDirectoryBuildProps>
  </PropertyGroup>
  <ItemGroup>$3</ItemGroup>
</Project>
PROJ
  printf '%s\n' "$2" > "$out/$1/Program.cs"
  dotnet publish "$out/$1" -c Release -r linux-x64 -o "$out/bin-$1" -nologo -v quiet > /dev/null
}

reference empty 'return 0;' ''
reference probe 'using var engine = new Wasmtime.Engine(new Wasmtime.Config());
if (args.Length > 0) { using var module = Wasmtime.Module.DeserializeFile(engine, "m", args[0]); }
return 0;' "<PackageReference Include=\"Wasmtime\" Version=\"$wasmtime\" />"
dotnet publish samples/WasmHost -c Release -r linux-x64 -o "$out/host" -nologo -v quiet > /dev/null

host="$out/host/WasmHost"
"$host" --embedded --load-only --cache-dir "$out/cache" > /dev/null
"$host" --embedded --load-only --cache-dir "$out/cache" > /dev/null # the second run writes nothing
entry=$(find "$out/cache" -maxdepth 1 -type f -name '[0-9a-f]*' | head -1)
commands=("$out/bin-empty/empty" "$out/bin-probe/probe" "$out/bin-probe/probe $entry" "$host --embedded --load-only --cache-dir $out/cache")
names=("empty NativeAOT program" "probe: create an engine" "probe: engine + DeserializeFile of the entry" "WasmHost --embedded, warm")
if [ -f benchmarks/modules/sql-wasm.wasm ]; then
  "$host" benchmarks/modules/sql-wasm.wasm --load-only --cache-dir "$out/cache" > /dev/null
  "$host" benchmarks/modules/sql-wasm.wasm --load-only --cache-dir "$out/cache" > /dev/null
  commands+=("$host benchmarks/modules/sql-wasm.wasm --load-only --cache-dir $out/cache")
  names+=("WasmHost sql-wasm.wasm (run-time bytes), warm")
fi

python3 - "$runs" "${#commands[@]}" "${commands[@]}" "${names[@]}" <<'PY'
import statistics, subprocess, sys, time
runs, n = int(sys.argv[1]), int(sys.argv[2])
commands, names = sys.argv[3:3 + n], sys.argv[3 + n:3 + 2 * n]
times = [[] for _ in commands]
for _ in range(3):  # warm-up: page cache, first-run effects
    for c in commands:
        subprocess.run(c.split(), stdout=subprocess.DEVNULL, check=True)
for _ in range(runs):  # interleaved, so a noisy moment hits every row alike
    for i, c in enumerate(commands):
        start = time.perf_counter_ns()
        subprocess.run(c.split(), stdout=subprocess.DEVNULL, check=True)
        times[i].append((time.perf_counter_ns() - start) / 1e6)
empty = statistics.median(times[0])
print(f"| process ({runs} runs each, interleaved) | median ms | x empty |\n|---|---:|---:|")
for name, t in zip(names, times):
    print(f"| {name} | {statistics.median(t):.1f} | {statistics.median(t) / empty:.2f} |")
PY
