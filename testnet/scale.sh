#!/usr/bin/env bash
# A large network on this machine (issue 14, item 4). For each size N, starts N bureaus as real
# processes on 127.0.0.1 (testnet/up.sh N: the first 8 real, the rest from testnet/codes.py, a
# quarter of them in 广东省), then:
#
#   1. committees: when `hukou config propose` knows --committee-size, proposes witness
#      committees of --committee-size (default 7), signs the proposal with two of the three
#      administrators ($RUN_DIR/admins) and submits it, as testnet/add-bureau.sh drives
#      `hukou config`; otherwise prints committees=none and goes on;
#   2. idle: lets the network settle, then measures it idle for --idle seconds (default 20):
#      CPU per node (ms/s), ESTABLISHED TCP connections per node, RSS per node, messages per
#      node per second (testnet/idle_measure.py says how each is taken);
#   3. trickle: enrols people at every bureau (enough for 10 s of transfers in flight, at least
#      3 a bureau; and as many again at the bureaus outside the province of step 4, for its
#      trickle, since an enrolment needs the person's arbiter, which may be in that province),
#      then starts --rate transfers a second (default 10) for --trickle seconds (default 30)
#      between random pairs of bureaus and measures deregistration -> final
#      (testnet/trickle.py); a transfer not final within 30 s counts as failed, its person stays
#      in transit, and when nobody is free to move a scheduled transfer is not started
#      (nN_transfers_not_started);
#   4. province down: SIGSTOPs every bureau of the province holding a quarter of the network
#      (testnet/codes.py --quarter N; a stopped process keeps its sockets but answers nothing,
#      the harsher case for its peers; `--province-down kill` kills them instead), then runs the
#      same trickle among the others and counts how many finalise within the bound.
#
# Prints `nN_name=value` lines on stdout (e.g. n200_idle_cpu_ms_per_s_p50, n200_connections_max,
# n200_rss_mib_p50, n200_msgs_per_node_per_s, n200_finality_p50_ms, n200_finality_p99_ms,
# n200_province_down_final) and a summary table on stderr. Everything it started is stopped at
# the end, also on failure or Ctrl-C (stopped processes are continued, then testnet/down.sh).
# Each size runs in its own directory, $HUKOU_TESTNET_RUN/nN (default testnet/.scale-run/nN);
# node logs stay there, the stores are deleted after each size unless --keep.
#
# usage: testnet/scale.sh [--sizes "50 100 200"] [--quick] [--idle S] [--rate R] [--trickle S]
#                         [--committee-size K] [--province-down stop|kill] [--keep]
#   --sizes     sizes to run, space- or comma-separated (default "50 100 200")
#   --quick     short phases for a check that the script works (idle 5 s, trickle 5 s at 4/s,
#               20 s bound)
#   HUKOU_PROFILE=debug runs the debug build (the default is release: measure with release).
set -euo pipefail
TESTNET_DIR_="$(cd "$(dirname "$0")" && pwd)"
BASE_RUN="${HUKOU_TESTNET_RUN:-$TESTNET_DIR_/.scale-run}"
export HUKOU_TESTNET_RUN="$BASE_RUN"
source "$TESTNET_DIR_/common.sh"

SIZES="50 100 200"
IDLE=20
RATE=10
TRICKLE=30
PER_BUREAU=3
BOUND=30
SETTLE=5
COMMITTEE_SIZE=7
DOWN_HOW=stop
KEEP=0
usage() { sed -n "2,$(( $(grep -n '^set -euo' "$0" | cut -d: -f1) - 1 ))p" "$0" | sed 's/^# \{0,1\}//'; }
while (( $# > 0 )); do
    case "$1" in
        --quick) IDLE=5; RATE=4; TRICKLE=5; BOUND=20; SETTLE=2; shift ;;
        --keep) KEEP=1; shift ;;
        --sizes | --idle | --rate | --trickle | --committee-size | --province-down)
            (( $# >= 2 )) || die "$1 needs a value"
            case "$1" in
                --sizes) SIZES="${2//,/ }" ;;
                --idle) IDLE="$2" ;;
                --rate) RATE="$2" ;;
                --trickle) TRICKLE="$2" ;;
                --committee-size) COMMITTEE_SIZE="$2" ;;
                --province-down) DOWN_HOW="$2" ;;
            esac
            shift 2
            ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument '$1'" ;;
    esac
done
for n in $SIZES; do
    [[ "$n" =~ ^[0-9]+$ ]] && (( n >= 4 && n <= 1000 )) || die "each size must be 4..1000, got '$n'"
done
[[ "$DOWN_HOW" == stop || "$DOWN_HOW" == kill ]] || die "--province-down is stop or kill, got '$DOWN_HOW'"
for v in "$IDLE" "$RATE" "$TRICKLE" "$COMMITTEE_SIZE"; do
    [[ "$v" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "expected a number, got '$v'"
done

build
export HUKOU_SKIP_BUILD=1
mkdir -p "$BASE_RUN"
RESULTS="$BASE_RUN/results.txt"
: >"$RESULTS"
CURRENT_RUN=""

# Stops what this script started in the current size's directory: continues SIGSTOPped nodes
# (a stopped process would not act on SIGTERM), then testnet/down.sh (nodes by their pid files).
stop_current() {
    [[ -n "$CURRENT_RUN" ]] || return 0
    if [[ -f "$CURRENT_RUN/stopped.pids" ]]; then
        while read -r pid; do kill -CONT "$pid" 2>/dev/null || true; done <"$CURRENT_RUN/stopped.pids"
        rm -f "$CURRENT_RUN/stopped.pids"
    fi
    HUKOU_TESTNET_RUN="$CURRENT_RUN" "$TESTNET_DIR/down.sh" >&2 || true
    if (( ! KEEP )); then
        rm -rf "$CURRENT_RUN"/*/data/db "$CURRENT_RUN"/*/data/*.sled 2>/dev/null || true
    fi
    CURRENT_RUN=""
}
trap 'stop_current' EXIT
trap 'exit 130' INT TERM

# emit N NAME VALUE: one result line, on stdout and in results.txt.
emit() {
    echo "n$1_$2=$3" | tee -a "$RESULTS"
}
value() { sed -n "s/^$1=//p" <<<"$2" | tail -1; }

echo "machine_cores=$(nproc)"
echo "machine_load1_start=$(cut -d' ' -f1 /proc/loadavg)"
echo "profile=$PROFILE"
FAILED=0
for N in $SIZES; do
    RUN="$BASE_RUN/n$N"
    CURRENT_RUN="$RUN"
    export HUKOU_TESTNET_RUN="$RUN"
    say ""
    say "=== $N bureaus ($RUN)"
    started=$(date +%s)
    if ! RUST_LOG="${RUST_LOG:-warn}" timeout $((300 + 3 * N)) "$TESTNET_DIR/up.sh" "$N"; then
        say "the $N-bureau testnet did not come up (see the node logs in $RUN)"
        emit "$N" up failed
        FAILED=1
        stop_current
        continue
    fi
    emit "$N" up ok
    emit "$N" up_s $(( $(date +%s) - started ))
    NODES="$RUN/nodes.json"

    # 1. Witness committees, when the node's configuration knows them.
    if "$HUKOU" config propose --help 2>&1 | grep -q -- '--committee-size'; then
        read -r VIA_URL VIA_TOKEN < <(python3 -c 'import json,sys,os; n=json.load(open(sys.argv[1]))[0]; print(n["api"], os.path.join(os.path.dirname(n["config"]), "api.token"))' "$NODES")
        P="$RUN/committees.proposal.json"
        say "proposing witness committees of $COMMITTEE_SIZE ..."
        # shellcheck disable=SC2086 # HUKOU_COMMITTEE_ARGS: extra words for the proposal, split on purpose
        if "$HUKOU" config propose --node "$VIA_URL" --token-file "$VIA_TOKEN" \
            --committee-size "$COMMITTEE_SIZE" ${HUKOU_COMMITTEE_ARGS:-} --out "$P" >&2 &&
            "$HUKOU" config sign "$P" --key "$RUN/admins/admin-1.key" >&2 &&
            "$HUKOU" config sign "$P" --key "$RUN/admins/admin-2.key" >&2 &&
            "$HUKOU" config submit --node "$VIA_URL" --token-file "$VIA_TOKEN" "$P" >&2 &&
            timeout 180 python3 - "$NODES" "$P" <<'PY'
import json, sys, time, urllib.request
nodes, epoch = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))["epoch"]
behind = {n["bureau"]: n["api"] for n in nodes}
deadline = time.time() + 120
while behind and time.time() < deadline:
    for code, api in list(behind.items()):
        try:
            if json.load(urllib.request.urlopen(api + "/v1/config", timeout=5)).get("epoch", 0) >= epoch:
                del behind[code]
        except Exception:
            pass
    time.sleep(0.5)
if behind:
    sys.exit(f"{len(behind)} bureau(s) did not reach epoch {epoch} in 120 s: {' '.join(sorted(behind)[:10])}")
PY
        then
            emit "$N" committees "$COMMITTEE_SIZE"
        else
            say "the committee update failed (above); measuring without committees"
            emit "$N" committees failed
            FAILED=1
        fi
    else
        say "this hukou has no committees yet (hukou config propose --committee-size): every member witnesses every log"
        emit "$N" committees none
    fi

    # 2. Idle.
    say "settling $SETTLE s, then measuring $IDLE s idle ..."
    sleep "$SETTLE"
    idle="$(timeout $((60 + ${IDLE%.*} + N)) python3 "$TESTNET_DIR/idle_measure.py" "$NODES" "$IDLE")" || {
        say "the idle measurement failed"
        FAILED=1
    }
    for name in idle_cpu_ms_per_s_p50 idle_cpu_ms_per_s_max machine_idle_cpu_cores connections_p50 \
        connections_max rss_mib_p50 rss_mib_max msgs_per_node_per_s msgs_source; do
        emit "$N" "$name" "$(value "$name" "$idle")"
    done

    # 3. A trickle of transfers, every bureau up.
    STATE="$RUN/trickle.json"
    STATE_DOWN="$RUN/trickle-province-down.json"
    read -r -a DOWN < <(python3 "$TESTNET_DIR/codes.py" --quarter "$N" 2>"$RUN/province.txt")
    DOWN_LIST="$(IFS=,; echo "${DOWN[*]}")"
    per=$(python3 -c 'import math,sys; r,n,p=map(float,sys.argv[1:]); print(max(int(p), math.ceil(r*10/n)))' "$RATE" "$N" "$PER_BUREAU")
    say "enrolling $per people at each bureau, and $per more at each outside $(cat "$RUN/province.txt") ..."
    enrol_started=$(date +%s)
    for phase in all down; do
        if [[ "$phase" == all ]]; then st="$STATE" ex=""; else st="$STATE_DOWN" ex="$DOWN_LIST"; fi
        timeout $((240 + 2 * N)) python3 "$TESTNET_DIR/trickle.py" enrol --nodes "$NODES" \
            --state "$st" --per-bureau "$per" --bound "$BOUND" --exclude "$ex" >/dev/null || {
            say "not every enrolment succeeded (above); going on with those that did"
            FAILED=1
        }
    done
    emit "$N" enrol_s $(( $(date +%s) - enrol_started ))
    say "trickle: $RATE transfers/s for $TRICKLE s between random pairs ..."
    trickle="$(timeout $((120 + ${TRICKLE%.*} + 2 * BOUND)) python3 "$TESTNET_DIR/trickle.py" run \
        --nodes "$NODES" --state "$STATE" --rate "$RATE" --duration "$TRICKLE" --bound "$BOUND")" || {
        say "the trickle failed"
        FAILED=1
    }
    emit "$N" transfers_started "$(value started "$trickle")"
    emit "$N" transfers_final "$(value final "$trickle")"
    emit "$N" transfers_not_started "$(value not_started "$trickle")"
    emit "$N" finality_p50_ms "$(value final_p50_ms "$trickle")"
    emit "$N" finality_p99_ms "$(value final_p99_ms "$trickle")"
    emit "$N" transfer_errors "$(value errors_by_name "$trickle")"

    # 4. A whole province down.
    if [[ "$DOWN_HOW" == stop ]]; then
        say "stopping ${#DOWN[@]} of $N bureaus ($(cat "$RUN/province.txt")) with SIGSTOP ..."
    else
        say "killing ${#DOWN[@]} of $N bureaus ($(cat "$RUN/province.txt")) with SIGKILL ..."
    fi
    for code in "${DOWN[@]}"; do
        pid="$(cat "$RUN/$code/data/node.pid")"
        if [[ "$DOWN_HOW" == stop ]]; then
            echo "$pid" >>"$RUN/stopped.pids"
            kill -STOP "$pid"
        else
            kill -KILL "$pid"
        fi
    done
    emit "$N" province_down_bureaus "${#DOWN[@]}"
    emit "$N" province_down_how "$DOWN_HOW"
    sleep 2
    down="$(timeout $((120 + ${TRICKLE%.*} + 2 * BOUND)) python3 "$TESTNET_DIR/trickle.py" run \
        --nodes "$NODES" --state "$STATE_DOWN" --rate "$RATE" --duration "$TRICKLE" --bound "$BOUND" \
        --exclude "$DOWN_LIST" --seed 15)" || {
        say "the province-down trickle failed"
        FAILED=1
    }
    emit "$N" province_down_started "$(value started "$down")"
    emit "$N" province_down_final "$(value final "$down")"
    emit "$N" province_down_not_started "$(value not_started "$down")"
    emit "$N" province_down_finality_p99_ms "$(value final_p99_ms "$down")"
    emit "$N" province_down_errors "$(value errors_by_name "$down")"
    emit "$N" total_s $(( $(date +%s) - started ))
    stop_current
done
echo "machine_load1_end=$(cut -d' ' -f1 /proc/loadavg)"

python3 - "$RESULTS" "$SIZES" >&2 <<'PY'
import sys
rows = dict(l.strip().split("=", 1) for l in open(sys.argv[1]) if "=" in l)
cols = [("idle CPU ms/s p50", "idle_cpu_ms_per_s_p50"), ("max", "idle_cpu_ms_per_s_max"),
        ("conns max", "connections_max"), ("RSS MiB p50", "rss_mib_p50"),
        ("msgs/node/s", "msgs_per_node_per_s"), ("final p50 ms", "finality_p50_ms"),
        ("final p99 ms", "finality_p99_ms"), ("province down: final/started", None)]
print("\n| bureaus | " + " | ".join(c for c, _ in cols) + " |")
print("|---" * (len(cols) + 1) + "|")
for n in sys.argv[2].split():
    g = lambda k: rows.get(f"n{n}_{k}", "-")
    cells = [g(k) if k else f"{g('province_down_final')}/{g('province_down_started')}" for _, k in cols]
    if g("up") == "failed":
        cells = ["did not come up"] + [""] * (len(cols) - 1)
    print(f"| {n} | " + " | ".join(cells) + " |")
src = {rows.get(f"n{n}_msgs_source") for n in sys.argv[2].split()} - {None}
if "write_syscalls" in src:
    print("(msgs/node/s: the nodes export no message counter; write syscalls per second instead, an upper bound)")
PY
exit "$FAILED"
