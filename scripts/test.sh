#!/usr/bin/env bash
# Installs what is missing, builds everything (the wasm filter included), then runs every
# test: unit tests, server tests against MariaDB and the end-to-end tests through workerd.
# Needs MariaDB on 127.0.0.1:3306 (root, empty password); each test makes its own database.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

bash scripts/setup.sh

step "running every test"
cargo test --workspace --no-fail-fast

# About a minute per parser of outside input; a failure keeps its input for the replay test.
FUZZ_SECONDS="${FUZZ_SECONDS:-60}" bash scripts/fuzz.sh
