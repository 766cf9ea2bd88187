#!/usr/bin/env bash
# Stops the bureaus of the local testnet, by the pid each running node keeps in its data dir
# (so a bureau restarted by hand is stopped too). Stops nothing it did not start.
set -euo pipefail
source "$(dirname "$0")/common.sh"

shopt -s nullglob
stop_links() {
    if [[ -f "$RUN_DIR/links.pid" ]]; then
        pid="$(cat "$RUN_DIR/links.pid")"
        if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "links.py"; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
        rm -f "$RUN_DIR/links.pid"
    fi
}
trap stop_links EXIT
pidfiles=("$RUN_DIR"/*/data/node.pid)
if (( ${#pidfiles[@]} == 0 )); then
    say "no testnet node is running in $RUN_DIR"
    exit 0
fi
pids=()
for f in "${pidfiles[@]}"; do
    pid="$(cat "$f")"
    # Only a process that is really a hukou node of this run: its command line names the
    # config file of this bureau.
    if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "node run"; then
        kill -TERM "$pid" && pids+=("$pid")
    else
        rm -f "$f"
    fi
done
for _ in $(seq 1 100); do
    alive=()
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
    (( ${#alive[@]} == 0 )) && break
    sleep 0.1
done
for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
        say "node $pid did not stop in 10 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
done
say "stopped ${#pids[@]} node(s)"
