#!/usr/bin/env bash
# Runs every fuzz target for a bounded time. The targets are the parsers of service URLs,
# form bodies, CAS validation XML, logout requests, session cookies, path rules and SAML
# requests, plus the round trip of a logout request from the server to the filter.
#
# Settings: FUZZ_SECONDS (default 60) per target, FUZZ_TARGETS (default: all).
# A target that fails leaves its input in fuzz/regressions/<target>/; commit it, fix the
# parser, and the replay test in fuzzing/ keeps it from coming back.
#
# cargo fuzz needs unstable compiler flags. This script sets RUSTC_BOOTSTRAP=1 for the
# fuzz build only, which lets the stable compiler accept them.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

SECONDS_EACH="${FUZZ_SECONDS:-60}"
TARGETS="${FUZZ_TARGETS:-service_url form_params validation_xml logout_request session_cookie path_rules saml_request logout_round_trip}"
CARGO_FUZZ_VERSION="0.13.2"

install_cargo_fuzz() {
    if [ -x "$TOOLS_DIR/bin/cargo-fuzz" ] && "$TOOLS_DIR/bin/cargo-fuzz" --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
        return
    fi
    step "building cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS_DIR"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$TOOLS_DIR" --quiet
}


fuzz_one() {
    local target=$1
    local corpus="fuzz/corpus/$target" artifacts="fuzz/artifacts/$target/"
    mkdir -p "$corpus" "$artifacts"

    step "fuzzing $target for $SECONDS_EACH s"
    # The first folder gathers new inputs and stays out of git; the seeds are only read.
    # shellcheck disable=SC2086
    if cargo fuzz run $FUZZ_FLAGS "$target" "$corpus" "fuzz/seeds/$target" -- \
        -max_total_time="$SECONDS_EACH" -max_len=8192 -timeout=10 \
        -artifact_prefix="$artifacts" -print_final_stats=1 2>"fuzz/artifacts/$target.log"; then
        grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)' "fuzz/artifacts/$target.log" || true
        return 0
    fi

    tail -40 "fuzz/artifacts/$target.log" >&2
    if compgen -G "$artifacts*" >/dev/null; then
        mkdir -p "fuzz/regressions/$target"
        cp "$artifacts"* "fuzz/regressions/$target/"
        echo "error: $target failed; its input is in fuzz/regressions/$target/" >&2
    fi
    return 1
}

install_cargo_fuzz
# Stable compiler with unstable flags allowed, so that no nightly toolchain is needed.
export RUSTC_BOOTSTRAP=1
# Without AddressSanitizer: the project's crates forbid unsafe code, and targets without
# it run more inputs in the same time.
FUZZ_FLAGS="--fuzz-dir fuzz --sanitizer none"

step "building the fuzz targets"
# shellcheck disable=SC2086
cargo fuzz build $FUZZ_FLAGS
failed=()
for target in $TARGETS; do
    fuzz_one "$target" || failed+=("$target")
done

if [ "${#failed[@]}" -gt 0 ]; then
    die "fuzz targets failed: ${failed[*]}"
fi
echo "every fuzz target ran $SECONDS_EACH s without a failure"
