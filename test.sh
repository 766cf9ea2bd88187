#!/usr/bin/env bash
# Runs the whole test suite: unit, property and integration tests (real nodes on 127.0.0.1).
# Installs cargo-nextest from crates.io if this machine lacks it; falls back to cargo test.
set -euo pipefail
cd "$(dirname "$0")"
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
