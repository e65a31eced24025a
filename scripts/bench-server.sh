#!/usr/bin/env bash
# Measures the CAS server on loopback and prints each figure beside the ceiling, a
# minimal hyper server returning a fixed 200 over the same TLS settings.
#
#   bash scripts/bench-server.sh            # 10-second runs
#   BENCH_SECONDS=20 bash scripts/bench-server.sh
#
# Needs Redis on 127.0.0.1:6379 for the Redis figures; it writes only keys under a
# random cas-bench-…: prefix and deletes them at the end. The load generator
# (cas-bench) runs on the same machine as the server, so both share its cores.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
LOGIN_CONNECTIONS="${BENCH_LOGIN_CONNECTIONS:-4}"
CEILING_PORT="${BENCH_CEILING_PORT:-19443}"
CAS_PORT="${BENCH_CAS_PORT:-19444}"
REDIS_URL="${BENCH_REDIS_URL:-redis://127.0.0.1:6379}"
SERVICE="https://127.0.0.1:8787/bench"
BIN="$ROOT/target/release"
WORK="$(mktemp -d)"
PREFIX="cas-bench-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n'):"
SERVER_PID=""
CEILING_PID=""
RESULTS="$WORK/results.txt"

cleanup() {
    stop_server
    if [[ -n "$CEILING_PID" ]]; then
        kill -TERM "$CEILING_PID" 2>/dev/null || true
    fi
    if command -v redis-cli >/dev/null; then
        redis-cli -u "$REDIS_URL" --scan --pattern "${PREFIX}*" | xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}

wait_for() {
    local url="$1"
    for _ in $(seq 1 100); do
        if curl -fsS --cacert "$WORK/certs/ca.pem" "$url" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    die "no response from $url within 10 seconds"
}

start_cas() {
    "$BIN/cas-server" --listen "127.0.0.1:$CAS_PORT" \
        --tls-cert "$WORK/certs/server.pem" --tls-key "$WORK/certs/server-key.pem" \
        --sqlite-path "$WORK/users.db" "$@" 2>>"$WORK/cas-server.log" &
    SERVER_PID=$!
    wait_for "https://127.0.0.1:$CAS_PORT/cas/ready"
}

bench() {
    "$BIN/cas-bench" "$@" | tee -a "$RESULTS"
}

cas_args() {
    echo --base "https://127.0.0.1:$CAS_PORT/cas" --service "$SERVICE" \
        --ca "$WORK/certs/ca.pem" --seconds "$SECONDS_PER_RUN"
}

step "building in release mode"
cargo build --release -p cas-server --bins

step "machine"
uname -srm
nproc
grep -m1 'model name' /proc/cpuinfo || true
"$BIN/cas-server" dev-certs --out "$WORK/certs" >/dev/null

step "ceiling: fixed 200 over the same TLS settings, kept running for paired runs"
"$BIN/cas-bench" ceiling-server --listen "127.0.0.1:$CEILING_PORT" \
    --cert "$WORK/certs/server.pem" --key "$WORK/certs/server-key.pem" >/dev/null &
CEILING_PID=$!
wait_for "https://127.0.0.1:$CEILING_PORT/"

# The machine's load changes from minute to minute, so each CAS group is divided by a
# ceiling measured just before it, while the CAS server idles.
ceiling() {
    "$BIN/cas-bench" ceiling --url "https://127.0.0.1:$CEILING_PORT/" --ca "$WORK/certs/ca.pem" \
        --connections "$CONNECTIONS" --seconds "$SECONDS_PER_RUN" | sed "s/figure=ceiling/figure=ceiling_$1/" | tee -a "$RESULTS"
}

step "CAS server, memory store: SSO issue, validation, full logins"
start_cas --ticket-store memory --memory-max-tickets 10000000
ceiling memory
# shellcheck disable=SC2046
bench tickets $(cas_args) --connections "$CONNECTIONS" --label memory
# shellcheck disable=SC2046
bench logins $(cas_args) --connections "$LOGIN_CONNECTIONS"
stop_server

# Right after the logins, so both see the same load from other processes.
step "raw Argon2id verifications, same parameters, $(nproc) threads"
bench hash --threads "$(nproc)" --seconds "$SECONDS_PER_RUN"

step "CAS server, Redis store ($REDIS_URL, prefix $PREFIX)"
start_cas --ticket-store redis --redis-url "$REDIS_URL" --redis-key-prefix "$PREFIX"
ceiling redis
# shellcheck disable=SC2046
bench tickets $(cas_args) --connections "$CONNECTIONS" --label redis
stop_server
kill -TERM "$CEILING_PID" 2>/dev/null || true
wait "$CEILING_PID" 2>/dev/null || true
CEILING_PID=""

step "resident memory of one million live service tickets"
bench memory --tickets 1000000 --sessions 10000

step "summary (ratio = figure / the ceiling measured just before its group)"
awk '
    { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] } name = f["figure"]
      rate[name] = f["rate"]; p50[name] = f["p50_ms"]; p99[name] = f["p99_ms"]; bytes[name] = f["bytes_per_ticket"] }
    END {
        printf "%-22s %12s %9s %9s %8s  %s\n", "figure", "per second", "p50 ms", "p99 ms", "ratio", "target"
        c = rate["ceiling_memory"]
        row("ceiling_memory", "")
        row("validate_memory", ">= 0.50 of ceiling")
        row("sso_issue_memory", ">= 0.33 of ceiling")
        row("full_login", "")
        c = rate["ceiling_redis"]
        row("ceiling_redis", "")
        row("validate_redis", ">= 0.33 of ceiling")
        row("sso_issue_redis", "")
        printf "%-22s %12.1f\n", "argon2id_raw", rate["argon2id_raw"]
        if (rate["argon2id_raw"] > 0)
            printf "full logins / raw argon2id hashes = %.2f (target >= 0.90)\n", rate["full_login"] / rate["argon2id_raw"]
        printf "resident bytes per live service ticket = %s (target <= 300)\n", bytes["memory"]
    }
    function row(name, target) {
        printf "%-22s %12.1f %9.3f %9.3f %8.3f  %s\n", name, rate[name], p50[name], p99[name], (c > 0 ? rate[name] / c : 0), target
    }
' "$RESULTS"
