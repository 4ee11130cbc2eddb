#!/usr/bin/env bash
# test/integration/sink_nats.sh — the NATS JetStream sink against a real
# PostgreSQL 15 and a real nats-server (Debian's, a throwaway JetStream
# server of our own: nats.sh).
#
#   nats_delivery       a sink on the command line (nats://user@host/ordersync,
#                       password by reference, option stream) beside the
#                       relay's file sink: orders placed and paid/shipped
#                       while (1) all is up, (2) nats-server is frozen (acks
#                       overdue: the events go back, are published again),
#                       thawed, stopped and started again, (3) the relay is killed -9 with the
#                       server frozen (events published, unacknowledged) and
#                       started again. The stream (duplicate window 120 s)
#                       then holds every event exactly once: the shared
#                       checker (check.py nats) compares it with the file
#                       sink: every id once, in commit order per subject,
#                       subject = ordersync.<type>, Nats-Msg-Id = event id,
#                       payload = the file's line, no dead letter.
#   nats_database       a sink from the database (add_sink with nats://, route
#                       order.paid) delivers exactly the paid events to its
#                       stream; add_sink refuses an option nats sinks do not
#                       have and a wildcard prefix; a row written straight
#                       into ordersync.sink naming a variable outside
#                       ORDERSYNC_* is refused by the relay (dead letter).
#   nats_nostream       a prefix that no stream takes: a clear message that
#                       says how to create a stream, nothing confirmed.
#
# Prints "PASS: integration/nats_<name>" / "FAIL: ..."; exits non-zero on any
# failure. Must run as root. Ports: 25530 (PostgreSQL), 25532 (NATS) and
# 25533 (its monitoring). ORDERSYNCD may point at the binary.
set -uo pipefail

. "$(dirname "$0")/lib.sh"
it_init sink_nats 25530
NPORT=25532
NATS="$here/nats.sh"
ndir="$work/nats"
export NATS_PASSWORD
NATS_PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
# sinks from the database may only name variables with the relay's prefix
export ORDERSYNC_NATS_PASSWORD=$NATS_PASSWORD
cleanups+=('"$NATS" kill "$ndir"')
URI="nats://ordersync@127.0.0.1:$NPORT"

js() { "$NATS" js "$ndir" "$@"; }
nats_start() { "$NATS" start "$ndir" $NPORT ordersync "$NATS_PASSWORD" >>"$work/nats.log" 2>&1; }

# natsdump STREAM: every message of the stream, in order: seq, subject,
# Nats-Msg-Id, Content-Type, payload (tabs); the checker reads it
cat >"$work/natsdump.c" <<'C'
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>

int
main(int argc, char **argv)
{
	natsOptions *o = NULL;
	natsConnection *nc = NULL;
	jsCtx	   *js = NULL;
	jsStreamInfo *si = NULL;
	jsErrCode	jerr = 0;

	if (argc != 3 || natsOptions_Create(&o) != NATS_OK || natsOptions_SetURL(o, argv[1]) != NATS_OK ||
		natsOptions_SetUserInfo(o, "ordersync", getenv("NATS_PASSWORD")) != NATS_OK ||
		natsConnection_Connect(&nc, o) != NATS_OK || natsConnection_JetStream(&js, nc, NULL) != NATS_OK ||
		js_GetStreamInfo(&si, js, argv[2], NULL, &jerr) != NATS_OK)
	{
		fprintf(stderr, "natsdump: cannot read stream %s: %s\n", argc > 2 ? argv[2] : "?",
				nats_GetLastError(NULL));
		return 1;
	}
	for (uint64_t seq = si->State.FirstSeq; si->State.Msgs > 0 && seq <= si->State.LastSeq; seq++)
	{
		natsMsg    *m = NULL;
		const char *id = "-", *ct = "-";

		if (js_GetMsg(&m, js, argv[2], seq, NULL, &jerr) != NATS_OK)
			continue;
		natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
		natsMsgHeader_Get(m, "Content-Type", &ct);
		printf("%llu\t%s\t%s\t%s\t%.*s\n", (unsigned long long) seq, natsMsg_GetSubject(m), id, ct,
			   natsMsg_GetDataLength(m), natsMsg_GetData(m));
		natsMsg_Destroy(m);
	}
	return 0;
}
C
if ! cc -O1 -o "$work/natsdump" "$work/natsdump.c" -lnats >"$work/natsdump.log" 2>&1; then
	cat "$work/natsdump.log"
	echo "FAIL: integration/nats-setup (natsdump: install libnats-dev)"
	exit 1
fi
dump() { "$work/natsdump" "nats://127.0.0.1:$NPORT" "$1"; }

# the server starts while the database is set up
nats_start &
nats_boot=$!
if ! psql -X -q -c "CREATE EXTENSION ordersync" >"$work/setup.log" 2>&1 ||
	! it_producer >>"$work/setup.log" 2>&1; then
	cat "$work/setup.log"
	echo "FAIL: integration/nats-setup (extension)"
	exit 1
fi
if ! wait $nats_boot; then
	cat "$work/nats.log"
	echo "FAIL: integration/nats-setup (nats-server did not start)"
	exit 1
fi
if ! js add-stream ORDERS 'ordersync.>' 120 || ! js add-stream PAID 'dbsink.>' 120; then
	echo "FAIL: integration/nats-setup (streams)"
	exit 1
fi

# ---- 1. outages of the server and of the relay: every event once, in order --
t_delivery() {
	local name=nats_delivery end res bg unconf restarts given
	new_slot nats_main
	local opts='{"password_env":"NATS_PASSWORD","stream":"ORDERS","backoff_min_ms":100,"backoff_max_ms":1000,"timeout_ms":1500,"connect_timeout_ms":1000}'
	start_relay main --slot=nats_main --sink=file:"$work/all.jsonl" --status-interval=1 \
		--sink="$URI/ordersync" --sink-options="$opts"
	sql "CALL public.it_orders('up', 30, 3)"
	# the server freezes while orders are placed (acks overdue: the sink
	# gives its connection up and the events back, and cannot connect
	# again), thaws (storing what it had read: the copies published again
	# later are duplicates), stops politely and comes back
	sql "CALL public.it_orders('stop', 60, 3, 0, 20)" &
	bg=$!
	sleep 0.8
	kill -STOP "$(cat "$ndir/nats.pid")"
	sleep 2.5
	kill -CONT "$(cat "$ndir/nats.pid")"
	"$NATS" restart "$ndir" >>"$work/nats.log" 2>&1 ||
		fail $name "nats-server did not start again: $(tail -3 "$work/nats.log")"
	wait $bg
	# the relay is killed -9 mid-stream; the server is frozen meanwhile so
	# that published events are unacknowledged at the kill (it stores them
	# when it thaws: the restarted relay publishes them again, and the
	# duplicate window must drop those copies)
	sql "CALL public.it_orders('relay', 60, 3, 0, 20)" &
	bg=$!
	sleep 0.5
	kill -STOP "$(cat "$ndir/nats.pid")"
	sleep 0.6
	unconf=$(sql "SELECT confirmed_flush_lsn < pg_current_wal_lsn() FROM pg_replication_slots WHERE slot_name = 'nats_main'")
	kill -9 "$RELAY"
	wait "$RELAY" 2>/dev/null
	kill -CONT "$(cat "$ndir/nats.pid")"
	start_relay main --slot=nats_main --sink=file:"$work/all.jsonl" --status-interval=1 \
		--sink="$URI/ordersync" --sink-options="$opts"
	wait $bg
	end=$(cur_lsn)
	if ! wait_confirmed nats_main "$end" 40; then
		fail $name "slot not confirmed to $end within 40 s (at $(confirmed nats_main))" \
			"$(tail -5 "$work/main.log")"
		return
	fi
	dump ORDERS >"$work/orders.tsv" || { fail $name "cannot read stream ORDERS"; return; }
	res=$(check nats "$work/all.jsonl" "$work/orders.tsv" ordersync '*' 2>&1)
	restarts=$(grep -c 'nats sink ".*": connected to' "$work/main.log")
	given=$(grep -o 'no JetStream ack from .*([0-9]* events given back)' "$work/main.log" | grep -o '[0-9]* events' | head -1)
	if [[ "$res" == ok* ]] && [ "$unconf" = t ] && [ "$restarts" -ge 1 ] && [ "${given%% *}" -gt 0 ] 2>/dev/null &&
		[ "$(sql "SELECT count(*) FROM ordersync.dead_letter")" = 0 ] &&
		[ "$(sql "SELECT count(*) FROM ordersync.orders")" = 150 ]; then
		echo "  $res; $(wc -l <"$work/orders.tsv") messages in the stream; given back when the server froze: $given"
		pass $name
	else
		fail $name "check: $res" "reconnects logged: $restarts, unacknowledged at the relay's kill: $unconf," \
			"given back when the server froze: ${given:-none}" \
			"dead letters: $(sql "SELECT count(*) FROM ordersync.dead_letter")" \
			"$(grep -E 'ERROR|WARN' "$work/main.log" | tail -5)"
	fi
	kill -TERM "$RELAY" 2>/dev/null
	wait_exit "$RELAY" 10
	drop_slot nats_main
}

# ---- 2. a sink from the database, and what it may not configure ------------
t_database() {
	local name=nats_database end res out rows bad=()
	new_slot nats_db
	sql "SELECT ordersync.add_sink('js', '$URI/dbsink', '{\"password_env\":\"ORDERSYNC_NATS_PASSWORD\",\"stream\":\"PAID\"}');
	     SELECT ordersync.add_route('js', 'order.paid')" >/dev/null ||
		{ fail $name "add_sink refused a nats:// sink"; return; }
	start_relay db --slot=nats_db --sink=file:"$work/db.jsonl" --status-interval=1
	sql "CALL public.it_orders('db', 10, 3)"
	end=$(cur_lsn)
	if ! wait_confirmed nats_db "$end" 20; then
		fail $name "slot not confirmed to $end within 20 s" "$(tail -5 "$work/db.log")"
		return
	fi
	dump PAID >"$work/paid.tsv"
	res=$(check nats "$work/db.jsonl" "$work/paid.tsv" dbsink 'order.paid' 2>&1)
	[[ "$res" == "ok 10 events"* ]] || bad+=("stream PAID: $res")
	kill -TERM "$RELAY" 2>/dev/null
	wait_exit "$RELAY" 10
	# add_sink: an option of another kind, and a wildcard in the prefix
	out=$(psql -X -q -c "SELECT ordersync.add_sink('x', '$URI/dbsink', '{\"verify_peer\": false}')" 2>&1)
	[[ "$out" == *'unknown option "verify_peer" for nats:// sinks'*stream* ]] || bad+=("verify_peer: $out")
	out=$(psql -X -q -c "SELECT ordersync.add_sink('x', '$URI/orders.*', '{}')" 2>&1)
	[[ "$out" == *'invalid nats sink uri'* ]] || bad+=("wildcard prefix: $out")
	# the relay's own check of a row add_sink never saw
	if new_db na_policy; then
		psqld na_policy -c "INSERT INTO ordersync.sink (name, uri, options)
		                    VALUES ('envout', '$URI/dbsink', '{\"password_env\": \"NATS_PASSWORD\"}');
		                    INSERT INTO ordersync.route VALUES ('envout', '*')" >/dev/null
		start_relay untrusted --slot=na_policy --dbname="host=$cl port=$PORT user=postgres dbname=na_policy" \
			--status-interval=1
		order na_policy
		rows=$(dead_letters na_policy 1)
		expect_reasons "$rows" <<'EOF_WANT'
envout|names the environment variable "NATS_PASSWORD", but a sink from the database may only name variables that start with "ORDERSYNC_"
EOF_WANT
		kill -TERM "$RELAY" 2>/dev/null
		wait_exit "$RELAY" 10
	else
		bad+=("setup of database na_policy failed")
	fi
	drop_slot nats_db
	if [ ${#bad[@]} = 0 ]; then
		pass $name
	else
		fail $name "${bad[@]}"
	fi
}

# ---- 3. no stream takes the subjects: say how to make one -------------------
t_nostream() {
	local name=nats_nostream l0 i pid ok=1 msgs=()
	new_slot nats_none
	l0=$(cur_lsn)
	sql "CALL public.it_orders('none', 1, 0)"
	start_relay none --slot=nats_none --status-interval=1 \
		--sink="$URI/nostream" --sink-options='{"password_env":"NATS_PASSWORD"}'
	pid=$RELAY
	for ((i = 0; i < 50; i++)); do
		grep -q 'no JetStream stream takes subject "nostream.order.created"' "$work/none.log" && break
		sleep 0.1
	done
	sleep 1.2 # a status interval: a wrong confirm would show now
	grep -q "no JetStream stream takes subject \"nostream.order.created\".*nats stream add .*--subjects 'nostream.>'" "$work/none.log" ||
		{ ok=; msgs+=("no clear no-stream message: $(grep nostream "$work/none.log" | tail -2)"); }
	[ "$(sql "SELECT confirmed_flush_lsn <= '$l0' FROM pg_replication_slots WHERE slot_name = 'nats_none'")" = t ] ||
		{ ok=; msgs+=("confirmed past the undelivered events: $(confirmed nats_none)"); }
	kill -0 $pid 2>/dev/null || { ok=; msgs+=("the relay exited instead of retrying"); }
	kill -TERM $pid 2>/dev/null
	wait_exit $pid 10
	drop_slot nats_none
	if [ -n "$ok" ]; then
		pass $name
	else
		fail $name "${msgs[@]}"
	fi
}

t_delivery
t_database
t_nostream
if [ -n "${KEEP_LOGS:-}" ]; then
	mkdir -p "$KEEP_LOGS" && cp "$work"/*.log "$work"/*.tsv "$work"/*.jsonl "$ndir"/*.log "$KEEP_LOGS"/ 2>/dev/null
fi

[ "$failures" -eq 0 ]
