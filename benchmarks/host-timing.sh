#!/usr/bin/env bash
# Times the NativeAOT WasmHost process end to end (start, load, exit) with a cold cache (a fresh
# directory each run: Wasmtime compiles) and a warm one (the entry is there: a mapped-file hit).
# Prints the median of each and their ratio. Needs benchmarks/fetch-modules.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
dotnet publish samples/WasmHost -c Release -r linux-x64 -o "$out/host" -nologo -v quiet > /dev/null
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
time_ms() { local s e; s=$(date +%s%N); "$@" > /dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
printf '| module | cold process (median ms) | warm process (median ms) | cold / warm |\n|---|---:|---:|---:|\n'
for module in sql-wasm.wasm tree-sitter-cpp.wasm esbuild.wasm wasm_bg.wasm; do
  path="benchmarks/modules/$module"
  cold=$(for i in $(seq "$runs"); do time_ms "$out/host/WasmHost" "$path" --load-only --cache-dir "$out/cold-$i"; done | median)
  "$out/host/WasmHost" "$path" --load-only --cache-dir "$out/warm" > /dev/null
  warm=$(for i in $(seq "$runs"); do time_ms "$out/host/WasmHost" "$path" --load-only --cache-dir "$out/warm"; done | median)
  printf '| %s | %s | %s | %.0fx |\n' "$module" "$cold" "$warm" "$(echo "$cold / $warm" | bc -l)"
done
