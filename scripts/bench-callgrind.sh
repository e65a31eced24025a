#!/usr/bin/env bash
# Counts the instructions the CAS server executes per ticket validation (in-memory
# store) with valgrind's callgrind. Unlike CPU time, the count barely moves with other
# load on the machine, so it can compare two builds on a busy machine.
#
#   bash scripts/bench-callgrind.sh               # uses target/release, builds it first
#   BENCH_NO_BUILD=1 BENCH_BIN=/other/target/release bash scripts/bench-callgrind.sh
#
# The server runs under callgrind, about 50 times slower than natively. cas-bench issues
# tickets by SSO for BENCH_SECONDS (default 8) on 8 connections. When it prints the SSO
# figure, the counters are zeroed, and after the validation run they are dumped. The
# count therefore also covers the 8 TLS handshakes of the validation run.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

SECONDS_PER_RUN="${BENCH_SECONDS:-8}"
PORT="${BENCH_CAS_PORT:-19447}"
BIN="${BENCH_BIN:-$ROOT/target/release}"
WORK="$(mktemp -d)"
SERVER_PID=""

cleanup() {
    if [[ -n "$SERVER_PID" ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if [[ -z "${BENCH_NO_BUILD:-}" ]]; then
    step "building in release mode"
    # shellcheck disable=SC2046 # cargo_quiet_flag prints nothing or one word.
    cargo build $(cargo_quiet_flag) --release -p cas-server --bins
fi
if ! command -v valgrind >/dev/null; then
    echo "valgrind is not installed; install the Debian package valgrind" >&2
    exit 1
fi
"$BIN/cas-server" dev-certs --out "$WORK/certs" >/dev/null

step "starting the CAS server under callgrind"
valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
    "$BIN/cas-server" --listen "127.0.0.1:$PORT" \
    --tls-cert "$WORK/certs/server.pem" --tls-key "$WORK/certs/server-key.pem" \
    --sqlite-path "$WORK/users.db" --ticket-store memory --memory-max-tickets 10000000 \
    2>>"$WORK/cas-server.log" &
SERVER_PID=$!
for _ in $(seq 1 300); do
    curl -fsS --cacert "$WORK/certs/ca.pem" "https://127.0.0.1:$PORT/cas/ready" >/dev/null 2>&1 && break
    sleep 0.2
done

step "issuing tickets for $SECONDS_PER_RUN seconds, then validating them"
"$BIN/cas-bench" tickets --base "https://127.0.0.1:$PORT/cas" --service "https://127.0.0.1:8787/bench" \
    --ca "$WORK/certs/ca.pem" --connections 8 --seconds "$SECONDS_PER_RUN" >"$WORK/bench.txt" &
BENCH_PID=$!
until grep -q "figure=sso_issue" "$WORK/bench.txt"; do
    if ! kill -0 "$BENCH_PID" 2>/dev/null; then
        cat "$WORK/bench.txt" >&2
        echo "cas-bench ended before the SSO figure" >&2
        exit 1
    fi
    sleep 0.05
done
callgrind_control --zero "$SERVER_PID" >/dev/null
wait "$BENCH_PID"
callgrind_control --dump "$SERVER_PID" >/dev/null
cat "$WORK/bench.txt"

step "instructions per validation"
validations=$(sed -n 's/.*figure=validate_memory .*operations=\([0-9]*\).*/\1/p' "$WORK/bench.txt")
# The dump requested above is part 1. The final dump at exit goes to the file without a
# suffix and is not counted.
instructions=$(callgrind_annotate "$WORK/callgrind.out.1" | sed -n 's/^\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
echo "validations=$validations instructions=$instructions per_validation=$((instructions / validations))"
finish_step
