#!/usr/bin/env bash
# The transfer benchmark: builds the release binaries, starts a fresh 4-bureau testnet (in its
# own run directory, testnet/.bench-run, so a testnet someone else keeps in testnet/.run is not
# touched), then drives it with hukou-load twice: flat out for a bounded time (throughput), and
# at a steady rate (finality latency). Each run enrols the people it moves first. Prints the
# driver's summaries on stderr and `name=value` lines on stdout; stops the testnet at the end.
#
# usage: testnet/bench.sh [--duration S] [--rate R] [--rate-duration S]
#   --duration S       flat-out run length (default 20)
#   --rate R           steady rate for the latency run (default 1000 transfers/s)
#   --rate-duration S  steady run length (default 20)
set -euo pipefail
TESTNET_DIR_="$(cd "$(dirname "$0")" && pwd)"
export HUKOU_TESTNET_RUN="${HUKOU_TESTNET_RUN:-$TESTNET_DIR_/.bench-run}"
source "$TESTNET_DIR_/common.sh"

DURATION=20
RATE=1000
RATE_DURATION=20
while (( $# > 0 )); do
    (( $# >= 2 )) || die "$1 needs a value"
    [[ "$2" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$1 needs a number, got '$2'"
    case "$1" in
        --duration) DURATION="$2" ;;
        --rate) RATE="$2" ;;
        --rate-duration) RATE_DURATION="$2" ;;
        *) die "usage: testnet/bench.sh [--duration S] [--rate R] [--rate-duration S]" ;;
    esac
    shift 2
done

build_with_load
export HUKOU_SKIP_BUILD=1
"$TESTNET_DIR/down.sh" >/dev/null 2>&1 || true
RUST_LOG="${RUST_LOG:-warn}" "$TESTNET_DIR/up.sh" 4
trap '"$TESTNET_DIR/down.sh" >&2 || true' EXIT
NODES="$RUN_DIR/nodes.json"

say ""
say "== flat out for $DURATION s"
flat="$("$LOAD_BIN" --nodes "$NODES" --duration "$DURATION")" || say "(the flat-out run reported errors)"
say ""
say "(10 s pause, so the flat-out run's leftovers do not load the steady one)"
sleep 10
say "== steady $RATE transfers/s for $RATE_DURATION s"
steady="$("$LOAD_BIN" --nodes "$NODES" --rate "$RATE" --duration "$RATE_DURATION")" ||
    say "(the steady run reported errors)"

value() { sed -n "s/^$2=//p" <<<"$1"; }
echo "machine_cores=$(nproc)"
echo "load1_now=$(cut -d' ' -f1 /proc/loadavg)"
for name in final_transfers_per_s latency_p50_ms latency_p99_ms dereg_final_p50_ms dereg_final_p99_ms \
    cpu_ms_per_transfer writes_per_call errors load1_start; do
    echo "$name=$(value "$flat" "$name")"
done
tag="at_${RATE%.*}"
for name in final_transfers_per_s latency_p50_ms latency_p99_ms dereg_final_p50_ms dereg_final_p99_ms \
    cpu_ms_per_transfer errors load1_start; do
    echo "${name}_${tag}=$(value "$steady" "$name")"
done
# Finality at the steady rate: deregistration signed -> final on the destination.
echo "finality_p50_ms_${tag}=$(value "$steady" dereg_final_p50_ms)"
echo "finality_p99_ms_${tag}=$(value "$steady" dereg_final_p99_ms)"
