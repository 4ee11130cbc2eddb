#!/usr/bin/env bash
# test/integration/sink_webhook.sh — the webhook sink against a real
# PostgreSQL 15 and local HTTP receivers (webhook_receiver.py, which checks
# Standard Webhooks signatures): a receiver that is down and then answers
# 503, a 400 that becomes a dead letter and is redelivered, wrong and right
# secrets, routes changed while the relay runs, drop_personal_data, and
# kill -9 of the relay while the receiver is slow, and a webhook given on the
# command line (unsigned; a missing secret stops the start; connections idle
# for idle_timeout_ms closed, not reused), over https with
# a private CA (ca_file) and without it (certificate refused). What the
# database may not configure (dsink_policy.c): sinks written straight into
# ordersync.sink by a superuser with a secret in the query, a variable
# outside ORDERSYNC_*, a file outside --secret-dir, a cloud metadata address
# are refused and dead-letter their events without a request; a host name
# whose addresses are in --deny-networks gets no request (the connect-time
# check); a refusal keeps only a short, printable excerpt of the answer; a
# URI's query values never reach the logs.
#
# Orders come from the shared producer (orders.sql), and what reached a
# receiver is compared by the shared checker (check.py) with what the
# relay's file sink wrote for the same slot (every event, in commit order):
# exact sets of event ids, per-subject commit order, identical copies, and
# at the receiver never two requests of one subject at once.
#
# Prints "PASS: integration/webhook_<name>" / "FAIL: ..." per test; exits
# non-zero on any failure. Must run as root. Ports: 25450 (PostgreSQL),
# 25451 and 25453 (receivers; WEBHOOK_RECEIVER_PORT1/2 override them). ORDERSYNCD
# may point at the binary. Sinks from the database name their secrets as
# ORDERSYNC_* variables and files in $work/secrets (--secret-dir).
set -uo pipefail

. "$(dirname "$0")/lib.sh"
it_init sink_webhook 25450
R1=${WEBHOOK_RECEIVER_PORT1:-25451}
R2=${WEBHOOK_RECEIVER_PORT2:-25453}
# sinks from the database may only name variables with the relay's prefix
export ORDERSYNC_WH_SECRET='whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
export ORDERSYNC_WH_BAD='whsec_c29tZSBvdGhlciBzZWNyZXQ='
# the command line's sinks may name any variable
export WH_SECRET=$ORDERSYNC_WH_SECRET
# ... and files only in --secret-dir
mkdir -p "$work/secrets"
chmod 0755 "$work/secrets"
printf 'raw secret two\n' >"$work/secrets/raw.secret"

if ! psql -X -q -c "CREATE EXTENSION ordersync" >"$work/setup.log" 2>&1 ||
	! it_producer >>"$work/setup.log" 2>&1; then
	cat "$work/setup.log"
	echo "FAIL: integration/webhook-setup (extension)"
	exit 1
fi

# ---- receivers (recv_start, recv_kill: lib.sh) ------------------------------
# wait_for FILE ID SECS: until the receiver's log has the event
wait_for() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		python3 -c 'import json, sys
sys.exit(0 if any(json.loads(l)["id"] == sys.argv[2] for l in open(sys.argv[1]) if l.strip()) else 1)' "$1" "$2" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
relay() { start_relay main --slot=wh --sink=file:"$work/all.jsonl" --status-interval=1 --secret-dir="$work/secrets"; }
opts='"secret_env":"ORDERSYNC_WH_SECRET","backoff_min_ms":50,"backoff_max_ms":400'

new_slot wh
sql "SELECT ordersync.add_sink('wh', 'http://127.0.0.1:$R1/hook', '{$opts,\"max_attempts\":1000,\"max_in_flight\":16}');
     SELECT ordersync.add_route('wh', '*')" >/dev/null
relay

# ---- 1. receiver down, then 503, then back: everything, in order -----------
t_outage() {
	local name=webhook_outage l0 e1 e e_conf res att
	l0=$(cur_lsn)
	# receiver down: connection refused
	sql "CALL public.it_orders('down', 60, 4)" >/dev/null
	e1=$(cur_lsn)
	sleep 1.5
	# the slot may pass $l0 (keepalives) but not the first commit after it
	local c1 c2 first
	first=$(check first "$work/all.jsonl" "$l0")
	e_conf=$(sql "SELECT confirmed_flush_lsn <= '${first:-0/0}' FROM pg_replication_slots WHERE slot_name = 'wh'")
	c1=$(confirmed wh)
	# up, but failing with 503 (Retry-After: 1) while more orders come
	mkdir -p "$work/r1.ctl"
	echo "503 1" >"$work/r1.ctl/status"
	recv_start r1 $R1 "$WH_SECRET" || true
	sql "CALL public.it_orders('busy', 60, 3)" >/dev/null
	e=$(cur_lsn)
	sleep 1.5
	e_conf="$e_conf $(sql "SELECT confirmed_flush_lsn <= '${first:-0/0}' FROM pg_replication_slots WHERE slot_name = 'wh'")"
	c2=$(confirmed wh)
	rm -f "$work/r1.ctl/status"
	if ! wait_confirmed wh "$e" 40; then
		fail $name "slot not confirmed to $e within 40 s (at $(confirmed wh))" "$(tail -5 "$work/main.log")"
		return
	fi
	res=$(check delivered "$work/all.jsonl" "$work/r1.events" "$l0" "$e" '*' exact)
	att=$(check attempts "$work/r1.attempts")
	if [ "$e_conf" = "t t" ] && [[ "$res" == ok* ]] && [[ "$att" == *503:* ]] &&
		grep -q "retrying" "$work/main.log"; then
		pass $name
	else
		fail $name "slot stayed behind while undelivered: $e_conf (want t t): confirmed $c1, $c2; first commit $first" "delivery: $res" \
			"receiver answers: $att" "events: $(wc -l <"$work/r1.events")" "$(grep -m3 -E 'WARN|ERROR' "$work/main.log")"
	fi
}

# ---- 2. a 400 becomes a dead letter; the rest flows; redeliver() -----------
t_dead_letter() {
	local name=webhook_dead_letter l0 e x paid_id res row dlid
	l0=$(cur_lsn)
	x=$(sql "SELECT ordersync.place_order('web', 'dl-x', '[{\"sku\":\"SKU-1\",\"qty\":1,\"price\":\"5.00\"}]')")
	echo "subject=order/$x&type=ordersync.order.paid 400" >"$work/r1.ctl/reject"
	sql "UPDATE ordersync.orders SET status = 'paid' WHERE id = $x" >/dev/null
	sql "CALL public.it_orders('dl', 20, 5)" >/dev/null
	sql "UPDATE ordersync.orders SET status = 'fulfilling' WHERE id = $x" >/dev/null
	e=$(cur_lsn)
	if ! wait_confirmed wh "$e" 30; then
		fail $name "slot not confirmed to $e within 30 s" "$(tail -5 "$work/main.log")"
		return
	fi
	paid_id=$(check find "$work/all.jsonl" "$l0" "$e" ordersync.order.paid "order/$x")
	res=$(check delivered "$work/all.jsonl" "$work/r1.events" "$l0" "$e" '*' exact "$paid_id")
	row=$(sql "SELECT count(*) || '|' || min(sink) || '|' || min(event_id) || '|' || min(type) || '|' ||
	                  min(subject) || '|' || min(attempts) || '|' || min(event->>'id') || '|' || max(id)
	           FROM ordersync.dead_letter")
	dlid=${row##*|}
	local err
	err=$(sql "SELECT error FROM ordersync.dead_letter WHERE id = ${dlid:-0}")
	# the receiver's answer: status and at most 64 printable bytes of it
	# (webhook_receiver.py answers a long body that ends in INTERNAL-ANSWER)
	local excerpt=${err#*"/hook: "}
	excerpt=${excerpt%%"; the receiver refused"*}
	if [ -z "$paid_id" ] || [[ "$res" != ok* ]] ||
		[[ "$row" != "1|wh|$paid_id|"*"|order/$x|1|$paid_id|"* ]] ||
		[[ "$err" != "HTTP 400 (Bad Request) from http://127.0.0.1:$R1/hook: test receiver ??? refuses subject=order/$x&type="* ]] ||
		[ "${#excerpt}" -gt 64 ] || [[ "$err" == *INTERNAL-ANSWER* ]] ||
		[[ "$err" == *$'\n'* ]]; then
		fail $name "paid event $paid_id; delivery of the rest: $res" "dead letters (count|sink|event|type|subject|attempts|event.id|id): $row" \
			"error: $err" "excerpt of the answer: ${#excerpt} bytes (at most 64, printable, no INTERNAL-ANSWER)"
		return
	fi
	# the receiver takes it now: redeliver sends the same event
	rm -f "$work/r1.ctl/reject"
	sql "SELECT ordersync.redeliver($dlid)" >/dev/null
	if ! wait_for "$work/r1.events" "$paid_id" 15; then
		fail $name "redeliver($dlid) did not bring $paid_id to the receiver within 15 s" "$(tail -5 "$work/main.log")"
		return
	fi
	res=$(python3 - "$work/all.jsonl" "$work/r1.events" "$paid_id" <<'PY'
import json, sys
ref = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
got = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
want = [e for e in ref if e["id"] == sys.argv[3]][0]
mine = [e for e in got if e["id"] == sys.argv[3]]
print("ok" if mine == [want] else "received %d copies, first %s, want %s" % (len(mine), mine[:1], want))
PY
	)
	if [ "$res" = ok ]; then
		pass $name
	else
		fail $name "redelivered event differs: $res"
	fi
}

# ---- 3. signatures: the wrong secret is refused (401, dead letters) --------
t_signature() {
	local name=webhook_signature l0 e res bad att
	if ! recv_start r2 $R2 'raw secret two'; then
		fail $name "the receiver could not listen on $R2 (port taken by another program?)"
		return
	fi
	sql "SELECT ordersync.add_sink('raw', 'http://127.0.0.1:$R2/raw',
	            '{\"secret_file\":\"$work/secrets/raw.secret\",\"backoff_min_ms\":50}');
	     SELECT ordersync.add_route('raw', 'order.cancelled');
	     SELECT ordersync.add_sink('bad', 'http://127.0.0.1:$R2/bad', '{\"secret_env\":\"ORDERSYNC_WH_BAD\"}');
	     SELECT ordersync.add_route('bad', 'order.cancelled')" >/dev/null
	l0=$(cur_lsn)
	sql "CALL public.it_orders('sig', 10, 0, 2)" >/dev/null
	e=$(cur_lsn)
	if ! wait_confirmed wh "$e" 30; then
		fail $name "slot not confirmed to $e within 30 s" "$(tail -5 "$work/main.log")"
		return
	fi
	res=$(check delivered "$work/all.jsonl" "$work/r2.events" "$l0" "$e" order.cancelled exact)
	res="$res / $(check delivered "$work/all.jsonl" "$work/r1.events" "$l0" "$e" '*' exact)"
	bad=$(sql "SELECT count(*) || ' ' || count(*) FILTER (WHERE error LIKE 'HTTP 401 %bad webhook-signature%same secret%'
	                                                    AND attempts = 1 AND type = 'ordersync.order.cancelled')
	           FROM ordersync.dead_letter WHERE sink = 'bad'")
	att=$(check attempts "$work/r2.attempts")
	if [[ "$res" == ok*" / ok"* ]] && [ "$bad" = "5 5" ] && [ "$att" = "200:5 401:5" ]; then
		pass $name
	else
		fail $name "delivery (raw secret / whsec_ secret): $res" "dead letters of sink bad (all, 401 with hint): $bad (want 5 5)" \
			"receiver 2 answers: $att (want 200:5 401:5)"
	fi
	sql "SELECT ordersync.drop_sink('raw'); SELECT ordersync.drop_sink('bad')" >/dev/null
	recv_kill r2
}

# ---- 5. routes from the database, changed while the relay runs -----------
t_routes() {
	local name=webhook_routes l0 e1 l1 e2 res1 res2 pii pid=$RELAY
	if ! recv_start r5 $R2 "$WH_SECRET"; then
		fail $name "the receiver could not listen on $R2 (port taken by another program?)"
		return
	fi
	sql "SELECT ordersync.add_sink('paid', 'http://127.0.0.1:$R2/paid', '{$opts,\"drop_personal_data\":true}');
	     SELECT ordersync.add_route('paid', 'order.paid')" >/dev/null
	l0=$(cur_lsn)
	sql "CALL public.it_orders('rt', 6)" >/dev/null
	e1=$(cur_lsn)
	wait_confirmed wh "$e1" 30
	res1=$(check delivered "$work/all.jsonl" "$work/r5.events" "$l0" "$e1" order.paid exact)
	sql "SELECT ordersync.drop_route('paid', 'order.paid'); SELECT ordersync.add_route('paid', 'order.cancelled')" >/dev/null
	l1=$(cur_lsn)
	sql "CALL public.it_orders('rt2', 8, 0, 2)" >/dev/null
	e2=$(cur_lsn)
	wait_confirmed wh "$e2" 30
	res2=$(check delivered "$work/all.jsonl" "$work/r5.events" "$l1" "$e2" order.cancelled exact)
	# no customer at this sink, but the file sink has it (the check can fail)
	pii=$(python3 - "$work/r5.events" "$work/all.jsonl" <<'PY'
import json, sys
got = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ref = {e["id"]: e for e in (json.loads(l) for l in open(sys.argv[2]) if l.strip())}
bad = [e["id"] for e in got if "customer" in e["data"] or "order_id" not in e["data"]]
full = [i for i in (e["id"] for e in got) if "customer" in ref[i]["data"]]
print("ok" if got and not bad and len(full) == len(got) else "with customer: %s; reference with customer: %d of %d" % (bad[:5], len(full), len(got)))
PY
	)
	if [[ "$res1" == "ok 6 "* ]] && [[ "$res2" == "ok 4 "* ]] && [ "$pii" = ok ] &&
		[ "$(wc -l <"$work/r5.events")" = 10 ] && kill -0 "$pid" 2>/dev/null && [ "$RELAY" = "$pid" ]; then
		pass $name
	else
		fail $name "order.paid route: $res1 (want 6)" "after switching to order.cancelled: $res2 (want 4)" \
			"personal data: $pii" "receiver has $(wc -l <"$work/r5.events") events (want 10)"
	fi
	sql "SELECT ordersync.drop_sink('paid')" >/dev/null
	recv_kill r5
}

# ---- 4. kill -9 of the relay while the receiver is slow -------------------
t_kill9() {
	local name=webhook_kill9 l0 e before res orders created
	echo 250 >"$work/r1.ctl/delay_ms"
	l0=$(cur_lsn)
	sql "CALL public.it_orders('k9', 40, 4)" >/dev/null
	e=$(cur_lsn)
	sleep 1
	kill -9 "$RELAY"
	wait "$RELAY" 2>/dev/null
	before=$(check delivered "$work/all.jsonl" "$work/r1.events" "$l0" "$e" '*' atleast | head -1)
	rm -f "$work/r1.ctl/delay_ms"
	# let the receiver finish what the dead relay had sent (its overlap
	# check counts requests of one subject, and these would overlap)
	sleep 0.6
	relay
	if ! wait_confirmed wh "$e" 40; then
		fail $name "slot not confirmed to $e within 40 s after the restart" "$(tail -5 "$work/main.log")"
		return
	fi
	res=$(check delivered "$work/all.jsonl" "$work/r1.events" "$l0" "$e" '*' atleast)
	orders=$(sql "SELECT count(*) FROM ordersync.orders WHERE external_id LIKE 'k9-%'")
	created=$(python3 -c '
import json, sys
print(len({e["id"] for e in (json.loads(l) for l in open(sys.argv[1]) if l.strip())
           if e["type"] == "ordersync.order.created" and e["data"]["external_id"].startswith("k9-")}))' "$work/r1.events")
	if [[ "$res" == ok* ]] && [ "$orders" = 40 ] && [ "$created" = 40 ] && [[ "$before" != ok* ]]; then
		pass $name
	else
		fail $name "after restart: $res" "orders committed $orders, order.created at the receiver $created" \
			"before restart (should be incomplete, or the kill hit nothing): $before"
	fi
}

# ---- 6. --sink=http:// on the command line; secrets optional, never wrong --
t_cli() {
	local name=webhook_cli l0 e rc res warned bad_rc
	new_slot cli
	l0=$(cur_lsn)
	sql "CALL public.it_orders('cli', 5)" >/dev/null
	e=$(cur_lsn)
	wait_confirmed wh "$e" 30
	# a receiver that checks nothing: the sink without a secret sends unsigned
	if ! recv_start r0 $R2 ""; then
		fail $name "the receiver could not listen on $R2 (port taken by another program?)"
		return
	fi
	# a secret in the query (the receiver's own auth) never reaches the logs, nor
	# the metric labels and dead letters (the sink's name, which the log shows)
	start_relay cli --slot=cli --sink="http://127.0.0.1:$R2/cli?token=hunter2&exchange=x" \
		--sink-options='{"max_in_flight":4}' --status-interval=1 --endpos="$e"
	wait_exit "$RELAY" 30
	rc=$WRC
	res=$(check delivered "$work/all.jsonl" "$work/r0.events" "$l0" "$e" '*' exact)
	warned=$(grep -c 'has no secret: events to http://127.0.0.1:'$R2'/cli?token=\*\*\*&exchange=x go out unsigned' "$work/cli.log")
	if grep -q hunter2 "$work/cli.log"; then
		warned="query value shown: $(grep -m2 hunter2 "$work/cli.log")"
	fi
	# a secret that is named but missing stops the relay at the start (exit 2)
	"$ORDERSYNCD" --dbname="$CONN" --slot=cli --sink=http://127.0.0.1:$R2/cli \
		--sink-options='{"secret_env":"WH_NOT_SET"}' --endpos="$e" >/dev/null 2>"$work/cli_bad.log"
	bad_rc=$?
	recv_kill r0
	RELAY=$main_relay
	if [ "$rc" = 0 ] && [[ "$res" == ok* ]] && [ "$warned" = 1 ] && [ "$bad_rc" = 2 ] &&
		grep -q 'WH_NOT_SET.*not set' "$work/cli_bad.log"; then
		pass $name
	else
		fail $name "exit $rc, delivery: $res, unsigned warnings: $warned (want 1)" \
			"unset secret variable: exit $bad_rc (want 2): $(head -2 "$work/cli_bad.log")" "$(tail -3 "$work/cli.log")"
	fi
}

# ---- 6b. a connection idle for idle_timeout_ms is not reused -------------
# The receiver forgets a connection idle for 800 ms (as a load balancer
# drops an idle flow: no FIN, no answer). The sink closes connections idle
# for 400 ms, so the orders after a pause go out on new connections, all on
# their first attempt; reusing a forgotten one would time out (max_attempts
# 1: a dead letter, missing at the receiver). A database of its own: the
# main database's sinks would be delivered by this relay too.
t_idle() {
	local name=webhook_idle l0 e1 e2 res timeouts i
	if ! new_db idle || ! recv_start r7 $R2 ""; then
		fail $name "no database idle, or the receiver could not listen on $R2"
		return
	fi
	echo 800 >"$work/r7.ctl/forget_idle_ms"
	"$ORDERSYNCD" --dbname="${CONN/dbname=postgres/dbname=idle}" --slot=idle --status-interval=1 \
		--sink=file:"$work/idle.jsonl" --sink=http://127.0.0.1:$R2/idle \
		--sink-options='{"max_in_flight":4,"idle_timeout_ms":400,"timeout_ms":1500,"max_attempts":1}' \
		>>"$work/idle.out" 2>>"$work/idle.log" &
	RELAY=$!
	pids+=("$RELAY")
	l0=$(cur_lsn)
	for i in 1 2 3 4; do order idle; done
	e1=$(cur_lsn)
	wait_confirmed idle "$e1" 30
	sleep 1.5
	for i in 1 2 3 4; do order idle; done
	e2=$(cur_lsn)
	wait_confirmed idle "$e2" 30
	kill -TERM "$RELAY" 2>/dev/null
	wait_exit "$RELAY" 15
	recv_kill r7
	RELAY=$main_relay
	res=$(check delivered "$work/idle.jsonl" "$work/r7.events" "$l0" "$e2" '*' exact)
	timeouts=$(grep -c 'timed out' "$work/idle.log")
	if [[ "$res" == ok* ]] && [ "$timeouts" = 0 ]; then
		pass $name
	else
		fail $name "delivery: $res; timed-out attempts in the log: $timeouts (want 0)" \
			"$(grep -m3 'timed out' "$work/idle.log")"
	fi
}

# ---- 7. https: verified against ca_file; without it nothing is sent ------
t_tls() {
	local name=webhook_tls t="$work/tls" l0 e rc1 rc2 rc3 res dead i
	mkdir -p "$t"
	if ! (cd "$t" &&
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
			-out ca.pem -days 2 -subj /CN=ordersync-test-ca &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key \
			-out server.csr -subj /CN=127.0.0.1 &&
		printf 'subjectAltName=IP:127.0.0.1\n' >ext &&
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
			-days 2 -extfile ext) >"$t/openssl.log" 2>&1; then
		fail $name "could not make test certificates: $(tail -2 "$t/openssl.log")"
		return
	fi
	new_slot tls_ok
	new_slot tls_noca
	l0=$(cur_lsn)
	sql "CALL public.it_orders('tls', 3)" >/dev/null
	e=$(cur_lsn)
	wait_confirmed wh "$e" 30
	mkdir -p "$work/r3.ctl"
	python3 "$here/webhook_receiver.py" --port $R2 --secret "$WH_SECRET" --events "$work/r3.events" \
		--attempts "$work/r3.attempts" --ready "$work/r3.ready" --tls-cert "$t/server.pem" \
		--tls-key "$t/server.key" 2>>"$work/r3.stderr" &
	rpid[r3]=$!
	pids+=("$!")
	for ((i = 0; i < 80; i++)); do [ -e "$work/r3.ready" ] && break; sleep 0.1; done
	if [ ! -e "$work/r3.ready" ]; then
		fail $name "the https receiver could not start on $R2: $(tail -1 "$work/r3.stderr")"
		return
	fi
	start_relay tls_ok --slot=tls_ok --sink=https://127.0.0.1:$R2/tls \
		--sink-options="{\"secret_env\":\"WH_SECRET\",\"ca_file\":\"$t/ca.pem\"}" --status-interval=1 --endpos="$e"
	wait_exit "$RELAY" 30
	rc1=$WRC
	# the same server without the CA: certificate refused, nothing sent, dead letters
	start_relay tls_noca --slot=tls_noca --sink=https://127.0.0.1:$R2/nope \
		--sink-options='{"secret_env":"WH_SECRET","max_attempts":2,"backoff_min_ms":20}' --status-interval=1 --endpos="$e"
	wait_exit "$RELAY" 30
	rc2=$WRC
	"$ORDERSYNCD" --dbname="$CONN" --slot=tls_noca --sink=https://127.0.0.1:$R2/nope \
		--sink-options="{\"ca_file\":\"$t/missing.pem\"}" --endpos="$e" >/dev/null 2>"$work/tls_bad.log"
	rc3=$?
	recv_kill r3
	RELAY=$main_relay
	res=$(check delivered "$work/all.jsonl" "$work/r3.events" "$l0" "$e" '*' exact)
	dead=$(sql "SELECT count(*) || ' ' || count(*) FILTER (WHERE error LIKE '%TLS failed; certificates are always verified%ca_file%')
	            FROM ordersync.dead_letter WHERE sink = 'https://127.0.0.1:$R2/nope'")
	if [ "$rc1" = 0 ] && [[ "$res" == "ok 9 "* ]] && [ "$rc2" = 0 ] && [ "$dead" = "9 9" ] &&
		! grep -q '/nope' "$work/r3.attempts" && [ "$rc3" = 2 ] && grep -q "cannot read ca_file" "$work/tls_bad.log"; then
		pass $name
	else
		fail $name "with ca_file: exit $rc1, delivery $res (want ok 9)" "without: exit $rc2, dead letters $dead (want 9 9)" \
			"requests that got through without the CA: $(grep -c '/nope' "$work/r3.attempts")" \
			"missing ca_file: exit $rc3 (want 2): $(head -1 "$work/tls_bad.log")" "$(tail -2 "$work/tls_noca.log")"
	fi
}

# ---- 8. what the database may not configure -------------------------------
# A database of its own (its sinks would reach every relay of the main one)
# and a relay that denies every loopback network: a superuser writes sinks
# straight into ordersync.sink, past add_sink(); the relay refuses each of
# them with its reason, dead-letters their events, keeps running, and the
# receiver gets no request at all: not from the sinks refused before they
# open, and not from a host name (localhost) whose addresses are denied only
# when the sink connects, from the database or from the command line.
t_policy() {
	local name=webhook_policy pdb="host=$cl port=$PORT user=postgres dbname=wh_policy"
	local i n want rows bad=() pid
	psqlp() { psql -X -A -t -q -v ON_ERROR_STOP=1 -d wh_policy "$@"; }
	ln -sf /etc/hostname "$work/secrets/escape"
	if ! sql "CREATE DATABASE wh_policy" >/dev/null || ! psqlp -c "CREATE EXTENSION ordersync" >/dev/null ||
		! psqlp >/dev/null <<SQL
SELECT ordersync.add_location('main', 1);
SELECT ordersync.receive_stock('SKU-P', 'main', 100);
SELECT pg_create_logical_replication_slot('pol', 'wal2json');
INSERT INTO ordersync.sink (name, uri, options) VALUES
	('query', 'http://127.0.0.1:$R2/query?token=hunter2', '{}'),
	('env', 'http://127.0.0.1:$R2/env', '{"secret_env": "HOME"}'),
	('file', 'http://127.0.0.1:$R2/file', '{"secret_file": "/etc/hostname"}'),
	('escape', 'http://127.0.0.1:$R2/escape', '{"secret_file": "$work/secrets/escape"}'),
	('literal', 'http://127.0.0.2:$R2/literal', '{}'),
	('name', 'http://localhost:$R2/name', '{"max_attempts": 1}');
INSERT INTO ordersync.route (sink, pattern) SELECT name, '*' FROM ordersync.sink;
SQL
	then
		fail $name "could not set up database wh_policy"
		return
	fi
	if ! recv_start r6 $R2 ""; then
		fail $name "the receiver could not listen on $R2 (port taken by another program?)"
		return
	fi
	start_relay policy --slot=pol --dbname="$pdb" --status-interval=1 --secret-dir="$work/secrets" \
		--deny-networks=127.0.0.0/8,::1/128,169.254.0.0/16 \
		--sink="http://localhost:$R2/cli?token=hunter2" --sink-options='{"max_attempts":1}'
	pid=$RELAY
	psqlp -c "SELECT ordersync.place_order('web', 'p-1', '[{\"sku\":\"SKU-P\",\"qty\":1,\"price\":\"1.00\"}]',
	                                       '{\"name\": \"Ada\"}')" >/dev/null
	# every sink has dead-lettered the order's events
	for ((i = 0; i < 300; i++)); do
		n=$(psqlp -c "SELECT count(DISTINCT sink) FROM ordersync.dead_letter")
		[ "$n" = 7 ] && break
		sleep 0.1
	done
	rows=$(psqlp -c "SELECT sink || ': ' || min(error) FROM ordersync.dead_letter GROUP BY sink ORDER BY sink")
	while IFS='|' read -r sink want; do
		grep -q -F -- "$sink: " <<<"$rows" && grep -F -- "$sink: " <<<"$rows" | grep -q -F -- "$want" ||
			bad+=("$sink: want \"$want\", got: $(grep -F -- "$sink: " <<<"$rows" | cut -c1-300)")
	done <<EOF_WANT
query|has a query parameter "token", which looks like a secret
env|names the environment variable "HOME", but a sink from the database may only name variables that start with "ORDERSYNC_"
file|option secret_file "/etc/hostname" must name an existing regular file inside --secret-dir
escape|option secret_file "$work/secrets/escape" must name an existing regular file inside --secret-dir
literal|host 127.0.0.2 is in 127.0.0.0/8, a network ordersyncd never connects to
name|refused to connect to
http://localhost:$R2/cli?token=***|refused to connect to
EOF_WANT
	grep -q hunter2 <<<"$rows" && bad+=("a dead letter shows the query's secret")
	grep -q hunter2 "$work/policy.log" && bad+=("the log shows the query's secret")
	kill -0 "$pid" 2>/dev/null || bad+=("the relay exited: $(tail -2 "$work/policy.log")")
	[ -s "$work/r6.attempts" ] && bad+=("the receiver got $(wc -l <"$work/r6.attempts") requests: $(head -c 300 "$work/r6.attempts")")
	kill -TERM "$pid" 2>/dev/null
	wait_exit "$pid" 15
	recv_kill r6
	RELAY=$main_relay
	if [ "$n" = 7 ] && [ ${#bad[@]} = 0 ]; then
		pass $name
	else
		fail $name "sinks with dead letters: $n (want 7)" "${bad[@]}"
	fi
}

t_outage
t_dead_letter
t_signature
t_routes
t_kill9
main_relay=$RELAY
t_cli
t_idle
t_tls
t_policy

# over all of the above, the receiver never had two requests of one subject at once
if att=$(check attempts "$work/r1.attempts"); then
	pass webhook_one_request_per_subject
else
	fail webhook_one_request_per_subject "$att"
fi

kill -TERM "$RELAY" 2>/dev/null
wait_exit "$RELAY" 15
if [ $failures -gt 0 ] && [ -n "${VERBOSE:-}" ]; then
	tail -30 "$work/main.log"
fi
exit $((failures > 0))
