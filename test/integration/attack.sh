#!/usr/bin/env bash
# test/integration/attack.sh — who may make ordersync speak: an attacker
# suite against a running ordersyncd with real sinks (webhook receivers, a
# file), on a real PostgreSQL 15 with the extension.
#
# Roles: mallory (a login with no grants), shop (ordersync_app), ops
# (ordersync_admin) and relay (REPLICATION + ordersync_relay, which is all
# the relay runs with). Each tries what the security issue lists: forging
# domain events, steering the relay with forged messages or rows, reaching
# the relay host's OS through sink options, leaking personal data past a
# sink that must not get it, reading internal services through dead
# letters, secrets in URLs. Every attempt must fail, the relay must keep
# running, and the shop's real events must still arrive complete and in
# order at every sink.
#
# Prints "PASS: integration/attack_<name>" / "FAIL: ..." per test; exits
# non-zero on any failure. Must run as root. Ports 25490 (PostgreSQL),
# 25491-25495 (receivers, metrics). ORDERSYNCD may point at the binary.
set -uo pipefail

. "$(dirname "$0")/lib.sh"
it_init attack 25490
export ORDERSYNC_WH_SECRET='whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
marker="$work/pwned"
out="$work/events.jsonl"

# psql as ROLE; prints what it printed, errors included
as() {
	local role=$1
	shift
	psql -X -A -t -q -v ON_ERROR_STOP=1 "host=$cl port=$PORT dbname=postgres user=$role" -c "$1" 2>&1
}
# until CMD succeeds, for at most SECS
wait_for() {
	local secs=$1 i
	shift
	for ((i = 0; i < secs * 10; i++)); do
		eval "$1" && return 0
		sleep 0.1
	done
	return 1
}
alive() { kill -0 "$RELAY" 2>/dev/null; }
metric() { curl -s "http://127.0.0.1:25493/metrics" | grep -E "^$1" | awk '{print $2}' | head -1; }

if ! psql -X -q -v ON_ERROR_STOP=1 >"$work/setup.log" 2>&1 <<SQL
CREATE EXTENSION ordersync;
CREATE ROLE mallory LOGIN;
CREATE ROLE shop LOGIN IN ROLE ordersync_app;
CREATE ROLE ops LOGIN IN ROLE ordersync_admin;
CREATE ROLE relay LOGIN REPLICATION IN ROLE ordersync_relay;
SQL
then
	cat "$work/setup.log"
	echo "FAIL: integration/attack-setup"
	exit 1
fi
# the shop's orders: the shared producer, run by the shop's own role
if ! it_producer >>"$work/setup.log" 2>&1 ||
	! sql "GRANT EXECUTE ON PROCEDURE public.it_orders(text, int, int, int, int, boolean) TO shop" >>"$work/setup.log" 2>&1; then
	cat "$work/setup.log"
	echo "FAIL: integration/attack-setup (producer)"
	exit 1
fi
# the admin wires the shop's systems, the legitimate way
if ! as ops "SELECT ordersync.add_sink('warehouse', 'http://127.0.0.1:25491/hook', '{\"secret_env\": \"ORDERSYNC_WH_SECRET\"}');
			 SELECT ordersync.add_route('warehouse', 'order.*');
			 SELECT ordersync.add_sink('purchasing', 'http://127.0.0.1:25492/hook', '{\"drop_personal_data\": true}');
			 SELECT ordersync.add_route('purchasing', '*');" >"$work/sinks.log"; then
	cat "$work/sinks.log"
	echo "FAIL: integration/attack-setup (sinks)"
	exit 1
fi
recv_start warehouse 25491 "$ORDERSYNC_WH_SECRET" || exit 1
recv_start purchasing 25492 "" || exit 1
recv_start cli 25495 "" || exit 1
# an internal service that answers with more than anyone should read
python3 - 25494 >"$work/internal.log" 2>&1 <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = ("INTERNAL-CREDENTIALS " + "aws_secret_access_key=AKIA0123456789SECRET " * 40).encode()
        self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
pids+=("$!")

RCONN="host=$cl port=$PORT dbname=postgres user=relay"
"$ORDERSYNCD" --dbname="$RCONN" --slot=attack --create-slot --raw-changes \
	--sink=file:"$out" --sink='http://127.0.0.1:25495/cli?token=SUPERSECRET-TOKEN&x=1' \
	--metrics-addr=127.0.0.1:25493 --status-interval=1 >>"$work/relay.out" 2>>"$work/relay.log" &
RELAY=$!
pids+=("$RELAY")
wait_for 15 "grep -qs 'streaming from slot' '$work/relay.log'" || {
	tail -20 "$work/relay.log"
	echo "FAIL: integration/attack-setup (the relay did not start as the ordersync_relay role)"
	exit 1
}
start=$(cur_lsn)
as shop "CALL public.it_orders('A', 20)" >/dev/null

# ---- 1. forging domain events ----------------------------------------------
t_forge() {
	local name=attack_forged_events_refused_for_every_role r res bad=""
	for r in mallory shop ops relay; do
		res=$(as $r "SELECT pg_logical_emit_message(true, 'ordersync', '{\"type\":\"order.paid\",\"subject\":\"order/999999\",\"data\":{}}')")
		grep -q 'permission denied for function pg_logical_emit_message' <<<"$res" || bad+=" $r(text): $res"
		res=$(as $r "SELECT pg_logical_emit_message(true, 'ordersync', convert_to('{\"type\":\"order.paid\",\"subject\":\"order/999999\",\"data\":{}}', 'UTF8'))")
		grep -q 'permission denied for function pg_logical_emit_message' <<<"$res" || bad+=" $r(bytea): $res"
	done
	if [ -z "$bad" ]; then pass $name; else fail $name "$bad"; fi
}

# ---- 2. steering the relay through its tables -------------------------------
t_tables() {
	local name=attack_config_tables_refused bad="" r res
	for r in mallory shop ops relay; do
		res=$(as $r "INSERT INTO ordersync.sink (name, uri) VALUES ('evil', 'http://127.0.0.1:25494/')")
		grep -q 'permission denied' <<<"$res" || bad+=" $r insert sink: $res;"
		res=$(as $r "INSERT INTO ordersync.redelivery (dead_letter_id, sink, event) VALUES (1, 'warehouse', '{}')")
		grep -q 'permission denied' <<<"$res" || bad+=" $r insert redelivery: $res;"
	done
	for r in mallory shop relay; do
		res=$(as $r "SELECT ordersync.add_sink('evil', 'http://127.0.0.1:25494/')")
		grep -q 'permission denied' <<<"$res" || bad+=" $r add_sink: $res;"
	done
	for r in mallory shop ops; do
		res=$(as $r "SELECT ordersync.record_dead_letter('warehouse', '{\"id\":\"0/1/1\",\"type\":\"ordersync.order.paid\",\"subject\":\"order/1\"}', 'x', 1)")
		grep -q 'permission denied' <<<"$res" || bad+=" $r record_dead_letter: $res;"
	done
	res=$(as relay "SELECT ordersync.place_order('web', 'R-1', '[{\"sku\":\"SKU-1\",\"qty\":1,\"price\":\"1.00\"}]')")
	grep -q 'permission denied' <<<"$res" || bad+=" relay place_order: $res;"
	if [ -z "$bad" ]; then pass $name; else fail $name "$bad"; fi
}

# ---- 3. forged control messages (as if emit had been granted) --------------
# A superuser stands in for a role that was wrongly granted EXECUTE: the
# relay must not obey, crash or deliver them as events.
t_forged_control() {
	local name=attack_forged_control_messages_steer_nothing before res
	before=$(metric ordersyncd_forged_messages_total)
	sql "SELECT pg_logical_emit_message(true, 'ordersync', '{\"type\":\"relay.config\",\"subject\":\"relay/config\",\"data\":{\"sinks\":[{\"name\":\"evil\",\"uri\":\"http://127.0.0.1:25494/\",\"options\":{}}],\"routes\":[{\"sink\":\"evil\",\"pattern\":\"*\"}]}}')" >/dev/null
	sql "SELECT pg_logical_emit_message(true, 'ordersync', '{\"type\":\"relay.config\",\"subject\":\"relay/config\",\"data\":{\"sinks\":[{\"name\":\"x\",\"uri\":null}],\"routes\":[]}}')" >/dev/null
	sql "SELECT pg_logical_emit_message(true, 'ordersync', '{\"type\":\"relay.redeliver\",\"subject\":\"order/1\",\"data\":{\"dead_letter_id\":1,\"sink\":\"warehouse\",\"event\":{\"id\":\"0/FORGED/1\",\"type\":\"ordersync.order.paid\",\"subject\":\"order/1\",\"data\":{}}}}')" >/dev/null
	as shop "CALL public.it_orders('B', 3)" >/dev/null
	wait_for 20 "[ \$(grep -c 'ordersync.relay.invalid' '$out') -ge 3 ] && grep -q '\"B-3\"' '$out'"
	res=$(metric ordersyncd_forged_messages_total)
	if alive && [ "$(grep -c 'ordersync.relay.invalid' "$out")" -ge 3 ] &&
		! grep -q 'ordersync.relay.config' "$out" && ! grep -q 'FORGED' "$work/warehouse.events" &&
		! grep -q 'sink "evil"' "$work/relay.log" && [ -z "$(grep -v '^$' "$work/internal.log")" ] &&
		[ "${res:-0}" -ge $((${before:-0} + 3)) ]; then
		pass $name
	else
		fail $name "alive=$(alive && echo y) invalid=$(grep -c 'ordersync.relay.invalid' "$out") forged metric $before -> $res" \
			"$(grep -i 'evil\|forged' "$work/relay.log" | tail -3)"
	fi
}

# ---- 4. an admin reaching for the relay host's OS ---------------------------
t_admin_os() {
	local name=attack_admin_cannot_reach_the_os bad="" res opt
	for opt in '{"kafka": {"sasl.kerberos.kinit.cmd": "touch '"$marker"'"}}' \
		'{"kafka": {"plugin.library.paths": "/tmp/evil.so"}}' \
		'{"kafka": {"sasl.mechanism": "GSSAPI"}}' \
		'{"kafka": {"ssl.ca.location": "/etc/shadow"}}' \
		'{"kafka": {"enable.idempotence": false}}'; do
		res=$(as ops "SELECT ordersync.add_sink('k', 'kafka://127.0.0.1:25499/t', '$opt')")
		grep -q 'OS006\|not allowed\|refus\|unknown\|invalid\|overrides' <<<"$res" || bad+=" add_sink kafka $opt: $res;"
	done
	res=$(as ops "SELECT ordersync.add_sink('meta', 'http://169.254.169.254/latest/meta-data')")
	grep -q 'ERROR' <<<"$res" || bad+=" link-local: $res;"
	res=$(as ops "SELECT ordersync.add_sink('tok', 'https://hooks.example.com/x?token=abc')")
	grep -q 'ERROR' <<<"$res" || bad+=" token in query: $res;"
	# the same, written straight into the table by a superuser (past add_sink's checks):
	# the relay refuses them itself, keeps running, and dead-letters what is routed there
	sql "INSERT INTO ordersync.sink (name, uri, options) VALUES
		 ('kinit', 'kafka://127.0.0.1:25499/t', '{\"kafka\": {\"sasl.kerberos.kinit.cmd\": \"touch $marker\", \"sasl.mechanism\": \"GSSAPI\", \"security.protocol\": \"sasl_plaintext\"}}'),
		 ('plugin', 'kafka://127.0.0.1:25499/t', '{\"kafka\": {\"plugin.library.paths\": \"$work/evil.so\"}}'),
		 ('envpw', 'amqp://u@127.0.0.1:25499/%2f?exchange=e', '{\"password_env\": \"HOME\"}'),
		 ('filepw', 'amqp://u@127.0.0.1:25499/%2f?exchange=e', '{\"password_file\": \"/etc/shadow\"}'),
		 ('meta', 'http://169.254.169.254/latest/meta-data', '{}'),
		 ('noverify', 'amqps://u@127.0.0.1:25499/%2f?exchange=e', '{\"verify_peer\": false, \"password_env\": \"ORDERSYNC_WH_SECRET\"}'),
		 ('cleartext', 'http://192.0.2.10/hook', '{}');
		 INSERT INTO ordersync.route (sink, pattern) SELECT s, 'order.paid'
		 FROM unnest(ARRAY['kinit','plugin','envpw','filepw','meta','noverify','cleartext']) s" >/dev/null
	as shop "CALL public.it_orders('C', 2)" >/dev/null
	wait_for 30 "[ \$(sql \"SELECT count(DISTINCT sink) FROM ordersync.dead_letter WHERE sink IN ('kinit','plugin','envpw','filepw','meta','noverify','cleartext')\") = 7 ]"
	res=$(sql "SELECT string_agg(DISTINCT sink, ',' ORDER BY sink) FROM ordersync.dead_letter WHERE sink IN ('kinit','plugin','envpw','filepw','meta','noverify','cleartext')")
	sleep 1
	if alive && [ ! -e "$marker" ] && [ -z "$bad" ] && [ "$res" = "cleartext,envpw,filepw,kinit,meta,noverify,plugin" ]; then
		pass $name
	else
		fail $name "alive=$(alive && echo y) marker=$([ -e "$marker" ] && echo EXISTS) dead letters for: $res" "$bad" \
			"$(grep -E 'kinit|plugin|envpw|filepw|meta|noverify|cleartext' "$work/relay.log" | tail -7)"
	fi
	sql "DELETE FROM ordersync.sink WHERE name IN ('kinit','plugin','envpw','filepw','meta','noverify','cleartext')" >/dev/null
}

# ---- 5. personal data past a sink that must not get it ----------------------
t_pii() {
	local name=attack_personal_data_filter_fails_closed bad="" res deep id
	deep=$(python3 -c 'print("{\"a\":" * 30 + "\"Secret Deep\"" + "}" * 30)')
	res=$(as shop "SELECT ordersync.place_order('web', 'D-1', '[{\"sku\":\"SKU-1\",\"qty\":1,\"price\":\"1.00\"}]', '$deep')")
	grep -q 'nested too deeply' <<<"$res" || bad+=" deep customer accepted: $res;"
	res=$(as shop "SELECT ordersync.place_order('web', 'D-2', '[{\"sku\":\"SKU-1\",\"qty\":1,\"price\":\"1.00\"}]', jsonb_build_object('name', repeat('x', 20000)))")
	grep -q 'too large' <<<"$res" || bad+=" 20 kB customer accepted: $res;"
	res=$(as shop "SELECT ordersync.receive_stock(E'SKU-\\u202Eevil', 'main', 1)")
	grep -q 'ERROR' <<<"$res" || bad+=" SKU with a right-to-left override: $res;"
	# an event the filter cannot read (deeper than it parses) must not reach purchasing
	deep=$(python3 -c 'print("[" * 100 + "]" * 100)')
	sql "SELECT pg_logical_emit_message(true, 'ordersync', '{\"type\":\"order.paid\",\"subject\":\"order/424242\",\"data\":{\"order_id\":424242,\"customer\":{\"name\":\"Secret Deep\",\"x\":$deep}}}')" >/dev/null
	wait_for 20 "[ \"\$(sql \"SELECT count(*) FROM ordersync.dead_letter WHERE sink = 'purchasing' AND subject = 'order/424242'\")\" = 1 ]"
	res=$(sql "SELECT count(*) FROM ordersync.dead_letter WHERE sink = 'purchasing' AND subject = 'order/424242'")
	[ "$res" = 1 ] || bad+=" no dead letter for the unfilterable event ($res);"
	grep -q 'Secret Deep' "$work/purchasing.events" && bad+=" purchasing got it;"
	grep -q 'Secret Customer\|Hiddenville' "$work/purchasing.events" && bad+=" purchasing got customer data;"
	res=$(metric 'ordersyncd_personal_data_unfiltered_total\{sink="purchasing"\}')
	[ "${res:-0}" -ge 1 ] || bad+=" metric $res;"
	# the warehouse (no filter) did get the customer, so the data was there to leak
	grep -q 'Secret Customer' "$work/warehouse.events" || bad+=" warehouse got no customer data (test is void);"
	if alive && [ -z "$bad" ]; then pass $name; else fail $name "$bad"; fi
}

# ---- 6. raw changes: no personal data for the filtered sink, no control rows --
t_raw() {
	local name=attack_raw_changes_filtered_and_no_control_rows bad=""
	grep -q '"type":"ordersync.row.orders.insert"' "$out" || bad+=" no raw order rows in the file (test is void);"
	grep -q '"type":"ordersync.row.orders.insert"' "$work/purchasing.events" || bad+=" purchasing got no raw rows;"
	grep '"type":"ordersync.row.' "$work/purchasing.events" | grep -q '"customer"' && bad+=" a raw row with customer reached purchasing;"
	grep -Eq '"type":"ordersync.row.(sink|route|dead_letter|redelivery)\.' "$out" && bad+=" control/dead-letter rows streamed as events;"
	if [ -z "$bad" ]; then pass $name; else fail $name "$bad"; fi
}

# ---- 7. reading an internal service through dead letters ---------------------
t_dead_letter_excerpt() {
	local name=attack_dead_letter_keeps_short_excerpt res
	as ops "SELECT ordersync.add_sink('internal', 'http://127.0.0.1:25494/admin', '{\"max_attempts\": 1}');
			SELECT ordersync.add_route('internal', 'order.paid')" >/dev/null
	as shop "CALL public.it_orders('E', 1)" >/dev/null
	wait_for 20 "[ \"\$(sql \"SELECT count(*) > 0 FROM ordersync.dead_letter WHERE sink = 'internal'\")\" = t ]"
	res=$(sql "SELECT error FROM ordersync.dead_letter WHERE sink = 'internal' ORDER BY id LIMIT 1")
	if grep -q 404 <<<"$res" && [ "$(echo "$res" | grep -o 'SECRET' | wc -l)" -le 1 ] && [ ${#res} -le 300 ]; then
		pass $name
	else
		fail $name "dead letter error (${#res} bytes): ${res:0:400}"
	fi
	as ops "SELECT ordersync.drop_sink('internal')" >/dev/null
}

# ---- 8. secrets in URLs ------------------------------------------------------
t_url_secret() {
	local name=attack_url_secret_redacted m
	m=$(curl -s http://127.0.0.1:25493/metrics)
	if ! grep -q 'SUPERSECRET' "$work/relay.log" && ! grep -q 'SUPERSECRET' <<<"$m" &&
		[ -s "$work/cli.events" ]; then
		pass $name
	else
		fail $name "$(grep -o '.\{40\}SUPERSECRET.\{10\}' "$work/relay.log" | head -2)" \
			"$(echo "$m" | grep SUPERSECRET | head -2)" "cli receiver got $(wc -l <"$work/cli.events" 2>/dev/null) events"
	fi
}

# ---- 9. a database where anyone can emit --------------------------------------
t_public_emit() {
	local name=attack_relay_refuses_forgeable_database rc res
	sql "GRANT EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) TO mallory" >/dev/null
	"$ORDERSYNCD" --dbname="$RCONN" --slot=attack2 --create-slot --sink=file:"$work/e2.jsonl" \
		>/dev/null 2>"$work/relay2.log" &
	local p=$!
	pids+=("$p")
	wait_exit $p 20
	rc=$WRC
	res=$(grep -c 'mallory may execute pg_logical_emit_message' "$work/relay2.log")
	"$ORDERSYNCD" --dbname="$RCONN" --slot=attack2 --create-slot --sink=file:"$work/e2.jsonl" \
		--allow-forgeable-events --endpos="$(cur_lsn)" >/dev/null 2>"$work/relay3.log" &
	p=$!
	pids+=("$p")
	wait_exit $p 20
	sql "REVOKE EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) FROM mallory" >/dev/null
	sql "SELECT pg_drop_replication_slot('attack2')" >/dev/null 2>&1
	if [ "$rc" = 2 ] && [ "$res" -ge 1 ] && [ "$WRC" = 0 ] && grep -q 'allow-forgeable-events' "$work/relay3.log"; then
		pass $name
	else
		fail $name "without flag exit=$rc (want 2), message=$res; with flag exit=$WRC" \
			"$(tail -3 "$work/relay2.log")" "$(tail -3 "$work/relay3.log")"
	fi
}

# ---- 9b. a grant made while the relay runs stops it too ------------------------
t_grant_while_running() {
	local name=attack_relay_stops_on_grant_while_running p
	"$ORDERSYNCD" --dbname="$RCONN" --slot=attack3 --create-slot --sink=file:"$work/e3.jsonl" \
		--wal-check-interval=1 >/dev/null 2>"$work/relay4.log" &
	p=$!
	pids+=("$p")
	wait_for 15 "grep -q 'streaming from slot' '$work/relay4.log'"
	sql "GRANT EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, bytea) TO shop" >/dev/null
	wait_exit $p 20
	sql "REVOKE EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, bytea) FROM shop" >/dev/null
	sql "SELECT pg_drop_replication_slot('attack3')" >/dev/null 2>&1
	if [ "$WRC" = 2 ] && grep -q 'shop may execute pg_logical_emit_message' "$work/relay4.log"; then
		pass $name
	else
		fail $name "exit=$WRC (want 2)" "$(tail -3 "$work/relay4.log")"
	fi
}

# ---- 10. and the shop's real events got through, complete and in order ------
t_legit() {
	local name=attack_legit_events_complete_and_in_order end res1 res2
	as shop "CALL public.it_orders('Z', 5)" >/dev/null
	end=$(cur_lsn)
	wait_confirmed attack "$end" 60
	res1=$(check delivered "$out" "$work/warehouse.events" "$start" "$end" 'order.*' atleast)
	res2=$(python3 - "$out" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
paid = [e for e in ev if e["type"] == "ordersync.order.paid"]
names = {e["data"].get("external_id") for e in paid}
want = {f"{p}-{i}" for p, n in (("A", 20), ("B", 3), ("C", 2), ("E", 1), ("Z", 5)) for i in range(1, n + 1)}
print("ok" if want <= names else f"missing paid events: {sorted(want - names)}")
PY
	)
	if alive && [ "${res1%% *}" = ok ] && [ "$res2" = ok ]; then
		pass $name
	else
		fail $name "warehouse: $res1" "file: $res2" "$(tail -3 "$work/relay.log")"
	fi
}

t_forge
t_tables
t_forged_control
t_admin_os
t_pii
t_raw
t_dead_letter_excerpt
t_url_secret
t_public_emit
t_grant_while_running
t_legit

kill -TERM "$RELAY" 2>/dev/null
wait_exit "$RELAY" 20
[ "$failures" -eq 0 ]
