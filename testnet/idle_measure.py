#!/usr/bin/env python3
"""Measures an idle testnet for testnet/scale.sh: per node CPU, connections, RSS, messages.

    testnet/idle_measure.py NODES.json SECONDS

Samples every node process twice, SECONDS apart, and prints `name=value` lines:

- idle_cpu_ms_per_s_{p50,max,mean}: user + system CPU (/proc/PID/stat utime + stime) over the
  window, per node, in milliseconds of CPU per second of wall time;
- connections_{p50,max}: ESTABLISHED TCP sockets each node process holds (its socket inodes in
  /proc/PID/fd matched against /proc/net/tcp{,6}), API connections included (none at rest);
- rss_mib_{p50,max}: resident memory (/proc/PID/status VmRSS) at the end;
- msgs_per_node_per_s: messages each node sends per second, from GET /metrics counters named
  hukou_*messages*_total (the sent ones if such are labelled or named "sent"), averaged over
  the nodes; msgs_source says which. If the node exports no message counter (the code before
  issue 14), the figure is the node's write(2)-family calls per second (/proc/PID/io syscw), an
  upper bound on messages sent (each frame is at least one write; disk writes count too, none
  at rest), and msgs_source=write_syscalls;
- nodes_measured: how many processes were alive for both samples.
"""
import json
import os
import re
import sys
import time
import urllib.request

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ms(pid):
    stat = open(f"/proc/{pid}/stat").read()
    fields = stat[stat.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / TICKS


def syscw(pid):
    for line in open(f"/proc/{pid}/io"):
        if line.startswith("syscw:"):
            return int(line.split()[1])
    return 0


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def established_inodes():
    inodes = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(path).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) > 9 and f[3] == "01":  # TCP_ESTABLISHED
                inodes.add(f[9])
    return inodes


def connections(pid, established):
    n = 0
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return 0
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in established:
            n += 1
    return n


MSG = re.compile(r"^(hukou_[a-z_]*messages[a-z_]*_total)(\{[^}]*\})?\s+([0-9.eE+-]+)$")


def messages_sent(api):
    """Sum of the node's message counters (sent ones if distinguishable), or None."""
    try:
        text = urllib.request.urlopen(api + "/metrics", timeout=5).read().decode()
    except Exception:
        return None
    rows = [m.groups() for m in map(MSG.match, text.splitlines()) if m]
    if not rows:
        return None
    sent = [r for r in rows if "sent" in r[0] or "sent" in (r[1] or "") or "out" in (r[1] or "")]
    return sum(float(r[2]) for r in (sent or rows))


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, round(p / 100 * (len(v) - 1)))] if v else float("nan")


def main():
    nodes = json.load(open(sys.argv[1]))
    seconds = float(sys.argv[2])
    pids = {}
    for n in nodes:
        try:
            pids[n["bureau"]] = int(open(os.path.join(n["data_dir"], "node.pid")).read())
        except (OSError, ValueError, KeyError):
            pids[n["bureau"]] = n["pid"]

    def sample():
        out = {}
        for n in nodes:
            pid = pids[n["bureau"]]
            try:
                out[n["bureau"]] = (time.time(), cpu_ms(pid), syscw(pid), messages_sent(n["api"]))
            except OSError:
                pass
        return out

    a = sample()
    time.sleep(seconds)
    b = sample()
    alive = [c for c in a if c in b]
    cpu = [(b[c][1] - a[c][1]) / (b[c][0] - a[c][0]) for c in alive]
    established = established_inodes()
    conns = [connections(pids[c], established) for c in alive]
    rss = [rss_mib(pids[c]) for c in alive]
    counted = [c for c in alive if a[c][3] is not None and b[c][3] is not None]
    if counted and len(counted) == len(alive):
        msgs = [(b[c][3] - a[c][3]) / (b[c][0] - a[c][0]) for c in alive]
        source = "metrics"
    else:
        msgs = [(b[c][2] - a[c][2]) / (b[c][0] - a[c][0]) for c in alive]
        source = "write_syscalls"
    print(f"nodes_measured={len(alive)}")
    print(f"idle_seconds={seconds:g}")
    print(f"idle_cpu_ms_per_s_p50={pct(cpu, 50):.2f}")
    print(f"idle_cpu_ms_per_s_max={max(cpu, default=float('nan')):.2f}")
    print(f"idle_cpu_ms_per_s_mean={sum(cpu) / max(1, len(cpu)):.2f}")
    print(f"machine_idle_cpu_cores={sum(cpu) / 1000:.2f}")
    print(f"connections_p50={pct(conns, 50)}")
    print(f"connections_max={max(conns, default=0)}")
    print(f"rss_mib_p50={pct(rss, 50):.1f}")
    print(f"rss_mib_max={max(rss, default=float('nan')):.1f}")
    print(f"msgs_per_node_per_s={sum(msgs) / max(1, len(msgs)):.1f}")
    print(f"msgs_source={source}")


if __name__ == "__main__":
    main()
