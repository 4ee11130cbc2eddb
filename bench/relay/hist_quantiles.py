#!/usr/bin/env python3
"""hist_quantiles.py — p50/p99 (ms) of ordersyncd_commit_to_durable_seconds
from a /metrics dump on stdin (linear interpolation inside a bucket)."""
import re
import sys

b = []
for line in sys.stdin:
    m = re.match(r'ordersyncd_commit_to_durable_seconds_bucket\{le="([^"]+)"\} (\d+)', line)
    if m:
        b.append((float("inf") if m.group(1) == "+Inf" else float(m.group(1)), int(m.group(2))))
total = b[-1][1] if b else 0


def q(p):
    want = p * total
    prev_le, prev_c = 0.0, 0
    for le, c in b:
        if c >= want:
            if le == float("inf"):
                return prev_le * 1000
            frac = (want - prev_c) / (c - prev_c) if c > prev_c else 1.0
            return (prev_le + (le - prev_le) * frac) * 1000
        prev_le, prev_c = le, c
    return float("nan")


print(f"{total} {q(0.50):.2f} {q(0.99):.2f}")
