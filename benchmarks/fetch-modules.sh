#!/usr/bin/env bash
# Fetches the real WebAssembly modules the benchmarks use from the npm registry (pinned versions)
# into benchmarks/modules/ (git-ignored: never commit them).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p modules
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fetch() { # package@version, path inside the package, file name to save as
  local spec=$1 inner=$2 name=$3
  if [ -s "modules/$name" ]; then echo "have modules/$name"; return; fi
  (cd "$work" && npm pack --silent "$spec" > /dev/null)
  local tgz
  tgz=$(ls "$work"/*.tgz | head -n 1)
  tar -xzf "$tgz" -C "$work" "package/$inner"
  mv "$work/package/$inner" "modules/$name"
  rm -rf "$work"/*
  echo "fetched modules/$name from $spec ($(stat -c %s "modules/$name") bytes)"
}
fetch sql.js@1.16.0 dist/sql-wasm.wasm sql-wasm.wasm
fetch tree-sitter-wasms@0.1.13 out/tree-sitter-cpp.wasm tree-sitter-cpp.wasm
fetch esbuild-wasm@0.28.2 esbuild.wasm esbuild.wasm
fetch @swc/wasm@1.16.18 wasm_bg.wasm wasm_bg.wasm
