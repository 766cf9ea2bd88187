# Shared by the testnet scripts: paths, the binary, and small helpers.
# shellcheck shell=bash

TESTNET_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$TESTNET_DIR/.." && pwd)"
RUN_DIR="${HUKOU_TESTNET_RUN:-$TESTNET_DIR/.run}"
PROFILE="${HUKOU_PROFILE:-release}"
if [[ "$PROFILE" == "release" ]]; then
    HUKOU="$ROOT/target/release/hukou"
else
    HUKOU="$ROOT/target/debug/hukou"
fi

# Real county-level division codes and their public-security bureaus.
BUREAU_CODES=(310104 330502 340100 320506 310115 330106 340104 320102)
BUREAU_NAMES=(
    "上海市公安局徐汇分局"
    "湖州市公安局吴兴分局"
    "合肥市公安局"
    "苏州市公安局吴中分局"
    "上海市公安局浦东分局"
    "杭州市公安局西湖分局"
    "合肥市公安局蜀山分局"
    "南京市公安局玄武分局"
)

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
