#!/usr/bin/env python3
"""Plays the domain's cases (DOMAIN.md) against a running local testnet and checks each outcome.

Reads testnet/.run/nodes.json (written by testnet/up.sh). Standard library only. Prints who did
what, when, and how long it took; exits 1 if any expectation failed.
"""

import datetime
import json
import os
import sys
import time
import urllib.error
import urllib.request

RUN = os.environ.get("HUKOU_TESTNET_RUN", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".run"))
NODES = {n["bureau"]: n for n in json.load(open(os.path.join(RUN, "nodes.json")))}
W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
FAILED = []
_counter = [0]


def make_id(address="310104", birth="19900307"):
    """A valid citizen ID with a fresh sequence number."""
    _counter[0] += 1
    seq = f"{(_counter[0] * 7 + int(time.time()) % 500) % 1000:03d}"
    first17 = f"{address}{birth}{seq}"
    return first17 + "10X98765432"[sum(int(a) * b for a, b in zip(first17, W)) % 11]


def call(bureau, method, path, body=None, token=True, raw=None):
    node = NODES[bureau]
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(node["api"] + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + node["token"])
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            text = r.read().decode()
            return r.status, (json.loads(text) if text.startswith("{") else text)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode())


def name(bureau):
    return f"{bureau} {NODES[bureau]['name']}"


def act(bureau, what, path, body, expect_error=None):
    started = time.time()
    status, answer = call(bureau, "POST", path, body)
    ms = (time.time() - started) * 1000
    if expect_error:
        ok = answer.get("error") == expect_error
        print(f"    {name(bureau)}: {what} -> refused: {answer.get('error')} ({answer.get('message')}) [{ms:.0f} ms]")
        check(ok, f"{what} is refused with {expect_error}")
        return answer
    if status != 200:
        print(f"    {name(bureau)}: {what} -> FAILED {status} {answer}")
        check(False, f"{what} succeeds")
        return answer
    print(f"    {name(bureau)}: {what} -> {answer['ref'][:24]}... recorded durably [{ms:.0f} ms]")
    return answer


def check(ok, what):
    print(f"      {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        FAILED.append(what)


def wait_for(bureau, ref, seconds=10):
    """Waits until `bureau` holds the entry `ref` (replication)."""
    started = time.time()
    code, seq = ref.split(":")[0], int(ref.split(":")[1])
    while time.time() - started < seconds:
        _, logs = call(bureau, "GET", "/v1/logs", token=False)
        if any(l["bureau"] == code and l["length"] > seq for l in logs["logs"]):
            return (time.time() - started) * 1000
        time.sleep(0.02)
    check(False, f"{bureau} receives {ref} within {seconds} s")
    return None


def person(bureau, pid):
    return call(bureau, "POST", "/v1/person", {"person": pid})[1]


def scenario(title):
    print(f"\n== {title}")


def spouse_reliance():
    scenario("Shanghai-Zhejiang spouse reliance (配偶投靠): permit -> removal -> registration")
    sh, hz = "310104", "330502"
    wife, husband = make_id("330502", "19910412"), make_id("310104", "19890101")
    home = act(hz, "enrol the wife (opening balance) as head of a new household", "/v1/enrol", {"person": wife})
    act(sh, "enrol the husband", "/v1/enrol", {"person": husband})
    permit = act(hz, "issue a permit (准迁证), category spouse, origin 310104", "/v1/permits",
                 {"person": husband, "origin": sh, "category": "spouse"})
    ms = wait_for(sh, permit["ref"])
    print(f"    permit replicated to {sh} in {ms:.0f} ms")
    _, inbox = call(sh, "GET", "/v1/inbox")
    waiting = [p for p in inbox["permits_awaiting_removal"] if p["permit"] == permit["ref"]]
    check(len(waiting) == 1, f"the permit is in {sh}'s inbox, due {waiting[0]['deadline']['deadline'] if waiting else '?'} (1 working day)")
    dereg = act(sh, "deregister (迁出) against the permit", "/v1/deregister", {"permit": permit["ref"]})
    ms = wait_for(hz, dereg["ref"])
    print(f"    removal replicated to {hz} in {ms:.0f} ms")
    reg = act(hz, "register (落户) into the wife's household as spouse", "/v1/register",
              {"deregistration": dereg["ref"], "household": home["household"], "relation": "spouse"})
    wait_for("340100", reg["ref"])
    _, t = call("340100", "GET", f"/v1/transfers/{permit['ref']}", token=False)
    check(t["status"] == "registered", "a third bureau (340100) sees the transfer registered")
    met = all(not s.get("deadline", {}).get("overdue", False) for s in t["steps"])
    check(met, "both 1-working-day deadlines were met")
    p = person("340100", husband)
    check(p["registered_at"] == hz, f"the husband is registered at {hz} and nowhere else")


def refusal():
    scenario("A refusal: the person is not registered at the origin")
    hf, sz = "340100", "320506"
    stranger = make_id("320506", "19850505")
    permit = act(hf, "issue a permit naming origin 320506", "/v1/permits",
                 {"person": stranger, "origin": sz, "category": "talent"})
    wait_for(sz, permit["ref"])
    act(sz, "try to deregister", "/v1/deregister", {"permit": permit["ref"]}, expect_error="person_not_registered_here")
    act(sz, "refuse the permit: not-registered-here", "/v1/refuse", {"permit": permit["ref"], "reason": "not-registered-here"})
    wait_for(hf, permit["ref"])
    time.sleep(0.3)
    _, t = call(hf, "GET", f"/v1/transfers/{permit['ref']}", token=False)
    check(t["status"] == "refused", "the destination sees the refusal")


def revocation():
    scenario("A revoked permit")
    sh, hf = "310104", "340100"
    pid = make_id("310104", "19700101")
    act(sh, "enrol", "/v1/enrol", {"person": pid})
    permit = act(hf, "issue a permit, origin 310104", "/v1/permits", {"person": pid, "origin": sh, "category": "parent"})
    act(hf, "revoke its own permit", "/v1/permits/revoke", {"permit": permit["ref"]})
    wait_for(sh, permit["ref"])
    time.sleep(0.3)
    _, inbox = call(sh, "GET", "/v1/inbox")
    check(all(p["permit"] != permit["ref"] for p in inbox["permits_awaiting_removal"]),
          "the revoked permit left the origin's inbox")
    act(hf, "revoke it again", "/v1/permits/revoke", {"permit": permit["ref"]}, expect_error="permit_not_open")


def head_moves_out():
    scenario("The head of a household moves out; a new head is named (变更户主)")
    sz, hf = "320506", "340100"
    head, spouse = make_id("320506", "19600101"), make_id("320506", "19620202")
    home = act(sz, "enrol the head", "/v1/enrol", {"person": head})
    act(sz, "enrol the spouse into the household", "/v1/enrol",
        {"person": spouse, "household": home["household"], "relation": "spouse"})
    permit = act(hf, "issue a permit for the head, origin 320506", "/v1/permits",
                 {"person": head, "origin": sz, "category": "parent"})
    wait_for(sz, permit["ref"])
    act(sz, "deregister the head without naming a successor", "/v1/deregister", {"permit": permit["ref"]},
        expect_error="head_leaving_without_successor")
    dereg = act(sz, "deregister the head, naming the spouse as new head", "/v1/deregister",
                {"permit": permit["ref"], "new_head": spouse})
    wait_for(hf, dereg["ref"])
    act(hf, "register the former head", "/v1/register", {"deregistration": dereg["ref"]})
    p = person(sz, spouse)
    check(p["records"][0]["head"] is True, "the spouse now heads the household at 320506")


def newborn():
    scenario("A newborn registered into an existing household (出生登记)")
    sh = "310104"
    mother, baby = make_id("310104", "19920303"), make_id("310104", "20260101")
    home = act(sh, "enrol the mother", "/v1/enrol", {"person": mother})
    birth = act(sh, "register the birth as the mother's child", "/v1/birth",
                {"person": baby, "household": home["household"], "relation": "child"})
    act(sh, "register the same birth twice", "/v1/birth",
        {"person": baby, "household": home["household"], "relation": "child"}, expect_error="person_already_registered")
    wait_for("330502", birth["ref"])
    check(person("330502", baby)["registered_at"] == sh, "another bureau (330502) sees the newborn registered at 310104")


def wrong_migration():
    scenario("A wrong migration reversed (错迁 / 回迁)")
    sz, hz = "320506", "330502"
    pid = make_id("320506", "19800808")
    act(sz, "enrol", "/v1/enrol", {"person": pid})
    permit = act(hz, "issue a permit in error", "/v1/permits", {"person": pid, "origin": sz, "category": "child"})
    wait_for(sz, permit["ref"])
    dereg = act(sz, "deregister", "/v1/deregister", {"permit": permit["ref"]})
    wait_for(hz, dereg["ref"])
    reg = act(hz, "register (the erroneous migration)", "/v1/register", {"deregistration": dereg["ref"]})
    wait_for(sz, reg["ref"])
    back = act(sz, "issue a return-after-error permit naming the erroneous registration", "/v1/permits",
               {"person": pid, "origin": hz, "category": "return-after-error", "corrects": reg["ref"]})
    wait_for(hz, back["ref"])
    d2 = act(hz, "deregister (the one at fault reverses it)", "/v1/deregister", {"permit": back["ref"]})
    wait_for(sz, d2["ref"])
    act(sz, "register the person back", "/v1/register", {"deregistration": d2["ref"]})
    check(person(sz, pid)["registered_at"] == sz, "the person is back at 320506")


def bulk_import(count):
    scenario(f"Bulk import of {count:,} residents at 340100 (opening balance)")
    lines = []
    base = datetime.date(1940, 1, 1)
    for i in range(count):
        born = base + datetime.timedelta(days=i // 1000)
        first17 = f"340100{born:%Y%m%d}{i % 1000:03d}"
        lines.append(json.dumps({"person": first17 + "10X98765432"[sum(int(a) * b for a, b in zip(first17, W)) % 11]}))
    lines.insert(count // 2, '{"person": "34010019900101001"}')
    body = ("\n".join(lines) + "\n").encode()
    node = NODES["340100"]
    req = urllib.request.Request(node["api"] + "/v1/enrol/bulk", data=body, method="POST")
    req.add_header("Authorization", "Bearer " + node["token"])
    started = time.time()
    done = None
    errors = []
    with urllib.request.urlopen(req, timeout=600) as r:
        for raw in r:
            msg = json.loads(raw)
            if "progress" in msg:
                p = msg["progress"]
                print(f"\r    progress: {p['lines']:>7,} lines, {p['enrolled']:>7,} enrolled, {p['refused']} refused",
                      end="", flush=True)
            elif "done" in msg:
                done = msg
            elif "line" in msg:
                errors.append(msg)
    secs = time.time() - started
    print()
    check(done is not None and done["enrolled"] >= count - 5, f"{done and done['enrolled']:,} enrolled in {secs:.1f} s ({(done or {}).get('enrolled', 0) / secs:,.0f}/s)")
    check(any(e["line"] == count // 2 + 1 and e["error"] == "id_wrong_length" for e in errors),
          f"the malformed line {count // 2 + 1} is reported with its fault")


def inbox_report():
    scenario("Each bureau's inbox (what awaits it, with working-day deadlines)")
    for code in sorted(NODES):
        _, inbox = call(code, "GET", "/v1/inbox")
        print(f"    {name(code)}: {len(inbox['permits_awaiting_removal'])} permits awaiting removal, "
              f"{len(inbox['removals_awaiting_registration'])} removals awaiting registration")


def replicas_agree():
    scenario("Every bureau holds every log, identically")
    started = time.time()
    while True:
        views = {}
        for code in NODES:
            _, logs = call(code, "GET", "/v1/logs", token=False)
            views[code] = {l["bureau"]: (l["length"], l["root"]) for l in logs["logs"]}
        agree = all(v == views["340100"] for v in views.values())
        if agree or time.time() - started > 120:
            break
        time.sleep(0.25)
    print(f"    replicas converged {time.time() - started:.1f} s after the last write")
    for code, view in sorted(views.items()):
        check(view == views["340100"],
              f"{code}'s copy of every log matches (lengths {', '.join(str(v[0]) for v in view.values())})")


def main():
    bulk = int(os.environ.get("HUKOU_DEMO_BULK", "100000"))
    started = time.time()
    for play in (spouse_reliance, refusal, revocation, head_moves_out, newborn, wrong_migration):
        play()
    bulk_import(bulk)
    inbox_report()
    replicas_agree()
    print(f"\n{'all expectations held' if not FAILED else f'{len(FAILED)} expectation(s) FAILED'} "
          f"({time.time() - started:.1f} s)")
    for f in FAILED:
        print(f"  FAILED: {f}")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
