#!/usr/bin/env bash
# Starts N local bureaus (default 4, at most 1000) on 127.0.0.1 with fresh keys, person key,
# network key, three administrator keys (testnet/.run/admins/admin-{1,2,3}.key) and a signed
# genesis naming them with threshold 2; waits until every node is healthy and connected to the
# peers it should be (its `overlay_neighbors` in GET /healthz when the node reports them, else
# every other bureau); writes testnet/.run/nodes.json. Stop them with testnet/down.sh.
#
# Bureaus: the first 8 are real (testnet/common.sh); more come from testnet/codes.py
# (deterministic, plausible county-level codes over the real provinces). Nodes start in batches
# of HUKOU_UP_BATCH (default 20), each batch given up to 60 s to answer /healthz before the next
# starts, so 200 processes on 2 cores do not all replay and dial at once; the final wait for
# connections is bounded by HUKOU_UP_TIMEOUT seconds (default 60 + N/2).
#
# usage: testnet/up.sh [N] [--links]
#   --links  bureaus reach each other through testnet/links.py, one forwarder per ordered pair,
#            so `testnet/links.py cut RUN_DIR CODE` cuts a bureau off while it keeps running
#            (N*(N-1) forwarders: at most 16 bureaus).
set -euo pipefail
source "$(dirname "$0")/common.sh"

N=4
LINKS=0
for arg in "$@"; do
    case "$arg" in
        --links) LINKS=1 ;;
        *) N="$arg" ;;
    esac
done
[[ "$N" =~ ^[0-9]+$ ]] && (( N >= 1 && N <= 1000 )) || die "N must be 1..1000, got '$N'"
(( LINKS == 0 || N <= 16 )) || die "--links starts N*(N-1) forwarders: at most 16 bureaus, got $N"
load_bureaus "$N"
BATCH="${HUKOU_UP_BATCH:-20}"
[[ "$BATCH" =~ ^[1-9][0-9]*$ ]] || die "HUKOU_UP_BATCH must be a positive number, got '$BATCH'"
UP_TIMEOUT="${HUKOU_UP_TIMEOUT:-$((60 + N / 2))}"

if [[ -f "$RUN_DIR/nodes.json" ]]; then
    for pidfile in "$RUN_DIR"/*/data/node.pid; do
        [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null &&
            die "a testnet is already running from $RUN_DIR; stop it with testnet/down.sh"
    done
fi
build
rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR"
umask 077

say "creating keys and genesis for $N bureaus in $RUN_DIR ..."
"$HUKOU" keys gen --out "$RUN_DIR/admin.key" >/dev/null
"$HUKOU" keys gen-person-key --out "$RUN_DIR/person.key" >/dev/null
"$HUKOU" keys gen-network-key --out "$RUN_DIR/network.key" >/dev/null
# Three administrators, two of whom sign a change of the network's configuration (issue 13): no
# single key can change the network. Each key file is owner-only (umask 077, mode 0600).
ADMIN_DIR="$RUN_DIR/admins"
mkdir -p "$ADMIN_DIR"
admin_flags=()
for i in 1 2 3; do
    "$HUKOU" keys gen --out "$ADMIN_DIR/admin-$i.key" >/dev/null
    admin_flags+=(--administrator-key "$ADMIN_DIR/admin-$i.key")
done
"$HUKOU" genesis create --network "hukou-testnet" --admin-key "$RUN_DIR/admin.key" \
    "${admin_flags[@]}" --admin-threshold 2 --out "$RUN_DIR/genesis.toml" >/dev/null

read -r -a PORTS <<<"$(free_ports $((2 * N)))"
for ((i = 0; i < N; i++)); do
    code="${BUREAU_CODES[$i]}"
    dir="$RUN_DIR/$code"
    mkdir -p "$dir"
    if (( i > 0 && i % 50 == 0 )); then say "  ... $i of $N bureaus in the genesis"; fi
    "$HUKOU" keys gen --out "$dir/bureau.key" >/dev/null
    p2p_port="${PORTS[$((2 * i + 1))]}"
    "$HUKOU" genesis add-member --genesis "$RUN_DIR/genesis.toml" --code "$code" \
        --name "${BUREAU_NAMES[$i]}" --key "$dir/bureau.key" \
        --address "/ip4/127.0.0.1/tcp/$p2p_port" >/dev/null
done
"$HUKOU" genesis sign --genesis "$RUN_DIR/genesis.toml" --admin-key "$RUN_DIR/admin.key" >/dev/null

if (( LINKS )); then
    read -r -a LINK_PORTS <<<"$(free_ports $((N * (N - 1))))"
    python3 - "$RUN_DIR" "$N" "${BUREAU_CODES[*]:0:$N}" "${PORTS[*]}" "${LINK_PORTS[*]}" <<'PY'
import json, sys
run, n = sys.argv[1], int(sys.argv[2])
codes, ports, link_ports = sys.argv[3].split(), sys.argv[4].split(), sys.argv[5].split()
links, k = [], 0
for i in range(n):
    for j in range(n):
        if i != j:
            links.append({"from": codes[i], "to": codes[j], "listen": int(link_ports[k]),
                          "target": int(ports[2 * j + 1])})
            k += 1
json.dump({"links": links}, open(f"{run}/links.json", "w"), indent=1)
PY
    : >"$RUN_DIR/links.cut"
    nohup python3 "$TESTNET_DIR/links.py" serve "$RUN_DIR" >>"$RUN_DIR/links.log" 2>&1 </dev/null &
    echo $! >"$RUN_DIR/links.pid"
fi

for ((i = 0; i < N; i++)); do
    code="${BUREAU_CODES[$i]}"
    dir="$RUN_DIR/$code"
    cp "$RUN_DIR/genesis.toml" "$dir/genesis.toml"
    cp "$RUN_DIR/person.key" "$dir/person.key"
    cp "$RUN_DIR/network.key" "$dir/network.key"
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/api.token"
    cat >"$dir/node.toml" <<TOML
# Bureau ${BUREAU_NAMES[$i]} ($code) of the local testnet. Fields: node/src/config.rs.
bureau = "$code"
data_dir = "data"
key_file = "bureau.key"
genesis = "genesis.toml"
person_key_file = "person.key"
network_key_file = "network.key"
api_token_file = "api.token"
api_listen = "127.0.0.1:${PORTS[$((2 * i))]}"
p2p_listen = "/ip4/127.0.0.1/tcp/${PORTS[$((2 * i + 1))]}"
calendar = "builtin"
TOML
    if (( LINKS )); then
        python3 - "$RUN_DIR" "$code" >>"$dir/node.toml" <<'PY'
import json, sys
run, me = sys.argv[1], sys.argv[2]
print("\n# Dial the other bureaus through testnet/links.py (cut and heal links with it).\n[peers]")
for link in json.load(open(f"{run}/links.json"))["links"]:
    if link["from"] == me:
        print(f'{link["to"]} = "/ip4/127.0.0.1/tcp/{link["listen"]}"')
PY
    fi
    mkdir -p "$dir/data"
    (
        cd "$dir"
        RUST_LOG="${RUST_LOG:-info}" nohup "$HUKOU" node run --config node.toml >>node.log 2>&1 </dev/null &
    )
    # A batch is started: wait (bounded) until its nodes answer /healthz before the next one,
    # so replay, key loading and first dials of 200 nodes do not all land at once.
    if (( (i + 1) % BATCH == 0 || i + 1 == N )); then
        first=$(( i - i % BATCH ))
        python3 - "$RUN_DIR" "${BUREAU_CODES[*]:$first:$((i + 1 - first))}" <<'PY'
import os, sys, time, urllib.request
run, codes = sys.argv[1], sys.argv[2].split()
deadline = time.time() + 60
pending = set(codes)
while pending and time.time() < deadline:
    for code in sorted(pending):
        conf = open(os.path.join(run, code, "node.toml")).read()
        api = [l.split('"')[1] for l in conf.splitlines() if l.startswith("api_listen")][0]
        try:
            urllib.request.urlopen(f"http://{api}/healthz", timeout=2).read()
            pending.discard(code)
        except Exception:
            pass
    time.sleep(0.2)
if pending:
    print(f"  (bureau(s) {', '.join(sorted(pending))} not answering after 60 s; going on)", file=sys.stderr)
PY
        if (( N > BATCH )); then say "  started $((i + 1)) of $N nodes"; fi
    fi
done

say "waiting (up to $UP_TIMEOUT s) for $N nodes to be healthy and connected to their peers ..."
python3 - "$RUN_DIR" "$N" "$UP_TIMEOUT" <<'PY'
import json, os, sys, time, urllib.request
run, n, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
codes = sorted(d for d in os.listdir(run) if d.isdigit())
start = time.time()
deadline = start + timeout
pending = set(codes)
missing = {}  # code -> what it still waits for (for the report)
last_report = start
while pending and time.time() < deadline:
    for code in sorted(pending):
        conf = open(os.path.join(run, code, "node.toml")).read()
        api = [l.split('"')[1] for l in conf.splitlines() if l.startswith("api_listen")][0]
        try:
            h = json.load(urllib.request.urlopen(f"http://{api}/healthz", timeout=2))
        except Exception:
            missing[code] = "no answer on /healthz"
            continue
        connected = set(h.get("peers_connected", []))
        # With a bounded overlay (issue 14) a node keeps connections to its overlay neighbours,
        # not to every member: wait for those when the node names them.
        wanted = h.get("overlay_neighbors")
        wanted = set(wanted) if wanted is not None else set(codes) - {code}
        if h.get("status") == "ok" and connected >= wanted:
            pending.discard(code)
            missing.pop(code, None)
        else:
            missing[code] = (f"status {h.get('status')!r}, not connected to "
                             f"{len(wanted - connected)} of its {len(wanted)} peers")
    if pending and time.time() - last_report >= 10:
        last_report = time.time()
        print(f"  {n - len(pending)} of {n} nodes connected after {time.time() - start:.0f} s", file=sys.stderr)
    time.sleep(0.5 if n > 50 else 0.2)
if pending:
    for code in sorted(pending)[:5]:
        log = os.path.join(run, code, "node.log")
        tail = open(log, errors="replace").read()[-2000:] if os.path.exists(log) else ""
        print(f"bureau {code} did not become healthy and connected ({missing.get(code)}); last log lines:\n{tail}", file=sys.stderr)
    if len(pending) > 5:
        print(f"... and {len(pending) - 5} more: {' '.join(sorted(pending)[5:])}", file=sys.stderr)
    sys.exit(1)
nodes = []
for code in codes:
    d = os.path.join(run, code)
    conf = open(os.path.join(d, "node.toml")).read()
    api = [l.split('"')[1] for l in conf.splitlines() if l.startswith("api_listen")][0]
    name = [l for l in conf.splitlines() if l.startswith("# Bureau")][0].split("Bureau ", 1)[1].rsplit(" (", 1)[0]
    nodes.append({
        "bureau": code, "name": name, "api": f"http://{api}",
        "token": open(os.path.join(d, "api.token")).read().strip(),
        "data_dir": os.path.join(d, "data"), "config": os.path.join(d, "node.toml"),
        "pid": int(open(os.path.join(d, "data", "node.pid")).read().strip()),
    })
path = os.path.join(run, "nodes.json")
with open(path, "w") as f:
    json.dump(nodes, f, ensure_ascii=False, indent=2)
for node in nodes[:20]:
    print(f"  {node['bureau']}  {node['name']}  {node['api']}  pid {node['pid']}", file=sys.stderr)
if len(nodes) > 20:
    print(f"  ... and {len(nodes) - 20} more", file=sys.stderr)
print(f"testnet up: {len(nodes)} bureaus; {path}", file=sys.stderr)
PY
say "administrators (2 of 3 sign configuration updates): $ADMIN_DIR/admin-{1,2,3}.key; genesis signer: $RUN_DIR/admin.key"
