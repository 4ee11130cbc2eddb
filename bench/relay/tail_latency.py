#!/usr/bin/env python3
"""tail_latency.py — follow a JSON-lines file and measure, per event, the
delay from commit (the time stamped in the line) to the moment the line
became visible in the file.

  tail_latency.py FILE FORMAT COUNT TIMEOUT
     FORMAT: ordersyncd (CloudEvents "time", RFC 3339 UTC) or
             recvlogical (wal2json "timestamp" of "M" lines)
Prints: "<count> <p50 ms> <p99 ms> <max ms>".
"""
import datetime
import json
import os
import sys
import time


def parse_pg(ts):
    # "2026-11-24 07:07:52.635716+00" -> aware datetime
    if ts[-3] in "+-" and ts[-3:].lstrip("+-").isdigit():
        ts = ts + ":00"
    return datetime.datetime.fromisoformat(ts)


def main():
    path, fmt, count, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    lat = []
    deadline = time.time() + timeout
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.001)
    with open(path, "rb") as f:
        buf = b""
        while len(lat) < count and time.time() < deadline:
            chunk = f.read()
            if not chunk:
                time.sleep(0.0005)
                continue
            now = time.time()
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                ev = json.loads(line)
                if fmt == "ordersyncd":
                    t = datetime.datetime.fromisoformat(ev["time"].replace("Z", "+00:00"))
                else:
                    if ev.get("action") != "M":
                        continue
                    t = parse_pg(ev["timestamp"])
                lat.append((now - t.timestamp()) * 1000.0)
    lat.sort()
    if not lat:
        print("0 nan nan nan")
        return
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    print(f"{len(lat)} {q(0.50):.2f} {q(0.99):.2f} {lat[-1]:.2f}")


if __name__ == "__main__":
    main()
