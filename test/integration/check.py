#!/usr/bin/env python3
"""check.py — the one checker of the relay's integration tests: what a sink
got, against what the relay's file sink wrote for the same slot (every
event, in commit order).

  check.py delivered REF GOT FROM TO PATTERNS MODE [EXCLUDE]
  check.py kafka REF GOT FROM TO MODE [MAY_MISS...]
  check.py amqp REF GOT [PAID]
  check.py nats REF GOT PREFIX PATTERNS
      The events of REF whose commit LSN is in [FROM, TO] (amqp: all) and
      whose type matches one of PATTERNS (comma-separated route patterns:
      order.paid, order.*, *; kafka: *; amqp: order.*; nats: all), minus the ids in
      EXCLUDE, must be exactly the ids GOT has in that range: none missing
      (but those in MAY_MISS: dead letters), none extra. Per subject, the order in which GOT first has each event
      must be the commit order (ids "<commit LSN>/<ordinal>" rising). Copies
      of one id must be identical. MODE "exact": no id twice; "atleast":
      duplicates allowed (after a crash the unconfirmed tail comes again).
      GOT is what the sink's system holds:
        delivered  JSON lines of events (webhook_receiver.py's log);
        kafka      kcat -J records: also value = the file's line byte for
                   byte, key = subject, headers ce_id/ce_type/content-type,
                   each key in one partition;
        amqp       "routing key, delivery mode, content type, message id,
                   type, body" lines (rabbitmq.sh drain): also persistent,
                   routing key = type = event type, message id = event id;
                   PAID, a queue bound to order.paid, holds exactly the
                   paid events.
        nats       "stream sequence, subject, Nats-Msg-Id, content type,
                   payload" lines of a JetStream stream in stream order
                   (natsdump in sink_nats.sh), always MODE "exact" (the
                   duplicate window must have dropped every replay): also
                   subject = PREFIX.<event type>, Nats-Msg-Id = event id,
                   payload = the file's line byte for byte, content type
                   application/cloudevents+json.
      Prints "ok N events S subjects D duplicates" (amqp adds the counts of
      created, paid and shipped events) or what is wrong; exits 1 if wrong.

  check.py attempts ATTEMPTS
      No two requests for one subject overlapped at a webhook receiver;
      prints the count of answers per status.

  check.py first REF FROM
      The lowest commit LSN at or after FROM in REF.

  check.py find REF FROM TO TYPE SUBJECT
      The id of the first such event in REF.

  check.py seq FILE N [KILLS]
      A file sink on its own: every event of type ordersync.test.seq
      carries data.n; n = 1..N all arrived (N may be @PATH: the expected n
      values, one per line), every line is a valid CloudEvents envelope, a
      repeated id repeats the same bytes, events are in commit order, and —
      given KILLS, "<line count> <confirmed LSN>" per kill -9 — everything
      repeated after a restart was unconfirmed at the kill.

  check.py envelope FILE
      Field-by-field check of the CloudEvents envelope of every line.
"""
import collections
import json
import re
import sys

ID_RE = re.compile(r'^([0-9A-F]+/[0-9A-F]+)/(S?)([0-9]+)$')
TIME_RE = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$')
KEYS = ["specversion", "id", "source", "type", "subject", "time",
        "datacontenttype", "oscommitlsn", "osxid", "data"]


def lsn(text):
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def key(eid):
    m = ID_RE.match(eid)
    return (lsn(m.group(1)), int(m.group(3))) if m else (0, 0)


def lines(path):
    try:
        with open(path, "rb") as f:
            return [l for l in f.read().splitlines() if l.strip()]
    except FileNotFoundError:
        return []


def matches(etype, patterns):
    t = etype[len("ordersync."):] if etype.startswith("ordersync.") else etype
    return any(p == "*" or p == t or (p.endswith(".*") and t.startswith(p[:-1])) for p in patterns)


# ---- what each kind of sink holds: (event, problems) per record ----------

def got_events(path):
    return [(json.loads(l), []) for l in lines(path)]


def got_kafka(path, ref_line):
    out = []
    recs = [json.loads(l) for l in lines(path)]
    recs.sort(key=lambda r: (r["partition"], r["offset"]))
    part = collections.defaultdict(set)
    for r in recs:
        ev = json.loads(r["payload"])
        bad = []
        i = ev["id"]
        if i in ref_line and r["payload"].encode() != ref_line[i]:
            bad.append(f"{i}: value differs from the file sink's line")
        if r.get("key") != ev["subject"]:
            bad.append(f"{i}: key {r.get('key')!r}, subject {ev['subject']!r}")
        h = r.get("headers") or []
        hd = dict(zip(h[0::2], h[1::2]))
        if hd.get("ce_id") != i or hd.get("ce_type") != ev["type"] or \
                not hd.get("content-type", "").startswith("application/cloudevents+json"):
            bad.append(f"{i}: headers {hd}")
        part[r.get("key")].add(r["partition"])
        out.append((ev, bad))
    for k, ps in part.items():
        if len(ps) > 1:
            out.append((None, [f"key {k} in partitions {sorted(ps)}"]))
    return out


def got_amqp(path):
    out = []
    for l in lines(path):
        rk, mode, ctype, mid, typ, body = l.decode().split("\t", 5)
        ev = json.loads(body)
        bad = []
        if mode != "2":
            bad.append(f"{mid}: delivery mode {mode}, not 2 (persistent)")
        if ctype != "application/cloudevents+json":
            bad.append(f"{mid}: content type {ctype!r}")
        if mid != ev["id"]:
            bad.append(f"message id {mid!r} is not the event id {ev['id']!r}")
        if "ordersync." + rk != ev["type"] or typ != rk:
            bad.append(f"{mid}: routing key {rk!r} / type {typ!r} for event type {ev['type']!r}")
        out.append((ev, bad))
    return out


def got_nats(path, prefix, ref_line):
    out = []
    for l in lines(path):
        seq, subj, mid, ctype, body = l.split(b"\t", 4)
        ev = json.loads(body)
        bad = []
        i = ev["id"]
        if mid.decode() != i:
            bad.append(f"seq {seq.decode()}: Nats-Msg-Id {mid.decode()!r} is not the event id {i!r}")
        if subj.decode() != prefix + "." + ev["type"][len("ordersync."):]:
            bad.append(f"{i}: subject {subj.decode()!r} for event type {ev['type']!r}")
        if ctype != b"application/cloudevents+json":
            bad.append(f"{i}: content type {ctype.decode()!r}")
        if i in ref_line and body != ref_line[i]:
            bad.append(f"{i}: payload differs from the file sink's line")
        out.append((ev, bad))
    return out


# ---- the comparison every sink shares ------------------------------------

def reference(path, lo, hi, patterns, exclude):
    """First copies of REF's events in range and routed: list, and id -> line."""
    ref, seen, ref_line = [], set(), {}
    for raw in lines(path):
        ev = json.loads(raw)
        if ev["id"] in seen or not (lo <= lsn(ev["oscommitlsn"]) <= hi):
            continue
        seen.add(ev["id"])
        if matches(ev["type"], patterns) and ev["id"] not in exclude:
            ref.append(ev)
            ref_line[ev["id"]] = raw
    return ref, ref_line


def compare(ref, got, lo, hi, mode, problems, optional=frozenset()):
    """got: (event, problems) pairs in arrival order; optional: ids that may
    be missing (dead-lettered). Returns (subjects, duplicates)."""
    ref_ids = {e["id"] for e in ref}
    recv = []
    for ev, bad in got:
        problems.extend(bad)
        if ev is not None and lo <= lsn(ev["oscommitlsn"]) <= hi:
            recv.append(ev)
    if not ref:
        problems.append("no events in the reference for that range (did the producer run?)")
    recv_ids = [e["id"] for e in recv]
    missing = ref_ids - set(recv_ids) - set(optional)
    extra = set(recv_ids) - ref_ids
    if missing:
        problems.append("%d of %d events missing, e.g. %s" % (len(missing), len(ref_ids),
                                                              sorted(missing, key=key)[:5]))
    if extra:
        problems.append("%d events the sink should not have got, e.g. %s" % (len(extra), sorted(extra, key=key)[:5]))
    by_id = {}
    for e in recv:
        if e["id"] in by_id and by_id[e["id"]] != e:
            problems.append("two different bodies for event %s" % e["id"])
        by_id.setdefault(e["id"], e)
    dups = len(recv_ids) - len(set(recv_ids))
    if mode == "exact" and dups:
        problems.append("%d duplicates, e.g. %s" % (dups, [i for i, n in collections.Counter(recv_ids).items() if n > 1][:5]))
    want = collections.defaultdict(list)
    for e in sorted(ref, key=lambda e: key(e["id"])):
        want[e["subject"]].append(e["id"])
    first, firsts = collections.defaultdict(list), set()
    every = collections.defaultdict(list)
    for e in recv:
        every[e["subject"]].append(e["id"])
        if e["id"] not in firsts:
            firsts.add(e["id"])
            first[e["subject"]].append(e["id"])
    for subj, ids in want.items():
        got_ids = [i for i in first.get(subj, []) if i in ref_ids]
        if got_ids != [i for i in ids if i in firsts]:
            problems.append("subject %s out of commit order: got %s, committed %s" % (subj, got_ids[:8], ids[:8]))
        if mode == "exact":
            seq = [key(i) for i in every.get(subj, [])]
            if seq != sorted(set(seq)):
                problems.append("subject %s ids not increasing: %s" % (subj, every[subj][:8]))
    return len(want), dups


def report(ref, subjects, dups, problems, extra=""):
    if problems:
        for p in problems[:8]:
            print(p)
        return 1
    print("ok %d events %d subjects %d duplicates%s" % (len(ref), subjects, dups, extra))
    return 0


def delivered(ref_path, got_path, lo, hi, patterns, mode, exclude=""):
    lo, hi = lsn(lo), lsn(hi)
    ref, _ = reference(ref_path, lo, hi, patterns.split(","), set(x for x in exclude.split(",") if x))
    problems = []
    subjects, dups = compare(ref, got_events(got_path), lo, hi, mode, problems)
    return report(ref, subjects, dups, problems)


def kafka(ref_path, got_path, lo, hi, mode, *exclude):
    lo, hi = lsn(lo), lsn(hi)
    ref, ref_line = reference(ref_path, lo, hi, ["*"], set())
    problems = []
    subjects, dups = compare(ref, got_kafka(got_path, ref_line), lo, hi, mode, problems, set(exclude))
    return report(ref, subjects, dups, problems)


def amqp(ref_path, got_path, paid_path=None):
    lo, hi = 0, (1 << 64) - 1
    ref, _ = reference(ref_path, lo, hi, ["order.*"], set())
    problems = []
    subjects, dups = compare(ref, got_amqp(got_path), lo, hi, "atleast", problems)
    if paid_path:
        paid = [ev for ev, bad in got_amqp(paid_path)]
        want_paid = {e["id"] for e in ref if e["type"] == "ordersync.order.paid"}
        if {e["id"] for e in paid} != want_paid:
            problems.append(f"queue bound to order.paid: {len({e['id'] for e in paid})} events, "
                            f"{len(want_paid)} paid events committed")
        if any(e["type"] != "ordersync.order.paid" for e in paid):
            problems.append("queue bound to order.paid holds other types")
    types = collections.Counter(e["type"] for e in ref)
    return report(ref, subjects, dups, problems,
                  f", created={types['ordersync.order.created']} paid={types['ordersync.order.paid']}"
                  f" shipped={types['ordersync.order.shipped']}")


def nats(ref_path, got_path, prefix, patterns):
    lo, hi = 0, (1 << 64) - 1
    ref, ref_line = reference(ref_path, lo, hi, patterns.split(","), set())
    problems = []
    subjects, dups = compare(ref, got_nats(got_path, prefix, ref_line), lo, hi, "exact", problems)
    return report(ref, subjects, dups, problems)


def attempts(path):
    recs = [json.loads(l) for l in lines(path)]
    overlaps = [r for r in recs if r.get("overlap")]
    counts = collections.Counter(r["status"] for r in recs)
    if overlaps:
        print("%d requests overlapped another one for the same subject, e.g. %s" % (len(overlaps), overlaps[:3]))
        return 1
    print(" ".join("%s:%d" % (k, v) for k, v in sorted(counts.items())))
    return 0


def find(ref_path, lo, hi, etype, subject):
    for raw in lines(ref_path):
        ev = json.loads(raw)
        if lsn(lo) <= lsn(ev["oscommitlsn"]) <= lsn(hi) and ev["type"] == etype and ev["subject"] == subject:
            print(ev["id"])
            return 0
    return 1


def first(ref_path, lo):
    """The lowest commit LSN at or after lo: the slot must not pass it
    while that transaction is undelivered."""
    lsns = [lsn(json.loads(r)["oscommitlsn"]) for r in lines(ref_path)]
    lsns = [x for x in lsns if x >= lsn(lo)]
    if not lsns:
        return 1
    m = min(lsns)
    print("%X/%X" % (m >> 32, m & 0xFFFFFFFF))
    return 0


# ---- a file sink on its own ----------------------------------------------

def fail(msg):
    print("check failed: " + msg)
    sys.exit(1)


def load(path):
    events = []
    with open(path, 'rb') as f:
        for i, raw in enumerate(f, 1):
            if not raw.endswith(b'\n'):
                fail(f"line {i} is not terminated by a newline")
            try:
                ev = json.loads(raw)
            except ValueError as e:
                fail(f"line {i} is not JSON: {e}: {raw[:200]!r}")
            check_envelope(ev, i)
            events.append((raw, ev))
    return events


def check_envelope(ev, i):
    if list(ev.keys()) != KEYS:
        fail(f"line {i}: keys {list(ev.keys())} != {KEYS}")
    if ev["specversion"] != "1.0" or ev["datacontenttype"] != "application/json":
        fail(f"line {i}: bad specversion/datacontenttype")
    m = ID_RE.match(ev["id"])
    if not m:
        fail(f"line {i}: bad id {ev['id']}")
    if m.group(1) != ev["oscommitlsn"]:
        fail(f"line {i}: id {ev['id']} does not start with oscommitlsn {ev['oscommitlsn']}")
    if not ev["type"].startswith("ordersync."):
        fail(f"line {i}: type {ev['type']}")
    if not TIME_RE.match(ev["time"]):
        fail(f"line {i}: time {ev['time']} is not RFC 3339 UTC")
    if not ev["osxid"].isdigit():
        fail(f"line {i}: osxid {ev['osxid']}")
    if not isinstance(ev["data"], dict):
        fail(f"line {i}: data is not an object")


def seq(path, n_arg, kills_path=None):
    if n_arg.startswith("@"):
        with open(n_arg[1:]) as f:
            expected = {int(l) for l in f if l.strip()}
    else:
        expected = set(range(1, int(n_arg) + 1))
    events = load(path)
    kills = []
    if kills_path:
        with open(kills_path) as f:
            kills = [(int(a), lsn(b)) for a, b in (l.split() for l in f if l.strip())]
    by_id = {}
    seen_n = set()
    dups = 0
    segment = 0
    bounds = [k[0] for k in kills]
    last_key = None
    order_n = 0
    for idx, (raw, ev) in enumerate(events):
        while segment < len(bounds) and idx >= bounds[segment]:
            segment += 1
            last_key = None          # a restart may go back to the unconfirmed tail
        k = key(ev["id"])
        if last_key is not None and k <= last_key:
            fail(f"line {idx+1}: id {ev['id']} out of commit order within a run")
        last_key = k
        if ev["id"] in by_id:
            first_raw, first_seg = by_id[ev["id"]]
            if first_raw != raw:
                fail(f"id {ev['id']} repeated with different content")
            dups += 1
            if first_seg == segment:
                fail(f"id {ev['id']} repeated within one run (no restart in between)")
            # it was repeated after kill number `segment`: must be unconfirmed then
            if k[0] < kills[segment - 1][1]:
                fail(f"id {ev['id']} was repeated although the relay had confirmed "
                     f"{kills[segment-1][1]:X} before the kill: not the unacknowledged tail")
            continue
        by_id[ev["id"]] = (raw, segment)
        if ev["type"] == "ordersync.test.seq":
            nn = ev["data"]["n"]
            if nn in seen_n:
                fail(f"n={nn} delivered under two different ids")
            if nn <= order_n:
                fail(f"n={nn} arrived after n={order_n}: commit order broken")
            order_n = nn
            seen_n.add(nn)
    missing = expected - seen_n
    if missing:
        fail(f"{len(missing)} events missing, e.g. n={sorted(missing)[:10]}")
    extra = seen_n - expected
    if extra:
        fail(f"events of uncommitted transactions: n={sorted(extra)[:10]}")
    print(f"ok: {len(expected)} events, none missing, {len(events)} lines, {dups} duplicates "
          f"(all from the unacknowledged tail), {len(kills)} restarts")
    return 0


def envelope(path):
    print(f"ok: {len(load(path))} envelopes")
    return 0


COMMANDS = {"delivered": delivered, "kafka": kafka, "amqp": amqp, "nats": nats, "attempts": attempts,
            "find": find, "first": first, "seq": seq, "envelope": envelope}


def main(argv):
    if len(argv) < 3 or argv[1] not in COMMANDS:
        print(__doc__)
        return 2
    return COMMANDS[argv[1]](*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
