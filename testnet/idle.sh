#!/usr/bin/env bash
# Measures what an idle network costs: starts N bureaus (fresh keys and genesis, in their own run
# directory, apart from testnet/up.sh's), lets them settle, then idles IDLE_S seconds (default
# 20) and prints, per N, name=value lines:
#   idle_cpu_ms_per_s   CPU per node (utime+stime from /proc/PID/stat), mean, min and max
#   connections         established p2p TCP connections per node (from /proc/PID/fd and
#                       /proc/net/tcp, so it works for any build), mean and max
#   msgs_per_s          gossip + requests sent and received per node per second (from GET
#                       /metrics; "n/a" for a build without those counters)
# Bounded: at most 60 s to start, IDLE_S + 5 s settling, then the nodes are stopped.
#
# usage: testnet/idle.sh N [N ...]     e.g. testnet/idle.sh 8 16 32
#   HUKOU_BIN=PATH   measure this hukou binary (e.g. an older build) instead of building one
#   IDLE_S=20        idle seconds measured
# More than the 8 real codes of common.sh: plausible 6-digit codes with real province prefixes
# (11..65), a city and a county number.
set -euo pipefail
source "$(dirname "$0")/common.sh"

(( $# >= 1 )) || die "usage: testnet/idle.sh N [N ...]"
if [[ -n "${HUKOU_BIN:-}" ]]; then HUKOU="$HUKOU_BIN"; else build; fi
IDLE_S="${IDLE_S:-20}"
IDLE_RUN="${HUKOU_IDLE_RUN:-$TESTNET_DIR/.run-idle}"
umask 077

stop_nodes() {
    local pidfile
    for pidfile in "$IDLE_RUN"/*/data/node.pid; do
        [[ -f "$pidfile" ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    sleep 1
}
trap stop_nodes EXIT

codes_for() {
    python3 - "$1" "${BUREAU_CODES[*]}" <<'PY'
import sys
n, real = int(sys.argv[1]), sys.argv[2].split()
provinces = [11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45,
             46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65]
codes, i = list(real[:n]), 0
while len(codes) < n:
    p = provinces[i % len(provinces)]
    city, county = 1 + (i // len(provinces)) % 20, 2 + i // (len(provinces) * 20)
    code = f"{p}{city:02d}{county:02d}"
    if code not in codes:
        codes.append(code)
    i += 1
print(" ".join(codes))
PY
}

for N in "$@"; do
    [[ "$N" =~ ^[0-9]+$ ]] && (( N >= 2 )) || die "N must be at least 2, got '$N'"
    stop_nodes
    rm -rf "$IDLE_RUN"
    mkdir -p "$IDLE_RUN"
    read -r -a CODES <<<"$(codes_for "$N")"
    "$HUKOU" keys gen --out "$IDLE_RUN/admin.key" >/dev/null
    "$HUKOU" keys gen-person-key --out "$IDLE_RUN/person.key" >/dev/null
    "$HUKOU" keys gen-network-key --out "$IDLE_RUN/network.key" >/dev/null
    admin_flags=()
    # (an older build, measured for comparison, may not know administrators yet)
    "$HUKOU" genesis create --help | grep -q -- --administrator-key &&
    for i in 1 2 3; do
        "$HUKOU" keys gen --out "$IDLE_RUN/admin-$i.key" >/dev/null
        admin_flags+=(--administrator-key "$IDLE_RUN/admin-$i.key")
    done
    "$HUKOU" genesis create --network "hukou-idle" --admin-key "$IDLE_RUN/admin.key" \
        ${admin_flags[@]+"${admin_flags[@]}"} ${admin_flags[@]+--admin-threshold 2} --out "$IDLE_RUN/genesis.toml" >/dev/null
    read -r -a PORTS <<<"$(free_ports $((2 * N)))"
    for ((i = 0; i < N; i++)); do
        dir="$IDLE_RUN/${CODES[$i]}"
        mkdir -p "$dir/data"
        "$HUKOU" keys gen --out "$dir/bureau.key" >/dev/null
        "$HUKOU" genesis add-member --genesis "$IDLE_RUN/genesis.toml" --code "${CODES[$i]}" \
            --name "公安局 ${CODES[$i]}" --key "$dir/bureau.key" \
            --address "/ip4/127.0.0.1/tcp/${PORTS[$((2 * i + 1))]}" >/dev/null
    done
    "$HUKOU" genesis sign --genesis "$IDLE_RUN/genesis.toml" --admin-key "$IDLE_RUN/admin.key" >/dev/null
    for ((i = 0; i < N; i++)); do
        dir="$IDLE_RUN/${CODES[$i]}"
        cp "$IDLE_RUN/genesis.toml" "$IDLE_RUN/person.key" "$IDLE_RUN/network.key" "$dir/"
        head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/api.token"
        cat >"$dir/node.toml" <<TOML
bureau = "${CODES[$i]}"
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
        (cd "$dir" && RUST_LOG=warn nohup "$HUKOU" node run --config node.toml >>node.log 2>&1 </dev/null &)
    done
    python3 - "$IDLE_RUN" "$N" "$IDLE_S" "${PORTS[*]}" <<'PY'
import json, os, sys, time, urllib.request
run, n, idle_s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ports = [int(p) for p in sys.argv[4].split()]
p2p_ports = set(ports[1::2])
codes = sorted(d for d in os.listdir(run) if d.isdigit())
api = {}
for c in codes:
    conf = open(os.path.join(run, c, "node.toml")).read()
    api[c] = [l.split('"')[1] for l in conf.splitlines() if l.startswith("api_listen")][0]

def health(c):
    try:
        return json.load(urllib.request.urlopen(f"http://{api[c]}/healthz", timeout=2))
    except Exception:
        return None

deadline, pending = time.time() + 60, set(codes)
while pending and time.time() < deadline:
    for c in sorted(pending):
        h = health(c)
        if h and h.get("status") == "ok":
            want = set(h.get("overlay_neighbors", [x for x in codes if x != c]))
            if want <= set(h.get("peers_connected", [])):
                pending.discard(c)
    time.sleep(0.5)
if pending:
    sys.exit(f"n={n}: {len(pending)} nodes not healthy and connected within 60 s")
time.sleep(5)  # settle: start-up pulls, first checkpoints and certificates
pids = {c: int(open(os.path.join(run, c, "data", "node.pid")).read()) for c in codes}
tick = os.sysconf("SC_CLK_TCK")

def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick

def msgs(c):
    try:
        text = urllib.request.urlopen(f"http://{api[c]}/metrics", timeout=2).read().decode()
    except Exception:
        return None
    total, seen = 0, 0
    for line in text.splitlines():
        for name in ("hukou_gossip_in_total", "hukou_gossip_out_total",
                     "hukou_requests_in_total", "hukou_requests_out_total"):
            if line.startswith(name + " "):
                total += int(float(line.split()[1])); seen += 1
    return total if seen == 4 else None

def established():
    out = {}
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = open(path).read().splitlines()[1:]
        except OSError:
            continue
        for r in rows:
            f = r.split()
            if f[3] != "01":
                continue
            lport, rport = int(f[1].split(":")[1], 16), int(f[2].split(":")[1], 16)
            if lport in p2p_ports or rport in p2p_ports:
                out[f[9]] = True
    return out

def connections(pid, est):
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in est:
            n += 1
    return n

m0 = {c: msgs(c) for c in codes}
c0, t0 = {c: cpu(p) for c, p in pids.items()}, time.time()
time.sleep(idle_s)
c1, t1 = {c: cpu(p) for c, p in pids.items()}, time.time()
m1 = {c: msgs(c) for c in codes}
est = established()
per = [(c1[c] - c0[c]) * 1000 / (t1 - t0) for c in codes]
conns = [connections(p, est) for p in pids.values()]
print(f"n={n} idle_s={idle_s}")
print(f"n={n} idle_cpu_ms_per_s_mean={sum(per)/len(per):.2f} min={min(per):.2f} max={max(per):.2f}")
print(f"n={n} connections_mean={sum(conns)/len(conns):.1f} max={max(conns)}")
if all(m0[c] is not None and m1[c] is not None for c in codes):
    rate = [(m1[c] - m0[c]) / (t1 - t0) for c in codes]
    print(f"n={n} msgs_per_s_mean={sum(rate)/len(rate):.2f} max={max(rate):.2f}")
else:
    print(f"n={n} msgs_per_s_mean=n/a")
PY
done
