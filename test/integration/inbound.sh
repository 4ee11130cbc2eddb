#!/usr/bin/env bash
# test/integration/inbound.sh — ordersyncd --inbound against a real server:
# channels push signed webhooks, the relay keeps each in ordersync.inbox
# before its 2xx and the database applies them once and in order.
#
#   replay      every webhook three times, shuffled, from 8 connections:
#               one order each, statuses right, stale updates recorded,
#               nothing applied twice (history)
#   refusals    bad signature, expired timestamp, missing headers (401),
#               10 MB body (413), malformed JSON and invalid payload (400,
#               JSON bodies), unknown channel (404): nothing written
#   restart     database down: 503, nothing answered 2xx; back up: accepted
#   kill9       kill -9 of the receiver under load: every webhook answered
#               2xx is in the inbox and applied
#   platforms   Shopify and WooCommerce sample payloads with their real
#               signature schemes, topics checked against the endpoint
#   failed      an order the stock cannot cover: failed with OS001 and an
#               order.import_failed event
#   attacker    the relay's role can receive and apply, nothing more; a
#               body signed for another channel is refused
#   both        --slot and --inbound in one process
#   before080   an extension before 0.8.0 (no inbox_receive_apply()): the
#               relay says so once, receives, and its appliers apply
#
# Ports 25544 (cluster), 25545 (receiver), 25546 (metrics).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
inb="$root/test/inbound"
it_init inbound 25544 "shared_preload_libraries = 'ordersync'" "ordersync.database = 'postgres'" \
	"ordersync.inbox_interval = 1"
RPORT=25545
MPORT=25546
URL="http://127.0.0.1:$RPORT"
export ORDERSYNC_SHOP_SECRET="whsec_$(head -c 24 /dev/urandom | base64)"
export ORDERSYNC_OTHER_SECRET="whsec_$(head -c 24 /dev/urandom | base64)"
export ORDERSYNC_SHOPIFY_SECRET="shpss_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export ORDERSYNC_WOO_SECRET="woo secret $(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
RCONN="host=$cl port=$PORT user=ordersyncd_in dbname=postgres"
send() { python3 "$inb/sender.py" "$@"; }

sql "CREATE EXTENSION ordersync" >/dev/null
sql "CREATE ROLE ordersyncd_in LOGIN REPLICATION IN ROLE ordersync_relay" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SELECT ordersync.add_location('main', 1);
SELECT ordersync.receive_stock(s, 'main', 100000)
  FROM unnest(ARRAY['SKU-IN', 'IPOD2008PINK', 'IPOD2008BLACK', 'WOO-SINGLE-1', 'SHIP-IDEA-BLACK-M']) s;
SELECT ordersync.receive_stock('SKU-FEW', 'main', 1);
SELECT ordersync.add_channel('shop', '{"PAID": "paid", "FULFILLING": "fulfilling", "SHIPPED": "shipped", "CANCELLED": "cancelled"}');
SELECT ordersync.add_channel('other', '{}');
SELECT ordersync.add_channel('shopify', '{"paid": "paid", "fulfilled": "fulfilling", "cancelled": "cancelled", "refunded": "refunded"}');
SELECT ordersync.add_channel('woo', '{"processing": "paid", "completed": "fulfilling", "cancelled": "cancelled"}');
SELECT ordersync.set_channel_inbound('shop', '{"signature": "standard-webhooks", "secret_env": "ORDERSYNC_SHOP_SECRET", "format": "ordersync"}');
SELECT ordersync.set_channel_inbound('other', '{"signature": "standard-webhooks", "secret_env": "ORDERSYNC_OTHER_SECRET", "format": "ordersync"}');
SELECT ordersync.set_channel_inbound('shopify', '{"signature": "shopify", "secret_env": "ORDERSYNC_SHOPIFY_SECRET", "format": "shopify"}');
SELECT ordersync.set_channel_inbound('woo', '{"signature": "woocommerce", "secret_env": "ORDERSYNC_WOO_SECRET", "format": "woocommerce"}');
SQL

start_receiver() {
	start_relay "${1:-recv}" --dbname="$RCONN" --inbound=127.0.0.1:$RPORT --metrics-addr=127.0.0.1:$MPORT \
		--inbound-max-body=1024 "${@:2}"
	local i
	for ((i = 0; i < 50; i++)); do
		curl -s -o /dev/null "$URL/" && return 0
		sleep 0.1
	done
	return 1
}
stop_receiver() { kill "$RELAY" 2>/dev/null; wait_exit "$RELAY" 10; }
# wait_applied CHANNEL SECS: until no row of the channel is received or parked
wait_applied() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[ "$(sql "SELECT count(*) FROM ordersync.inbox WHERE channel = '$1' AND state IN ('received', 'parked')")" = 0 ] && return 0
		sleep 0.1
	done
	return 1
}
order_body() { printf '{"external_id": "%s", "lines": [{"sku": "%s", "qty": %s, "price": "5.00"}]}' "$1" "${2:-SKU-IN}" "${3:-1}"; }
rows() { sql "SELECT count(*) FROM ordersync.inbox"; }

start_receiver || { echo "FAIL: integration/inbound-setup (receiver did not start)"; cat "$work/recv.log"; exit 1; }

# ---- replay: three times each, shuffled ---------------------------------------
t_replay() {
	local out bad=()
	out=$(send storm "$URL/channels/shop" "$ORDERSYNC_SHOP_SECRET" --orders 60 --channel-orders R \
		--out "$work/replay.ok" --repeat 3 --threads 8)
	wait_applied shop 30 || bad+=("inbox rows still received or parked after 30 s")
	[ "$out" = "200:900" ] || bad+=("answers: $out (want 200:900: 60 x 5 webhooks x 3)")
	local got
	got=$(sql "SELECT count(*), count(DISTINCT event_id) FROM ordersync.inbox WHERE channel = 'shop' AND external_id LIKE 'R-%'")
	[ "$got" = "300|300" ] || bad+=("inbox rows, distinct events: $got (want 300|300: repeats write nothing)")
	got=$(sql "SELECT count(*), count(*) FILTER (WHERE status = 'shipped') FROM ordersync.orders WHERE channel = 'shop' AND external_id LIKE 'R-%'")
	[ "$got" = "60|60" ] || bad+=("orders, shipped: $got (want 60|60)")
	got=$(sql "SELECT state, count(*) FROM ordersync.inbox WHERE channel = 'shop' AND external_id LIKE 'R-%' GROUP BY 1 ORDER BY 1" | tr '\n' ' ')
	grep -q "stale|" <<<"$got" || bad+=("no stale row recorded: $got")
	grep -qE "failed|parked|received" <<<"$got" && bad+=("rows not final: $got")
	# nothing applied twice: one created and one change per status per order
	got=$(sql "SELECT count(*) FROM (SELECT h.order_id, h.action, h.to_status, count(*) FROM ordersync.history h
		JOIN ordersync.orders o ON o.id = h.order_id WHERE o.channel = 'shop' AND o.external_id LIKE 'R-%'
		AND h.action IN ('created', 'status') GROUP BY 1, 2, 3 HAVING count(*) > 1) d")
	[ "$got" = 0 ] || bad+=("$got order changes applied more than once")
	got=$(sql "SELECT count(*) FROM ordersync.history h JOIN ordersync.orders o ON o.id = h.order_id
		WHERE o.channel = 'shop' AND o.external_id LIKE 'R-%' AND h.action = 'status'")
	[ "$got" = 180 ] || bad+=("status changes: $got (want 180: paid, fulfilling, shipped x 60)")
	# every stale row is no newer than the version applied last
	got=$(sql "SELECT count(*) FROM ordersync.inbox i JOIN ordersync.inbox_version v USING (channel, external_id)
		WHERE i.state = 'stale' AND i.version > v.version")
	[ "$got" = 0 ] || bad+=("$got stale rows newer than the last applied version")
	[ ${#bad[@]} -eq 0 ] && pass inbound-replay || fail inbound-replay "${bad[@]}"
}

# ---- refusals -------------------------------------------------------------------
t_refusals() {
	local bad=() before r big
	before=$(rows)
	order_body F-1 >"$work/f1.json"
	r=$(send one "$URL/channels/shop/orders" standard-webhooks "$ORDERSYNC_OTHER_SECRET" f-1 --body "$work/f1.json")
	[[ "$r" == "401 "*bad_signature* ]] || bad+=("wrong secret: $r")
	r=$(send one "$URL/channels/shop/orders" standard-webhooks "$ORDERSYNC_SHOP_SECRET" f-2 --ts $(($(date +%s) - 600)) --body "$work/f1.json")
	[[ "$r" == "401 "*expired* ]] || bad+=("10 minutes old: $r")
	r=$(send one "$URL/channels/shop/orders" standard-webhooks "$ORDERSYNC_SHOP_SECRET" f-3 --ts $(($(date +%s) + 600)) --body "$work/f1.json")
	[[ "$r" == "401 "*expired* ]] || bad+=("10 minutes ahead: $r")
	r=$(send one "$URL/channels/shop/orders" standard-webhooks "$ORDERSYNC_SHOP_SECRET" f-4 --header webhook-signature: --body "$work/f1.json")
	[[ "$r" == "401 "*unsigned* ]] || bad+=("no signature: $r")
	r=$(curl -s -w ' %{http_code}' -X POST -H 'Content-Type: application/json' --data-binary @"$work/f1.json" "$URL/channels/shop/orders")
	[[ "$r" == *'"error":"unsigned"'*" 401" ]] || bad+=("unsigned curl: $r")
	# a body signed, then changed
	r=$(python3 - "$URL" "$ORDERSYNC_SHOP_SECRET" "$inb" <<'PY'
import sys; sys.path.insert(0, sys.argv[3]); import sender
body = b'{"external_id": "F-5", "lines": [{"sku": "SKU-IN", "qty": 1, "price": "5.00"}]}'
h = sender.sign_headers("standard-webhooks", sys.argv[2], "f-5", body)
print(*sender.Conn(sys.argv[1]).post("/channels/shop/orders", body.replace(b'"qty": 1', b'"qty": 9'), h))
PY
)
	[[ "$r" == "401 "*bad_signature* ]] || bad+=("tampered body: $r")
	head -c 10485760 /dev/zero | tr '\0' 'x' >"$work/big.json"
	r=$(curl -s -w ' %{http_code}' -X POST -H 'webhook-id: f-6' --data-binary @"$work/big.json" "$URL/channels/shop/orders")
	[[ "$r" == *'"error":"too_large"'*" 413" ]] || bad+=("10 MB body: ${r:0:200}")
	r=$(curl -s -w ' %{http_code}' -X POST -H 'Transfer-Encoding: chunked' --data-binary @"$work/big.json" "$URL/channels/shop/orders")
	[[ "$r" == *" 413" ]] || bad+=("10 MB chunked body: ${r:0:200}")
	printf '{"external_id": "F-7", "lines": [' >"$work/bad.json"
	r=$(send one "$URL/channels/shop/orders" standard-webhooks "$ORDERSYNC_SHOP_SECRET" f-7 --body "$work/bad.json")
	[[ "$r" == '400 {"error":"malformed_json"'* ]] || bad+=("malformed JSON: $r")
	printf '{"lines": []}' >"$work/noid.json"
	r=$(send one "$URL/channels/shop/orders" standard-webhooks "$ORDERSYNC_SHOP_SECRET" f-8 --body "$work/noid.json")
	[[ "$r" == '400 {"error":"invalid_payload"'*external_id* ]] || bad+=("no external_id: $r")
	printf '{"external_id": "F-9", "status": "PAID", "version": "yesterday"}' >"$work/badver.json"
	r=$(send one "$URL/channels/shop/status" standard-webhooks "$ORDERSYNC_SHOP_SECRET" f-9 --body "$work/badver.json")
	[[ "$r" == '400 {"error":"invalid_payload"'*version* ]] || bad+=("bad version: $r")
	r=$(send one "$URL/channels/nosuch/orders" standard-webhooks "$ORDERSYNC_SHOP_SECRET" f-10 --body "$work/f1.json")
	[[ "$r" == '404 {"error":"unknown_channel"'* ]] || bad+=("unknown channel: $r")
	r=$(send one "$URL/channels/web/orders" standard-webhooks "$ORDERSYNC_SHOP_SECRET" f-11 --body "$work/f1.json")
	[[ "$r" == '404 '* ]] || bad+=("channel without inbound settings: $r")
	r=$(send one "$URL/channels/shop/refunds" standard-webhooks "$ORDERSYNC_SHOP_SECRET" f-12 --body "$work/f1.json")
	[[ "$r" == '404 {"error":"not_found"'* ]] || bad+=("unknown endpoint: $r")
	r=$(curl -s -w ' %{http_code}' "$URL/channels/shop/orders")
	[[ "$r" == *" 405" ]] || bad+=("GET: $r")
	[ "$(rows)" = "$before" ] || bad+=("refused requests wrote $(($(rows) - before)) inbox rows")
	kill -0 "$RELAY" 2>/dev/null || bad+=("the receiver died")
	[ ${#bad[@]} -eq 0 ] && pass inbound-refusals || fail inbound-refusals "${bad[@]}"
}

# ---- database restart -------------------------------------------------------------
t_restart() {
	local bad=() r i
	order_body D-1 >"$work/d1.json"
	as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
	as_pg "${ORDERSYNC_PGBIN:-/usr/lib/postgresql/15/bin}/pg_ctl" -D "$cl/data" -m fast -w stop >/dev/null
	r=$(send one "$URL/channels/shop/orders" standard-webhooks "$ORDERSYNC_SHOP_SECRET" d-1 --body "$work/d1.json")
	[[ "$r" == '503 {"error":"unavailable"'* ]] || bad+=("database down: $r")
	as_pg "${ORDERSYNC_PGBIN:-/usr/lib/postgresql/15/bin}/pg_ctl" -D "$cl/data" -l "$cl/server.log" -w start >/dev/null
	for ((i = 0; i < 50; i++)); do
		r=$(send one "$URL/channels/shop/orders" standard-webhooks "$ORDERSYNC_SHOP_SECRET" d-1 --body "$work/d1.json")
		[[ "$r" == 200* ]] && break
		sleep 0.2
	done
	[[ "$r" == '200 {"status":"received"'* ]] || bad+=("database back: $r")
	wait_applied shop 10
	[ "$(sql "SELECT state FROM ordersync.inbox WHERE event_id = 'd-1'")" = applied ] || bad+=("d-1 not applied")
	[ ${#bad[@]} -eq 0 ] && pass inbound-restart || fail inbound-restart "${bad[@]}"
}

# ---- kill -9 under load ------------------------------------------------------------
t_kill9() {
	local bad=() sp got
	: >"$work/k9.ok"
	python3 "$inb/sender.py" storm "$URL/channels/shop" "$ORDERSYNC_SHOP_SECRET" --orders 200 \
		--channel-orders K --out "$work/k9.ok" --repeat 1 --threads 8 --retry >"$work/k9.out" 2>&1 &
	sp=$!
	pids+=("$sp")
	sleep 1.5
	kill -9 "$RELAY"
	wait "$RELAY" 2>/dev/null
	sleep 1
	start_receiver recv2 || bad+=("receiver did not restart")
	wait "$sp"
	wait_applied shop 30 || bad+=("rows still received or parked after 30 s")
	sort -u "$work/k9.ok" >"$work/k9.ids"
	[ "$(wc -l <"$work/k9.ids")" = 1000 ] || bad+=("$(wc -l <"$work/k9.ids") of 1000 webhooks answered 2xx in the end")
	sql "SELECT event_id FROM ordersync.inbox WHERE channel = 'shop' AND external_id LIKE 'K-%' AND state IN ('applied', 'stale')" | sort >"$work/k9.db"
	got=$(comm -23 "$work/k9.ids" "$work/k9.db" | wc -l)
	[ "$got" = 0 ] || bad+=("$got webhooks answered 2xx are not in the inbox applied: $(comm -23 "$work/k9.ids" "$work/k9.db" | head -3)")
	got=$(sql "SELECT count(*), count(*) FILTER (WHERE status = 'shipped') FROM ordersync.orders WHERE channel = 'shop' AND external_id LIKE 'K-%'")
	[ "$got" = "200|200" ] || bad+=("orders, shipped: $got (want 200|200)")
	grep -q "Killed\|answers" "$work/k9.out" && true
	[ ${#bad[@]} -eq 0 ] && pass inbound-kill9 || fail inbound-kill9 "${bad[@]}" "sender: $(cat "$work/k9.out")"
}

# ---- Shopify and WooCommerce ----------------------------------------------------------
t_platforms() {
	local bad=() r got
	r=$(send one "$URL/channels/shopify/orders" shopify "$ORDERSYNC_SHOPIFY_SECRET" "b3f1c3c4-0001" --topic orders/create --body "$inb/shopify_orders_create.json")
	[[ "$r" == '200 {"status":"received"'* ]] || bad+=("shopify orders/create: $r")
	r=$(send one "$URL/channels/shopify/orders" shopify "$ORDERSYNC_SHOPIFY_SECRET" "b3f1c3c4-0001" --topic orders/create --body "$inb/shopify_orders_create.json")
	[[ "$r" == '200 {"status":"duplicate"}' ]] || bad+=("shopify retry: $r")
	r=$(send one "$URL/channels/shopify/status" shopify "$ORDERSYNC_SHOPIFY_SECRET" "b3f1c3c4-0003" --topic orders/fulfilled --body "$inb/shopify_orders_fulfilled.json")
	[[ "$r" == 200* ]] || bad+=("shopify orders/fulfilled (before paid): $r")
	r=$(send one "$URL/channels/shopify/status" shopify "$ORDERSYNC_SHOPIFY_SECRET" "b3f1c3c4-0002" --topic orders/paid --body "$inb/shopify_orders_paid.json")
	[[ "$r" == 200* ]] || bad+=("shopify orders/paid: $r")
	r=$(send one "$URL/channels/shopify/orders" shopify "$ORDERSYNC_SHOPIFY_SECRET" "b3f1c3c4-0004" --topic orders/paid --body "$inb/shopify_orders_paid.json")
	[[ "$r" == '400 {"error":"wrong_topic"'* ]] || bad+=("shopify orders/paid to /orders: $r")
	r=$(send one "$URL/channels/shopify/orders" shopify "wrong" "b3f1c3c4-0005" --topic orders/create --body "$inb/shopify_orders_create.json")
	[[ "$r" == '401 '* ]] || bad+=("shopify wrong secret: $r")
	r=$(send one "$URL/channels/woo/orders" woocommerce "$ORDERSYNC_WOO_SECRET" "d-727-1" --topic order.created --body "$inb/woocommerce_order_created.json")
	[[ "$r" == '200 {"status":"received"'* ]] || bad+=("woocommerce order.created: $r")
	r=$(send one "$URL/channels/woo/status" woocommerce "$ORDERSYNC_WOO_SECRET" "d-727-2" --topic order.updated --body "$inb/woocommerce_order_updated.json")
	[[ "$r" == 200* ]] || bad+=("woocommerce order.updated: $r")
	printf 'webhook_id=17' >"$work/ping"
	r=$(curl -s -w ' %{http_code}' -X POST --data-binary @"$work/ping" "$URL/channels/woo/orders")
	[[ "$r" == *'"ping"'*" 200" ]] || bad+=("woocommerce ping: $r")
	wait_applied shopify 15 && wait_applied woo 15 || bad+=("not applied in 15 s")
	got=$(sql "SELECT external_id, status, total, lines->0->>'sku', customer->>'name', customer->>'email' FROM ordersync.orders WHERE channel IN ('shopify', 'woo') ORDER BY channel")
	[ "$got" = $'820982911946154508|fulfilling|398.00|IPOD2008PINK|John Smith|jon@example.com\n727|paid|18.00|WOO-SINGLE-1|John Doe|john.doe@example.com' ] ||
		bad+=("orders: $got")
	got=$(sql "SELECT event_id || ':' || state FROM ordersync.inbox WHERE channel IN ('shopify', 'woo') ORDER BY id" | tr '\n' ' ')
	[ "$got" = "b3f1c3c4-0001:applied b3f1c3c4-0003:applied b3f1c3c4-0002:applied d-727-1:applied d-727-2:applied " ] || bad+=("inbox: $got")
	[ ${#bad[@]} -eq 0 ] && pass inbound-platforms || fail inbound-platforms "${bad[@]}"
}

# ---- an order the stock cannot cover ---------------------------------------------------
t_failed() {
	local bad=() r got
	new_slot it_inbound_ev
	order_body X-1 SKU-FEW 5 >"$work/x1.json"
	r=$(send one "$URL/channels/shop/orders" standard-webhooks "$ORDERSYNC_SHOP_SECRET" x-1 --body "$work/x1.json")
	# applied in the transaction that kept it: the answer says what became of it
	[[ "$r" == '200 {"status":"received","inbox_id":'*',"state":"failed"}' ]] || bad+=("answer: $r")
	wait_applied shop 10
	got=$(sql "SELECT state, error FROM ordersync.inbox WHERE event_id = 'x-1'")
	[[ "$got" == 'failed|OS001: insufficient stock for SKU "SKU-FEW"'*'requested 5, available 1'* ]] || bad+=("row: $got")
	# the applier commits with synchronous_commit = off and a slot is read
	# only up to the flushed WAL: a commit of ours that writes WAL flushes
	# up to it (a message outside the prefix the slot is read with; a
	# transaction that only takes an xid writes no WAL and flushes nothing)
	sql "SELECT pg_catalog.pg_logical_emit_message(true, 'test-flush', '')" >/dev/null
	got=$(sql "SELECT count(*) FROM pg_logical_slot_get_changes('it_inbound_ev', NULL, NULL, 'format-version', '2', 'add-msg-prefixes', 'ordersync') g
		WHERE (g.data::jsonb->>'content')::jsonb->>'type' = 'order.import_failed'
		  AND ((g.data::jsonb->>'content')::jsonb #>> '{data,sqlstate}') = 'OS001'
		  AND ((g.data::jsonb->>'content')::jsonb #>> '{data,external_id}') = 'X-1'")
	[ "$got" = 1 ] || bad+=("order.import_failed events: $got")
	drop_slot it_inbound_ev
	[ ${#bad[@]} -eq 0 ] && pass inbound-failed || fail inbound-failed "${bad[@]}"
}

# ---- what the relay's role may do ----------------------------------------------------------
t_attacker() {
	local bad=() r
	as_relay() { psql -X -A -t -q -v ON_ERROR_STOP=1 "host=$cl port=$PORT user=ordersyncd_in dbname=postgres" -c "$1" 2>&1; }
	r=$(as_relay "INSERT INTO ordersync.inbox (channel, event_id, kind, format, external_id, payload) VALUES ('shop', 'a-1', 'order', 'ordersync', 'A-1', '{}')")
	[[ "$r" == *"permission denied"* ]] || bad+=("direct INSERT into the inbox: $r")
	r=$(as_relay "UPDATE ordersync.inbox SET state = 'received'")
	[[ "$r" == *"permission denied"* ]] || bad+=("UPDATE of the inbox: $r")
	r=$(as_relay "SELECT ordersync.place_order('shop', 'A-2', '[{\"sku\":\"SKU-IN\",\"qty\":1,\"price\":\"1.00\"}]')")
	[[ "$r" == *"permission denied"* ]] || bad+=("place_order: $r")
	r=$(as_relay "SELECT ordersync.set_status(1, 'cancelled')")
	[[ "$r" == *"permission denied"* ]] || bad+=("set_status: $r")
	r=$(as_relay "SELECT ordersync.set_channel_inbound('web', '{\"signature\":\"shopify\",\"secret_env\":\"ORDERSYNC_X\",\"format\":\"shopify\"}')")
	[[ "$r" == *"permission denied"* ]] || bad+=("set_channel_inbound: $r")
	r=$(as_relay "SELECT ordersync.inbox_receive('web', 'order', 'a-3', '{\"external_id\":\"A-3\",\"lines\":[]}')")
	[[ "$r" == *'channel "web" does not push webhooks'* ]] || bad+=("receive for a channel without inbound settings: $r")
	r=$(as_relay "SELECT * FROM ordersync.inbox_receive_apply('web', 'order', 'a-3', '{\"external_id\":\"A-3\",\"lines\":[]}')")
	[[ "$r" == *'channel "web" does not push webhooks'* ]] || bad+=("receive and apply for a channel without inbound settings: $r")
	r=$(as_relay "SELECT count(*) FROM ordersync.inbox")
	[[ "$r" == *"permission denied"* ]] || bad+=("reading the inbox (customer data): $r")
	r=$(as_relay "SELECT ordersync.reconcile('shop', '[]')")
	[[ "$r" == *"permission denied"* ]] || bad+=("reconcile: $r")
	# a body signed with channel other's secret, sent to channel shop
	order_body A-4 >"$work/a4.json"
	r=$(send one "$URL/channels/shop/orders" standard-webhooks "$ORDERSYNC_OTHER_SECRET" a-4 --body "$work/a4.json")
	[[ "$r" == '401 '* ]] || bad+=("body of another channel: $r")
	r=$(send one "$URL/channels/other/orders" standard-webhooks "$ORDERSYNC_OTHER_SECRET" a-4 --body "$work/a4.json")
	[[ "$r" == '200 '* ]] || bad+=("the same body to its own channel: $r")
	# a secret the prefix does not allow is never read
	sql "SELECT ordersync.add_channel('leak', '{}'); SELECT ordersync.set_channel_inbound('leak', '{\"signature\":\"standard-webhooks\",\"secret_env\":\"PGPASSWORD\",\"format\":\"ordersync\"}')" >/dev/null
	r=$(PGPASSWORD=whsec_AAAA send one "$URL/channels/leak/orders" standard-webhooks "whsec_AAAA" a-5 --body "$work/a4.json")
	[[ "$r" == '503 {"error":"secret_unavailable"'* ]] || bad+=("secret outside --secret-env-prefix: $r")
	[ ${#bad[@]} -eq 0 ] && pass inbound-attacker || fail inbound-attacker "${bad[@]}"
}

# ---- metrics -------------------------------------------------------------------------
t_metrics() {
	local m bad=()
	m=$(curl -s "http://127.0.0.1:$MPORT/metrics")
	grep -qE '^ordersyncd_inbound_received_total\{channel="shop"\} [1-9]' <<<"$m" || bad+=("received")
	grep -qE '^ordersyncd_inbound_duplicates_total\{channel="shopify"\} 1$' <<<"$m" || bad+=("duplicates")
	grep -qE '^ordersyncd_inbound_refused_total\{channel="shop",reason="bad_signature"\} [1-9]' <<<"$m" || bad+=("refused")
	grep -qE '^ordersyncd_inbound_applied_total [1-9]' <<<"$m" || bad+=("applied")
	grep -qE '^ordersyncd_inbound_failed_total ' <<<"$m" || bad+=("failed")
	[ ${#bad[@]} -eq 0 ] && pass inbound-metrics || fail inbound-metrics "missing: ${bad[*]}" "$(grep inbound <<<"$m")"
}

# ---- receiving and streaming in one process -----------------------------------------------
t_both() {
	local bad=() r i
	stop_receiver
	new_slot it_inbound_both
	sql "GRANT SELECT ON ordersync.sink, ordersync.route TO ordersyncd_in" >/dev/null 2>&1
	start_receiver both --slot=it_inbound_both --sink=file:"$work/both.jsonl" --status-interval=1 ||
		bad+=("did not start: $(tail -3 "$work/both.log")")
	order_body B-1 >"$work/b1.json"
	r=$(send one "$URL/channels/shop/orders" standard-webhooks "$ORDERSYNC_SHOP_SECRET" b-1 --body "$work/b1.json")
	[[ "$r" == 200* ]] || bad+=("answer: $r")
	for ((i = 0; i < 100; i++)); do
		grep -q '"external_id":"B-1"' "$work/both.jsonl" 2>/dev/null && break
		sleep 0.1
	done
	grep -q '"type":"ordersync.order.created".*"external_id":"B-1"' "$work/both.jsonl" 2>/dev/null ||
		bad+=("order.created of B-1 not streamed: $(tail -3 "$work/both.log")")
	stop_receiver
	[ "$WRC" = 0 ] || bad+=("exit $WRC on SIGTERM")
	[ ${#bad[@]} -eq 0 ] && pass inbound-both || fail inbound-both "${bad[@]}"
}

# ---- an extension before 0.8.0 -------------------------------------------------------------
t_before080() {
	local bad=() r i got
	stop_receiver
	sql "CREATE DATABASE it_inbound_070" >/dev/null
	psql -X -q -v ON_ERROR_STOP=1 -d it_inbound_070 >/dev/null <<'SQL' || bad+=("setup of 0.7.0 failed")
CREATE EXTENSION ordersync VERSION '0.7.0';
SELECT ordersync.add_location('main', 1);
SELECT ordersync.receive_stock('SKU-IN', 'main', 100);
SELECT ordersync.add_channel('shop', '{}');
SELECT ordersync.set_channel_inbound('shop', '{"signature": "standard-webhooks", "secret_env": "ORDERSYNC_SHOP_SECRET", "format": "ordersync"}');
SQL
	start_receiver old070 --dbname="host=$cl port=$PORT user=ordersyncd_in dbname=it_inbound_070" ||
		bad+=("did not start: $(tail -3 "$work/old070.log")")
	for i in 1 2; do
		order_body OLD-$i >"$work/old$i.json"
		r=$(send one "$URL/channels/shop/orders" standard-webhooks "$ORDERSYNC_SHOP_SECRET" old-$i --body "$work/old$i.json")
		[[ "$r" == '200 {"status":"received","inbox_id":'*',"state":"received"}' ]] || bad+=("answer $i: $r")
	done
	for ((i = 0; i < 100; i++)); do
		got=$(psql -X -A -t -q -d it_inbound_070 -c "SELECT count(*) FROM ordersync.inbox WHERE state = 'applied'")
		[ "$got" = 2 ] && break
		sleep 0.1
	done
	[ "$got" = 2 ] || bad+=("rows applied by the appliers: $got of 2")
	got=$(psql -X -A -t -q -d it_inbound_070 -c "SELECT count(*) FROM ordersync.orders WHERE external_id LIKE 'OLD-%'")
	[ "$got" = 2 ] || bad+=("orders: $got of 2")
	got=$(grep -c "has no ordersync.inbox_receive_apply() (before 0.8.0)" "$work/old070.log")
	[ "$got" = 1 ] || bad+=("the relay said $got times that the extension is older (want once)")
	stop_receiver
	sql "DROP DATABASE it_inbound_070" >/dev/null
	[ ${#bad[@]} -eq 0 ] && pass inbound-before080 || fail inbound-before080 "${bad[@]}"
}

for t in ${ONLY:-t_replay t_refusals t_restart t_kill9 t_platforms t_failed t_attacker t_metrics t_both t_before080}; do
	$t
done
[ $failures -eq 0 ]
