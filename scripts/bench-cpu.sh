#!/usr/bin/env bash
# Measures the CPU time per request of the ceiling (a minimal hyper server returning a
# fixed 200 over the CAS server's TLS settings) and of ticket validation with the
# in-memory store, for the server and for the load generator (cas-bench).
#
#   bash scripts/bench-cpu.sh                 # 3 rounds of 10-second runs
#   BENCH_SECONDS=5 BENCH_ROUNDS=5 bash scripts/bench-cpu.sh
#   BENCH_NO_BUILD=1 bash scripts/bench-cpu.sh  # use the binaries in target/release
#
# CPU time comes from utime+stime in /proc/PID/stat. It moves much less than
# throughput with other load on the machine, but still by about 1 us per request. Both processes share the machine's cores, so
# the throughput ratio of validation to the ceiling is at most
# (ceiling server + client) / (validation server + client), the printed bound.
# CAS server logs go to a file, as in scripts/bench-server.sh.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
ROUNDS="${BENCH_ROUNDS:-3}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
CEILING_PORT="${BENCH_CEILING_PORT:-19445}"
CAS_PORT="${BENCH_CAS_PORT:-19446}"
SERVICE="https://127.0.0.1:8787/bench"
BIN="$ROOT/target/release"
WORK="$(mktemp -d)"
SERVER_PID=""
CEILING_PID=""
RESULTS="$WORK/results.txt"

cleanup() {
    for pid in "$SERVER_PID" "$CEILING_PID"; do
        if [[ -n "$pid" ]]; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

wait_for() {
    local url="$1"
    for _ in $(seq 1 100); do
        if curl -fsS --cacert "$WORK/certs/ca.pem" "$url" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    echo "no response from $url within 10 seconds" >&2
    exit 1
}

if [[ -z "${BENCH_NO_BUILD:-}" ]]; then
    step "building in release mode"
    # shellcheck disable=SC2046 # cargo_quiet_flag prints nothing or one word.
    cargo build $(cargo_quiet_flag) --release -p cas-server --bins
fi
"$BIN/cas-server" dev-certs --out "$WORK/certs" >/dev/null

step "starting the ceiling server and the CAS server (memory store)"
"$BIN/cas-bench" ceiling-server --listen "127.0.0.1:$CEILING_PORT" \
    --cert "$WORK/certs/server.pem" --key "$WORK/certs/server-key.pem" >/dev/null &
CEILING_PID=$!
"$BIN/cas-server" --listen "127.0.0.1:$CAS_PORT" \
    --tls-cert "$WORK/certs/server.pem" --tls-key "$WORK/certs/server-key.pem" \
    --sqlite-path "$WORK/users.db" --ticket-store memory --memory-max-tickets 10000000 \
    2>>"$WORK/cas-server.log" &
SERVER_PID=$!
wait_for "https://127.0.0.1:$CEILING_PORT/"
wait_for "https://127.0.0.1:$CAS_PORT/cas/ready"

for round in $(seq 1 "$ROUNDS"); do
    step "round $round of $ROUNDS"
    "$BIN/cas-bench" ceiling --url "https://127.0.0.1:$CEILING_PORT/" --ca "$WORK/certs/ca.pem" \
        --connections "$CONNECTIONS" --seconds "$SECONDS_PER_RUN" --server-pid "$CEILING_PID" |
        tee -a "$RESULTS"
    "$BIN/cas-bench" tickets --base "https://127.0.0.1:$CAS_PORT/cas" --service "$SERVICE" \
        --ca "$WORK/certs/ca.pem" --connections "$CONNECTIONS" --seconds "$SECONDS_PER_RUN" \
        --server-pid "$SERVER_PID" | tee -a "$RESULTS"
done

step "summary: median CPU microseconds per request over $ROUNDS rounds"
awk '
    {
        delete f
        for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        name = f["figure"]
        n[name]++
        server[name, n[name]] = f["server_cpu_us"]
        client[name, n[name]] = f["client_cpu_us"]
        errors[name] += f["errors"]
    }
    function median(table, name, count,    i, j, t, values) {
        for (i = 1; i <= count; i++) values[i] = table[name, i]
        for (i = 2; i <= count; i++) for (j = i; j > 1 && values[j - 1] > values[j]; j--) { t = values[j]; values[j] = values[j - 1]; values[j - 1] = t }
        return (count % 2) ? values[(count + 1) / 2] : (values[count / 2] + values[count / 2 + 1]) / 2
    }
    END {
        printf "%-18s %10s %10s %10s %7s\n", "figure", "server_us", "client_us", "total_us", "errors"
        for (name in n) {
            s[name] = median(server, name, n[name]); c[name] = median(client, name, n[name])
            printf "%-18s %10.2f %10.2f %10.2f %7d\n", name, s[name], c[name], s[name] + c[name], errors[name]
        }
        total = s["validate_memory"] + c["validate_memory"]
        if (total > 0) printf "bound on validate/ceiling throughput = %.2f\n", (s["ceiling"] + c["ceiling"]) / total
    }
' "$RESULTS"
finish_step
