#!/usr/bin/env bash
# The main job: builds hukou, starts four bureaus on 127.0.0.1 (linked through testnet/links.py
# so one can be cut off), plays the domain's cases (testnet/scenarios.py) with readable output,
# runs a short load of whole transfers (testnet/load.sh's driver), exports the ledger and audits
# it offline, and stops the network again (--keep leaves it running). Exits 0 only if every
# expectation held.
set -euo pipefail
source "$(dirname "$0")/common.sh"

KEEP=0
for arg in "$@"; do
    case "$arg" in
        --keep) KEEP=1 ;;
        *) die "usage: testnet/demo.sh [--keep]" ;;
    esac
done
build_with_load
export HUKOU_SKIP_BUILD=1
"$TESTNET_DIR/down.sh" >/dev/null 2>&1 || true
"$TESTNET_DIR/up.sh" 4 --links
status=0
python3 "$TESTNET_DIR/scenarios.py" || status=$?

say ""
say "== a short load: whole transfers between all four bureaus for ${HUKOU_DEMO_LOAD_S:-5} s (testnet/load.sh)"
if load_out="$("$LOAD_BIN" --nodes "$RUN_DIR/nodes.json" --duration "${HUKOU_DEMO_LOAD_S:-5}")"; then
    grep -E '^(transfers_final|final_transfers_per_s|latency_p50_ms|latency_p99_ms|errors)=' <<<"$load_out" >&2
else
    say "load: FAILED (errors above)"
    status=1
fi

say ""
say "== export the ledger from one bureau and audit it offline"
BUNDLE="$RUN_DIR/bundle"
rm -rf "$BUNDLE"
first_api="$(python3 -c "import json;print(json.load(open('$RUN_DIR/nodes.json'))[0]['api'])")"
if "$HUKOU" export --node "$first_api" --genesis "$RUN_DIR/genesis.toml" --out "$BUNDLE" &&
    "$HUKOU" audit "$BUNDLE"; then
    say "audit: clean"
else
    say "audit: FAILED"
    status=1
fi
if (( KEEP )); then
    say ""
    say "the network is still running: $RUN_DIR/nodes.json lists each bureau's API and token."
    say "stop it with: testnet/down.sh"
else
    "$TESTNET_DIR/down.sh"
    say "the network is stopped (run testnet/demo.sh --keep to leave it running)."
fi
exit "$status"
