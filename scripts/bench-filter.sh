#!/usr/bin/env bash
# Measures the edge filter in workerd against a pass-through Worker that forwards to the
# same origin, the ceiling. One run measures requests per second and latency of: the
# origin alone, the pass-through Worker, a pass-through Worker that adds identity headers
# like the filter's (the least a session request can cost), a request with a valid
# session cookie, requests
# with session cookies that the filter's session cache does not keep, an excluded path,
# and the ticket path with a local CAS server. Loopback only. Beside each figure it
# prints the CPU time per request of workerd and of the origin, read from /proc before
# and after each run: on a machine shared with other jobs this moves much less than the
# request rate.
#
# Both Workers run in one `workerd serve` process, without wrangler dev: its development
# proxy limited even the pass-through Worker to about 90 requests/s on a 2-core machine.
# The filter's CAS_REVOCATIONS binding points at a Worker that reports every key absent,
# so each session request includes one in-process KV read.
#
# Needs: wrk (apt-get install wrk), the wasm bundle (scripts/build-filter.sh) and the
# server and origin binaries (cargo build --release -p cas-server -p cas-origin --bins;
# debug builds are used when no release build exists).
#
# Settings: BENCH_SECONDS (default 10) per measurement, BENCH_CONNECTIONS (default 16),
# BENCH_COLD_COOKIES (default 1200) session cookies for the cold-session case, which must
# be more than the filter's session cache keeps (1000) so that every request misses it,
# BENCH_TICKETS (default 2000) service tickets made for the ticket path, which is measured
# for BENCH_TICKET_SECONDS (default 3) so that the tickets last, and
# BENCH_REVOCATIONS=0 to run the filter without the KV binding, which shows the cost of
# the revocation lookup.
#
# BENCH_CALLGRIND=1 runs workerd under valgrind's callgrind instead and prints, for each
# case, the instructions workerd executes per request, counted over BENCH_REQUESTS
# (default 600) requests on one connection after twice as many to warm up. The count
# moved by less than 0.4% between runs, so it can compare two builds or two cases where
# CPU time moves by 10% or more. Instructions are not time: a cache miss or a system call
# costs more than its count shows, and V8 may optimize code later under valgrind than
# natively, so a change can save more instructions than CPU time. This mode skips the
# cold-session and ticket cases, which need more sessions and tickets than workerd can
# make at callgrind's speed.
set -euo pipefail
source "$(dirname "$0")/env.sh"
STEPS_TOTAL=3
cd "$ROOT"

SECONDS_EACH="${BENCH_SECONDS:-10}"
CONNECTIONS="${BENCH_CONNECTIONS:-16}"
TICKETS="${BENCH_TICKETS:-2000}"
COLD_COOKIES="${BENCH_COLD_COOKIES:-1200}"
TICKET_SECONDS="${BENCH_TICKET_SECONDS:-3}"
REVOCATIONS="${BENCH_REVOCATIONS:-1}"
CALLGRIND="${BENCH_CALLGRIND:-0}"
REQUESTS="${BENCH_REQUESTS:-600}"

if [ "$CALLGRIND" = 1 ]; then
    command -v valgrind >/dev/null || die "valgrind is missing; install it with: apt-get install valgrind"
    # The cold-session and ticket cases are not measured here, so only the one ticket
    # that makes the session cookie is issued, and no sessions go through the slow filter.
    COLD_COOKIES=0
    TICKETS=1
else
    command -v wrk >/dev/null || die "wrk is missing; install it with: apt-get install wrk"
fi
[ -f edge-filter/build/index.js ] || die "no wasm bundle; run: bash scripts/build-filter.sh"
# Each binary comes from the release build when there is one, else from the debug build.
binary() {
    if [ -x "target/release/$1" ]; then
        echo "target/release/$1"
    elif [ -x "target/debug/$1" ]; then
        echo "target/debug/$1"
    else
        die "no $1 binary; run: cargo build --release -p cas-server -p cas-origin --bins"
    fi
}
CAS_SERVER=$(binary cas-server)
DEMO_ORIGIN=$(binary demo-origin)

WORK="$(mktemp -d)"
pids=()
stop_all() {
    for pid in "${pids[@]}"; do
        # Each service runs in its own process group, so its children stop with it.
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap stop_all EXIT INT TERM

start() {
    local name=$1
    shift
    setsid "$@" >"$WORK/$name.log" 2>&1 &
    pids+=($!)
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() {
    local name=$1 url=$2
    # Under callgrind, workerd starts and compiles the filter's wasm many times slower.
    local tries=$((CALLGRIND == 1 ? 1200 : 240))
    for _ in $(seq 1 "$tries"); do
        if curl -sS -o /dev/null --cacert "$WORK/ca.pem" "$url" 2>/dev/null; then
            return
        fi
        sleep 0.25
    done
    tail -n 30 "$WORK/$name.log" >&2
    die "$name did not respond at $url within $((tries / 4)) s"
}

random_key() {
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'
}

CAS_PORT=$(free_port)
ORIGIN_PORT=$(free_port)
CEILING_PORT=$(free_port)
FILTER_PORT=$(free_port)
HEADERS_PORT=$(free_port)
CAS="https://127.0.0.1:$CAS_PORT/cas"
ORIGIN="http://127.0.0.1:$ORIGIN_PORT"
CEILING="http://127.0.0.1:$CEILING_PORT"
FILTER="http://127.0.0.1:$FILTER_PORT"
ASSERTION_KEY=$(random_key)

step "starting $CAS_SERVER, $DEMO_ORIGIN and workerd"
"$CAS_SERVER" dev-certs --out "$WORK" --name localhost --name 127.0.0.1 >/dev/null
cat >"$WORK/cas-server.toml" <<TOML
listen = "127.0.0.1:$CAS_PORT"
base_path = "/cas"
tls_cert = "$WORK/server.pem"
tls_key = "$WORK/server-key.pem"
sqlite_path = "$WORK/cas.db"

[[services]]
id = "bench"
name = "Benchmark edge"
match = "prefix"
pattern = "$FILTER/"
TOML
start cas-server "$CAS_SERVER" run --config "$WORK/cas-server.toml"
start demo-origin env CAS_ASSERTION_KEY="$ASSERTION_KEY" CAS_ASSERTION_AUDIENCE="$ORIGIN" \
    "$DEMO_ORIGIN" --listen "127.0.0.1:$ORIGIN_PORT"
ORIGIN_PID=${pids[-1]}

# Writes the workerd configuration: the filter, the pass-through ceiling, the Worker that
# only adds identity headers, the KV stand-in, and outbound network access to loopback
# with the development CA trusted. workerd embeds files relative to its configuration,
# so the modules are copied beside it.
write_workerd_config() {
    mkdir -p "$WORK/build"
    cp edge-filter/build/index.js edge-filter/build/index_bg.wasm "$WORK/build/"
    cp edge-filter/entry.mjs scripts/bench/passthrough.js scripts/bench/identity-headers.js \
        scripts/bench/kv-miss.js "$WORK/"
    cat >"$WORK/workerd.capnp" <<CAPNP
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "filter", worker = .filter),
    (name = "ceiling", worker = .ceiling),
    (name = "identity-headers", worker = .identityHeaders),
    (name = "kv", worker = .kv),
    (name = "loopback", network = (
      allow = ["public", "private", "local"],
      tlsOptions = (trustedCertificates = [embed "ca.pem"]),
    )),
  ],
  sockets = [
    (name = "filter", address = "127.0.0.1:$FILTER_PORT", http = (), service = "filter"),
    (name = "ceiling", address = "127.0.0.1:$CEILING_PORT", http = (), service = "ceiling"),
    (name = "identity-headers", address = "127.0.0.1:$HEADERS_PORT", http = (), service = "identity-headers"),
  ],
);

const filter :Workerd.Worker = (
  modules = [
    (name = "entry.mjs", esModule = embed "entry.mjs"),
    (name = "build/index.js", esModule = embed "build/index.js"),
    (name = "build/index_bg.wasm", wasm = embed "build/index_bg.wasm"),
  ],
  compatibilityDate = "$COMPATIBILITY_DATE",
  bindings = [
    (name = "CAS_BASE_URL", text = "$CAS"),
    (name = "SERVICE_BASE_URL", text = "$FILTER"),
    (name = "ORIGIN_URL", text = "$ORIGIN"),
    (name = "PATH_RULES", text = "[{\\"match\\": \\"prefix\\", \\"pattern\\": \\"/public/\\", \\"action\\": \\"exclude\\"}]"),
    (name = "SESSION_KEY", text = "$(random_key)"),
    (name = "ASSERTION_KEY", text = "$ASSERTION_KEY"),
$REVOCATIONS_BINDING
  ],
  globalOutbound = "loopback",
);

const ceiling :Workerd.Worker = (
  modules = [(name = "passthrough.js", esModule = embed "passthrough.js")],
  compatibilityDate = "$COMPATIBILITY_DATE",
  bindings = [(name = "ORIGIN_URL", text = "$ORIGIN")],
  globalOutbound = "loopback",
);

const identityHeaders :Workerd.Worker = (
  modules = [(name = "identity-headers.js", esModule = embed "identity-headers.js")],
  compatibilityDate = "$COMPATIBILITY_DATE",
  bindings = [(name = "ORIGIN_URL", text = "$ORIGIN")],
  globalOutbound = "loopback",
);

const kv :Workerd.Worker = (
  modules = [(name = "kv-miss.js", esModule = embed "kv-miss.js")],
  compatibilityDate = "$COMPATIBILITY_DATE",
);
CAPNP
}

REVOCATIONS_BINDING='    (name = "CAS_REVOCATIONS", kvNamespace = "kv"),'
[ "$REVOCATIONS" = 1 ] || REVOCATIONS_BINDING=""
COMPATIBILITY_DATE=$(sed -n 's/^compatibility_date = "\(.*\)"/\1/p' wrangler.toml)
write_workerd_config
if [ "$CALLGRIND" = 1 ]; then
    # V8 writes machine code at run time, which valgrind must notice to count it.
    start workerd valgrind --tool=callgrind --smc-check=all-non-file \
        --callgrind-out-file="$WORK/callgrind.out" \
        "$ROOT/node_modules/.bin/workerd" serve "$WORK/workerd.capnp"
else
    start workerd "$ROOT/node_modules/.bin/workerd" serve "$WORK/workerd.capnp"
fi
WORKERD_PID=${pids[-1]}
wait_for cas-server "$CAS/login"
wait_for demo-origin "$ORIGIN/healthz"
wait_for workerd "$CEILING/public/"
wait_for workerd "$FILTER/public/"

step "signing in, making $TICKETS service tickets and $COLD_COOKIES session cookies"
SERVICE="$FILTER/bench/page"
ENCODED_SERVICE=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$SERVICE")
JAR="$WORK/cas-cookies"
form=$(curl -sS --cacert "$WORK/ca.pem" -c "$JAR" -b "$JAR" "$CAS/login?service=$ENCODED_SERVICE")
lt=$(printf '%s' "$form" | python3 -c '
import re, sys
tag = re.search(r"<input[^>]*name=\"lt\"[^>]*>", sys.stdin.read())
value = tag and re.search(r"value=\"([^\"]*)\"", tag.group(0))
print(value.group(1).replace("&amp;", "&") if value else "")')
[ -n "$lt" ] || die "no login token in the CAS form"
curl -sS -o /dev/null --cacert "$WORK/ca.pem" -c "$JAR" -b "$JAR" \
    --data-urlencode "username=demo" --data-urlencode "password=demo-password" \
    --data-urlencode "lt=$lt" --data-urlencode "service=$SERVICE" "$CAS/login"

new_ticket() {
    curl -sS -o /dev/null -w '%{redirect_url}\n' --cacert "$WORK/ca.pem" -b "$JAR" \
        "$CAS/login?service=$ENCODED_SERVICE" | sed -n 's/.*ticket=//p'
}
export -f new_ticket
export WORK JAR CAS ENCODED_SERVICE
seq "$TICKETS" | xargs -P 4 -I{} bash -c new_ticket >"$WORK/tickets"
[ "$(grep -c '^ST-' "$WORK/tickets")" -eq "$TICKETS" ] || die "CAS issued fewer than $TICKETS tickets"

first=$(head -n 1 "$WORK/tickets")
sed -i 1d "$WORK/tickets"
cookie=$(curl -sS -o /dev/null -D - "$SERVICE?ticket=$first" | tr -d '\r' |
    sed -n 's/^[Ss]et-[Cc]ookie: \(cas_edge_session=[^;]*\).*/\1/p')
if [ -z "$cookie" ]; then
    tail -n 30 "$WORK/workerd.log" >&2
    die "the filter set no session cookie"
fi
[ "$(curl -sS -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "$SERVICE")" = 200 ] ||
    die "the session cookie does not reach the origin"

# Each further ticket validated by the filter gives one more session, with its own cookie.
new_session_cookie() {
    local ticket
    ticket=$(new_ticket)
    curl -sS -o /dev/null -D - "$SERVICE?ticket=$ticket" | tr -d '\r' |
        sed -n 's/^[Ss]et-[Cc]ookie: \(cas_edge_session=[^;]*\).*/\1/p'
}
export -f new_session_cookie
export SERVICE
seq "$COLD_COOKIES" | xargs -P 4 -I{} bash -c new_session_cookie >"$WORK/cookies"
[ "$(grep -c '^cas_edge_session=' "$WORK/cookies")" -eq "$COLD_COOKIES" ] ||
    die "the filter set fewer than $COLD_COOKIES session cookies"

# Prints the CPU time that process `pid` has used, user and system, in clock ticks.
cpu_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}

# Prints the CPU microseconds per request from two tick counts and a request count.
micros_per_request() {
    awk -v ticks=$(($2 - $1)) -v hz="$(getconf CLK_TCK)" -v n="$3" \
        'BEGIN { if (n > 0) printf "%.0f", ticks * 1000000 / hz / n; else print "-" }'
}

# Runs wrk for `seconds` and prints "name rps p50 p99 non2xx workerd-cpu origin-cpu"
# with wrk's latency units and CPU microseconds per request. CPU time per request moves
# much less with other load on the machine than requests per second do.
measure_for() {
    local name=$1 seconds=$2
    shift 2
    local out
    # The caller captures stdout, so the progress line goes to stderr.
    printf '    measuring %s for %s s\n' "$name" "$seconds" >&2
    local workerd_before origin_before
    workerd_before=$(cpu_ticks "$WORKERD_PID")
    origin_before=$(cpu_ticks "$ORIGIN_PID")
    out=$(wrk --latency -t1 -c "$CONNECTIONS" -d "${seconds}s" "$@")
    local workerd_after origin_after
    workerd_after=$(cpu_ticks "$WORKERD_PID")
    origin_after=$(cpu_ticks "$ORIGIN_PID")
    printf '%s\n' "$out" >"$WORK/wrk-$name.txt"

    local rps p50 p99 errors requests
    rps=$(printf '%s\n' "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(printf '%s\n' "$out" | awk '$1 == "50%" {print $2}')
    p99=$(printf '%s\n' "$out" | awk '$1 == "99%" {print $2}')
    errors=$(printf '%s\n' "$out" | awk '/Non-2xx or 3xx/ {print $5}')
    requests=$(printf '%s\n' "$out" | awk '/requests in/ {print $1}')
    local workerd_cpu origin_cpu
    workerd_cpu=$(micros_per_request "$workerd_before" "$workerd_after" "${requests:-0}")
    origin_cpu=$(micros_per_request "$origin_before" "$origin_after" "${requests:-0}")
    echo "$name $rps $p50 $p99 ${errors:-0} $workerd_cpu $origin_cpu"
}

measure() {
    local name=$1
    shift
    measure_for "$name" "$SECONDS_EACH" "$@"
}

# Prints the size of the filter's wasm, raw and compressed with `gzip -9`.
print_bundle_size() {
    local wasm=edge-filter/build/index_bg.wasm
    printf '\nwasm bundle: %s bytes, %s bytes gzipped\n' "$(wc -c <"$wasm")" "$(gzip -9 -c "$wasm" | wc -c)"
}

# Sends `count` requests to `url` on one connection and checks that each got `status`.
send_requests() {
    local count=$1 status=$2 url=$3
    shift 3
    local config="$WORK/curl-requests"
    for _ in $(seq "$count"); do
        printf 'url = "%s"\noutput = "/dev/null"\n' "$url"
    done >"$config"
    local matched
    matched=$(curl -sS -w '%{http_code}\n' "$@" -K "$config" | grep -c "^$status\$" || true)
    if [ "$matched" -ne "$count" ]; then
        tail -n 30 "$WORK/workerd.log" >&2
        die "$url returned the expected status $status for only $matched of $count requests; see workerd's log above"
    fi
}

# Prints "name instructions-per-request" for `url`, which must return `status`: the
# instructions that workerd executed during REQUESTS requests, read from a callgrind
# dump made after zeroing the counters.
count_instructions() {
    local name=$1 status=$2 url=$3
    shift 3
    printf '    counting %s over %s requests\n' "$name" "$REQUESTS" >&2
    send_requests $((REQUESTS * 2)) "$status" "$url" "$@"
    callgrind_control --zero "$WORKERD_PID" >/dev/null 2>&1
    send_requests "$REQUESTS" "$status" "$url" "$@"
    callgrind_control --dump "$WORKERD_PID" >/dev/null 2>&1
    # The k-th dump of the run goes to callgrind.out.k.
    local dumps
    dumps=$(find "$WORK" -maxdepth 1 -name 'callgrind.out.*' | wc -l)
    awk -v n="$REQUESTS" -v name="$name" '/^summary:/ { total += $2 }
        END { printf "%s %.0f\n", name, total / n }' "$WORK/callgrind.out.$dumps"
}

if [ "$CALLGRIND" = 1 ]; then
    step "counting workerd's instructions per request under callgrind, $REQUESTS requests each"
    counts=()
    counts+=("$(count_instructions ceiling 200 "$CEILING/public/page" -H "Cookie: $cookie")")
    counts+=("$(count_instructions headers-only 200 "http://127.0.0.1:$HEADERS_PORT/public/page" -H "Cookie: $cookie")")
    counts+=("$(count_instructions session 200 "$SERVICE" -H "Cookie: $cookie")")
    counts+=("$(count_instructions excluded 200 "$FILTER/public/page")")
    counts+=("$(count_instructions api-401 401 "$SERVICE" -H "Accept: application/json")")

    read -r _ ceiling_count <<<"${counts[0]}"
    printf '\n%-12s %22s %12s\n' case "instructions/request" "/ceiling"
    for line in "${counts[@]}"; do
        read -r name count <<<"$line"
        printf '%-12s %22s %12s\n' "$name" "$count" \
            "$(awk -v a="$count" -v b="$ceiling_count" 'BEGIN { printf "%.3f", a / b }')"
    done
    print_bundle_size
    echo "machine: $(nproc) cores, $(. /etc/os-release && echo "$PRETTY_NAME"); valgrind: $(valgrind --version)"
    finish_step
    exit 0
fi

step "measuring, ${SECONDS_EACH} s each (tickets ${TICKET_SECONDS} s), $CONNECTIONS connections, wrk with 1 thread"
results=()
# The origin alone shows whether it, rather than workerd, limits the figures below.
origin_line=$(measure origin "$ORIGIN/public/page")
# The origin returns 200 for /public/ paths without an assertion, so the ceiling and the
# excluded path get the same page and the session path a page of the same size class.
# The ceiling's requests carry the session cookie, as a signed-in browser's requests
# through a pass-through Worker would, so that its requests match the session case's.
results+=("$(measure ceiling "$CEILING/public/page" -H "Cookie: $cookie")")
# The same public page through a Worker that only adds identity headers, with the cookie.
results+=("$(measure headers-only "http://127.0.0.1:$HEADERS_PORT/public/page" -H "Cookie: $cookie")")
results+=("$(measure session "$SERVICE" -H "Cookie: $cookie")")
results+=("$(COOKIES_FILE="$WORK/cookies" COOKIE_PATH=/bench/page \
    measure cold-session "$FILTER" -s "$ROOT/scripts/bench/cookies.lua")")
results+=("$(measure excluded "$FILTER/public/page")")
# A 401 the filter makes itself, without a subrequest: the cost of the filter's own work.
results+=("$(measure api-401 "$SERVICE" -H "Accept: application/json")")
results+=("$(TICKETS_FILE="$WORK/tickets" TICKET_PATH=/bench/page \
    measure_for tickets "$TICKET_SECONDS" "$FILTER" -s "$ROOT/scripts/bench/tickets.lua")")

read -r _ ceiling_rps _ _ _ ceiling_cpu _ <<<"${results[0]}"
printf '\n%-12s %12s %10s %10s %8s %18s %13s %12s %12s\n' case "requests/s" "p50" "p99" "non-2xx" \
    "throughput/ceiling" "workerd µs/req" "origin µs/req" "CPU/ceiling"
for line in "$origin_line" "${results[@]}"; do
    read -r name rps p50 p99 errors workerd_cpu origin_cpu <<<"$line"
    ratio=$(awk -v a="$rps" -v b="$ceiling_rps" 'BEGIN { printf "%.2f", a / b }')
    cpu_ratio=$(awk -v a="$workerd_cpu" -v b="$ceiling_cpu" \
        'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }')
    printf '%-12s %12s %10s %10s %8s %18s %14s %13s %12s\n' "$name" "$rps" "$p50" "$p99" "$errors" \
        "$ratio" "$workerd_cpu" "$origin_cpu" "$cpu_ratio"
done

print_bundle_size
echo "machine: $(nproc) cores, $(. /etc/os-release && echo "$PRETTY_NAME"); CAS: $CAS_SERVER, origin: $DEMO_ORIGIN"
finish_step
