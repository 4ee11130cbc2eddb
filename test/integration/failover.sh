#!/usr/bin/env bash
# test/integration/failover.sh — a real primary and a streaming standby
# (pg_basebackup -R), the primary dies and the standby is promoted:
# PostgreSQL 15 leaves the relay's logical slot behind. The relay
#   - restarts normally against the same server with its --state-file;
#   - against the promoted standby, exits 2 saying it is another timeline,
#     the slot is gone, what it last confirmed and to rerun with
#     --create-slot, and creates no slot;
#   - with --create-slot, creates the slot and logs the gap report: the LSN
#     range, where the old timeline ended, and the ordersync.history ids
#     that may have been missed, which cover every history row the relay
#     did not relay; then relays what comes next;
#   - refuses a slot dropped on the same server the same way.
# Ports 26070 (primary), 26071 (standby). Must run as root.
set -uo pipefail

. "$(dirname "$0")/lib.sh"
it_init failover 26070 "wal_keep_size = 64MB"
PGB=${ORDERSYNC_PGBIN:-/usr/lib/postgresql/15/bin}
sb="$work/standby"
as_pg() { runuser -u postgres -- "$@"; }
cleanups+=("as_pg $PGB/pg_ctl -D $sb/data -m immediate -w stop")
state="$work/relay.state"

bad=()
t_failover() {
	local name=failover_gap_report rc out log refusal from_id to_id last_before b_first b_last ids
	psql -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION ordersync" >/dev/null && it_producer >/dev/null ||
		{ fail $name "setup: extension and producer"; return; }
	mkdir -p "$sb" && chown postgres: "$sb" && chmod 0755 "$sb"
	if ! as_pg "$PGB/pg_basebackup" -h "$cl" -p 26070 -U postgres -D "$sb/data" -R -X stream \
		>"$work/basebackup.log" 2>&1; then
		fail $name "pg_basebackup: $(tail -3 "$work/basebackup.log")"
		return
	fi
	printf "port = 26071\nunix_socket_directories = '%s'\n" "$sb" | as_pg tee -a "$sb/data/postgresql.conf" >/dev/null
	as_pg "$PGB/pg_ctl" -D "$sb/data" -l "$sb/server.log" -w -t 60 start >/dev/null ||
		{ fail $name "standby start: $(tail -3 "$sb/server.log")"; return; }
	SB="host=$sb port=26071 user=postgres dbname=postgres"

	# 1. the relay on the primary: batch A relayed, its state file written
	start_relay r1 --slot=fo --create-slot --state-file="$state" --sink=file:"$work/a.jsonl"
	sql "CALL public.it_orders('A', 5)"
	wait_confirmed fo "$(cur_lsn)" 30 || bad+=("relay 1 did not confirm batch A: $(tail -3 "$work/r1.log")")
	kill -TERM "$RELAY"; wait_exit "$RELAY" 20
	[ "$WRC" = 0 ] && grep -q '^timeline 1$' "$state" && grep -q '^system_id [0-9]' "$state" ||
		bad+=("relay 1: exit $WRC, state: $(tr '\n' ' ' <"$state" 2>/dev/null)")
	# 2. a plain restart with the state file: nothing to complain about; this
	# relay knows both servers (libpq multi-host, read-write) and stays up
	CONN="host=$cl,$sb port=26070,26071 user=postgres dbname=postgres target_session_attrs=read-write" \
		start_relay r2 --slot=fo --state-file="$state" --sink=file:"$work/a.jsonl"
	local r2=$RELAY
	sql "CALL public.it_orders('A2', 1)"
	wait_confirmed fo "$(cur_lsn)" 30 || bad+=("relay 2 did not confirm")
	! grep -q -E 'WARNING|ERROR' "$work/r2.log" ||
		bad+=("restart with the state file: $(grep -E 'WARNING|ERROR' "$work/r2.log" | head -2)")
	last_before=$(sql "SELECT coalesce(max(id), 0) FROM ordersync.history")

	# 3. batch B is committed, reaches the standby, and is never relayed (relay 2 is stopped)
	sleep 1.2	# its state file catches up (written at most once a second)
	kill -STOP "$r2"
	# its connection ends before batch B, so no byte of B waits in its socket
	sql "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'fo'" >/dev/null
	sql "CALL public.it_orders('B', 4)"
	local lsn_b
	lsn_b=$(cur_lsn)
	for ((i = 0; i < 100; i++)); do
		[ "$(psql -X -A -t -q -d "$SB" -c "SELECT pg_last_wal_replay_lsn() >= '$lsn_b'")" = t ] && break
		sleep 0.1
	done
	b_first=$((last_before + 1))
	b_last=$(sql "SELECT max(id) FROM ordersync.history")
	# 4. the primary dies, the standby is promoted
	as_pg "$PGB/pg_ctl" -D "$cl/data" -m immediate -w stop >/dev/null
	as_pg "$PGB/pg_ctl" -D "$sb/data" -w promote >/dev/null || bad+=("promote failed")
	[ "$(psql -X -A -t -q -d "$SB" -c "SELECT count(*) FROM ordersync.orders WHERE external_id LIKE 'B-%'")" = 4 ] ||
		bad+=("batch B did not reach the standby")

	# 5a. relay 2 reconnects, reaches the new primary, and stops: exit 2 with what happened
	kill -CONT "$r2"
	wait_exit "$r2" 60
	[ "$WRC" = 2 ] && grep -q -F "last streamed from timeline 1" "$work/r2.log" &&
		grep -q -F "rerun with --create-slot" "$work/r2.log" ||
		bad+=("relay 2 after the failover: exit $WRC, $(grep -E 'ERROR' "$work/r2.log" | head -2 | cut -c1-300)")
	# 5b. a new start against the new primary: the same
	CONN=$SB start_relay r3 --slot=fo --state-file="$state" --sink=file:"$work/c.jsonl"
	wait_exit "$RELAY" 30; rc=$WRC
	log=$(cat "$work/r3.log")
	refusal=$(grep -m1 ERROR <<<"$log" | cut -c1-260)
	[ "$rc" = 2 ] || bad+=("without --create-slot: exit $rc, want 2")
	for want in "timeline 2" "last streamed from timeline 1" "does not exist here" \
		"last confirmed $(sed -n 's/^confirmed_lsn //p' "$state")" "rerun with --create-slot" "doc/operations.md"; do
		grep -q -F -- "$want" <<<"$log" || bad+=("without --create-slot the log lacks \"$want\": $(head -c 600 <<<"$log")")
	done
	[ "$(psql -X -A -t -q -d "$SB" -c "SELECT count(*) FROM pg_replication_slots")" = 0 ] ||
		bad+=("a slot was created without --create-slot")

	# 6. --create-slot: the slot, the gap report, and what comes next is relayed
	CONN=$SB start_relay r4 --slot=fo --create-slot --state-file="$state" --sink=file:"$work/c.jsonl"
	for ((i = 0; i < 100; i++)); do
		grep -q 'history rows that may have been missed' "$work/r4.log" 2>/dev/null && break
		sleep 0.1
	done
	log=$(cat "$work/r4.log")
	grep -q -E "gap report: events committed after [0-9A-F]+/[0-9A-F]+ .*timeline 1.* and before [0-9A-F]+/[0-9A-F]+ .*timeline 2" <<<"$log" ||
		bad+=("no LSN range in the gap report: $(grep gap <<<"$log" | head -3)")
	grep -q -E "gap report: timeline 1 ended at [0-9A-F]+/[0-9A-F]+ on this server" <<<"$log" ||
		bad+=("no timeline switch point in the gap report")
	ids=$(sed -n 's/.*history rows that may have been missed: [0-9]* rows, ids \([0-9]*\)\.\.\([0-9]*\).*/\1 \2/p' <<<"$log")
	from_id=${ids% *}
	to_id=${ids#* }
	if [ -z "$ids" ] || [ "$from_id" -gt "$b_first" ] || [ "$to_id" -lt "$b_last" ]; then
		bad+=("history ids reported \"$ids\" do not cover batch B's rows $b_first..$b_last")
	fi
	psql -X -q -d "$SB" -c "CALL public.it_orders('C', 3)" >/dev/null
	local end
	end=$(psql -X -A -t -q -d "$SB" -c "SELECT pg_current_wal_lsn()")
	for ((i = 0; i < 100; i++)); do
		[ "$(psql -X -A -t -q -d "$SB" -c "SELECT coalesce(confirmed_flush_lsn >= '$end', false) FROM pg_replication_slots WHERE slot_name = 'fo'")" = t ] && break
		sleep 0.1
	done
	kill -TERM "$RELAY"; wait_exit "$RELAY" 20
	out=$(grep -c '"ordersync.order.created"' "$work/c.jsonl" 2>/dev/null)
	[ "$WRC" = 0 ] && [ "$out" = 3 ] || bad+=("after the failover: exit $WRC, $out order.created events (want 3: batch C)")
	grep -q '^timeline 2$' "$state" || bad+=("the state file was not moved to timeline 2")
	# 7. a dropped slot (same server) is refused the same way, not recreated
	psql -X -q -d "$SB" -c "SELECT pg_drop_replication_slot('fo')" >/dev/null
	CONN=$SB start_relay r5 --slot=fo --state-file="$state" --sink=file:"$work/c.jsonl"
	wait_exit "$RELAY" 30
	[ "$WRC" = 2 ] && grep -q -F 'replication slot "fo" no longer exists on this server' "$work/r5.log" &&
		grep -q -F "it was dropped" "$work/r5.log" ||
		bad+=("dropped slot: exit $WRC, $(grep ERROR "$work/r5.log" | cut -c1-300)")
	if [ ${#bad[@]} = 0 ]; then
		pass $name
		echo "  without --create-slot: $refusal..."
		grep -o 'gap report: .*' <<<"$log" | sed 's/^/  /'
		echo "  history ids reported $from_id..$to_id, batch B's rows $b_first..$b_last"
	else
		fail $name "${bad[@]}"
	fi
}

t_failover
[ $failures = 0 ]
