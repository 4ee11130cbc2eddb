#!/usr/bin/env python3
"""test/inbound/sender.py - a channel that pushes signed webhooks to
ordersyncd --inbound, for the integration test and by hand.

Signs the way each platform documents it, independently of the relay's C
code (so a test compares two implementations):
  standard-webhooks  webhook-id, webhook-timestamp, webhook-signature:
                     "v1," + base64(HMAC-SHA256(key, id.timestamp.body)),
                     key = base64-decoded part after "whsec_"
  shopify            X-Shopify-Hmac-Sha256 = base64(HMAC-SHA256(secret, body)),
                     X-Shopify-Webhook-Id, X-Shopify-Topic
  woocommerce        X-WC-Webhook-Signature = base64(HMAC-SHA256(secret, body)),
                     X-WC-Webhook-Delivery-ID, X-WC-Webhook-Topic

  sender.py one URL SCHEME SECRET ID [--topic T] [--ts SECONDS] [--body FILE]
      one request (body from FILE or stdin); prints "<status> <answer>"
  sender.py storm URL SECRET --orders N --channel-orders PREFIX --out FILE
      [--repeat 3] [--threads 8] [--retry]
      N orders in the ordersync format, each with status updates PAID (1),
      FULFILLING (2), SHIPPED (3) and a late PAID (0, stale); every webhook
      sent --repeat times, all in a shuffled order, from --threads
      connections. Event ids answered 2xx go to FILE, one per line, as the
      answers arrive (flushed), so a test can kill the receiver meanwhile.
"""
import argparse
import base64
import hashlib
import hmac
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse


def sign_headers(scheme, secret, event_id, body, topic=None, ts=None):
    if scheme == "standard-webhooks":
        key = base64.b64decode(secret[len("whsec_"):]) if secret.startswith("whsec_") else secret.encode()
        ts = str(int(time.time()) if ts is None else ts)
        mac = hmac.new(key, event_id.encode() + b"." + ts.encode() + b"." + body, hashlib.sha256)
        return {"webhook-id": event_id, "webhook-timestamp": ts,
                "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode()}
    mac = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    if scheme == "shopify":
        h = {"X-Shopify-Hmac-Sha256": mac, "X-Shopify-Webhook-Id": event_id,
             "X-Shopify-Shop-Domain": "example.myshopify.com", "X-Shopify-API-Version": "2024-01"}
        if topic:
            h["X-Shopify-Topic"] = topic
        return h
    if scheme == "woocommerce":
        h = {"X-WC-Webhook-Signature": mac, "X-WC-Webhook-Delivery-ID": event_id,
             "X-WC-Webhook-ID": "17", "X-WC-Webhook-Source": "https://shop.example.com/",
             "X-WC-Webhook-Resource": "order"}
        if topic:
            h["X-WC-Webhook-Topic"] = topic
            h["X-WC-Webhook-Event"] = topic.split(".")[-1]
        return h
    raise SystemExit("unknown scheme " + scheme)


class Conn:
    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.base = u.hostname, u.port, u.path.rstrip("/")
        self.c = None

    def post(self, path, body, headers, timeout=10):
        for attempt in (1, 2):
            try:
                if self.c is None:
                    self.c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
                h = {"Content-Type": "application/json", "User-Agent": "ordersync-test-sender"}
                h.update(headers)
                self.c.request("POST", self.base + path, body=body, headers=h)
                r = self.c.getresponse()
                return r.status, r.read().decode("utf-8", "replace")
            except (OSError, http.client.HTTPException):
                if self.c:
                    self.c.close()
                self.c = None
                if attempt == 2:
                    return 0, "connection failed"
        return 0, "connection failed"


def cmd_one(a):
    body = open(a.body, "rb").read() if a.body else sys.stdin.buffer.read()
    headers = sign_headers(a.scheme, a.secret, a.id, body, a.topic, a.ts)
    for kv in a.header or []:
        k, _, v = kv.partition(":")
        if v == "":
            headers.pop(k, None)
        else:
            headers[k] = v.strip()
    u = urllib.parse.urlsplit(a.url)
    c = Conn(a.url.replace(u.path, ""))
    status, text = c.post(u.path, body, headers)
    print(status, text)


def storm_events(n, prefix):
    ev = []
    for i in range(n):
        ext = "%s-%d" % (prefix, i)
        ev.append(("order", "%s-o" % ext, {"external_id": ext,
                   "lines": [{"sku": "SKU-IN", "qty": 1, "price": "5.00"}],
                   "customer": {"name": "Buyer %d" % i}}))
        for ver, word in ((1, "PAID"), (2, "FULFILLING"), (3, "SHIPPED"), (0, "PAID")):
            ev.append(("status", "%s-s%d" % (ext, ver), {"external_id": ext, "status": word, "version": ver}))
    return ev


def cmd_storm(a):
    events = storm_events(a.orders, a.channel_orders)
    work = [e for e in events for _ in range(a.repeat)]
    random.Random(a.seed).shuffle(work)
    lock = threading.Lock()
    out = open(a.out, "a")
    stats = {}

    def worker(items):
        c = Conn(a.url)
        for kind, eid, payload in items:
            body = json.dumps(payload).encode()
            path = "/orders" if kind == "order" else "/status"
            while True:
                status, _ = c.post(path, body, sign_headers("standard-webhooks", a.secret, eid, body))
                if status in (0, 503) and a.retry:
                    time.sleep(0.2)
                    continue
                break
            with lock:
                stats[status] = stats.get(status, 0) + 1
                if 200 <= status < 300:
                    out.write(eid + "\n")
                    out.flush()

    threads = [threading.Thread(target=worker, args=(work[i::a.threads],)) for i in range(a.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(" ".join("%s:%d" % (k, v) for k, v in sorted(stats.items())))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("one")
    o.add_argument("url")
    o.add_argument("scheme")
    o.add_argument("secret")
    o.add_argument("id")
    o.add_argument("--topic")
    o.add_argument("--ts", type=int)
    o.add_argument("--body")
    o.add_argument("--header", action="append", help="NAME:VALUE to set, NAME: to remove")
    s = sub.add_parser("storm")
    s.add_argument("url")
    s.add_argument("secret")
    s.add_argument("--orders", type=int, default=50)
    s.add_argument("--channel-orders", default="ST")
    s.add_argument("--out", required=True)
    s.add_argument("--repeat", type=int, default=3)
    s.add_argument("--threads", type=int, default=8)
    s.add_argument("--seed", type=int, default=12)
    s.add_argument("--retry", action="store_true")
    a = p.parse_args()
    {"one": cmd_one, "storm": cmd_storm}[a.cmd](a)


if __name__ == "__main__":
    main()
