#!/usr/bin/env python3
"""notify_listen.py SOCKET SECONDS — stands in for systemd's notify socket.

Binds a Unix datagram socket at SOCKET (mode 0777: the relay runs as another
user) and prints every state it receives, one a line, flushed, so a test can
watch the file. Exits 0 after STOPPING=1, 1 after SECONDS without it.
A file SOCKET.ready appears once the socket listens.
"""
import os
import socket
import sys
import time

path, limit = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o777)
open(path + ".ready", "w").close()
end = time.monotonic() + limit
while time.monotonic() < end:
    s.settimeout(max(0.05, end - time.monotonic()))
    try:
        data = s.recv(4096)
    except socket.timeout:
        break
    states = data.decode("utf-8", "replace").split("\n")
    for state in states:
        print(state, flush=True)
    if "STOPPING=1" in states:
        sys.exit(0)
sys.exit(1)
