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

# Stops with a message when another process already listens on one of the demo's
# ports, such as a demo that is still running. The new service could not bind the port,
# and the old one would respond in its place.
require_free_ports() {
    local port
    for port in "$@"; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            die "port $port on 127.0.0.1 is in use, perhaps by an earlier demo; stop that process and try again"
        fi
    done
}

# Waits until `url` responds, checking that the service started as the `index`-th process
# is still running, so that a service that exited is reported at once with its log.
wait_for() {
    local name=$1 index=$2 url=$3
    shift 3
    for _ in $(seq 1 120); do
        if ! kill -0 "${pids[$index]}" 2>/dev/null; then
            tail -n 30 "$RUN_DIR/$name.log" >&2
            die "$name exited; see .run/$name.log"
        fi
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
require_free_ports 8443 8080 8787 9229
start cas-server target/debug/cas-server run
start demo-origin env CAS_ASSERTION_KEY="$assertion_key" target/debug/demo-origin
start edge-filter env NODE_EXTRA_CA_CERTS="$ROOT/certs/ca.pem" \
    wrangler dev --ip 127.0.0.1 --port 8787 --inspector-port 9229 --show-interactive-dev-session=false

wait_for cas-server 0 "https://127.0.0.1:8443/cas/login" --cacert certs/ca.pem
wait_for demo-origin 1 "http://127.0.0.1:8080/healthz"
# Request HTML as a browser does, because the filter returns 401 to API clients.
wait_for edge-filter 2 "http://127.0.0.1:8787/" --max-redirs 0 -H "Accept: text/html"

# The demo user exists only in the embedded SQLite store. A CAS_DATABASE_URL from the
# environment replaces that store with the named MySQL or MariaDB database.
if [ -n "${CAS_DATABASE_URL:-}" ]; then
    sign_in="sign in as a user of the database in CAS_DATABASE_URL"
else
    sign_in="sign in as demo / demo-password"
fi

cat <<TEXT

The stack is running. Open http://127.0.0.1:8787/ and $sign_in.
The CAS server's certificate comes from the development CA in certs/ca.pem.
Logs are in .run/. Press Ctrl-C to stop everything.
TEXT
wait
