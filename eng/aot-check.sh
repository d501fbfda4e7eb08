#!/usr/bin/env bash
# The NativeAOT gate (CI runs it; run it yourself the same way: bash eng/aot-check.sh).
#  1. Publishes tests/FileCache.AotTestApp with NativeAOT, every FileCache assembly rooted, and fails
#     on any trim/AOT (IL) warning that names a FileCache assembly; then runs the native binary.
#  2. Publishes samples/WasmHost with NativeAOT, runs it twice on a fresh cache directory and checks
#     that the second run is a cache hit with the same result.
#  3. Publishes the filecache tool with NativeAOT, warms a module with it, and checks that the same
#     tool run on the JIT hits that entry: native and JIT processes derive the same keys.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rid=linux-x64
case "$(uname -m)" in aarch64|arm64) rid=linux-arm64 ;; esac

echo "== AOT test app: publish"
dotnet publish tests/FileCache.AotTestApp -c Release -r "$rid" -o "$out/aot" -nologo 2>&1 | tee "$out/aot.log"
if grep -E "warning IL[0-9]+" "$out/aot.log" | grep -v "Wasmtime.Dotnet" | grep -q .; then
  echo "FAIL: trim/AOT warnings from FileCache (or the app) above"; exit 1
fi
if grep -q "warning IL" "$out/aot.log"; then
  echo "note: Wasmtime.Dotnet's own IL warnings are listed above (not ours)"
fi
echo "== AOT test app: run"
"$out/aot/FileCache.AotTestApp"

echo "== WasmHost: publish"
dotnet publish samples/WasmHost -c Release -r "$rid" -o "$out/host" -nologo 2>&1 | tee "$out/host.log"
if grep -E "warning IL[0-9]+" "$out/host.log" | grep -v "Wasmtime.Dotnet" | grep -q .; then
  echo "FAIL: trim/AOT warnings in the WasmHost publish"; exit 1
fi
echo "== WasmHost: cold run, then warm run"
first=$("$out/host/WasmHost" --cache-dir "$out/cache")
echo "$first"
second=$("$out/host/WasmHost" --cache-dir "$out/cache")
echo "$second"
echo "$first" | grep -q "load:   miss" || { echo "FAIL: the first run did not compile"; exit 1; }
echo "$second" | grep -q "load:   hit" || { echo "FAIL: the second run was not a cache hit"; exit 1; }
[ "$(echo "$first" | grep '^call:' | sed 's/ in .*//')" = "$(echo "$second" | grep '^call:' | sed 's/ in .*//')" ] \
  || { echo "FAIL: the two runs returned different results"; exit 1; }
echo "== filecache tool: publish (NativeAOT), then native and JIT processes share keys"
dotnet publish tools/FileCache.Tool -c Release -r "$rid" -p:NativeTool=true -o "$out/tool" -nologo 2>&1 | tee "$out/tool.log"
if grep -E "warning IL[0-9]+" "$out/tool.log" | grep -v "Wasmtime.Dotnet" | grep -q .; then
  echo "FAIL: trim/AOT warnings in the tool publish"; exit 1
fi
module=tests/FileCache.Wasmtime.Tests/modules/answer.wasm
native=$("$out/tool/filecache" warm --dir "$out/shared" "$module")
echo "$native"
dotnet build tools/FileCache.Tool -c Release -nologo -v quiet > /dev/null
jit=$(dotnet tools/FileCache.Tool/bin/Release/net10.0/filecache.dll warm --dir "$out/shared" "$module")
echo "$jit"
echo "$native" | grep -q "^Compiled" || { echo "FAIL: the native tool did not compile"; exit 1; }
echo "$jit" | grep -q "^MappedFile" || { echo "FAIL: the JIT process missed the entry the native one added (different keys)"; exit 1; }
"$out/tool/filecache" verify --dir "$out/shared" || { echo "FAIL: the native tool's verify"; exit 1; }
echo "AOT gate passed."
