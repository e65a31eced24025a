#!/usr/bin/env bash
# Installs what is missing, then runs the whole stack in the foreground until Ctrl-C:
# the CAS server (embedded SQLite store) on https://127.0.0.1:8443/cas, the demo origin on
# http://127.0.0.1:8080 and the edge filter under wrangler dev on http://127.0.0.1:8787.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

bash scripts/setup.sh --demo

RUN_DIR="$ROOT/.run"
mkdir -p "$RUN_DIR"
pids=()

stop_all() {
    for pid in "${pids[@]}"; do
        # Each service runs in its own process group, so its children stop with it.
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap stop_all EXIT INT TERM

start() {
    local name=$1
    shift
    setsid "$@" >"$RUN_DIR/$name.log" 2>&1 &
    pids+=($!)
    echo "started $name (pid $!, log .run/$name.log)"
}

wait_for() {
    local name=$1 url=$2
    shift 2
    for _ in $(seq 1 120); do
        if curl -fsS -o /dev/null "$@" "$url" 2>/dev/null; then
            echo "$name is up"
            return
        fi
        sleep 0.5
    done
    tail -n 30 "$RUN_DIR/$name.log" >&2
    die "$name did not respond at $url within 60 s; see .run/$name.log"
}

assertion_key=$(sed -n 's/^ASSERTION_KEY=//p' .dev.vars)

step "starting the stack"
start cas-server target/debug/cas-server run
start demo-origin env CAS_ASSERTION_KEY="$assertion_key" target/debug/demo-origin
start edge-filter env NODE_EXTRA_CA_CERTS="$ROOT/certs/ca.pem" \
    wrangler dev --ip 127.0.0.1 --port 8787 --inspector-port 9229 --show-interactive-dev-session=false

wait_for cas-server "https://127.0.0.1:8443/cas/login" --cacert certs/ca.pem
wait_for demo-origin "http://127.0.0.1:8080/healthz"
# Request HTML as a browser does, because the filter returns 401 to API clients.
wait_for edge-filter "http://127.0.0.1:8787/" --max-redirs 0 -H "Accept: text/html"

cat <<TEXT

The stack is running. Open http://127.0.0.1:8787/ and sign in as demo / demo-password.
The CAS server's certificate comes from the development CA in certs/ca.pem.
Logs are in .run/. Press Ctrl-C to stop everything.
TEXT
wait
