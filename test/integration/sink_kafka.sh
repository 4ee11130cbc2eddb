#!/usr/bin/env bash
# test/integration/sink_kafka.sh — the Kafka sink against a real PostgreSQL
# 15 and librdkafka's mock cluster (kafka_mock.c, 3 brokers, topic "orders"
# with 4 partitions), read back with kcat: all brokers down for longer than
# the sink's timeout_ms while orders keep coming, produce errors and one
# broker down in the middle of a stream, a refused batch that becomes dead
# letters and is redelivered, kill -9 of the relay with records in flight,
# a fatal idempotent-producer error, a full librdkafka queue (--sink on the
# command line), and configuration mistakes. And what the database may not
# configure: sinks written straight into ordersync.sink by a superuser with a
# kinit command, a plugin library, GSSAPI by default or TLS checks off are
# refused without running or loading anything (marker files stay absent),
# their events become dead letters with the reason and the relay goes on;
# brokers named by a host name whose addresses are in --deny-networks get no
# connection (the connect-time check). About 45 s.
#
# Orders come from the shared producer (orders.sql), and what reached Kafka
# is compared by the shared checker (check.py kafka) with what the relay's
# file sink wrote for the same slot (every event, in commit order): every event present (by id,
# duplicates counted), nothing else, value identical to the file's line,
# key = subject, ce_id/ce_type headers, each key in one partition, and per
# key the first occurrences in commit order (event id "<commit LSN>/<n>").
# The slot must not move past events Kafka has not acknowledged.
#
# Prints "PASS: integration/kafka_<name>" / "FAIL: ..." per test; exits
# non-zero on any failure. Must run as root. Port 25452 (PostgreSQL); the
# mock brokers listen on random ports of 127.0.0.1. ORDERSYNCD may point
# at the binary.
set -uo pipefail

. "$(dirname "$0")/lib.sh"
it_init sink_kafka 25452

# ---- the mock cluster ------------------------------------------------------
if ! cc -O2 -o "$work/kafka_mock" "$here/kafka_mock.c" -lrdkafka 2>"$work/mock-build.log"; then
	cat "$work/mock-build.log"
	echo "FAIL: integration/kafka-setup (building kafka_mock.c)"
	exit 1
fi
coproc MOCK { exec "$work/kafka_mock" 3 2>"$work/mock.err"; }
# SIGTERM: it exits 0 (no "Killed" line from the shell)
cleanups+=("kill -TERM $MOCK_PID")
if ! read -r -t 10 BOOT <&"${MOCK[0]}" || [[ "$BOOT" != 127.0.0.1:* ]]; then
	echo "FAIL: integration/kafka-setup (mock cluster did not start: $(cat "$work/mock.err"))"
	exit 1
fi
# mock COMMAND...: one command to the mock cluster, 0 when it answered ok
mock() {
	local ans
	echo "$*" >&"${MOCK[1]}"
	read -r -t 10 ans <&"${MOCK[0]}" && [ "$ans" = ok ] && return 0
	echo "mock: $* -> ${ans:-no answer}" >&2
	return 1
}
mock create-topic orders 4 3 || exit 1
# kread FILE: the topic as kcat -J lines (until its end)
kread() { timeout 20 kcat -b "$BOOT" -C -t orders -e -q -J >"$1" 2>"$work/kcat.err"; }

if ! psql -X -q -c "CREATE EXTENSION ordersync" >"$work/setup.log" 2>&1 ||
	! it_producer >>"$work/setup.log" 2>&1; then
	cat "$work/setup.log"
	echo "FAIL: integration/kafka-setup (extension)"
	exit 1
fi

# kcheck REF KAFKA L0 E exact|atleast [DEAD_LETTER_IDS...]: check.py kafka (lib.sh)
kcheck() { check kafka "$@"; }

relay() { start_relay main --slot=kq --sink=file:"$work/all.jsonl" --status-interval=1; }
# One attempt = 1.5 s of librdkafka retrying by itself. One request in
# flight per broker: librdkafka 2.0.2's mock cluster does not check the
# idempotent producer's sequence numbers, so with several in flight it takes
# a batch behind a refused one (a real broker answers
# OUT_OF_ORDER_SEQUENCE_NUMBER) and librdkafka then counts the refused batch
# as written: losses and reordering that are the mock's, not the relay's.
KOPTS='{"timeout_ms":1500,"backoff_min_ms":100,"backoff_max_ms":400,"max_attempts":1000,
        "kafka":{"linger.ms":2,"max.in.flight.requests.per.connection":1}}'

new_slot kq
sql "SELECT ordersync.add_sink('kafka', 'kafka://$BOOT/orders', '$KOPTS');
     SELECT ordersync.add_route('kafka', '*')" >/dev/null
relay

# ---- 1. plain delivery: every event once, in order, slot confirmed ---------
t_basic() {
	local name=kafka_basic l0 e res
	l0=$(cur_lsn)
	sql "CALL public.it_orders('b', 40, 1)" >/dev/null
	e=$(cur_lsn)
	if ! wait_confirmed kq "$e" 20; then
		fail $name "slot not confirmed to $e within 20 s (at $(confirmed kq))" "$(tail -5 "$work/main.log")"
		return
	fi
	kread "$work/k1.json"
	res=$(kcheck "$work/all.jsonl" "$work/k1.json" "$l0" "$e" exact)
	# 40 created + 40 reserved + 3 x 40 status changes, plus stock events
	if [[ "$res" == ok* ]] && [ "$(echo "$res" | cut -d' ' -f2)" -ge 200 ]; then
		pass $name
		echo "  events subjects duplicates: ${res#ok }"
	else
		fail $name "$res" "$(grep -m3 -E 'WARN|ERROR' "$work/main.log")"
	fi
}

# ---- 2. every broker down longer than timeout_ms, orders keep coming: ----
#         the slot waits, the relay retries, then everything arrives in
#         order per key
t_outage() {
	local name=kafka_outage l0 e held prod res retries
	l0=$(cur_lsn)
	mock broker-down -1
	psql -X -q -c "CALL public.it_orders('out', 30, 1, 0, 25)" >"$work/out-prod.log" 2>&1 &
	prod=$!
	pids+=("$prod")
	sleep 2.5
	held=$(sql "SELECT confirmed_flush_lsn <= '$l0' FROM pg_replication_slots WHERE slot_name = 'kq'")
	mock broker-up -1
	wait "$prod"
	e=$(cur_lsn)
	if ! wait_confirmed kq "$e" 30; then
		fail $name "slot not confirmed to $e within 30 s after the brokers came back (at $(confirmed kq))" \
			"$(tail -5 "$work/main.log")"
		return
	fi
	kread "$work/k2.json"
	res=$(kcheck "$work/all.jsonl" "$work/k2.json" "$l0" "$e" atleast)
	retries=$(grep -c 'sink "kafka".*did not acknowledge the event within timeout_ms.*retrying' "$work/main.log")
	if [ "$held" = t ] && [[ "$res" == ok* ]] && [ "$retries" -ge 1 ]; then
		pass $name
		echo "  events subjects duplicates: ${res#ok }"
	else
		fail $name "slot held while brokers were down: $held (want t)" "delivery: $res" \
			"relay retries after timeout_ms logged: $retries (want >= 1)" \
			"$(grep -m3 -E 'WARN|ERROR' "$work/main.log")"
	fi
}

# ---- 3. produce errors and one broker down in the middle of a stream -------
t_errors() {
	local name=kafka_errors l0 e prod res ok=1
	l0=$(cur_lsn)
	psql -X -q -c "CALL public.it_orders('err', 40, 1, 0, 15)" >"$work/err-prod.log" 2>&1 &
	prod=$!
	pids+=("$prod")
	sleep 0.3
	# 6 NOT_LEADER_FOR_PARTITION, 7 REQUEST_TIMED_OUT, -195 dropped connection:
	# librdkafka retries these by itself, in order
	mock produce-errors 20 6 || ok=0
	sleep 0.3
	mock produce-errors 10 7 || ok=0
	mock produce-errors 3 -195 || ok=0
	sleep 0.3
	# longer than timeout_ms: its partitions' records come back to the relay
	mock broker-down 2 || ok=0
	sleep 2.2
	mock broker-up 2 || ok=0
	wait "$prod"
	e=$(cur_lsn)
	if ! wait_confirmed kq "$e" 30; then
		fail $name "slot not confirmed to $e within 30 s (at $(confirmed kq))" "$(tail -5 "$work/main.log")"
		return
	fi
	kread "$work/k3.json"
	res=$(kcheck "$work/all.jsonl" "$work/k3.json" "$l0" "$e" atleast)
	if [ $ok = 1 ] && [[ "$res" == ok* ]]; then
		pass $name
		echo "  events subjects duplicates: ${res#ok }"
	else
		fail $name "mock commands ok: $ok" "delivery: $res" "$(grep -m3 -E 'WARN|ERROR' "$work/main.log")"
	fi
}

# ---- 4. a refused batch (authorization) becomes dead letters at once, ----
#         not retried; the rest flows; redeliver() brings one back
t_dead_letter() {
	local name=kafka_dead_letter l0 e res dl ids dlid rid prod
	l0=$(cur_lsn)
	sql "SELECT ordersync.place_order('web', 'dl-0', '[{\"sku\":\"SKU-1\",\"qty\":1,\"price\":\"1.00\"}]')" >/dev/null
	e=$(cur_lsn)
	wait_confirmed kq "$e" 20
	l0=$(cur_lsn)
	# small requests (orders trickle in): the refusal hits the first one only
	psql -X -q -c "CALL public.it_orders('dl', 10, 1, 0, 20)" >"$work/dl-prod.log" 2>&1 &
	prod=$!
	pids+=("$prod")
	sleep 0.2
	mock produce-errors 1 29
	wait "$prod"
	e=$(cur_lsn)
	if ! wait_confirmed kq "$e" 20; then
		fail $name "slot not confirmed to $e within 20 s (at $(confirmed kq))" "$(tail -5 "$work/main.log")"
		return
	fi
	dl=$(sql "SELECT count(*) || ' ' || count(*) FILTER (WHERE attempts = 1 AND error LIKE '%TOPIC_AUTHORIZATION_FAILED%WRITE on the topic%')
	          FROM ordersync.dead_letter WHERE sink = 'kafka'")
	mapfile -t ids < <(sql "SELECT event_id FROM ordersync.dead_letter WHERE sink = 'kafka' ORDER BY id")
	kread "$work/k4.json"
	res=$(kcheck "$work/all.jsonl" "$work/k4.json" "$l0" "$e" exact "${ids[@]}")
	# librdkafka takes the topic for unauthorized until its next metadata
	# refresh: what is produced meanwhile is refused at once, too
	if [ "${dl%% *}" -lt 1 ] || [ "$dl" != "${dl%% *} ${dl%% *}" ] || [[ "$res" != ok* ]] ||
		[ "${dl%% *}" -ge "$(echo "$res" | cut -d' ' -f2)" ]; then
		fail $name "dead letters (all, authorization with hint, 1 attempt): $dl" "delivery of the rest: $res" \
			"$(grep -m3 -E 'WARN|ERROR' "$work/main.log")"
		return
	fi
	dlid=$(sql "SELECT min(id) FROM ordersync.dead_letter WHERE sink = 'kafka'")
	rid=$(sql "SELECT ordersync.redeliver($dlid)")
	e=$(cur_lsn)
	wait_confirmed kq "$e" 20
	kread "$work/k4b.json"
	if grep -q "\"ce_id\",\"$rid\"" "$work/k4b.json" && [ "$rid" = "${ids[0]}" ]; then
		pass $name
		echo "  dead letters: ${dl%% *} (event $rid redelivered)"
	else
		fail $name "redeliver($dlid) returned $rid (want ${ids[0]}); in Kafka afterwards: $(grep -c "\"ce_id\",\"$rid\"" "$work/k4b.json")"
	fi
}

# ---- 5. kill -9 of the relay with records in flight: nothing lost ----------
t_kill9() {
	local name=kafka_kill9 l0 e before res prod
	kread "$work/k5pre.json"
	l0=$(cur_lsn)
	# slow brokers: the relay dies with records on the wire and unconfirmed
	mock rtt -1 400
	psql -X -q -c "CALL public.it_orders('k9', 30, 1, 0, 15)" >"$work/k9-prod.log" 2>&1 &
	prod=$!
	pids+=("$prod")
	sleep 1.2
	kill -9 "$RELAY"
	wait "$RELAY" 2>/dev/null
	wait "$prod"
	e=$(cur_lsn)
	mock rtt -1 0
	kread "$work/k5a.json"
	before=$(kcheck "$work/all.jsonl" "$work/k5a.json" "$l0" "$e" atleast)
	relay
	if ! wait_confirmed kq "$e" 30; then
		fail $name "slot not confirmed to $e within 30 s after the restart" "$(tail -5 "$work/main.log")"
		return
	fi
	kread "$work/k5.json"
	res=$(kcheck "$work/all.jsonl" "$work/k5.json" "$l0" "$e" atleast)
	# before the restart some, not all, had arrived (or the kill proved nothing)
	if [[ "$res" == ok* ]] && [[ "$before" == *" of "*" events missing"* ]] &&
		[ "$(grep -c . "$work/k5a.json")" -gt "$(grep -c . "$work/k5pre.json")" ]; then
		pass $name
		echo "  events subjects duplicates: ${res#ok } (before the restart: ${before%%, e.g.*})"
	else
		fail $name "after the restart: $res" "before it (should miss some events): $before"
	fi
}

# ---- 6. a fatal producer error: a new producer, nothing lost, in order ----
t_fatal() {
	local name=kafka_fatal l0 e prod res fatal
	l0=$(cur_lsn)
	psql -X -q -c "CALL public.it_orders('ft', 20, 1, 0, 10)" >"$work/ft-prod.log" 2>&1 &
	prod=$!
	pids+=("$prod")
	sleep 0.3
	# OUT_OF_ORDER_SEQUENCE_NUMBER on the first request in flight: librdkafka
	# cannot tell what the broker has and stops the idempotent producer
	mock produce-errors 1 45
	wait "$prod"
	e=$(cur_lsn)
	if ! wait_confirmed kq "$e" 30; then
		fail $name "slot not confirmed to $e within 30 s (at $(confirmed kq))" "$(tail -5 "$work/main.log")"
		return
	fi
	kread "$work/k6.json"
	res=$(kcheck "$work/all.jsonl" "$work/k6.json" "$l0" "$e" atleast)
	fatal=$(grep -c 'kafka sink "kafka": the producer stopped with a fatal error.*starting a new producer' "$work/main.log")
	if [[ "$res" == ok* ]] && [ "$fatal" -ge 1 ]; then
		pass $name
		echo "  events subjects duplicates: ${res#ok }"
	else
		fail $name "delivery: $res" "fatal errors logged: $fatal (want >= 1)" "$(grep -m3 -E 'ERROR' "$work/main.log")"
	fi
}

# ---- 7. --sink on the command line with a tiny librdkafka queue: the sink --
#         waits for room (queue full) instead of failing events
t_queue_full() {
	local name=kafka_queue_full l0 e res main=$RELAY
	mock create-topic small 2 1 || return
	new_slot kq_small
	l0=$(cur_lsn)
	sql "CALL public.it_orders('qf', 30, 1)" >/dev/null
	e=$(cur_lsn)
	start_relay small --slot=kq_small --sink=file:"$work/small.jsonl" --sink="kafka://$BOOT/small" \
		--sink-options='{"kafka":{"queue.buffering.max.messages":5,"linger.ms":20}}' --endpos="$e"
	wait_exit "$RELAY" 30
	RELAY=$main
	timeout 20 kcat -b "$BOOT" -C -t small -e -q -J >"$work/k7.json" 2>>"$work/kcat.err"
	res=$(kcheck "$work/small.jsonl" "$work/k7.json" "$l0" "$e" exact)
	if [ "$WRC" = 0 ] && [[ "$res" == ok* ]] && ! grep -q -E 'WARNING|ERROR' "$work/small.log"; then
		pass $name
		echo "  events subjects duplicates: ${res#ok }"
	else
		fail $name "exit $WRC (want 0 at --endpos)" "delivery: $res" "$(grep -m3 -E 'WARN|ERROR' "$work/small.log")"
	fi
	drop_slot kq_small
}

# ---- 8. configuration mistakes are refused with what to do ----------------
t_config() {
	local name=kafka_config out bad=()
	# expect OPTIONS-JSON URI TEXT: the relay refuses to start and says TEXT
	expect() {
		out=$("$ORDERSYNCD" --dbname="$CONN" --slot=kq_none --sink="$2" --sink-options="$1" 2>&1)
		[ $? = 2 ] && [[ "$out" == *"$3"* ]] || bad+=("$2 $1: $(echo "$out" | tail -1)")
	}
	expect '{}' "kafka://$BOOT" "names no topic"
	expect '{}' "kafka://$BOOT/" "names no topic"
	expect '{}' "kafka:///orders" "names no broker"
	expect '{}' "kafka://$BOOT/bad topic" "not a valid topic name"
	expect '{}' "kafka://u:pw@$BOOT/orders" "contains a password"
	expect '{"kafka":{"sasl.password":"x"}}' "kafka://$BOOT/orders" "password_env"
	expect '{"kafka":{"ssl.key.pem":"x"}}' "kafka://$BOOT/orders" "must not hold secrets"
	expect '{"kafka":{"enable.idempotence":false}}' "kafka://$BOOT/orders" "must stay true"
	expect '{"kafka":{"acks":1}}' "kafka://$BOOT/orders" "must stay \"all\""
	expect '{"kafka":{"message.timeout.ms":5000}}' "kafka://$BOOT/orders" "\"timeout_ms\" instead"
	expect '{"kafka":{"no.such.property":1}}' "kafka://$BOOT/orders" "No such configuration property"
	expect '{"kafka":{"linger.ms":"soon"}}' "kafka://$BOOT/orders" "linger.ms"
	expect '{"kafka":["x"]}' "kafka://$BOOT/orders" "must be an object"
	expect '{"password_env":"KQ_NO_SUCH_VAR"}' "kafka://$BOOT/orders" "KQ_NO_SUCH_VAR"
	KQ_PW=secret expect '{"password_env":"KQ_PW"}' "kafka://$BOOT/orders" "security.protocol"
	if [ ${#bad[@]} = 0 ]; then
		pass $name
	else
		fail $name "${bad[@]}"
	fi
}

# ---- 9. what the database may not configure --------------------------------
# psqld DB ARGS...: psql on another database of the cluster

t_untrusted() {
	local name=kafka_untrusted rows pid bad=()
	# a plugin that leaves a marker when it is loaded
	printf '#include <stdio.h>\n__attribute__((constructor)) static void loaded(void)\n{ FILE *f = fopen(MARKER, "w"); if (f) fclose(f); }\n' >"$work/evil.c"
	if ! cc -shared -fPIC -DMARKER="\"$work/plugin.marker\"" -o "$work/evil.so" "$work/evil.c" ||
		! new_db kq_policy; then
		fail $name "setup (plugin or database kq_policy) failed"
		return
	fi
	psqld kq_policy >/dev/null <<SQL
INSERT INTO ordersync.sink (name, uri, options) VALUES
	('kinit', 'kafka://$BOOT/orders', '{"kafka": {"security.protocol": "sasl_plaintext",
		"sasl.mechanisms": "GSSAPI", "sasl.kerberos.kinit.cmd": "touch $work/kinit.marker"}}'),
	('plugin', 'kafka://$BOOT/orders', '{"kafka": {"plugin.library.paths": "$work/evil.so"}}'),
	('gssapi', 'kafka://$BOOT/orders', '{"kafka": {"security.protocol": "sasl_plaintext"}}'),
	('noverify', 'kafka://$BOOT/orders', '{"kafka": {"security.protocol": "ssl",
		"enable.ssl.certificate.verification": false}}');
INSERT INTO ordersync.route (sink, pattern) SELECT name, '*' FROM ordersync.sink;
SQL
	start_relay untrusted --slot=kq_policy --dbname="host=$cl port=$PORT user=postgres dbname=kq_policy" \
		--status-interval=1
	pid=$RELAY
	order kq_policy
	rows=$(dead_letters kq_policy 4)
	# librdkafka would have run kinit or loaded the plugin by now
	sleep 1
	expect_reasons "$rows" <<'EOF_WANT'
kinit|kafka property "sasl.kerberos.kinit.cmd" is not allowed for a sink from the database
plugin|kafka property "plugin.library.paths" is not allowed for a sink from the database
gssapi|security.protocol sasl_plaintext needs "sasl.mechanism"
noverify|"enable.ssl.certificate.verification" = "false" turns off a TLS check
EOF_WANT
	[ -e "$work/kinit.marker" ] && bad+=("the kinit command ran")
	[ -e "$work/plugin.marker" ] && bad+=("the plugin was loaded")
	kill -0 "$pid" 2>/dev/null || bad+=("the relay exited: $(tail -2 "$work/untrusted.log")")
	kill -TERM "$pid" 2>/dev/null
	wait_exit "$pid" 15
	RELAY=$main_relay
	if [ ${#bad[@]} = 0 ]; then
		pass $name
	else
		fail $name "${bad[@]}"
	fi
}

# Brokers named "localhost" in a relay whose --deny-networks holds loopback:
# nothing refuses the name before, the connect hook refuses its addresses.
t_deny() {
	local name=kafka_deny rows pid bad=() local_boot=${BOOT//127.0.0.1/localhost} n
	if ! mock create-topic denied 1 1 || ! new_db kq_deny; then
		fail $name "setup (topic or database kq_deny) failed"
		return
	fi
	psqld kq_deny -c "INSERT INTO ordersync.sink (name, uri, options)
	                  VALUES ('named', 'kafka://$local_boot/denied', '{\"timeout_ms\": 1500}');
	                  INSERT INTO ordersync.route VALUES ('named', '*')" >/dev/null
	start_relay deny --slot=kq_deny --dbname="host=$cl port=$PORT user=postgres dbname=kq_deny" \
		--status-interval=1 --deny-networks=127.0.0.0/8,::1/128 \
		--sink="kafka://$local_boot/denied" --sink-options='{"timeout_ms":1500}'
	pid=$RELAY
	order kq_deny
	rows=$(dead_letters kq_deny 2)
	expect_reasons "$rows" <<EOF_WANT
named|refused to connect to
kafka://$local_boot/denied|refused to connect to
named|, a network ordersyncd never connects to (--deny-networks
EOF_WANT
	n=$(timeout 20 kcat -b "$BOOT" -C -t denied -e -q -J 2>>"$work/kcat.err" | grep -c .)
	[ "$n" = 0 ] || bad+=("topic \"denied\" got $n records")
	kill -0 "$pid" 2>/dev/null || bad+=("the relay exited: $(tail -2 "$work/deny.log")")
	kill -TERM "$pid" 2>/dev/null
	wait_exit "$pid" 15
	RELAY=$main_relay
	if [ ${#bad[@]} = 0 ]; then
		pass $name
	else
		fail $name "${bad[@]}"
	fi
}

t_basic
t_outage
t_errors
t_dead_letter
t_kill9
t_fatal
t_queue_full
t_config
main_relay=$RELAY
t_untrusted
t_deny

kill -TERM "$RELAY" 2>/dev/null
wait_exit "$RELAY" 15
if [ "$WRC" != 0 ]; then
	fail kafka_sigterm "relay exited $WRC on SIGTERM" "$(tail -3 "$work/main.log")"
fi
if [ $failures -gt 0 ] && [ -n "${VERBOSE:-}" ]; then
	tail -40 "$work/main.log"
fi
exit $((failures > 0))
