#!/usr/bin/env python3
"""webhook_check.py — compares what a webhook receiver got with what the
relay's file sink wrote (every event, in commit order), for sink_webhook.sh.

  webhook_check.py delivered REF RECV FROM TO PATTERNS MODE [EXCLUDE]
      The events of REF whose commit LSN is in [FROM, TO] and whose type
      matches one of PATTERNS (comma-separated route patterns: order.paid,
      order.*, *), minus the ids in EXCLUDE (comma-separated), must be
      exactly the ids RECV has in that range: none missing, none extra.
      Per subject, the order in which RECV first saw each event must be
      the commit order (CloudEvents ids: commit LSN, then ordinal). Copies
      of one id must be identical. MODE "exact": no id twice, and each
      subject's sequence strictly increasing; "atleast": duplicates allowed
      (after a crash the unconfirmed tail comes again).
      Prints "ok N events S subjects" or what is wrong; exits 1 when wrong.

  webhook_check.py attempts ATTEMPTS
      No two requests for one subject overlapped at the receiver; prints
      the count of answers per status.

  webhook_check.py first REF FROM
      Prints the lowest commit LSN at or after FROM in REF.

  webhook_check.py find REF FROM TO TYPE SUBJECT
      Prints the id of the first such event in REF.
"""

import collections
import json
import sys


def lsn(text):
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def key(eid):
    hi, lo, ordinal = eid.split("/")
    return ((int(hi, 16) << 32) | int(lo, 16), int(ordinal))


def load(path):
    out = []
    try:
        with open(path, "rb") as f:
            for line in f:
                line = line.strip()
                if line:
                    out.append(json.loads(line))
    except FileNotFoundError:
        pass
    return out


def matches(etype, patterns):
    t = etype[len("ordersync."):] if etype.startswith("ordersync.") else etype
    for p in patterns:
        if p == "*" or p == t or (p.endswith(".*") and t.startswith(p[:-1])):
            return True
    return False


def in_range(ev, lo, hi):
    return lo <= lsn(ev["oscommitlsn"]) <= hi


def delivered(ref_path, recv_path, lo, hi, patterns, mode, exclude):
    lo, hi = lsn(lo), lsn(hi)
    patterns = patterns.split(",")
    exclude = set(x for x in exclude.split(",") if x)
    ref, seen = [], set()
    for ev in load(ref_path):
        if ev["id"] in seen or not in_range(ev, lo, hi):
            continue
        seen.add(ev["id"])
        if matches(ev["type"], patterns) and ev["id"] not in exclude:
            ref.append(ev)
    recv = [ev for ev in load(recv_path) if in_range(ev, lo, hi)]
    problems = [] if ref else ["no events in the reference for that range (did the producer run?)"]
    ref_ids = [e["id"] for e in ref]
    recv_ids = [e["id"] for e in recv]
    missing = set(ref_ids) - set(recv_ids)
    extra = set(recv_ids) - set(ref_ids)
    if missing:
        problems.append("%d events never reached the receiver, e.g. %s" % (len(missing), sorted(missing, key=key)[:5]))
    if extra:
        problems.append("%d events the receiver should not have got, e.g. %s" % (len(extra), sorted(extra, key=key)[:5]))
    by_id = {}
    for e in recv:
        if e["id"] in by_id and by_id[e["id"]] != e:
            problems.append("two different bodies for event %s" % e["id"])
        by_id.setdefault(e["id"], e)
    dups = len(recv_ids) - len(set(recv_ids))
    if mode == "exact" and dups:
        problems.append("%d duplicate deliveries, e.g. %s" % (dups, [i for i, n in collections.Counter(recv_ids).items() if n > 1][:5]))
    ref_subj = collections.defaultdict(list)
    for e in ref:
        ref_subj[e["subject"]].append(e["id"])
    first_subj = collections.defaultdict(list)
    all_subj = collections.defaultdict(list)
    firsts = set()
    for e in recv:
        all_subj[e["subject"]].append(e["id"])
        if e["id"] not in firsts:
            firsts.add(e["id"])
            first_subj[e["subject"]].append(e["id"])
    for subj, ids in ref_subj.items():
        got = [i for i in first_subj.get(subj, []) if i in set(ids)]
        if got != [i for i in ids if i in firsts]:
            problems.append("subject %s out of commit order: got %s, committed %s" % (subj, got[:8], ids[:8]))
        if mode == "exact":
            seq = [key(i) for i in all_subj.get(subj, [])]
            if seq != sorted(set(seq)):
                problems.append("subject %s ids not increasing: %s" % (subj, all_subj[subj][:8]))
    if problems:
        for p in problems[:8]:
            print(p)
        return 1
    print("ok %d events %d subjects" % (len(ref), len(ref_subj)))
    return 0


def attempts(path):
    recs = load(path)
    overlaps = [r for r in recs if r.get("overlap")]
    counts = collections.Counter(r["status"] for r in recs)
    if overlaps:
        print("%d requests overlapped another one for the same subject, e.g. %s" % (len(overlaps), overlaps[:3]))
        return 1
    print(" ".join("%s:%d" % (k, v) for k, v in sorted(counts.items())))
    return 0


def find(ref_path, lo, hi, etype, subject):
    for ev in load(ref_path):
        if in_range(ev, lsn(lo), lsn(hi)) and ev["type"] == etype and ev["subject"] == subject:
            print(ev["id"])
            return 0
    return 1


def first(ref_path, lo):
    """The lowest commit LSN at or after lo: the slot must not pass it
    while that transaction is undelivered."""
    lsns = [lsn(e["oscommitlsn"]) for e in load(ref_path) if lsn(e["oscommitlsn"]) >= lsn(lo)]
    if not lsns:
        return 1
    m = min(lsns)
    print("%X/%X" % (m >> 32, m & 0xFFFFFFFF))
    return 0


def main(argv):
    if argv[1] == "delivered":
        return delivered(*argv[2:8], argv[8] if len(argv) > 8 else "")
    if argv[1] == "attempts":
        return attempts(argv[2])
    if argv[1] == "first":
        return first(argv[2], argv[3])
    if argv[1] == "find":
        return find(*argv[2:7])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
