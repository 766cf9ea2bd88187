#!/usr/bin/env bash
# The transfer benchmark: builds the release binaries, starts a fresh 4-bureau testnet (in its
# own run directory, testnet/.bench-run, so a testnet someone else keeps in testnet/.run is not
# touched), then drives it with hukou-load in five phases:
#
#   1. flat out, batched   (POST /v1/batch, the driver's default)        -> batched_*
#   2. flat out, single    (one HTTP call per act: --single --workers 16) -> single_*
#   3. steady R/s, batched                                               -> batched_*_at_R
#   4. steady R/s, single                                                -> single_*_at_R
#   5. steady R/s, batched, while a busy loop holds one core             -> busy_*
#
# Phase 5's busy loop is a child process (`timeout S bash -c 'while :; do :; done'`) that spins
# for exactly the phase's length and then exits by itself: it starts when the driver's timed run
# starts (after its enrolment; `hukou-load --ready-file`) and lasts the steady run plus
# BUSY_MARGIN_S seconds (the last transfers' finality is measured a moment after they start).
# The script's trap kills it too if the script stops early.
#
# Each run enrols the people it moves first. Prints the driver's summaries on stderr and
# `name=value` lines on stdout; stops the testnet at the end. `cpu_ms_per_final_transfer` is the
# user + system CPU of the four node processes over the run, per final transfer (the driver's
# `cpu_ms_per_transfer`).
#
# usage: testnet/bench.sh [--duration S] [--rate R] [--rate-duration S] [--single-rate R] [--busy]
#   --duration S       flat-out run length (default 20)
#   --rate R           steady rate for the latency runs (default 1000 transfers/s)
#   --rate-duration S  steady run length (default 20)
#   --single-rate R    steady rate of the single-call run (default: --rate)
#   --busy             only phase 5 (the steady batched run beside a busy loop)
set -euo pipefail
TESTNET_DIR_="$(cd "$(dirname "$0")" && pwd)"
export HUKOU_TESTNET_RUN="${HUKOU_TESTNET_RUN:-$TESTNET_DIR_/.bench-run}"
source "$TESTNET_DIR_/common.sh"

USAGE="usage: testnet/bench.sh [--duration S] [--rate R] [--rate-duration S] [--single-rate R] [--busy]"
DURATION=20
RATE=1000
RATE_DURATION=20
SINGLE_RATE=""
ONLY_BUSY=0
# The busy loop lasts this much longer than the steady run's schedule.
BUSY_MARGIN_S=3
# The single-call mode: one HTTP call per act, 16 in flight per node and step (a bureau's windows).
SINGLE_FLAGS=(--single --workers 16)
while (( $# > 0 )); do
    case "$1" in
        --busy) ONLY_BUSY=1; shift; continue ;;
        --duration | --rate | --rate-duration | --single-rate) ;;
        *) die "$USAGE" ;;
    esac
    (( $# >= 2 )) || die "$1 needs a value"
    [[ "$2" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$1 needs a number, got '$2'"
    case "$1" in
        --duration) DURATION="$2" ;;
        --rate) RATE="$2" ;;
        --rate-duration) RATE_DURATION="$2" ;;
        --single-rate) SINGLE_RATE="$2" ;;
    esac
    shift 2
done
SINGLE_RATE="${SINGLE_RATE:-$RATE}"

build_with_load
export HUKOU_SKIP_BUILD=1
"$TESTNET_DIR/down.sh" >/dev/null 2>&1 || true
BUSY_PID=""
LOAD_PID=""
stop_all() {
    if [[ -n "$LOAD_PID" ]]; then
        kill "$LOAD_PID" 2>/dev/null || true
    fi
    if [[ -n "$BUSY_PID" ]]; then
        kill "$BUSY_PID" 2>/dev/null || true
        wait "$BUSY_PID" 2>/dev/null || true
    fi
    "$TESTNET_DIR/down.sh" >&2 || true
}
trap stop_all EXIT
RUST_LOG="${RUST_LOG:-warn}" "$TESTNET_DIR/up.sh" 4
NODES="$RUN_DIR/nodes.json"

value() { sed -n "s/^$2=//p" <<<"$1"; }
# print PREFIX SUFFIX OUTPUT: the driver's figures of one run as PREFIX_name_SUFFIX=value.
FIGURES=(final_transfers_per_s latency_p50_ms latency_p99_ms dereg_final_p50_ms dereg_final_p99_ms
    cpu_ms_per_transfer nodes_cores_busy driver_cores_busy writes_per_call errors load1_start)
print() {
    local prefix="$1" suffix="$2" out="$3" name
    for name in "${FIGURES[@]}"; do
        echo "${prefix}_${name}${suffix}=$(value "$out" "$name")"
    done
    echo "${prefix}_cpu_ms_per_final_transfer${suffix}=$(value "$out" cpu_ms_per_transfer)"
    echo "${prefix}_finality_p50_ms${suffix}=$(value "$out" dereg_final_p50_ms)"
    echo "${prefix}_finality_p99_ms${suffix}=$(value "$out" dereg_final_p99_ms)"
}
# A pause between phases, so one run's leftovers (checkpoints, pulls) do not load the next.
pause() {
    say ""
    say "(10 s pause)"
    sleep 10
}
tag="_at_${RATE%.*}"
single_tag="_at_${SINGLE_RATE%.*}"

echo "machine_cores=$(nproc)"
echo "load1_start=$(cut -d' ' -f1 /proc/loadavg)"

if (( ! ONLY_BUSY )); then
    say ""
    say "== 1/5 flat out for $DURATION s, batched"
    flat="$("$LOAD_BIN" --nodes "$NODES" --duration "$DURATION")" || say "(the run reported errors)"
    pause
    say "== 2/5 flat out for $DURATION s, single calls"
    flat_single="$("$LOAD_BIN" --nodes "$NODES" --duration "$DURATION" "${SINGLE_FLAGS[@]}")" ||
        say "(the run reported errors)"
    pause
    say "== 3/5 steady $RATE transfers/s for $RATE_DURATION s, batched"
    steady="$("$LOAD_BIN" --nodes "$NODES" --rate "$RATE" --duration "$RATE_DURATION")" ||
        say "(the run reported errors)"
    pause
    say "== 4/5 steady $SINGLE_RATE transfers/s for $RATE_DURATION s, single calls"
    steady_single="$("$LOAD_BIN" --nodes "$NODES" --rate "$SINGLE_RATE" --duration "$RATE_DURATION" \
        "${SINGLE_FLAGS[@]}")" || say "(the run reported errors)"
    pause

    print batched "" "$flat"
    print single "" "$flat_single"
    print batched "$tag" "$steady"
    print single "$single_tag" "$steady_single"
    b="$(value "$flat" cpu_ms_per_transfer)"
    s="$(value "$flat_single" cpu_ms_per_transfer)"
    if [[ -n "$b" && -n "$s" ]]; then
        echo "single_to_batched_cpu_ratio=$(awk -v s="$s" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", s / b }')"
    fi
    b="$(value "$steady" cpu_ms_per_transfer)"
    s="$(value "$steady_single" cpu_ms_per_transfer)"
    if [[ -n "$b" && -n "$s" ]]; then
        echo "single_to_batched_cpu_ratio${tag}=$(awk -v s="$s" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", s / b }')"
    fi
fi

# Phase 5: hukou-load enrols its population before it starts timing, so the busy loop starts
# when the driver says so (`--ready-file`, written as its timed run begins), not before.
busy_secs=$(awk -v d="$RATE_DURATION" -v m="$BUSY_MARGIN_S" 'BEGIN { printf "%d", d + m + 0.999 }')
say "== 5/5 steady $RATE transfers/s for $RATE_DURATION s, batched, with a busy loop holding one core for $busy_secs s"
ready="$RUN_DIR/busy-phase.ready"
busy_out="$RUN_DIR/busy-phase.out"
rm -f "$ready"
"$LOAD_BIN" --nodes "$NODES" --rate "$RATE" --duration "$RATE_DURATION" --ready-file "$ready" \
    >"$busy_out" &
LOAD_PID=$!
while [[ ! -e "$ready" ]] && kill -0 "$LOAD_PID" 2>/dev/null; do sleep 0.05; done
if [[ -e "$ready" ]]; then
    timeout "$busy_secs" bash -c 'while :; do :; done' &
    BUSY_PID=$!
fi
wait "$LOAD_PID" || say "(the run reported errors)"
LOAD_PID=""
if [[ -n "$BUSY_PID" ]]; then
    wait "$BUSY_PID" 2>/dev/null || true
    BUSY_PID=""
fi
busy="$(cat "$busy_out")"
print busy "" "$busy"
echo "busy_loop_s=$busy_secs"
echo "load1_end=$(cut -d' ' -f1 /proc/loadavg)"
