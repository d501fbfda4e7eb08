#!/usr/bin/env bash
# The NativeAOT gate (CI runs it; run it yourself the same way: bash eng/aot-check.sh).
#  1. Publishes tests/FileCache.AotTestApp with NativeAOT, every FileCache assembly rooted, and fails
#     on any trim/AOT (IL) warning that names a FileCache assembly; then runs the native binary.
#  2. Publishes samples/WasmHost with NativeAOT and its <WasmModule> precompiled; checks that the first
#     start with a fresh cache directory maps the precompiled code, and that other engine settings
#     miss it, compile into the writable cache and hit there the next time, with the same result.
#     Then runs the root-published app as uid 1654 (the .NET images' non-root user): it must load the
#     precompiled code, and still start (compiling) when that directory is unreadable.
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

echo "== WasmHost: publish, with its <WasmModule> precompiled (-p:WasmPrecompile=true)"
dotnet publish samples/WasmHost -c Release -r "$rid" -p:WasmPrecompile=true -o "$out/host" -nologo 2>&1 | tee "$out/host.log"
if grep -E "warning IL[0-9]+" "$out/host.log" | grep -v "Wasmtime.Dotnet" | grep -q .; then
  echo "FAIL: trim/AOT warnings in the WasmHost publish"; exit 1
fi
ls "$out/host/wasm-precompiled" | grep -Eq '^[0-9a-f]{64}$' || { echo "FAIL: no precompiled entry next to the app"; exit 1; }
echo "== WasmHost: the first start on a fresh machine cache loads the precompiled code"
first=$("$out/host/WasmHost" --embedded --cache-dir "$out/cache")
echo "$first"
echo "$first" | grep -q "load:   hit (MappedFile)" || { echo "FAIL: the first start did not hit the precompiled tier"; exit 1; }
[ -z "$(ls -A "$out/cache" 2>/dev/null | grep -E '^[0-9a-f]{64}$')" ] || { echo "FAIL: the precompiled hit was copied into the writable cache"; exit 1; }
echo "== WasmHost: published as root, run as the container's non-root user (uid 1654, \$APP_UID), as samples/WasmHost/Dockerfile deploys it"
if [ "$(id -u)" = 0 ] && command -v setpriv > /dev/null; then
  chmod 755 "$out" # mktemp -d is 0700; an image's /app is 0755
  app_home=$(mktemp -d)
  chown 1654:1654 "$app_home"
  as_app() { setpriv --reuid=1654 --regid=1654 --clear-groups env -i PATH=/usr/bin:/bin HOME="$app_home" "$@"; }
  [ "$(stat -c %a "$out/host/wasm-precompiled")" = 755 ] || { echo "FAIL: wasm-precompiled is not 0755"; exit 1; }
  as_user=$(as_app "$out/host/WasmHost" --embedded)
  echo "$as_user"
  echo "$as_user" | grep -q "load:   hit (MappedFile)" || { echo "FAIL: uid 1654 did not load the root-published precompiled code"; exit 1; }
  # Published the old way (0700): the app still starts and compiles into its own cache.
  chmod 700 "$out/host/wasm-precompiled"
  old_modes=$(as_app "$out/host/WasmHost" --embedded --cache-dir "$app_home/other")
  echo "$old_modes"
  echo "$old_modes" | grep -q "load:   miss (Compiled)" || { echo "FAIL: an unreadable precompiled tier stopped the app"; exit 1; }
  chmod 755 "$out/host/wasm-precompiled"
  rm -rf "$app_home"
else
  echo "skip: running as uid 1654 needs root and setpriv (CI runs as root)"
fi
echo "== WasmHost: other engine settings miss the precompiled tier, compile into the writable one, then hit it"
other1=$("$out/host/WasmHost" --embedded --cache-dir "$out/cache" --opt none)
echo "$other1"
other2=$("$out/host/WasmHost" --embedded --cache-dir "$out/cache" --opt none)
echo "$other2"
echo "$other1" | grep -q "load:   miss (Compiled)" || { echo "FAIL: other settings did not compile"; exit 1; }
echo "$other2" | grep -q "load:   hit (MappedFile)" || { echo "FAIL: the second run with other settings was not a hit"; exit 1; }
[ "$(echo "$first" | grep '^call:' | sed 's/ in .*//')" = "$(echo "$other2" | grep '^call:' | sed 's/ in .*//')" ] \
  || { echo "FAIL: the runs returned different results"; exit 1; }

echo "== WasmHost's default, natively: the generated plugin compiles once, then the hit says what it saved"
plugin1=$("$out/host/WasmHost" --cache-dir "$out/plugin")
echo "$plugin1"
plugin2=$("$out/host/WasmHost" --cache-dir "$out/plugin")
echo "$plugin2"
echo "$plugin1" | grep -q "load:   miss (Compiled)" || { echo "FAIL: the default module did not compile on the first run"; exit 1; }
echo "$plugin2" | grep -q "load:   hit (MappedFile)" || { echo "FAIL: the default module's second run was not a hit"; exit 1; }
echo "$plugin2" | grep -q "^saved:  the first run compiled this module in" || { echo "FAIL: the second run did not show the saving"; exit 1; }

echo "== filecache tool: publish (NativeAOT), then native and JIT processes share keys"
dotnet publish tools/FileCache.Tool -c Release -r "$rid" -p:NativeTool=true -o "$out/tool" -nologo 2>&1 | tee "$out/tool.log"
mv "$out/tool/FileCache.Tool" "$out/tool/filecache" # the command's name (the assembly cannot be named so: README)
if grep -E "warning IL[0-9]+" "$out/tool.log" | grep -v "Wasmtime.Dotnet" | grep -q .; then
  echo "FAIL: trim/AOT warnings in the tool publish"; exit 1
fi
module=tests/FileCache.Wasmtime.Tests/modules/answer.wasm
native=$("$out/tool/filecache" warm --dir "$out/shared" "$module")
echo "$native"
dotnet build tools/FileCache.Tool -c Release -nologo -v quiet > /dev/null
jit=$(dotnet tools/FileCache.Tool/bin/Release/net10.0/FileCache.Tool.dll warm --dir "$out/shared" "$module")
echo "$jit"
echo "$native" | grep -q "^Compiled" || { echo "FAIL: the native tool did not compile"; exit 1; }
echo "$jit" | grep -q "^MappedFile" || { echo "FAIL: the JIT process missed the entry the native one added (different keys)"; exit 1; }
"$out/tool/filecache" verify --dir "$out/shared" || { echo "FAIL: the native tool's verify"; exit 1; }
echo "AOT gate passed."
