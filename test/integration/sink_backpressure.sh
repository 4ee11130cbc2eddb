#!/usr/bin/env bash
# test/integration/sink_backpressure.sh — a delivery sink that is down does
# not make the relay buffer without limit: above --max-in-flight it stops
# reading the stream (the WAL waits on the server), nothing is confirmed
# that was not delivered, and when the sink comes back every event arrives,
# in order per subject, and the slot catches up. Also: a configured sink
# that cannot be opened dead-letters what is routed to it instead of losing
# it, and its events can be redelivered once it is fixed.
#
# PostgreSQL on 25436, the webhook receiver on 25437.
set -uo pipefail

. "$(dirname "$0")/lib.sh"
it_init backpressure 25436
HOOK_PORT=25437
# sinks from the database may only name variables with the relay's prefix
export ORDERSYNC_BP_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
BP_SECRET=$ORDERSYNC_BP_SECRET
rss_kb() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

psql -X -q -c "CREATE EXTENSION ordersync" >"$work/setup.log" 2>&1 || {
	cat "$work/setup.log"
	echo "FAIL: integration/backpressure-setup (CREATE EXTENSION)"
	exit 1
}
new_slot it_bp

t_backpressure() {
	local name=sink_down_pauses_stream_bounded_memory start end rc peak paused res i
	sql "SELECT ordersync.add_sink('hook', 'http://127.0.0.1:$HOOK_PORT/hook',
		'{\"secret_env\": \"ORDERSYNC_BP_SECRET\", \"max_attempts\": 100000, \"backoff_min_ms\": 20, \"backoff_max_ms\": 200}')" >/dev/null
	sql "SELECT ordersync.add_route('hook', '*')" >/dev/null
	start=$(cur_lsn)
	# the receiver is not there: every attempt is refused
	start_relay bp --slot=it_bp --max-in-flight=1 --sink=file:"$work/ref.jsonl"
	# 40 transactions of 1,000 events of ~400 bytes: 16 MB, far above 1 MB in flight
	for i in $(seq 40); do
		sql "SELECT count(pg_logical_emit_message(true, 'ordersync', json_build_object(
			'type', 'order.paid', 'subject', 'order/' || (g % 97),
			'data', json_build_object('n', $i * 100000 + g, 'pad', repeat('x', 300)))::text))
			FROM generate_series(1, 1000) g" >/dev/null
	done
	end=$(cur_lsn)
	for i in $(seq 100); do grep -q "pausing the stream" "$work/bp.log" && break; sleep 0.1; done
	sleep 2
	paused=$(grep -c "pausing the stream" "$work/bp.log")
	peak=$(rss_kb "$RELAY")
	res=$(sql "SELECT confirmed_flush_lsn < '$end' FROM pg_replication_slots WHERE slot_name = 'it_bp'")
	if [ "$paused" -lt 1 ] || [ "$res" != t ] || [ "$peak" -gt 65536 ]; then
		fail $name "paused=$paused not_confirmed=$res peak_rss=${peak}kB" "$(tail -5 "$work/bp.log")"
		return
	fi
	# the sink comes back: everything flows, the slot catches up
	recv_start recv $HOOK_PORT "$BP_SECRET" || { fail $name "receiver did not start"; return; }
	if ! wait_confirmed it_bp "$end" 120; then
		fail $name "not confirmed after the sink came back" "$(tail -5 "$work/bp.log")"
		return
	fi
	peak=$(rss_kb "$RELAY")
	res=$(check delivered "$work/ref.jsonl" "$work/recv.events" "$start" "$end" '*' exact)
	rc=$?
	if [ $rc -eq 0 ] && [ "$peak" -le 65536 ]; then
		pass $name
		echo "  $res; peak RSS ${peak} kB with --max-in-flight=1"
	else
		fail $name "$res" "peak_rss=${peak}kB"
	fi
	kill "$RELAY" 2>/dev/null
	wait_exit "$RELAY" 20
	sql "SELECT ordersync.drop_sink('hook')" >/dev/null
}

t_broken_sink() {
	local name=unopenable_sink_dead_letters_then_redelivers start end dl n rc res
	# the secret's variable is not set in the relay's environment
	sql "SELECT ordersync.add_sink('nosecret', 'http://127.0.0.1:$HOOK_PORT/other',
		'{\"secret_env\": \"ORDERSYNC_BP_SECRET_NOT_SET\"}')" >/dev/null
	sql "SELECT ordersync.add_route('nosecret', 'order.cancelled')" >/dev/null
	start=$(cur_lsn)
	start_relay broken --slot=it_bp --sink=file:"$work/ref2.jsonl"
	sql "SELECT pg_logical_emit_message(true, 'ordersync', '{\"type\":\"order.cancelled\",\"subject\":\"order/5\",\"data\":{\"order_id\":5}}')" >/dev/null
	end=$(cur_lsn)
	wait_confirmed it_bp "$end" 30
	n=$(sql "SELECT count(*) FROM ordersync.dead_letter WHERE sink = 'nosecret' AND error LIKE '%ORDERSYNC_BP_SECRET_NOT_SET%not set%'")
	grep -q "ORDERSYNC_BP_SECRET_NOT_SET" "$work/broken.log"
	rc=$?
	if [ "$n" != 1 ] || [ $rc -ne 0 ]; then
		fail $name "dead letters=$n" "$(grep -E 'ERROR|WARN' "$work/broken.log" | head -3)"
		return
	fi
	# fixed: the same sink, now with a secret the relay has; redeliver
	kill "$RELAY"
	wait_exit "$RELAY" 20
	sql "SELECT ordersync.drop_sink('nosecret'); SELECT ordersync.add_sink('nosecret', 'http://127.0.0.1:$HOOK_PORT/other', '{\"secret_env\": \"ORDERSYNC_BP_SECRET\"}')" >/dev/null
	dl=$(sql "SELECT id FROM ordersync.dead_letter WHERE sink = 'nosecret'")
	start_relay broken --slot=it_bp --sink=file:"$work/ref2.jsonl"
	res=$(sql "SELECT ordersync.redeliver($dl)")
	end=$(cur_lsn)
	wait_confirmed it_bp "$end" 30
	if python3 -c 'import json, sys
evs = [json.loads(l) for l in open(sys.argv[1])]
sys.exit(0 if any(e["id"] == sys.argv[2] and e["subject"] == "order/5" and e["data"] == {"order_id": 5} for e in evs) else 1)' "$work/recv.events" "$res"; then
		pass $name
	else
		fail $name "redelivered event $res not at the receiver" "$(tail -3 "$work/broken.log")"
	fi
	kill "$RELAY" 2>/dev/null
	wait_exit "$RELAY" 20
}

t_backpressure
t_broken_sink
recv_kill recv
[ $failures -eq 0 ]
