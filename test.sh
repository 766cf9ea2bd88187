#!/usr/bin/env bash
# Runs the whole test suite: unit, property and integration tests (real nodes on 127.0.0.1).
# Installs cargo-nextest from crates.io if this machine lacks it; falls back to cargo test.
set -euo pipefail
cd "$(dirname "$0")"

# The web console's browser test (tests/tests/console.rs) drives Debian's Chromium through
# ChromeDriver. Install both when either is missing; if that fails the test itself says so
# (it fails under CI=true, and skips loudly otherwise).
sudo_cmd=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then sudo_cmd="sudo -n"; fi
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    echo "test.sh: Chromium or ChromeDriver missing; installing Debian's chromium and chromium-driver ..." >&2
    if ! { $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
        || { $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 \
             && $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; }; }; then
        echo "test.sh: WARNING: could not install chromium and chromium-driver (apt-get failed);" \
             "the web console's browser test will fail under CI=true and skip otherwise" >&2
    fi
fi
# A Chinese font, so that the console's screenshots (docs/screenshots/) show characters, not boxes.
if command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=zh 2>/dev/null)" ]; then
    echo "test.sh: no Chinese font; installing fonts-wqy-microhei for the console's screenshots ..." >&2
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null 2>&1 \
        || echo "test.sh: WARNING: could not install fonts-wqy-microhei; screenshots will show boxes for Chinese" >&2
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "cargo-nextest not found; installing it from crates.io ..." >&2
    cargo install cargo-nextest --locked >&2 || true
fi
if cargo nextest --version >/dev/null 2>&1; then
    exec cargo nextest run --workspace --no-fail-fast "$@"
else
    echo "cargo-nextest unavailable; using cargo test" >&2
    exec cargo test --workspace --no-fail-fast "$@"
fi
