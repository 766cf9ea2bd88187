#!/usr/bin/env bash
# Drives a bounded load of whole transfers (permit at the destination, deregistration at the
# origin, registration at the destination once the deregistration is final there) against the
# running testnet, and prints throughput and latency percentiles (a summary on stderr,
# `name=value` lines on stdout). Starts a 4-bureau testnet with testnet/up.sh if none is
# running, and says so (stop it with testnet/down.sh).
#
# usage: testnet/load.sh [--duration S | --count N] [--rate R] [-- MORE hukou-load OPTIONS]
#   --duration S   start transfers for S seconds (default 10)
#   --count N      start N transfers
#   --rate R       start R transfers a second, steadily (open loop); default: flat out
# Transfers still under way at the end get 30 s to become final. `hukou-load --help` lists the
# other options (--batch, --inflight, --workers, --single, --population, ...).
set -euo pipefail
source "$(dirname "$0")/common.sh"

ARGS=()
while (( $# > 0 )); do
    case "$1" in
        --duration | --count | --rate)
            (( $# >= 2 )) || die "$1 needs a value"
            [[ "$2" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$1 needs a number, got '$2'"
            ARGS+=("$1" "$2")
            shift 2
            ;;
        --) shift; ARGS+=("$@"); break ;;
        -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "usage: testnet/load.sh [--duration S | --count N] [--rate R] [-- hukou-load options]" ;;
    esac
done

build_with_load
if ! testnet_running; then
    say "no testnet is running in $RUN_DIR: starting one with testnet/up.sh 4 (stop it with testnet/down.sh)"
    HUKOU_SKIP_BUILD=1 "$TESTNET_DIR/up.sh" 4
fi
exec "$LOAD_BIN" --nodes "$RUN_DIR/nodes.json" "${ARGS[@]}"
