#!/usr/bin/env python3
"""check_events.py — verify an ordersyncd JSON-lines sink file.

  check_events.py seq FILE N [KILLS]
      Every event of type ordersync.test.seq carries data.n; checks that
      n = 1..N all arrived, that every line is a valid CloudEvents envelope,
      that a repeated id always repeats the same bytes, that events are in
      commit order, and — given KILLS, a file of "<line count> <confirmed
      LSN>" taken at each kill -9 — that everything repeated after a restart
      belongs to a transaction the relay had not yet confirmed (the
      unacknowledged tail). Prints a one-line summary.

      N may be @PATH: a file with the expected n values, one per line (when
      a producer was interrupted, the committed ones).

  check_events.py envelope FILE
      Field-by-field check of the CloudEvents envelope of every line.
"""
import json
import re
import sys

ID_RE = re.compile(r'^([0-9A-F]+/[0-9A-F]+)/(S?)([0-9]+)$')
TIME_RE = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$')
KEYS = ["specversion", "id", "source", "type", "subject", "time",
        "datacontenttype", "oscommitlsn", "osxid", "data"]


def lsn(text):
    hi, lo = text.split('/')
    return (int(hi, 16) << 32) | int(lo, 16)


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
    if not m or int(m.group(3)) < (0 if m.group(2) else 0):
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
        m = ID_RE.match(ev["id"])
        key = (lsn(m.group(1)), int(m.group(3)))
        if last_key is not None and key <= last_key:
            fail(f"line {idx+1}: id {ev['id']} out of commit order within a run")
        last_key = key
        if ev["id"] in by_id:
            first_raw, first_seg = by_id[ev["id"]]
            if first_raw != raw:
                fail(f"id {ev['id']} repeated with different content")
            dups += 1
            if first_seg == segment:
                fail(f"id {ev['id']} repeated within one run (no restart in between)")
            # it was repeated after kill number `segment`: must be unconfirmed then
            confirmed = kills[segment - 1][1]
            if key[0] < confirmed:
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


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "seq":
        seq(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    elif len(sys.argv) == 3 and sys.argv[1] == "envelope":
        events = load(sys.argv[2])
        print(f"ok: {len(events)} envelopes")
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
