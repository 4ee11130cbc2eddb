#!/usr/bin/env bash
# test/integration/sink_amqp.sh — the RabbitMQ (AMQP 0-9-1) sink against a
# real PostgreSQL 15 and a real RabbitMQ node (Debian's rabbitmq-server, a
# throwaway node of our own: rabbitmq.sh).
#
#   amqp_delivery       a sink configured in the database (route order.*):
#                       orders placed and paid/shipped while (1) all is up,
#                       (2) the broker is stopped and started again, (3) the
#                       broker is frozen with events in flight, killed -9 and
#                       started again, (4) the relay is killed -9 (broker
#                       frozen: events unconfirmed) and started again; (3)
#                       and (4) must have hit unconfirmed events. Orders come
#                       from the shared producer (orders.sql); what the queues
#                       hold is compared by the shared checker (check.py amqp)
#                       with the relay's file sink (every event, in commit order): exactly the order.* event ids, no
#                       other, routing key = type = CloudEvent type, message
#                       id = CloudEvent id, persistent, content type
#                       application/cloudevents+json, per-subject commit order
#                       (first copies; ids "<commit LSN>/<ordinal>" rising), a
#                       queue bound to "order.paid" holds exactly the paid
#                       events, counts equal the orders placed, no dead letter.
#   amqp_errors         missing exchange, wrong password, password in the URI:
#                       clear messages, nothing confirmed.
#   amqp_tls            amqps:// with the test CA delivers; without it, a clear
#                       certificate error.
#   amqp_unroutable     declare_exchange creates the exchange; with no queue
#                       bound an event is returned and becomes a dead letter
#                       that says to bind a queue; after binding one,
#                       ordersync.redeliver() brings the same event.
#   amqp_untrusted      sinks written straight into ordersync.sink by a
#                       superuser with verify_peer false or a password
#                       variable outside ORDERSYNC_* are refused: dead letters
#                       with the reason, nothing published, the relay goes on.
#   amqp_deny           a broker named "localhost" in a relay whose
#                       --deny-networks holds loopback: refused before any
#                       connection, from the database and the command line.
#
# Prints "PASS: integration/amqp_<name>" / "FAIL: ..."; exits non-zero on any
# failure. Must run as root. Ports: 25454 (PostgreSQL), 25480 (AMQP) and
# 25481 (Erlang distribution), 25482 (AMQPS) of the RabbitMQ node, epmd on 4369.
# ORDERSYNCD may point at the binary; KEEP_LOGS=DIR keeps the logs.
set -uo pipefail

. "$(dirname "$0")/lib.sh"
it_init sink_amqp 25454
RPORT=25480
TPORT=25482
RMQ="$here/rabbitmq.sh"
rdir="$work/rmq"
export RMQ_PASSWORD
RMQ_PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
# sinks from the database may only name variables with the relay's prefix
export ORDERSYNC_RMQ_PASSWORD=$RMQ_PASSWORD
export RMQ_WRONG=not-the-password
cleanups+=('"$RMQ" kill "$rdir"')
URI="amqp://ordersync@127.0.0.1:$RPORT/%2f"

amqp() { "$RMQ" amqp "$rdir" "$@"; }
rmq_start() { "$RMQ" start "$rdir" $RPORT ordersync "$RMQ_PASSWORD" $TPORT >>"$work/rmq.log" 2>&1; }

# the broker boots (several seconds) while the database is set up
rmq_start &
rmq_boot=$!
if ! psql -X -q -c "CREATE EXTENSION ordersync" >"$work/setup.log" 2>&1 ||
	! it_producer >>"$work/setup.log" 2>&1; then
	cat "$work/setup.log"
	echo "FAIL: integration/amqp-setup (extension)"
	exit 1
fi
if ! wait $rmq_boot; then
	cat "$work/rmq.log"
	echo "FAIL: integration/amqp-setup (rabbitmq-server did not start)"
	exit 1
fi
if ! amqp declare-exchange orders topic || ! amqp queue q_all orders '#' ||
	! amqp queue q_paid orders order.paid; then
	echo "FAIL: integration/amqp-setup (exchange and queues)"
	exit 1
fi

# check_queue ALLFILE ALLTSV PAIDTSV: the queues against the file sink (check.py amqp)
check_queue() { check amqp "$@"; }

# ---- 1. outages of the broker and of the relay: nothing lost, in order ------
t_delivery() {
	local name=amqp_delivery end res bg n_orders created paid shipped restarts unconf inflight
	sql "SELECT ordersync.add_sink('rmq', '$URI?exchange=orders',
	         '{\"password_env\":\"ORDERSYNC_RMQ_PASSWORD\",\"backoff_min_ms\":100,\"backoff_max_ms\":1000}');
	     SELECT ordersync.add_route('rmq', 'order.*')" >/dev/null
	new_slot rmq_main
	start_relay main --slot=rmq_main --sink=file:"$work/all.jsonl" --status-interval=1
	sql "CALL public.it_orders('up', 30, 3)"
	# the broker stops politely while orders are placed, then comes back
	sql "CALL public.it_orders('stop', 60, 3, 0, 50)" &
	bg=$!
	sleep 0.8
	"$RMQ" stop "$rdir" >>"$work/rmq.log" 2>&1
	sleep 0.5
	rmq_start || fail $name "broker did not start again: $(tail -3 "$work/rmq.log")"
	wait $bg
	# the broker is frozen, so that published events stay unconfirmed (and
	# unread in its socket), then killed -9: those must be published again,
	# in order; what it confirmed before must survive the kill
	sql "CALL public.it_orders('crash', 60, 3, 0, 50)" &
	bg=$!
	sleep 0.6
	kill -STOP "$(cat "$rdir/beam.pid")"
	sleep 0.5
	"$RMQ" kill "$rdir" >>"$work/rmq.log" 2>&1
	sleep 0.5
	rmq_start || fail $name "broker did not start again after kill -9: $(tail -3 "$work/rmq.log")"
	wait $bg
	# the relay is killed -9 mid-stream and started again; the broker is
	# frozen meanwhile so that published events are unconfirmed at the kill
	# (it stores them when it thaws: the restarted relay sends them again)
	sql "CALL public.it_orders('relay', 60, 3, 0, 20)" &
	bg=$!
	sleep 0.4
	kill -STOP "$(cat "$rdir/beam.pid")"
	sleep 0.6
	unconf=$(sql "SELECT confirmed_flush_lsn < pg_current_wal_lsn() FROM pg_replication_slots WHERE slot_name = 'rmq_main'")
	kill -9 "$RELAY"
	wait "$RELAY" 2>/dev/null
	kill -CONT "$(cat "$rdir/beam.pid")"
	start_relay main --slot=rmq_main --sink=file:"$work/all.jsonl" --status-interval=1
	wait $bg
	end=$(cur_lsn)
	if ! wait_confirmed rmq_main "$end" 60; then
		fail $name "slot not confirmed to $end within 60 s (at $(confirmed rmq_main))" \
			"$(tail -5 "$work/main.log")"
		return
	fi
	amqp drain q_all >"$work/q_all.tsv" && amqp drain q_paid >"$work/q_paid.tsv" ||
		{ fail $name "cannot read the queues"; return; }
	res=$(check_queue "$work/all.jsonl" "$work/q_all.tsv" "$work/q_paid.tsv" 2>&1)
	n_orders=$(sql "SELECT count(*) FROM ordersync.orders")
	created=$(sql "SELECT count(*) FROM ordersync.orders WHERE status IN ('paid', 'shipped')")
	shipped=$(sql "SELECT count(*) FROM ordersync.orders WHERE status = 'shipped'")
	paid="created=$n_orders paid=$created shipped=$shipped"
	restarts=$(grep -c 'amqp sink "rmq": connected to' "$work/main.log")
	inflight=$(grep -o 'amqp sink "rmq": connection to .* lost: .*reconnecting in [0-9]* ms ([0-9]* events' "$work/main.log" |
		grep -o '[0-9]* events$' | head -1)
	if [[ "$res" == ok* ]] && [[ "$res" == *"$paid" ]] && [ "$n_orders" = 210 ] && [ "$unconf" = t ] &&
		[ "${inflight%% *}" -gt 0 ] 2>/dev/null &&
		[ "$restarts" -ge 2 ] && [ "$(sql "SELECT count(*) FROM ordersync.dead_letter")" = 0 ]; then
		echo "  $res"
		pass $name
	else
		fail $name "check: $res" "expected $paid (210 orders), reconnects logged: $restarts," \
			"events unconfirmed when the relay was killed: $unconf; when the broker was: ${inflight:-none}" \
			"dead letters: $(sql "SELECT count(*) FROM ordersync.dead_letter")" \
			"$(grep -E 'ERROR|WARN' "$work/main.log" | tail -5)"
	fi
	kill -TERM "$RELAY" 2>/dev/null
	wait_exit "$RELAY" 10
	sql "SELECT ordersync.drop_sink('rmq')" >/dev/null
}

# ---- 2. operator errors: clear messages, nothing confirmed ------------------
t_errors() {
	local name=amqp_errors l0 p1 p2 i out rc ok=1 msgs=()
	new_slot rmq_noex
	new_slot rmq_pw
	l0=$(cur_lsn)
	sql "CALL public.it_orders('err', 1, 3)"
	start_relay noex --slot=rmq_noex --status-interval=1 --sink="$URI?exchange=missing" \
		--sink-options='{"password_env":"RMQ_PASSWORD"}'
	p1=$RELAY
	start_relay pw --slot=rmq_pw --status-interval=1 --sink="$URI?exchange=orders" \
		--sink-options='{"password_env":"RMQ_WRONG"}'
	p2=$RELAY
	for ((i = 0; i < 100; i++)); do
		grep -q 'exchange "missing" does not exist' "$work/noex.log" &&
			grep -q 'refused the login of user "ordersync"' "$work/pw.log" && break
		sleep 0.1
	done
	sleep 1.2 # a status interval: a wrong confirm would show now
	grep -q 'exchange "missing" does not exist in vhost "/".*declare_exchange' "$work/noex.log" ||
		{ ok=; msgs+=("no clear missing-exchange error: $(tail -2 "$work/noex.log")"); }
	grep -q 'refused the login of user "ordersync".*password_env' "$work/pw.log" ||
		{ ok=; msgs+=("no clear login error: $(tail -2 "$work/pw.log")"); }
	for s in rmq_noex rmq_pw; do
		[ "$(sql "SELECT confirmed_flush_lsn <= '$l0' FROM pg_replication_slots WHERE slot_name = '$s'")" = t ] ||
			{ ok=; msgs+=("$s confirmed past the undelivered events: $(confirmed $s)"); }
	done
	kill -0 $p1 2>/dev/null && kill -0 $p2 2>/dev/null || { ok=; msgs+=("a relay exited instead of retrying"); }
	kill -TERM $p1 $p2 2>/dev/null
	wait_exit $p1 10
	wait_exit $p2 10
	for s in rmq_noex rmq_pw; do
		[ "$(sql "SELECT confirmed_flush_lsn <= '$l0' FROM pg_replication_slots WHERE slot_name = '$s'")" = t ] ||
			{ ok=; msgs+=("$s confirmed past the undelivered events at shutdown: $(confirmed $s)"); }
	done
	# a password in the URI is refused before anything starts
	out=$("$ORDERSYNCD" --dbname="$CONN" --slot=rmq_pw \
		--sink="amqp://ordersync:$RMQ_PASSWORD@127.0.0.1:$RPORT/%2f?exchange=orders" 2>&1)
	rc=$?
	[ $rc != 0 ] && [[ "$out" == *"contains a password"*password_env* ]] && [[ "$out" != *"$RMQ_PASSWORD"* ]] ||
		{ ok=; msgs+=("password in URI: exit $rc: $out"); }
	drop_slot rmq_noex
	drop_slot rmq_pw
	if [ -n "$ok" ]; then
		pass $name
	else
		fail $name "${msgs[@]}"
	fi
}

# ---- 3. amqps:// (TLS) -------------------------------------------------------
t_tls() {
	local name=amqp_tls end n rc pid msgs=()
	amqp queue q_tls orders 'order.#'
	new_slot rmq_tls
	sql "CALL public.it_orders('tls', 2, 3)"
	end=$(cur_lsn)
	# the node's certificate names localhost, signed by the test CA
	start_relay tls --slot=rmq_tls --endpos="$end" --sink="amqps://ordersync@localhost:$TPORT/%2f?exchange=orders" \
		--sink-options="{\"password_env\":\"RMQ_PASSWORD\",\"ca_file\":\"$rdir/tls/ca.pem\"}"
	wait_exit "$RELAY" 20
	rc=$WRC
	n=$(amqp count q_tls)
	# without that CA (the system's bundle) the certificate is refused, clearly
	new_slot rmq_tls_bad
	start_relay tlsbad --slot=rmq_tls_bad --sink="amqps://ordersync@localhost:$TPORT/%2f?exchange=orders" \
		--sink-options='{"password_env":"RMQ_PASSWORD"}'
	pid=$RELAY
	for ((i = 0; i < 50; i++)); do
		grep -q "not signed by a CA in ca_file" "$work/tlsbad.log" && break
		sleep 0.1
	done
	kill -9 $pid
	wait $pid 2>/dev/null
	drop_slot rmq_tls
	drop_slot rmq_tls_bad
	if [ "$rc" = 0 ] && [ "$n" = 4 ] && grep -q "not signed by a CA in ca_file" "$work/tlsbad.log"; then
		pass $name
	else
		fail $name "relay exit $rc, $n messages in q_tls (want 4)" "$(tail -2 "$work/tls.log")" \
			"$(tail -1 "$work/tlsbad.log")"
	fi
}

# ---- 4. unroutable -> dead letter -> bind a queue -> redeliver --------------
t_unroutable() {
	local name=amqp_unroutable i dl ev err n got
	sql "SELECT ordersync.add_sink('auto', '$URI?exchange=auto',
	         '{\"password_env\":\"ORDERSYNC_RMQ_PASSWORD\",\"declare_exchange\":\"topic\"}');
	     SELECT ordersync.add_route('auto', 'order.paid')" >/dev/null
	new_slot rmq_auto
	start_relay auto --slot=rmq_auto --status-interval=1
	sql "CALL public.it_orders('unroutable', 1, 3)"
	for ((i = 0; i < 100; i++)); do
		dl=$(sql "SELECT id FROM ordersync.dead_letter WHERE sink = 'auto'")
		[ -n "$dl" ] && break
		sleep 0.1
	done
	if [ -z "$dl" ]; then
		fail $name "no dead letter for the unroutable event within 10 s" "$(tail -3 "$work/auto.log")"
		return
	fi
	ev=$(sql "SELECT event->>'id' FROM ordersync.dead_letter WHERE id = $dl")
	err=$(sql "SELECT error FROM ordersync.dead_letter WHERE id = $dl")
	if ! amqp exchange-exists auto; then
		fail $name "declare_exchange did not create exchange auto"
		return
	fi
	amqp queue q_auto auto 'order.#'
	sql "SELECT ordersync.redeliver($dl)" >/dev/null
	for ((i = 0; i < 100; i++)); do
		n=$(amqp count q_auto)
		[ "$n" = 1 ] && break
		sleep 0.1
	done
	got=$(amqp drain q_auto | cut -f1,2,4)
	if [[ "$err" == *"no queue is bound to exchange \"auto\" for routing key \"order.paid\""*"bind a queue"* ]] &&
		[ "$got" = "$(printf 'order.paid\t2\t%s' "$ev")" ] &&
		[ "$(sql "SELECT count(*) FROM ordersync.dead_letter")" = 1 ]; then
		pass $name
	else
		fail $name "dead letter error: $err" "queue after redeliver: '$got' (event $ev)" \
			"$(tail -3 "$work/auto.log")"
	fi
	kill -TERM "$RELAY" 2>/dev/null
	wait_exit "$RELAY" 10
}

# ---- 5. what the database may not configure --------------------------------

t_untrusted() {
	local name=amqp_untrusted rows pid n bad=()
	if ! amqp declare-exchange policy topic || ! amqp queue q_policy policy '#' || ! new_db am_policy; then
		fail $name "setup (exchange, queue or database am_policy) failed"
		return
	fi
	psqld am_policy >/dev/null <<SQL
INSERT INTO ordersync.sink (name, uri, options) VALUES
	('noverify', 'amqps://ordersync@localhost:$TPORT/%2f?exchange=policy',
	 '{"password_env": "ORDERSYNC_RMQ_PASSWORD", "verify_peer": false}'),
	('envout', '$URI?exchange=policy', '{"password_env": "RMQ_PASSWORD"}');
INSERT INTO ordersync.route (sink, pattern) SELECT name, '*' FROM ordersync.sink;
SQL
	start_relay untrusted --slot=am_policy --dbname="host=$cl port=$PORT user=postgres dbname=am_policy" \
		--status-interval=1
	pid=$RELAY
	order am_policy
	rows=$(dead_letters am_policy 2)
	expect_reasons "$rows" <<'EOF_WANT'
noverify|verify_peer false turns off the broker's certificate check
envout|names the environment variable "RMQ_PASSWORD", but a sink from the database may only name variables that start with "ORDERSYNC_"
EOF_WANT
	n=$(amqp count q_policy)
	[ "$n" = 0 ] || bad+=("$n messages were published")
	kill -0 "$pid" 2>/dev/null || bad+=("the relay exited: $(tail -2 "$work/untrusted.log")")
	kill -TERM "$pid" 2>/dev/null
	wait_exit "$pid" 15
	if [ ${#bad[@]} = 0 ]; then
		pass $name
	else
		fail $name "${bad[@]}"
	fi
}

t_deny() {
	local name=amqp_deny rows pid n bad=() named="amqp://ordersync@localhost:$RPORT/%2f?exchange=denied"
	if ! amqp declare-exchange denied topic || ! amqp queue q_denied denied '#' || ! new_db am_deny; then
		fail $name "setup (exchange, queue or database am_deny) failed"
		return
	fi
	psqld am_deny -c "INSERT INTO ordersync.sink (name, uri, options)
	                  VALUES ('named', '$named', '{\"password_env\": \"ORDERSYNC_RMQ_PASSWORD\"}');
	                  INSERT INTO ordersync.route VALUES ('named', '*')" >/dev/null
	start_relay deny --slot=am_deny --dbname="host=$cl port=$PORT user=postgres dbname=am_deny" \
		--status-interval=1 --deny-networks=127.0.0.0/8,::1/128 \
		--sink="$named" --sink-options='{"password_env":"RMQ_PASSWORD"}'
	pid=$RELAY
	order am_deny
	rows=$(dead_letters am_deny 2)
	expect_reasons "$rows" <<EOF_WANT
named|refused to connect to
named|, a network ordersyncd never connects to (--deny-networks
amqp://localhost:$RPORT/%2f?exchange=denied|refused to connect to
EOF_WANT
	n=$(amqp count q_denied)
	[ "$n" = 0 ] || bad+=("$n messages were published")
	kill -0 "$pid" 2>/dev/null || bad+=("the relay exited: $(tail -2 "$work/deny.log")")
	kill -TERM "$pid" 2>/dev/null
	wait_exit "$pid" 15
	if [ ${#bad[@]} = 0 ]; then
		pass $name
	else
		fail $name "${bad[@]}"
	fi
}

t_delivery
t_errors
t_tls
t_unroutable
t_untrusted
t_deny
# KEEP_LOGS=DIR keeps the logs and what the queues held, for a post-mortem
if [ -n "${KEEP_LOGS:-}" ]; then
	mkdir -p "$KEEP_LOGS" && cp "$work"/*.log "$work"/*.tsv "$work"/*.jsonl "$rdir"/log/*.log "$KEEP_LOGS"/ 2>/dev/null
fi

[ "$failures" -eq 0 ]
