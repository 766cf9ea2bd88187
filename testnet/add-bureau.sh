#!/usr/bin/env bash
# Adds a bureau to the running local testnet (testnet/up.sh) by a configuration update, the way
# a real network admits a member (membership epochs, README "Changing the network"):
#
#   1. creates the bureau's directory testnet/.run/CODE as up.sh does for the others: a new
#      bureau key, copies of the genesis, person key and network key, an API token, and a
#      node.toml on free ports of 127.0.0.1;
#   2. proposes the update through a running node:
#        hukou config propose --node URL --add CODE,NAME,PUBKEY,/ip4/127.0.0.1/tcp/PORT --out FILE
#   3. signs it with two of the three administrators (testnet/.run/admins/admin-*.key):
#        hukou config sign FILE --key ADMIN.key       (twice)
#   4. submits it:  hukou config submit FILE --node URL
#   5. fetches the configuration log into the bureau's config.log (`config_log` in node.toml):
#        hukou config fetch --node URL --out CODE/config.log
#   6. starts the node, adds it to testnet/.run/nodes.json (testnet/down.sh stops it with the
#      others) and waits until it is healthy and connected to every other bureau.
#
# usage: testnet/add-bureau.sh CODE NAME
#   e.g. testnet/add-bureau.sh 320102 南京市公安局玄武分局
set -euo pipefail
source "$(dirname "$0")/common.sh"

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
(( $# == 2 )) || die "usage: testnet/add-bureau.sh CODE NAME   (e.g. 320102 南京市公安局玄武分局)"
CODE="$1"
NAME="$2"
[[ "$CODE" =~ ^[1-9][0-9]{5}$ ]] || die "the bureau code must be six digits (a county-level division code), got '$CODE'"
[[ -n "$NAME" && "$NAME" != *,* ]] || die "the bureau name must be non-empty and contain no comma, got '$NAME'"

testnet_running || die "no testnet is running in $RUN_DIR; start one with testnet/up.sh first"
[[ -e "$RUN_DIR/$CODE" ]] && die "$RUN_DIR/$CODE already exists: bureau $CODE is already part of this testnet"
shopt -s nullglob
ADMIN_KEYS=("$RUN_DIR"/admins/admin-*.key)
shopt -u nullglob
(( ${#ADMIN_KEYS[@]} >= 2 )) ||
    die "found ${#ADMIN_KEYS[@]} administrator key(s) in $RUN_DIR/admins; two must sign (restart the testnet with testnet/up.sh)"
build

# A running node to propose through: the first of nodes.json that answers /healthz.
read -r VIA_CODE VIA_URL VIA_TOKEN_FILE < <(python3 - "$RUN_DIR" <<'PY'
import json, os, sys, urllib.request
run = sys.argv[1]
for node in json.load(open(os.path.join(run, "nodes.json"))):
    try:
        h = json.load(urllib.request.urlopen(node["api"] + "/healthz", timeout=2))
    except Exception:
        continue
    if h.get("status") == "ok":
        token = os.path.join(os.path.dirname(node["config"]), "api.token")
        print(node["bureau"], node["api"], token)
        break
PY
) || true
[[ -n "${VIA_URL:-}" ]] || die "no node of $RUN_DIR/nodes.json answers on its API; is the testnet healthy? (testnet/down.sh, then testnet/up.sh)"
via=(--node "$VIA_URL" --token-file "$VIA_TOKEN_FILE")

umask 077
DIR="$RUN_DIR/$CODE"
PROPOSAL="$DIR/add-$CODE.proposal.json"
SUBMITTED=0
cleanup() {
    local rc=$?
    if (( rc != 0 )); then
        if (( SUBMITTED )); then
            say "bureau $CODE IS a member now (the update was taken in), but its node is not running properly;"
            say "its directory is $DIR (see node.log there); start it by hand: (cd $DIR && $HUKOU node run --config node.toml)"
        else
            rm -rf "$DIR"
            say "nothing changed on the network; removed $DIR"
        fi
    fi
}
trap cleanup EXIT

mkdir -p "$DIR/data"
say "creating bureau $CODE $NAME in $DIR ..."
PUBKEY="$("$HUKOU" keys gen --out "$DIR/bureau.key")" || die "cannot create the bureau key"
cp "$RUN_DIR/genesis.toml" "$DIR/genesis.toml"
cp "$RUN_DIR/person.key" "$DIR/person.key"
cp "$RUN_DIR/network.key" "$DIR/network.key"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/api.token"
read -r API_PORT P2P_PORT <<<"$(free_ports 2)"
ADDRESS="/ip4/127.0.0.1/tcp/$P2P_PORT"

say "proposing the update through bureau $VIA_CODE ($VIA_URL):"
say "  hukou config propose --node $VIA_URL --add $CODE,$NAME,$PUBKEY,$ADDRESS --out $PROPOSAL"
"$HUKOU" config propose "${via[@]}" --add "$CODE,$NAME,$PUBKEY,$ADDRESS" --out "$PROPOSAL" >&2 ||
    die "the node would not give the current configuration, or the proposal is malformed (see above)"
for admin in "${ADMIN_KEYS[@]:0:2}"; do
    say "  hukou config sign $PROPOSAL --key $admin"
    "$HUKOU" config sign "$PROPOSAL" --key "$admin" >&2 || die "administrator key $admin could not sign the proposal"
done
say "  hukou config submit $PROPOSAL --node $VIA_URL"
"$HUKOU" config submit "${via[@]}" "$PROPOSAL" >&2 ||
    die "the network refused the update (the reason is above); nothing changed"
SUBMITTED=1
EPOCH="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["epoch"])' "$PROPOSAL")"

say "  hukou config fetch --node $VIA_URL --out $DIR/config.log"
"$HUKOU" config fetch "${via[@]}" --out "$DIR/config.log" >&2 || die "cannot fetch the configuration log from $VIA_URL"

cat >"$DIR/node.toml" <<TOML
# Bureau $NAME ($CODE) of the local testnet, added by testnet/add-bureau.sh in epoch $EPOCH.
# Fields: node/src/config.rs.
bureau = "$CODE"
data_dir = "data"
key_file = "bureau.key"
genesis = "genesis.toml"
person_key_file = "person.key"
network_key_file = "network.key"
api_token_file = "api.token"
api_listen = "127.0.0.1:$API_PORT"
p2p_listen = "$ADDRESS"
calendar = "builtin"
# The configuration updates since the genesis (hukou config fetch): how this node learns that
# it is a member.
config_log = "config.log"
TOML

say "starting the node of $CODE ..."
(
    cd "$DIR"
    RUST_LOG="${RUST_LOG:-info}" nohup "$HUKOU" node run --config node.toml >>node.log 2>&1 </dev/null &
)

say "waiting for every bureau to reach epoch $EPOCH and for $CODE to be healthy and connected ..."
python3 - "$RUN_DIR" "$CODE" "$NAME" "$EPOCH" <<'PY'
import json, os, sys, time, urllib.request
run, code, name, epoch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
path = os.path.join(run, "nodes.json")
nodes = [n for n in json.load(open(path)) if n["bureau"] != code]
d = os.path.join(run, code)
conf = open(os.path.join(d, "node.toml")).read()
api = "http://" + [l.split('"')[1] for l in conf.splitlines() if l.startswith("api_listen")][0]

def get(url):
    try:
        return json.load(urllib.request.urlopen(url, timeout=1))
    except Exception:
        return None

deadline = time.time() + 60
behind = {n["bureau"]: n["api"] for n in nodes if n["bureau"] != code}
health = None
while time.time() < deadline:
    for other, other_api in list(behind.items()):
        c = get(other_api + "/v1/config")
        if c and c.get("epoch", 0) >= epoch:
            del behind[other]
    health = get(api + "/healthz")
    connected = set(health.get("peers_connected", [])) if health else set()
    if not behind and health and health.get("status") == "ok" and connected >= {n["bureau"] for n in nodes}:
        break
    time.sleep(0.3)
else:
    if behind:
        print(f"bureau(s) {', '.join(sorted(behind))} did not take in epoch {epoch} within 60 s", file=sys.stderr)
    if not health:
        log = os.path.join(d, "node.log")
        tail = open(log, errors="replace").read()[-2000:] if os.path.exists(log) else ""
        print(f"the node of {code} does not answer on {api}; last log lines:\n{tail}", file=sys.stderr)
    else:
        missing = sorted({n["bureau"] for n in nodes} - set(health.get("peers_connected", [])))
        print(f"the node of {code} is {health.get('status')!r} and not connected to {', '.join(missing) or '-'} after 60 s", file=sys.stderr)
    sys.exit(1)
nodes.append({
    "bureau": code, "name": name, "api": api,
    "token": open(os.path.join(d, "api.token")).read().strip(),
    "data_dir": os.path.join(d, "data"), "config": os.path.join(d, "node.toml"),
    "pid": int(open(os.path.join(d, "data", "node.pid")).read().strip()),
})
with open(path, "w") as f:
    json.dump(nodes, f, ensure_ascii=False, indent=2)
me = nodes[-1]
print(f"  {me['bureau']}  {me['name']}  {me['api']}  pid {me['pid']}  connected to {', '.join(sorted(health['peers_connected']))}", file=sys.stderr)
PY
trap - EXIT
say "bureau $CODE $NAME is a member from epoch $EPOCH and its node is running:"
say "  directory   $DIR (key bureau.key, config.log, node.toml, node.log)"
say "  API         http://127.0.0.1:$API_PORT (token in $DIR/api.token); peers dial $ADDRESS"
say "  proposal    $PROPOSAL (signed by ${ADMIN_KEYS[0]##*/} and ${ADMIN_KEYS[1]##*/})"
say "  added to    $RUN_DIR/nodes.json (testnet/down.sh stops it with the others)"
say "check it:     $HUKOU config show --node $VIA_URL"
