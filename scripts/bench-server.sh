#!/usr/bin/env bash
# Measures the CAS server on loopback and prints each figure beside the ceiling, a
# minimal hyper server returning a fixed 200 over the same TLS settings.
#
#   bash scripts/bench-server.sh            # 3 rounds of 10-second runs
#   BENCH_SECONDS=20 BENCH_ROUNDS=5 bash scripts/bench-server.sh
#
# Each round measures a ceiling just before each group and divides by it; the summary
# prints every round's ratios and their median, because other load on the machine moves
# single figures by a factor of two. Each figure line also gives the CPU time per
# operation of the server (server_cpu_us) and of cas-bench (client_cpu_us).
#
# Needs Redis on 127.0.0.1:6379 for the Redis figures; it writes only keys under a
# random cas-bench-…: prefix and deletes them at the end. The load generator
# (cas-bench) runs on the same machine as the server, so both share its cores.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
ROUNDS="${BENCH_ROUNDS:-3}"
# Three steps before the rounds, three in each round, two after them.
STEPS_TOTAL=$((3 + 3 * ROUNDS + 2))
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
# Each login is two requests, and only the password check uses a core for long, so
# the logins need more connections than cores to keep every core hashing. With 4
# connections on 2 cores they reached about 0.87 of the raw hash rate, with 8 about 0.9.
LOGIN_CONNECTIONS="${BENCH_LOGIN_CONNECTIONS:-8}"
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

ROUND=0

bench() {
    "$BIN/cas-bench" "$@" | sed "s/$/ round=$ROUND/" | tee -a "$RESULTS"
}

# Prints the user and system CPU time of process $1 in clock ticks of 10 ms.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# Runs the full logins and adds the CAS server's CPU time per login to their line. CPU
# time hardly moves with other load on the machine, unlike the rate.
bench_logins() {
    local before after
    before=$(cpu_ticks "$SERVER_PID")
    # shellcheck disable=SC2046
    "$BIN/cas-bench" logins $(cas_args) --connections "$LOGIN_CONNECTIONS" >"$WORK/logins.txt"
    after=$(cpu_ticks "$SERVER_PID")
    awk -v ticks=$((after - before)) -v round="$ROUND" '{
        split($0, parts, "operations="); split(parts[2], count, " ")
        printf "%s server_cpu_ms_per_op=%.2f round=%s\n", $0, (count[1] > 0) ? ticks * 10 / count[1] : 0, round
    }' "$WORK/logins.txt" | tee -a "$RESULTS"
}

cas_args() {
    echo --base "https://127.0.0.1:$CAS_PORT/cas" --service "$SERVICE" \
        --ca "$WORK/certs/ca.pem" --seconds "$SECONDS_PER_RUN" --server-pid "$SERVER_PID"
}

step "building in release mode (several minutes on a fresh machine)"
# shellcheck disable=SC2046 # cargo_quiet_flag prints nothing or one word.
run_long "building in release mode" cargo build $(cargo_quiet_flag) --release -p cas-server --bins

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
        --connections "$CONNECTIONS" --seconds "$SECONDS_PER_RUN" --server-pid "$CEILING_PID" |
        sed "s/figure=ceiling/figure=ceiling_$1/; s/$/ round=$ROUND/" | tee -a "$RESULTS"
}

for ROUND in $(seq 1 "$ROUNDS"); do

step "round $ROUND of $ROUNDS: CAS server, memory store: SSO issue, validation, full logins"
start_cas --ticket-store memory --memory-max-tickets 10000000
ceiling memory
# shellcheck disable=SC2046
bench tickets $(cas_args) --connections "$CONNECTIONS" --label memory
bench_logins
stop_server

# Right after the logins, so both see the same load from other processes.
step "round $ROUND of $ROUNDS: raw Argon2id verifications, same parameters, $(nproc) threads"
bench hash --threads "$(nproc)" --seconds "$SECONDS_PER_RUN"

step "round $ROUND of $ROUNDS: CAS server, Redis store ($REDIS_URL, prefix $PREFIX)"
start_cas --ticket-store redis --redis-url "$REDIS_URL" --redis-key-prefix "$PREFIX"
ceiling redis
# shellcheck disable=SC2046
bench tickets $(cas_args) --connections "$CONNECTIONS" --label redis
stop_server
done

kill -TERM "$CEILING_PID" 2>/dev/null || true
wait "$CEILING_PID" 2>/dev/null || true
CEILING_PID=""

step "resident memory of one million live service tickets"
bench memory --tickets 1000000 --sessions 10000

step "summary: ratio = figure / the ceiling measured just before its group"
awk '
    {
        delete f
        for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        key = f["figure"] SUBSEP f["round"]
        rate[key] = f["rate"]; p50[key] = f["p50_ms"]; p99[key] = f["p99_ms"]
        cpu[key] = (f["figure"] == "full_login") ? f["server_cpu_ms_per_op"] : f["cpu_ms_per_op"]
        if (f["round"] > rounds) rounds = f["round"]
        if (f["figure"] == "memory") bytes = f["bytes_per_ticket"]
    }
    function median(values, n,    i, j, t) {
        for (i = 2; i <= n; i++) for (j = i; j > 1 && values[j - 1] > values[j]; j--) { t = values[j]; values[j] = values[j - 1]; values[j - 1] = t }
        return (n % 2) ? values[(n + 1) / 2] : (values[n / 2] + values[n / 2 + 1]) / 2
    }
    function show(name, base, target,    r, ratios, line) {
        line = sprintf("%-18s", name)
        for (r = 1; r <= rounds; r++) {
            ratios[r] = (rate[base, r] > 0) ? rate[name, r] / rate[base, r] : 0
            line = line sprintf(" %9.1f %5.2f %6.2f/%-6.2f", rate[name, r], ratios[r], p50[name, r], p99[name, r])
        }
        printf "%s  median %.2f  %s\n", line, median(ratios, rounds), target
    }
    # Server CPU ms per login, then CPU ms of a raw hash divided by it, per round.
    function show_cpu(    r, ratios, line) {
        line = sprintf("%-18s", "login_cpu_ms")
        for (r = 1; r <= rounds; r++) {
            ratios[r] = (cpu["full_login", r] > 0) ? cpu["argon2id_raw", r] / cpu["full_login", r] : 0
            line = line sprintf(" %9.2f %5.2f %13s", cpu["full_login", r], ratios[r], sprintf("hash %.2f", cpu["argon2id_raw", r]))
        }
        printf "%s  median %.2f  ratio = CPU ms per raw hash / server CPU ms per login\n", line, median(ratios, rounds)
    }
    END {
        printf "%-18s", "figure"
        for (r = 1; r <= rounds; r++) printf " %9s %5s %13s", "per s", "ratio", "p50/p99 ms"
        printf "\n"
        show("ceiling_memory", "ceiling_memory", "")
        show("validate_memory", "ceiling_memory", "target >= 0.50")
        show("sso_issue_memory", "ceiling_memory", "target >= 0.33")
        show("ceiling_redis", "ceiling_redis", "")
        show("validate_redis", "ceiling_redis", "target >= 0.33")
        show("sso_issue_redis", "ceiling_redis", "")
        show("full_login", "argon2id_raw", "ratio to raw argon2id hashes; target >= 0.90")
        show("argon2id_raw", "argon2id_raw", "")
        show_cpu()
        printf "resident bytes per live service ticket = %s (target <= 300)\n", bytes
    }
' "$RESULTS"
finish_step
