#!/usr/bin/env bash
# Chaos under load: starts a fresh 4-bureau testnet of its own (testnet/.chaos-run, links
# between bureaus cuttable), drives whole transfers with hukou-load for a bounded time, and
# meanwhile, every few seconds, does one of: kill -9 a bureau, stop it with SIGTERM, or cut it off
# the network — then restarts or reconnects it. Afterwards it checks that
#   1. every node converges to the same length and root for every log;
#   2. every write a node acknowledged (hukou-load --acks) is in every node's copy of the ledger;
#   3. an export audited offline (hukou audit) is clean.
# Exits 0 only if all three held. Stops its testnet at the end (--keep leaves it running).
#
# usage: testnet/chaos.sh [--duration S] [--every S] [--keep]
#   --duration S  seconds of load (default 40)
#   --every S     seconds between two faults (default 6)
set -euo pipefail
export HUKOU_TESTNET_RUN="${HUKOU_CHAOS_RUN:-$(cd "$(dirname "$0")" && pwd)/.chaos-run}"
source "$(dirname "$0")/common.sh"

DURATION=40
EVERY=6
KEEP=0
while (( $# > 0 )); do
    case "$1" in
        --duration) DURATION="${2:?--duration needs seconds}"; shift 2 ;;
        --every) EVERY="${2:?--every needs seconds}"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "usage: testnet/chaos.sh [--duration S] [--every S] [--keep]" ;;
    esac
done
[[ "$DURATION" =~ ^[0-9]+$ && "$EVERY" =~ ^[0-9]+$ && "$EVERY" -ge 2 ]] ||
    die "--duration and --every take whole seconds (--every at least 2)"

build_with_load
export HUKOU_SKIP_BUILD=1
"$TESTNET_DIR/down.sh" >/dev/null 2>&1 || true
"$TESTNET_DIR/up.sh" 4 --links
cleanup() {
    if (( KEEP )); then
        say "the chaos testnet is still running ($RUN_DIR/nodes.json); stop it with:"
        say "  HUKOU_TESTNET_RUN=$RUN_DIR testnet/down.sh"
    else
        "$TESTNET_DIR/down.sh" >/dev/null 2>&1 || true
        say "the chaos testnet is stopped."
    fi
}
trap cleanup EXIT

mapfile -t CODES < <(python3 -c "import json;[print(n['bureau']) for n in json.load(open('$RUN_DIR/nodes.json'))]")
ACKS="$RUN_DIR/acks.txt"
: >"$ACKS"

say "== load for ${DURATION} s with a fault every ${EVERY} s"
"$LOAD_BIN" --nodes "$RUN_DIR/nodes.json" --duration "$DURATION" --acks "$ACKS" --drain 60 \
    >"$RUN_DIR/load.out" 2>"$RUN_DIR/load.err" &
LOAD_PID=$!

start_node() {
    local dir="$RUN_DIR/$1"
    (cd "$dir" && RUST_LOG="${RUST_LOG:-info}" nohup "$HUKOU" node run --config node.toml >>node.log 2>&1 </dev/null &)
}
node_pid() { cat "$RUN_DIR/$1/data/node.pid" 2>/dev/null || true; }
wait_healthy() {
    local api
    api="$(python3 -c "import json;print([n['api'] for n in json.load(open('$RUN_DIR/nodes.json')) if n['bureau']=='$1'][0])")"
    for _ in $(seq 1 300); do
        curl -sf "$api/healthz" 2>/dev/null | grep -q '"status":"ok"' && return 0
        sleep 0.1
    done
    say "  bureau $1 not healthy 30 s after restart; its log:"
    tail -n 20 "$RUN_DIR/$1/node.log" >&2
    return 1
}

faults=0
started=$(date +%s)
sleep 3
while kill -0 "$LOAD_PID" 2>/dev/null && (( $(date +%s) - started < DURATION )); do
    code="${CODES[$((RANDOM % ${#CODES[@]}))]}"
    t0=$(date +%s.%N)
    case $((RANDOM % 3)) in
        0)
            say "  [$(date +%T)] kill -9 $code"
            pid="$(node_pid "$code")"; [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null || true
            sleep 2; start_node "$code"; wait_healthy "$code"
            ;;
        1)
            say "  [$(date +%T)] stop $code (SIGTERM)"
            pid="$(node_pid "$code")"
            if [[ -n "$pid" ]]; then
                kill -TERM "$pid" 2>/dev/null || true
                for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            fi
            sleep 2; start_node "$code"; wait_healthy "$code"
            ;;
        2)
            say "  [$(date +%T)] cut $code off the network"
            python3 "$TESTNET_DIR/links.py" cut "$RUN_DIR" "$code"
            sleep 3
            python3 "$TESTNET_DIR/links.py" heal "$RUN_DIR" "$code"
            ;;
    esac
    faults=$((faults + 1))
    say "  [$(date +%T)] $code back after $(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')") s"
    sleep "$EVERY"
done
load_status=0
wait "$LOAD_PID" || load_status=$?
say "== load finished (exit $load_status) after $faults faults; its summary:"
cat "$RUN_DIR/load.err" | tail -n 12 >&2
grep -E "^(transfers_final|final_transfers_per_s|latency_p50_ms|latency_p99_ms|errors)=" "$RUN_DIR/load.out" >&2 || true

status=0
final="$(sed -n 's/^transfers_final=//p' "$RUN_DIR/load.out")"
if [[ -z "$final" || "$final" == 0 ]]; then
    say "  FAILED: no transfer became final under chaos (see $RUN_DIR/load.err)"
    status=1
fi

say "== every node converges, and holds every acknowledged write"
python3 - "$RUN_DIR/nodes.json" "$ACKS" <<'PY' || status=1
import json, sys, time, urllib.request

nodes = json.load(open(sys.argv[1]))
acks = [l.strip() for l in open(sys.argv[2]) if l.strip()]

def get(node, path):
    with urllib.request.urlopen(node["api"] + path, timeout=30) as r:
        return json.load(r)

def view(node):
    return {l["bureau"]: (l["length"], l["root"]) for l in get(node, "/v1/logs")["logs"]}

deadline = time.time() + 120
while True:
    try:
        views = [view(n) for n in nodes]
        if all(v == views[0] for v in views):
            break
    except Exception:
        views = None
    if time.time() > deadline:
        print(f"  FAILED: logs did not converge within 120 s: {views}", file=sys.stderr)
        sys.exit(1)
    time.sleep(0.5)
total = sum(length for length, _ in views[0].values())
print(f"  converged: {len(nodes)} nodes hold the same {len(views[0])} logs, {total:,} entries", file=sys.stderr)

missing = 0
for node in nodes:
    held = set()
    for code, (length, _) in views[0].items():
        start = 0
        while start < length:
            page = get(node, f"/v1/logs/{code}/entries?from={start}&max=1000")["entries"]
            if not page:
                break
            held.update(e["ref"] for e in page)
            start += len(page)
    lost = [a for a in acks if a not in held]
    missing += len(lost)
    if lost:
        print(f"  FAILED: {node['bureau']} lacks {len(lost)} acknowledged writes, e.g. {lost[:3]}", file=sys.stderr)
if missing:
    sys.exit(1)
print(f"  all {len(acks):,} acknowledged writes are on every node", file=sys.stderr)
PY

say "== export and audit"
BUNDLE="$RUN_DIR/bundle"
rm -rf "$BUNDLE"
first_api="$(python3 -c "import json;print(json.load(open('$RUN_DIR/nodes.json'))[0]['api'])")"
if "$HUKOU" export --node "$first_api" --genesis "$RUN_DIR/genesis.toml" --out "$BUNDLE" >/dev/null &&
    "$HUKOU" audit "$BUNDLE" >"$RUN_DIR/audit.txt"; then
    say "  audit: clean"
else
    say "  audit: FAILED"; tail -n 30 "$RUN_DIR/audit.txt" >&2 || true
    status=1
fi
if (( status == 0 )); then say "chaos: PASSED ($faults faults)"; else say "chaos: FAILED"; fi
exit "$status"
