#!/usr/bin/env python3
"""A trickle of whole transfers between random pairs of bureaus, for testnet/scale.sh.

    testnet/trickle.py enrol --nodes NODES.json --state STATE.json [--per-bureau K]
                             [--exclude CODE,CODE,...]
    testnet/trickle.py run   --nodes NODES.json --state STATE.json [--rate R] [--duration S]
                             [--exclude CODE,CODE,...] [--bound S] [--seed N]

`enrol` enrols K people (default 3) at every bureau of nodes.json not excluded, one POST
/v1/enrol each (the node asks the person's arbiter for a claim and waits until it is final), and
writes who is where to STATE. (testnet/scale.sh enrols the people the province-down trickle moves
before it stops the province: a claim needs the person's arbiter, possibly in that province.) `run` starts R transfers a second (default 10, open loop: on a fixed schedule whatever
happens) for S seconds between random pairs of the bureaus not excluded that hold someone free:
permit at the destination, deregistration at the origin (retried while the origin does not
hold the permit yet), registration at the destination with `wait_ms` (the node registers only
once the deregistration is final there). Each transfer gets --bound seconds (default 30) from
its start. STATE is updated with where people are now, so a later `run` moves them on.

Finality latency (deregistration -> final at the destination) is taken from the nodes' own
signing times, `registration.time_ms - deregistration.time_ms`: the destination signs the
registration as soon as it holds a certificate covering the deregistration, so this is the
time the deregistration took to become final there, plus one local write, with no polling and
no HTTP in it (both clocks are this machine's). hukou-load measures the same span by polling
/v1/logs, which at 200 bureaus would cost more than the trickle itself.

Prints `name=value` lines on stdout: started, final (registered within the bound), failed,
final_p50_ms, final_p99_ms, final_max_ms, errors_by_name; a summary on stderr.
"""
import argparse
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import date, timedelta

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CHECK = "10X98765432"


def citizen_id(code, n):
    """A valid 18-character citizen ID of division `code` (n picks the birth date and serial)."""
    born = date(1950, 1, 1) + timedelta(days=(n // 1000 * 7919 + n) % 20000)
    first17 = f"{code}{born:%Y%m%d}{n % 1000:03d}"
    return first17 + CHECK[sum(int(c) * w for c, w in zip(first17, WEIGHTS)) % 11]


def call(node, path, body=None, timeout=65):
    """POST (with body) or GET; returns (status, json)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(node["api"] + path, data=data, method="GET" if body is None else "POST")
    req.add_header("Authorization", f"Bearer {node['token']}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.load(e)
        except Exception:
            return e.code, {"error": f"http_{e.code}"}
    except Exception as e:  # connection refused, timeout: a stopped or busy node
        return 0, {"error": "no_answer", "message": str(e)}


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, round(p / 100 * (len(sorted_values) - 1)))]


def enrol(args, nodes):
    per = args.per_bureau
    salt = int(time.time() * 1000) % 10_000_000
    pools, errors, lock = {}, {}, threading.Lock()
    excluded = set(c for c in args.exclude.split(",") if c)
    codes = [c for c in nodes if c not in excluded]
    todo = [(code, i) for code in codes for i in range(per)]
    started = time.time()

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                code, i = todo.pop()
            node = nodes[code]
            for attempt in range(200):
                person = citizen_id(code, salt * 7 + i * 1000 + attempt)
                status, answer = call(node, "/v1/enrol", {"person": person, "wait_ms": 30000})
                if status == 200:
                    with lock:
                        pools.setdefault(code, []).append(person)
                    break
                name = answer.get("error", "?")
                with lock:
                    errors[name] = errors.get(name, 0) + 1
                if name in ("person_claimed", "person_already_registered"):
                    continue  # ID taken by an earlier run: try another
                if time.time() - started > 6 * args.bound:
                    return
                time.sleep(0.5)

    threads = [threading.Thread(target=worker) for _ in range(min(16, len(todo)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    enrolled = sum(len(v) for v in pools.values())
    json.dump({"pools": pools}, open(args.state, "w"), indent=0)
    print(f"trickle: enrolled {enrolled} of {len(codes) * per} people in {time.time() - started:.1f} s"
          + (f" (refusals on the way: {errors})" if errors else ""), file=sys.stderr)
    print(f"enrolled={enrolled}")
    print(f"enrol_s={time.time() - started:.1f}")
    return 0 if enrolled == len(codes) * per else 1


def run(args, nodes):
    state = json.load(open(args.state))
    excluded = set(c for c in args.exclude.split(",") if c)
    free = {c: list(v) for c, v in state["pools"].items() if c in nodes and c not in excluded}
    codes = sorted(c for c in nodes if c not in excluded)
    busy_elsewhere = {c: v for c, v in state["pools"].items() if c not in free}
    rng = random.Random(args.seed)
    lock = threading.Lock()
    results = []  # (ok, latency_ms or None, error name)
    threads = []

    def transfer(origin, dest, person, deadline):
        o, d = nodes[origin], nodes[dest]
        where = origin

        def left():
            return max(1.0, deadline - time.time())

        try:
            status, permit = call(d, "/v1/permits", {"person": person, "origin": origin, "category": "talent"}, timeout=left())
            if status != 200:
                return (False, None, "permit_" + permit.get("error", "?"))
            while True:
                status, dereg = call(o, "/v1/deregister", {"permit": permit["ref"]}, timeout=left())
                if status == 200:
                    break
                if dereg.get("error") in ("unknown_reference", "no_answer", "recovering") and time.time() < deadline:
                    time.sleep(0.02)
                    continue
                return (False, None, "deregister_" + dereg.get("error", "?"))
            where = None  # in transit
            wait = int(min(60000, max(1000, (deadline - time.time()) * 1000)))
            status, reg = call(d, "/v1/register", {"deregistration": dereg["ref"], "wait_ms": wait}, timeout=left() + 5)
            if status != 200:
                return (False, None, "register_" + reg.get("error", "?"))
            where = dest
            return (True, reg["time_ms"] - dereg["time_ms"], None)
        finally:
            with lock:
                if where is not None:
                    free.setdefault(where, []).append(person)

    def record(*a):
        r = transfer(*a)
        with lock:
            results.append(r)

    start = time.time()
    n_total = int(args.rate * args.duration)
    skipped = 0
    for k in range(n_total):
        t = start + k / args.rate
        pause = t - time.time()
        if pause > 0:
            time.sleep(pause)
        with lock:
            origins = [c for c in codes if free.get(c)]
            if not origins or len(codes) < 2:
                skipped += 1
                continue
            origin = rng.choice(origins)
            dest = rng.choice([c for c in codes if c != origin])
            person = free[origin].pop(rng.randrange(len(free[origin])))
        th = threading.Thread(target=record, args=(origin, dest, person, t + args.bound))
        th.start()
        threads.append(th)
    for th in threads:
        th.join()
    wall = time.time() - start
    ok = sorted(r[1] for r in results if r[0])
    errors = {}
    for r in results:
        if not r[0]:
            errors[r[2]] = errors.get(r[2], 0) + 1
    pools = {c: v for c, v in free.items()}
    pools.update(busy_elsewhere)
    json.dump({"pools": pools}, open(args.state, "w"), indent=0)
    p50, p99, pmax = percentile(ok, 50), percentile(ok, 99), (ok[-1] if ok else float("nan"))
    print(f"trickle: {len(results)} transfers started over {len(codes)} bureaus"
          f"{f' ({len(excluded)} excluded)' if excluded else ''} at {args.rate}/s in {wall:.1f} s; "
          f"{len(ok)} registered (deregistration final) within {args.bound:.0f} s; "
          f"deregistration -> final p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {pmax:.0f} ms"
          + (f"; failed: {errors}" if errors else "") + (f"; {skipped} not started (nobody free)" if skipped else ""),
          file=sys.stderr)
    print(f"started={len(results)}")
    print(f"final={len(ok)}")
    print(f"failed={len(results) - len(ok)}")
    print(f"not_started={skipped}")
    print(f"in_transit_at_end={sum(1 for r in results if not r[0] and r[2].startswith('register_'))}")
    print(f"final_p50_ms={p50:.0f}")
    print(f"final_p99_ms={p99:.0f}")
    print(f"final_max_ms={pmax:.0f}")
    print("errors_by_name=" + (",".join(f"{k}:{v}" for k, v in sorted(errors.items())) or "none"))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=["enrol", "run"])
    ap.add_argument("--nodes", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--per-bureau", type=int, default=3)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--exclude", default="")
    ap.add_argument("--bound", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=14)
    args = ap.parse_args()
    nodes = {n["bureau"]: n for n in json.load(open(args.nodes))}
    sys.exit(enrol(args, nodes) if args.mode == "enrol" else run(args, nodes))


if __name__ == "__main__":
    main()
