#!/usr/bin/env python3
"""webhook_receiver.py — a webhook endpoint for the relay's integration tests.

Standard library only. Listens on 127.0.0.1:PORT, checks every POST the way
a Standard Webhooks receiver would (webhook-id / webhook-timestamp /
webhook-signature, HMAC-SHA256 over "id.timestamp.body", whsec_ secrets
base64-decoded), and appends each accepted CloudEvent, as received, as one
line to --events (flushed per write, in the order the receiver accepted
them). Every attempt, whatever its answer, is one JSON line in --attempts:
{"id", "subject", "type", "status", "reason", "overlap", "webhook_id",
"path"}, where overlap says another request for the same subject and URL
path was being handled at the same time (which the relay promises never
happens for one sink).

Failure modes come from files in --control DIR, read at every request, so a
test switches them with echo/rm:

  status     "503" (or "503 7" for Retry-After: 7): answer that to everything
  reject     lines "FIELD=VALUE[&FIELD=VALUE...] STATUS", FIELD one of the
             event's attributes (id, subject, type): answer STATUS to the
             matching events, e.g. "subject=order/7&type=ordersync.order.paid 400",
             with a long multi-line body that is not all ASCII and ends in
             INTERNAL-ANSWER (the relay must keep only a short excerpt)
  delay_ms   sleep that long before answering each request
  forget_idle_ms
             a kept-alive connection idle that long is forgotten, the way a
             load balancer or NAT drops an idle flow: nothing more is
             answered on it and it is not closed, so a request sent on it
             waits until the client's timeout

Kill it (kill -9 is fine) to make the endpoint refuse connections, start it
again to bring it back: --events and --attempts are appended to. With
--tls-cert/--tls-key it serves HTTPS. Without --secret it checks no
signature.
"""

import argparse
import base64
import errno
import hashlib
import hmac
import http.server
import json
import os
import select
import ssl
import sys
import threading
import time


def key_of(secret):
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_"):])
    return secret.encode()


class State:
    def __init__(self, args):
        self.key = key_of(args.secret) if args.secret is not None else None
        self.control = args.control
        self.lock = threading.Lock()
        self.events = open(args.events, "ab", buffering=0)
        self.attempts = open(args.attempts, "ab", buffering=0) if args.attempts else None
        self.active = {}  # subject -> requests being handled

    def control_file(self, name):
        if not self.control:
            return None
        try:
            with open(os.path.join(self.control, name)) as f:
                return f.read().strip()
        except OSError:
            return None


def verify(state, headers, body):
    """None if the request is signed correctly, else why not."""
    if state.key is None:
        return None
    wid = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sigs = headers.get("webhook-signature")
    if not wid or not ts or not sigs:
        return "missing webhook-id/webhook-timestamp/webhook-signature"
    try:
        if abs(time.time() - int(ts)) > 300:
            return "webhook-timestamp too far from now"
    except ValueError:
        return "webhook-timestamp not an integer"
    mac = hmac.new(state.key, wid.encode() + b"." + ts.encode() + b"." + body, hashlib.sha256)
    expect = base64.b64encode(mac.digest()).decode()
    for s in sigs.split(" "):
        version, _, value = s.partition(",")
        if version == "v1" and hmac.compare_digest(value, expect):
            return None
    return "bad webhook-signature"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the relay expects
    # headers and body go out in two writes: without this, Nagle's
    # algorithm and the client's delayed ACK add 40 ms to every answer
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def handle(self):
        # BaseHTTPRequestHandler.handle, plus forget_idle_ms (see the top)
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection:
            forget = self.server.state.control_file("forget_idle_ms")
            if forget and not select.select([self.connection], [], [], int(forget) / 1000.0)[0]:
                # forgotten: read and drop whatever comes until the client closes
                while self.connection.recv(65536):
                    pass
                return
            self.handle_one_request()

    def answer(self, status, text, retry_after=None):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        if retry_after:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        st = self.server.state
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        try:
            ev = json.loads(body)
        except ValueError:
            ev = {}
        subject = str(ev.get("subject", ""))
        # one sink (one URL path here) sends a subject's events one at a time
        busy = self.path + " " + subject
        with st.lock:
            overlap = st.active.get(busy, 0) > 0
            st.active[busy] = st.active.get(busy, 0) + 1
        try:
            status, reason, retry_after = self.decide(st, ev, body)
            if status == 200:
                with st.lock:
                    st.events.write(body + b"\n")
            if st.attempts:
                rec = {"id": ev.get("id"), "subject": subject, "type": ev.get("type"),
                       "status": status, "reason": reason, "overlap": overlap,
                       "webhook_id": self.headers.get("webhook-id"), "path": self.path}
                with st.lock:
                    st.attempts.write(json.dumps(rec).encode() + b"\n")
        finally:
            with st.lock:
                st.active[busy] -= 1
        self.answer(status, reason if status != 200 else "ok", retry_after)

    def decide(self, st, ev, body):
        delay = st.control_file("delay_ms")
        if delay:
            time.sleep(int(delay) / 1000.0)
        bad = verify(st, self.headers, body)
        if bad:
            return 401, "signature check failed: " + bad, None
        if self.headers.get("webhook-id") != ev.get("id"):
            return 400, "webhook-id differs from the event id", None
        if self.headers.get("Content-Type") != "application/cloudevents+json":
            return 415, "expected application/cloudevents+json", None
        forced = st.control_file("status")
        if forced:
            parts = forced.split()
            return int(parts[0]), "forced by the test: status " + parts[0], (parts[1] if len(parts) > 1 else None)
        rules = st.control_file("reject")
        for line in (rules or "").splitlines():
            try:
                cond, status = line.rsplit(" ", 1)
                pairs = [c.split("=", 1) for c in cond.split("&")]
                if all(str(ev.get(f)) == v for f, v in pairs):
                    # two lines, a character outside ASCII and a long tail: the
                    # relay keeps at most 64 printable bytes of it, on one line
                    return int(status), ("test receiver \u2717 refuses %s\r\nsecond line %s INTERNAL-ANSWER"
                                         % (cond, "x" * 300)), None
            except ValueError:
                continue
        return 200, "ok", None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--secret", help="shared secret (whsec_... or raw); absent: no check")
    p.add_argument("--events", required=True)
    p.add_argument("--attempts")
    p.add_argument("--control")
    p.add_argument("--ready", help="file created once listening")
    p.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--tls-key", help="the certificate's private key (PEM)")
    args = p.parse_args()

    class Server(http.server.ThreadingHTTPServer):
        allow_reuse_address = True
        daemon_threads = True
        request_queue_size = 512

        def handle_error(self, request, client_address):
            # a client that hangs up (the relay killed, closed or timing
            # out) is part of the tests, not an error worth a traceback
            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)

    # the port may be held for a moment (a previous receiver's socket
    # closing, a client's ephemeral port): retry briefly before giving up
    for attempt in range(50):
        try:
            srv = Server(("127.0.0.1", args.port), Handler)
            break
        except OSError as e:
            if e.errno != errno.EADDRINUSE or attempt == 49:
                raise
            time.sleep(0.1)
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.state = State(args)
    if args.ready:
        open(args.ready, "w").close()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
