#!/usr/bin/env bash
# scripts/demo.sh — `make demo`: ordersync at work in under a minute.  Starts a
# throwaway PostgreSQL (port 25465, temp dir, removed on exit), runs a scripted
# flash sale — 25 concurrent buyers for 10 units split over 2 warehouses — then
# pays, ships and cancels orders, tries an illegal transition and a duplicate
# import, and shows stock, history and the domain events read from a wal2json
# slot created before the sale.  Exits non-zero when anything differs from
# what ordersync promises (e.g. not exactly 10 sold).  Then ordersyncd relays
# the events as CloudEvents, and routes order events to a signed webhook
# (port 25466), with a dead letter and its redelivery.  Last, it looks ahead:
# four weeks of synthetic hourly orders, the forecast of the last 24 hours
# made from what came before, drawn against what happened, and the slowest
# transition of the day.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
# ORDERSYNC_DEMO_PORT, ORDERSYNC_DEMO_HOOK_PORT: other ports than the fixed ones
PORT=${ORDERSYNC_DEMO_PORT:-25465}
HOOK_PORT=${ORDERSYNC_DEMO_HOOK_PORT:-25466}
SKU=SNEAKER-LTD
BUYERS=25
UNITS=10
GATE=4242			# advisory lock key the buyers queue behind

work=$(mktemp -d /tmp/ordersync-demo.XXXXXX)
chmod 0755 "$work"
relay_pid=
hook_pid=
cleanup() {
	if [ -n "$relay_pid" ]; then kill "$relay_pid" 2>/dev/null || true; fi
	if [ -n "$hook_pid" ]; then kill "$hook_pid" 2>/dev/null || true; fi
	"$top/scripts/cluster.sh" stop "$work/pg" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "DEMO FAILED: $*" >&2; exit 1; }
section() { printf '\n== %s\n' "$*"; }
# a query shown as a table / a single value
show() { psql -X -q -v ON_ERROR_STOP=1 -P footer=off -c "$1" | sed -e '/^$/d' -e 's/^/  /'; }
val() { psql -X -At -v ON_ERROR_STOP=1 -c "$1"; }
# a statement that must be refused: prints the error without the C source line
refused() {
	! psql -X -q -v VERBOSITY=verbose -c "$1" >/dev/null 2>"$work/err" ||
		fail "expected an error from: $1"
	grep -v '^LOCATION:' "$work/err" | sed 's/^/  /'
}
# the one-line order every buyer sends; a repeated import must send the same
order_lines='[{"sku": "'$SKU'", "qty": 1, "price": "149.00"}]'

# ---- the relay (src/relay): streams the same events as CloudEvents ---------
# Shown only when it is built and its --help answers; otherwise skipped.
relay_bin=$top/src/relay/ordersyncd
# the relay logs in as a role with only REPLICATION and ordersync_relay
relay_conn=
relay_usable() {
	# a here-string, not a pipe: grep -q stops reading early, and under
	# pipefail the help text's writer then fails with SIGPIPE
	[ -x "$relay_bin" ] && grep -q -- '--sink=stdout' <<<"$("$relay_bin" --help 2>&1)"
}
# relay_section EXPECTED: runs ordersyncd on its own slot until it has
# delivered the EXPECTED events (or 15 s), then stops it with SIGTERM.
relay_section() {
	local expected=$1 endpos rc=0 n=0
	relay_usable || return 0
	endpos=$(val "SELECT pg_current_wal_lsn()")
	section "9. The relay: ordersyncd --sink=stdout on its own slot (CloudEvents)"
	"$relay_bin" --dbname="$relay_conn" \
		--slot=demo_relay --sink=stdout --endpos="$endpos" --log-level=warning \
		>"$work/relay.out" 2>"$work/relay.err" &
	relay_pid=$!
	for _ in $(seq 150); do
		kill -0 "$relay_pid" 2>/dev/null || break
		n=$(wc -l <"$work/relay.out")
		[ "$n" -ge "$expected" ] && break
		sleep 0.1
	done
	kill -TERM "$relay_pid" 2>/dev/null || true
	wait "$relay_pid" || rc=$?
	relay_pid=
	n=$(wc -l <"$work/relay.out")
	jq -r '"  \(.id)  \(.type)  \(.subject)"' "$work/relay.out" 2>/dev/null | head -6 ||
		head -6 "$work/relay.out"
	[ "$n" -gt 6 ] && echo "  ... $((n - 6)) more; the order.cancelled envelope in full:"
	grep -m1 '"ordersync.order.cancelled"' "$work/relay.out" | sed 's/^/  /' || true
	if [ "$n" -ne "$expected" ] || [ "$rc" -ne 0 ]; then
		sed 's/^/  relay: /' "$work/relay.err" | tail -5
		fail "ordersyncd delivered $n events (expected $expected), exit status $rc"
	fi
	echo "  $n events relayed, ids <commit LSN>/<ordinal>: the same on a replay"
}

# sinks_section: routes order events to a signed webhook (a small receiver
# from test/integration), a refused event lands in dead letters and is
# redelivered after the receiver is fixed.
sinks_section() {
	local hook=$HOOK_PORT endpos n rc=0 dl
	relay_usable || return 0
	command -v python3 >/dev/null || return 0
	section "10. Routing: order events to the warehouse's webhook, signed, without personal data"
	mkdir -p "$work/ctl"
	echo "type=ordersync.order.cancelled 400" >"$work/ctl/reject"
	export ORDERSYNC_DEMO_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
	python3 "$top/test/integration/webhook_receiver.py" --port=$hook --secret="$ORDERSYNC_DEMO_WEBHOOK_SECRET" \
		--events="$work/hook.jsonl" --control="$work/ctl" --ready="$work/hook.ready" 2>"$work/hook.err" &
	hook_pid=$!
	for _ in $(seq 50); do [ -e "$work/hook.ready" ] && break; sleep 0.1; done
	val "SELECT pg_create_logical_replication_slot('demo_sinks', 'wal2json')" >/dev/null
	show "SELECT ordersync.add_sink('warehouse', 'http://127.0.0.1:$hook/hooks/orders',
	        '{\"secret_env\": \"ORDERSYNC_DEMO_WEBHOOK_SECRET\", \"drop_personal_data\": true, \"backoff_min_ms\": 50}') AS add_sink,
	        ordersync.add_route('warehouse', 'order.*') AS add_route"
	psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
SELECT ordersync.receive_stock('$SKU', 'berlin', 2);
SELECT ordersync.set_status(ordersync.place_order('web', 'W-1', '$order_lines', '{"name": "Ada", "email": "ada@example.com"}'), 'paid');
SELECT ordersync.set_status(ordersync.place_order('web', 'W-2', '$order_lines', '{"name": "Bob"}'), 'cancelled', 'demo');
SQL
	endpos=$(val "SELECT pg_current_wal_lsn()")
	"$relay_bin" --dbname="$relay_conn" \
		--slot=demo_sinks --endpos="$endpos" --log-level=warning 2>"$work/sinks.err" || rc=$?
	[ "$rc" -eq 0 ] || { sed 's/^/  relay: /' "$work/sinks.err" | tail -5; fail "ordersyncd exited $rc"; }
	echo "  the receiver checked every signature and got:"
	python3 -c 'import json, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    print("  %-24s %-10s customer in data: %s" % (e["type"], e["subject"], "customer" in e["data"]))' "$work/hook.jsonl"
	echo "  it refused the cancellation (HTTP 400), which is kept as a dead letter:"
	show "SELECT id, sink, type, subject, left(error, 60) AS error FROM ordersync.dead_letter"
	n=$(wc -l <"$work/hook.jsonl")
	[ "$n" -eq 3 ] || fail "the webhook got $n events, expected 3 (2 x order.created, order.paid)"
	rm -f "$work/ctl/reject"
	dl=$(val "SELECT max(id) FROM ordersync.dead_letter")
	echo "  the receiver is fixed; SELECT ordersync.redeliver($dl) sends it again through the stream:"
	val "SELECT ordersync.redeliver($dl)" >/dev/null
	endpos=$(val "SELECT pg_current_wal_lsn()")
	"$relay_bin" --dbname="$relay_conn" \
		--slot=demo_sinks --endpos="$endpos" --log-level=warning 2>>"$work/sinks.err" || rc=$?
	tail -1 "$work/hook.jsonl" | python3 -c 'import json, sys; e = json.loads(sys.stdin.read()); print("  %-24s %-10s id %s" % (e["type"], e["subject"], e["id"]))'
	grep -q '"ordersync.order.cancelled"' "$work/hook.jsonl" || fail "the redelivered event did not arrive"
	kill "$hook_pid" 2>/dev/null || true
	wait "$hook_pid" 2>/dev/null || true
}

# ---- looking ahead (issue 13): the next 24 hours' orders, forecast from
# four weeks of hourly history, against what happened; and where orders wait
forecast_section() {
	local base
	section "12. Looking ahead: yesterday's forecast of the last 24 hours against what happened"
	psql -X -q -v ON_ERROR_STOP=1 -v channel=web -f "$top/bench/analytics/demo_history.sql" >/dev/null ||
		fail "cannot write the synthetic history"
	val "SELECT ordersync.refresh_rollups()" >/dev/null
	echo "  $(val "SELECT count(*) FROM ordersync.orders WHERE external_id LIKE 'SYN-%'") orders over four weeks (synthetic, hourly cycle, busier weekends) + the sale above;"
	echo "  forecast(orders per hour up to 24 h ago, season 24, horizon 24, level 0.8) vs the rollup's counts:"
	base=$(val "SELECT date_trunc('hour', now()) - interval '23 hours'")
	psql -X -q -At -v ON_ERROR_STOP=1 >"$work/forecast" <<SQL
CREATE TEMP TABLE fc AS
WITH hrs AS (
	SELECT g AS hour FROM generate_series(timestamptz '$base' - interval '27 days', timestamptz '$base' + interval '23 hours', interval '1 hour') g
), cnt AS (
	SELECT hrs.hour, coalesce(sum(r.orders), 0)::float8 AS n
	  FROM hrs LEFT JOIN ordersync.rollup_hourly r ON r.hour = hrs.hour AND r.channel = 'web'
	 GROUP BY 1
), f AS (
	SELECT f.* FROM ordersync.forecast((SELECT array_agg(n ORDER BY hour) FROM cnt WHERE hour < '$base'), 24, 24, 0.8) f
)
SELECT c.hour, c.n AS actual, f.value AS forecast, greatest(f.lower, 0) AS lower, f.upper
  FROM (SELECT cnt.*, row_number() OVER (ORDER BY hour) AS step FROM cnt WHERE hour >= '$base') c
  JOIN f ON f.step = c.step;
-- one line per hour: the actual orders as a bar, the forecast as a mark
WITH s AS (SELECT 44 / greatest(max(greatest(actual, upper)), 1) AS k FROM fc)
SELECT format('  %s  %s %4s  %5s [%s-%s]%s', to_char(hour, 'HH24:00'),
	   (SELECT string_agg(CASE WHEN i = greatest(1, round(forecast * s.k)::int) THEN '┃'
							   WHEN i <= round(actual * s.k) THEN '█' ELSE ' ' END, '' ORDER BY i)
		  FROM generate_series(1, 45) i),
	   actual, round(forecast::numeric, 1), round(lower::numeric), round(upper::numeric),
	   CASE WHEN hour = date_trunc('hour', now()) THEN '  (this hour, so far)' ELSE '' END)
  FROM fc, s ORDER BY hour;
-- sparklines, and how good it was (the current hour is not over: left out)
WITH m AS (SELECT greatest(max(actual), max(forecast)) AS top FROM fc),
sp AS (SELECT string_agg(substr('▁▂▃▄▅▆▇█', 1 + least(7, floor(forecast / m.top * 8)::int), 1), '' ORDER BY hour) AS f,
			  string_agg(substr('▁▂▃▄▅▆▇█', 1 + least(7, floor(actual / m.top * 8)::int), 1), '' ORDER BY hour) AS a
		 FROM fc, m)
SELECT format(E'\n  forecast %s\n  actual   %s', f, a) FROM sp;
SELECT format('  over the 23 complete hours: mean absolute error %s orders/hour (mean %s), %s of 23 inside the 80%% interval',
			  round(avg(abs(actual - forecast))::numeric, 1), round(avg(actual)::numeric, 1),
			  count(*) FILTER (WHERE actual BETWEEN lower AND upper))
  FROM fc WHERE hour < date_trunc('hour', now());
SQL
	[ "$(grep -c ' \[' "$work/forecast")" -eq 24 ] || { cat "$work/forecast"; fail "the forecast did not give 24 hours"; }
	echo "  hour   orders (█ actual, ┃ forecast)                 actual  forecast [80%]"
	cat "$work/forecast"

	section "13. Where orders wait: the slowest transition of the last day (status_times, from the rollups)"
	show "SELECT from_status || ' -> ' || to_status AS transition, location, transitions,
	             date_trunc('second', p50) AS p50, date_trunc('second', p95) AS p95, date_trunc('second', p99) AS p99
	        FROM ordersync.status_times(now() - interval '1 day', now())
	       WHERE channel = 'web' ORDER BY p95 DESC, transitions DESC LIMIT 3"
	slow=$(val "SELECT from_status || ' -> ' || to_status || ' at ' || location FROM ordersync.status_times(now() - interval '1 day', now())
	             WHERE channel = 'web' ORDER BY p95 DESC, transitions DESC LIMIT 1")
	[ -n "$slow" ] || fail "status_times() found no transition"
	echo "  slowest: $slow (p95 within 4.5%, from per-day histograms kept by the rollup refresh)"
	show "SELECT day, channel, created, paid, shipped, delivered, cancelled, expired, paid_rate, cancellation_rate
	        FROM ordersync.funnel WHERE channel = 'web' ORDER BY day DESC LIMIT 3"
}

section "1. A throwaway PostgreSQL 15 on port $PORT, with the extension"
"$top/scripts/cluster.sh" start "$work/pg" "$PORT" ||
	fail "cannot start PostgreSQL (is port $PORT in use?)"
eval "$("$top/scripts/cluster.sh" env "$work/pg" "$PORT")"
export PGHOST PGPORT PGUSER PGDATABASE
# created before anything happens: the slots see every event from here on
# (the relay, when there is one, gets a slot of its own)
slots="'demo'"
relay_usable && slots="'demo', 'demo_relay'"
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE EXTENSION ordersync;
SELECT pg_create_logical_replication_slot(s, 'wal2json') FROM unnest(array[$slots]) s;
SELECT ordersync.add_location('berlin', 10), ordersync.add_location('hamburg', 5);
SELECT ordersync.receive_stock('$SKU', 'berlin', 6), ordersync.receive_stock('$SKU', 'hamburg', 4);
SQL
echo "  CREATE EXTENSION ordersync; wal2json slot 'demo' created before the sale"
echo "  $SKU: 6 units in berlin (allocated first), 4 in hamburg"

section "2. Flash sale: $BUYERS buyers, $BUYERS concurrent sessions, 1 unit each"
# The gate holds an advisory lock until all buyers are connected and queued
# on it, so their place_order() calls really start together.
psql -X -q -c "SELECT pg_advisory_lock($GATE)" \
	-c "DO \$\$ BEGIN FOR i IN 1..400 LOOP
	      EXIT WHEN (SELECT count(*) FROM pg_catalog.pg_locks
	                  WHERE locktype = 'advisory' AND objid = $GATE AND NOT granted) >= $BUYERS;
	      PERFORM pg_sleep(0.025);
	    END LOOP; END \$\$" >/dev/null &
gate=$!
for _ in $(seq 100); do
	[ "$(val "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $GATE")" = 1 ] && break
	sleep 0.05
done
pids=()
for i in $(seq -w 1 "$BUYERS"); do
	timeout 30 psql -X -At -v VERBOSITY=verbose \
		-c "SELECT pg_advisory_lock_shared($GATE)" \
		-c "SELECT ordersync.place_order('web', 'FS-$i', '$order_lines', '{\"name\": \"Buyer $i\"}')" \
		>"$work/buyer.$i.out" 2>"$work/buyer.$i.err" &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
wait "$gate" || fail "the gate session failed"

sold=$(cat "$work"/buyer.*.out | grep -cE '^[0-9]+$' || true)
refused_n=$(grep -l '^ERROR:  OS001:' "$work"/buyer.*.err | wc -l)
echo "  $sold orders placed, $refused_n buyers refused with OS001; one refusal in full:"
grep -h -v '^LOCATION:' "$(grep -l '^ERROR:  OS001:' "$work"/buyer.*.err | head -1)" | sed 's/^/    /'
[ "$sold" -eq "$UNITS" ] || fail "$sold orders placed, expected exactly $UNITS"
[ "$refused_n" -eq $((BUYERS - UNITS)) ] ||
	{ cat "$work"/buyer.*.err >&2; fail "$refused_n OS001 refusals, expected $((BUYERS - UNITS))"; }
show "SELECT location, count(*) AS orders, sum(qty) AS units FROM ordersync.reservation GROUP BY 1 ORDER BY 1"
mapfile -t ids < <(val "SELECT id FROM ordersync.orders ORDER BY id")

section "3. Payment and shipping (actor 'payment-service', then 'warehouse')"
for id in "${ids[@]:0:4}"; do
	PGOPTIONS="-c ordersync.actor=payment-service" \
		val "SELECT ordersync.set_status($id, 'paid', 'payment captured')" >/dev/null
done
PGOPTIONS="-c ordersync.actor=warehouse" val "
	SELECT ordersync.set_status(${ids[0]}, 'fulfilling', 'picking');
	SELECT ordersync.set_status(${ids[0]}, 'shipped', 'DHL 00340434161094042557');" >/dev/null
paid=$(IFS=,; echo "${ids[*]:0:4}")
echo "  orders ${paid//,/, } paid; order ${ids[0]} shipped (its unit left on hand)"

section "4. A pending order is cancelled: its unit goes back on sale"
before=$(val "SELECT ordersync.available('$SKU')")
val "SELECT ordersync.set_status(${ids[4]}, 'cancelled', 'customer changed their mind')" >/dev/null
after=$(val "SELECT ordersync.available('$SKU')")
echo "  available $SKU: $before before cancelling order ${ids[4]}, $after after"
[ "$after" -eq $((before + 1)) ] || fail "cancelling did not release exactly 1 unit"

section "5. An illegal transition is refused, by any client (plain UPDATE)"
echo "  UPDATE ordersync.orders SET status = 'shipped' WHERE id = ${ids[5]};  -- still pending"
refused "UPDATE ordersync.orders SET status = 'shipped' WHERE id = ${ids[5]}"
grep -q '^ERROR:  OS002:' "$work/err" || fail "expected SQLSTATE OS002"
[ "$(val "SELECT status FROM ordersync.orders WHERE id = ${ids[5]}")" = pending ] ||
	fail "the refused UPDATE changed the order"

section "6. The channel sends an order again: same id, nothing reserved twice"
ext=$(val "SELECT external_id FROM ordersync.orders WHERE id = ${ids[2]}")
again=$(val "SELECT ordersync.place_order('web', '$ext', '$order_lines', '{\"name\": \"Buyer ${ext#FS-}\"}')")
echo "  place_order('web', '$ext', ...) again -> order $again (first import: ${ids[2]})"
[ "$again" = "${ids[2]}" ] || fail "re-import returned $again, expected ${ids[2]}"

section "7. Stock and history"
show "SELECT sku, location, sum(on_hand) AS on_hand, sum(reserved) AS reserved, sum(safety) AS safety,
             sum(on_hand - reserved - safety) AS available
        FROM ordersync.stock GROUP BY 1, 2 ORDER BY 1, 2"
bad=$(val "SELECT count(*) FROM (SELECT sku, location, sum(reserved) AS reserved,
               bool_and(reserved <= on_hand AND least(on_hand, reserved, safety) >= 0) AS ok
               FROM ordersync.stock GROUP BY 1, 2) s  -- over the buckets of a hot SKU
             WHERE NOT ok OR reserved <> (SELECT coalesce(sum(qty), 0) FROM ordersync.reservation r
               WHERE r.sku = s.sku AND r.location = s.location AND state = 'held')")
[ "$bad" -eq 0 ] || fail "stock invariants violated on $bad rows"
echo "  invariants OK: reserved = held reservations, reserved <= on_hand, nothing negative"
echo
show "SELECT to_char(at, 'HH24:MI:SS.MS') AS at, action, order_id AS order,
             CASE WHEN action = 'status' THEN from_status || ' -> ' || to_status END AS status,
             location, qty, actor, reason
        FROM ordersync.history WHERE order_id IN (${ids[0]}, ${ids[4]}) ORDER BY order_id, id"

section "8. Domain events, decoded from the slot (wal2json, prefix 'ordersync')"
psql -X -At -v ON_ERROR_STOP=1 >"$work/events" <<'SQL'
SELECT format('%-22s %-17s %s', e->>'type', e->>'subject',
       CASE WHEN e->>'type' LIKE 'order.%'
            THEN concat_ws(' ', 'status=' || (e->'data'->>'status'), 'total=' || (e->'data'->>'total'),
                           'reason="' || (e->'data'->>'reason') || '"')
            ELSE concat_ws(' ', 'location=' || (e->'data'->>'location'), 'qty=' || (e->'data'->>'qty'),
                           'on_hand=' || (e->'data'->>'on_hand'), 'available=' || (e->'data'->>'available'))
            END)
  FROM (SELECT (data::jsonb->>'content')::jsonb AS e
          FROM pg_logical_slot_get_changes('demo', NULL, NULL, 'format-version', '2',
                                           'add-msg-prefixes', 'ordersync')
         WHERE data::jsonb->>'action' = 'M') m;
SQL
sed 's/^/  /' "$work/events"
nevents=$(wc -l <"$work/events")
created=$(grep -c '^order.created ' "$work/events" || true)
reserved=$(grep -c '^inventory.reserved ' "$work/events" || true)
echo "  $nevents events, in commit order; the $((BUYERS - UNITS)) refused purchases rolled back and left none"
[ "$created" -eq "$UNITS" ] && [ "$reserved" -eq "$UNITS" ] ||
	fail "expected $UNITS order.created and $UNITS inventory.reserved events, got $created and $reserved"

val "CREATE ROLE ordersyncd LOGIN REPLICATION IN ROLE ordersync_relay" >/dev/null
relay_conn="host=$PGHOST port=$PGPORT user=ordersyncd dbname=$PGDATABASE"
relay_section "$nevents"
sinks_section

section "11. Only ordersync speaks for ordersync: a forged order.paid is refused"
val "CREATE ROLE mallory LOGIN" >/dev/null
echo "  SELECT pg_logical_emit_message(true, 'ordersync', '{\"type\":\"order.paid\",...}')  -- as a role with no grants:"
if psql -X -q "host=$PGHOST port=$PGPORT user=mallory dbname=$PGDATABASE" \
	-c "SELECT pg_logical_emit_message(true, 'ordersync', '{\"type\":\"order.paid\",\"subject\":\"order/1\",\"data\":{}}')" \
	>/dev/null 2>"$work/forge.err"; then
	fail "a role with no grants could write an ordersync message"
fi
sed 's/^/  /' "$work/forge.err"
echo "  (the relay also refuses to run where anyone but superusers could: ordersyncd checks at connect)"

forecast_section

echo
echo "demo OK: $UNITS of $BUYERS buyers served, no unit oversold; the cluster is removed now."
