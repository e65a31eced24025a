#!/usr/bin/env bash
# Installs what is missing for building, running and testing the project, then builds it.
# Idempotent: a second run only checks and rebuilds what changed. With --demo it skips
# what only the tests need: Chromium, the CJK font, Apache with mod_auth_cas and
# python-cas.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

FOR_TESTS=1
case "${1:-}" in
    "") ;;
    --demo) FOR_TESTS=0 ;;
    *) die "unknown option $1; use --demo or no option" ;;
esac

started=$SECONDS
STEPS_TOTAL=10

require_system_tools() {
    step "checking system tools"
    local missing=()
    command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup (1.91 or newer)"
    command -v npm >/dev/null || missing+=(nodejs npm)
    command -v cc >/dev/null || missing+=(build-essential)
    command -v pkg-config >/dev/null || missing+=(pkg-config)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v python3 >/dev/null || missing+=(python3)
    if [ "$FOR_TESTS" = 1 ]; then
        # The browser test drives Debian's Chromium; the CJK font renders the Chinese pages.
        command -v chromedriver >/dev/null || missing+=(chromium chromium-driver)
        dpkg -s fonts-wqy-zenhei >/dev/null 2>&1 || missing+=(fonts-wqy-zenhei)
        # The interop tests run Apache with mod_auth_cas and python-cas in a virtualenv.
        dpkg -s apache2 >/dev/null 2>&1 || missing+=(apache2)
        dpkg -s libapache2-mod-auth-cas >/dev/null 2>&1 || missing+=(libapache2-mod-auth-cas)
        python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        install_debian_packages "${missing[@]}"
    fi
}

# Installs Debian packages as root, through sudo when the script runs as another user.
install_debian_packages() {
    echo "installing Debian packages: $*"
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null ||
            die "installing $* needs root; run as root or install sudo"
        sudo=(sudo)
    fi
    "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq "$@"
}

install_wasm_target() {
    step "Rust target wasm32-unknown-unknown"
    if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
        echo "already installed"
        return
    fi
    rustup target add wasm32-unknown-unknown
}

cargo_install() {
    local crate=$1 version=$2 binary=$3 locked=$4
    if [ -x "$TOOLS_DIR/bin/$binary" ] && "$TOOLS_DIR/bin/$binary" --version 2>/dev/null | grep -q "$version"; then
        echo "$crate $version already in $TOOLS_DIR"
        return
    fi
    echo "building $crate $version into $TOOLS_DIR (several minutes on a fresh machine)"
    # shellcheck disable=SC2046 # cargo_quiet_flag prints nothing or one word.
    run_long "building $crate" \
        cargo install "$crate" --version "$version" $locked --root "$TOOLS_DIR" $(cargo_quiet_flag)
}

install_worker_build() {
    step "worker-build $WORKER_BUILD_VERSION"
    cargo_install worker-build "$WORKER_BUILD_VERSION" worker-build --locked
}

install_wasm_bindgen() {
    local bindgen_version
    bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
    [ -n "$bindgen_version" ] || die "wasm-bindgen is not in Cargo.lock; run cargo generate-lockfile"

    step "wasm-bindgen-cli $bindgen_version"
    # The crates.io copy of wasm-bindgen-cli lacks one locked dependency, so no --locked.
    cargo_install wasm-bindgen-cli "$bindgen_version" wasm-bindgen ""
}

install_npm_packages() {
    step "npm packages (wrangler, workerd, Node.js 22, binaryen)"
    local stamp=node_modules/.package-lock.sha256
    local want
    want=$(sha256sum package-lock.json | cut -d' ' -f1)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        echo "node_modules matches package-lock.json"
        return
    fi
    echo "running npm ci (a minute or more on a fresh machine)"
    run_long "running npm ci" npm ci --no-audit --no-fund --loglevel=error
    echo "$want" > "$stamp"
}

install_python_packages() {
    step "python-cas and its dependencies in $PYTHON_VENV"
    local requirements=tests/interop/requirements.txt
    local stamp=$PYTHON_VENV/requirements.sha256
    local want
    want=$(sha256sum "$requirements" | cut -d' ' -f1)
    if [ -x "$PYTHON_VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        echo "$PYTHON_VENV matches $requirements"
        return
    fi
    python3 -m venv "$PYTHON_VENV"
    run_long "installing python-cas" \
        "$PYTHON_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" > "$stamp"
}

build_native() {
    step "building the CAS server and the demo origin (several minutes on a fresh machine)"
    # shellcheck disable=SC2046 # cargo_quiet_flag prints nothing or one word.
    run_long "building the server" cargo build $(cargo_quiet_flag) -p cas-server -p cas-origin --bins
}

make_certificates() {
    step "development certificates in certs/"
    target/debug/cas-server dev-certs --out certs --name localhost --name 127.0.0.1
}

make_dev_vars() {
    step "local secrets in .dev.vars"
    if [ -f .dev.vars ]; then
        echo ".dev.vars exists; keeping its keys"
        return
    fi
    umask 077
    {
        echo "SESSION_KEY=$(head -c 48 /dev/urandom | base64 -w0)"
        echo "ASSERTION_KEY=$(head -c 48 /dev/urandom | base64 -w0)"
    } > .dev.vars
    echo "wrote .dev.vars with fresh random keys"
}

require_system_tools
install_wasm_target
install_worker_build
install_wasm_bindgen
install_npm_packages
if [ "$FOR_TESTS" = 1 ]; then
    install_python_packages
else
    step "python-cas: skipped, only the tests use it"
fi
build_native
make_certificates
make_dev_vars
step "building the edge filter (wasm)"
bash scripts/build-filter.sh

finish_step
echo
echo "setup finished in $((SECONDS - started)) s"
