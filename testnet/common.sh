# Shared by the testnet scripts: paths, the binary, and small helpers.
# shellcheck shell=bash

TESTNET_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$TESTNET_DIR/.." && pwd)"
RUN_DIR="${HUKOU_TESTNET_RUN:-$TESTNET_DIR/.run}"
PROFILE="${HUKOU_PROFILE:-release}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
if [[ "$PROFILE" == "release" ]]; then
    HUKOU="$TARGET_DIR/release/hukou"
else
    HUKOU="$TARGET_DIR/debug/hukou"
fi

# Real county-level division codes and their public-security bureaus.
BUREAU_CODES=(310104 330502 340100 340104 320506 310115 330106 320102)
BUREAU_NAMES=(
    "上海市公安局徐汇分局"
    "湖州市公安局吴兴分局"
    "合肥市公安局"
    "合肥市公安局蜀山分局"
    "苏州市公安局吴中分局"
    "上海市公安局浦东分局"
    "杭州市公安局西湖分局"
    "南京市公安局玄武分局"
)

# Fills BUREAU_CODES, BUREAU_NAMES and BUREAU_PROVINCES with the first N bureaus of
# testnet/codes.py (deterministic; its first 8 are the real ones above, checked here).
load_bureaus() {
    local n="$1" code name province i=0
    local real=("${BUREAU_CODES[@]}")
    BUREAU_CODES=()
    BUREAU_NAMES=()
    BUREAU_PROVINCES=()
    while IFS=$'\t' read -r code name province; do
        if (( i < ${#real[@]} )) && [[ "$code" != "${real[$i]}" ]]; then
            die "testnet/codes.py and common.sh disagree on bureau $((i + 1)): $code vs ${real[$i]}"
        fi
        BUREAU_CODES+=("$code")
        BUREAU_NAMES+=("$name")
        BUREAU_PROVINCES+=("$province")
        i=$((i + 1))
    done < <(python3 "$TESTNET_DIR/codes.py" "$n")
    (( ${#BUREAU_CODES[@]} == n )) || die "testnet/codes.py gave ${#BUREAU_CODES[@]} bureaus, not $n"
}

say() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

build() {
    if [[ "${HUKOU_SKIP_BUILD:-}" == "1" && -x "$HUKOU" ]]; then return; fi
    say "building hukou ($PROFILE) ..."
    if [[ "$PROFILE" == "release" ]]; then
        (cd "$ROOT" && cargo build --release -q -p hukou-node) || die "build failed"
    else
        (cd "$ROOT" && cargo build -q -p hukou-node) || die "build failed"
    fi
}

# Prints N free TCP ports on 127.0.0.1.
free_ports() {
    python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# The load driver (testnet/src/bin/hukou-load.rs), built with the node by build_with_load().
LOAD_BIN="$TARGET_DIR/$([[ "$PROFILE" == "release" ]] && echo release || echo debug)/hukou-load"

# Builds hukou and hukou-load (HUKOU_SKIP_BUILD=1 skips it when both exist).
build_with_load() {
    if [[ "${HUKOU_SKIP_BUILD:-}" == "1" && -x "$HUKOU" && -x "$LOAD_BIN" ]]; then return; fi
    say "building hukou and hukou-load ($PROFILE) ..."
    if [[ "$PROFILE" == "release" ]]; then
        (cd "$ROOT" && cargo build --release -q -p hukou-node -p hukou-testnet) || die "build failed"
    else
        (cd "$ROOT" && cargo build -q -p hukou-node -p hukou-testnet) || die "build failed"
    fi
}

# Whether a node of the testnet in $RUN_DIR is running.
testnet_running() {
    [[ -f "$RUN_DIR/nodes.json" ]] || return 1
    local pidfile
    for pidfile in "$RUN_DIR"/*/data/node.pid; do
        [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null && return 0
    done
    return 1
}
