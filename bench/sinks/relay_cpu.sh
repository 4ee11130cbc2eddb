#!/usr/bin/env bash
# bench/sinks/relay_cpu.sh — the relay's CPU per event (user+system: perf
# stat's task-clock, or getrusage under another tool) for the file sink and
# the webhook sink, a figure that depends much less on what else the machine
# runs than events/s do, and its syscalls, context switches and page faults
# per event.
#
# EVENTS (default 30000) order.paid events, 5 per transaction, over SUBJECTS
# (default 16) subjects are produced once; each run reads them through a
# copy of one slot made before producing (pg_copy_logical_replication_slot),
# so every run reads the same WAL and the number of runs is not limited by
# max_replication_slots. ROUNDS (default 3) interleaved rounds of
#   ordersyncd --sink=file:...                   (fsynced JSON lines)
#   ordersyncd --sink=http://127.0.0.1:PORT/...  (signed POSTs to the C
#                                                 receiver of webhook.sh)
# each to --endpos. With BASE=/path/to/other/ordersyncd each round runs that
# binary too, right beside ORDERSYNCD: before/after in one run on one WAL;
# BINS="a b c" runs those binaries instead, each in every round.
#
# SINKS (default "file webhook"): the sinks to run.
# Prints per binary and sink the median µs of CPU per event and the median
# wall-clock events/s (the time until the relay exited at --endpos).
# PERF=DIR: one more run per binary and sink under
# `perf record -g --call-graph dwarf`, written to DIR/<bin>.<sink>.data.
# CALLGRIND=1: one more run per binary and sink under valgrind's callgrind,
# printing instructions per event (independent of the machine's load; the
# relay runs about 50 times slower there, so batching differs a little).
# STAT_EVENTS=a,b: more perf events to count (e.g. syscalls:sys_enter_poll),
# printed per run and event on stderr.
# Ports: RC_PG_PORT (default 26200) for PostgreSQL, RC_PORT (26201) for the
# receiver.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
ORDERSYNCD=${ORDERSYNCD:-$root/src/relay/ordersyncd}
BASE=${BASE:-}
EVENTS=${EVENTS:-30000}
SUBJECTS=${SUBJECTS:-16}
ROUNDS=${ROUNDS:-3}
SINKS=${SINKS:-file webhook}
PERF=${PERF:-}
CALLGRIND=${CALLGRIND:-}
PORT=${RC_PG_PORT:-26200}
RPORT=${RC_PORT:-26201}
export WH_SECRET='whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
work=$(mktemp -d /tmp/ordersyncd-bench-cpu.XXXXXX)
chmod 0755 "$work"
cl="$work/cluster"
rpid=
cleanup() {
	[ -n "$rpid" ] && kill -9 "$rpid" 2>/dev/null
	"$root/scripts/cluster.sh" stop "$cl" >/dev/null 2>&1
	[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cc -O2 -std=gnu11 -Wall -Wextra -Werror -o "$work/webhook_receiver" "$root/bench/sinks/webhook_receiver.c" \
	$(pkg-config --cflags --libs libmicrohttpd libcrypto) -lpthread || exit 1
. "$root/bench/sinks/lib.sh"
sinks_cluster "$cl" "$PORT" || exit 1
sql "SELECT pg_create_logical_replication_slot('tmpl', 'wal2json')" >/dev/null
sql "CALL bench_produce($EVENTS, 5, $SUBJECTS)"
end=$(sql "SELECT pg_current_wal_insert_lsn()")
# one more event past $end: --endpos is seen passed at its begin, not at a keepalive
sql "SELECT pg_logical_emit_message(true, 'ordersync', '{\"type\":\"bench.end\",\"subject\":\"bench/end\",\"data\":{}}')" >/dev/null

"$work/webhook_receiver" "$RPORT" "$WH_SECRET" >"$work/receiver.out" 2>"$work/receiver.log" &
rpid=$!
sleep 0.3

# one N BIN SINK [WRAPPER...]: run N from a fresh copy of the slot, to its own
# URL path (the receiver checks the order per path); prints "cpu_seconds
# wall_seconds syscalls context_switches page_faults" (the last three
# without a wrapper)
one() {
	local nrun=$1 bin=$2 sink=$3 slot="r$1"
	shift 3
	sql "SELECT pg_copy_logical_replication_slot('tmpl', '$slot')" >/dev/null
	local args=(--dbname="$CONN" --slot="$slot" --endpos="$end")
	case "$sink" in
	file) args+=(--sink="file:$work/events.jsonl") ;;
	webhook) args+=(--sink="http://127.0.0.1:$RPORT/hook/$nrun" \
		--sink-options='{"secret_env":"WH_SECRET","max_in_flight":256}') ;;
	esac
	rm -f "$work/events.jsonl"
	# counted by perf stat, unless under another tool (perf record, valgrind)
	[ $# -eq 0 ] && set -- perf stat -x, -o "$work/stat" -e task-clock,raw_syscalls:sys_enter,context-switches,page-faults ${STAT_EVENTS:+-e $STAT_EVENTS}
	: >"$work/stat"
	/usr/bin/time -f "%U %S %e" -o "$work/time" "$@" "$bin" "${args[@]}" >/dev/null 2>"$work/run.log" ||
		{ echo "ordersyncd ($bin, $sink) failed:" >&2; tail -5 "$work/run.log" >&2; exit 1; }
	sql "SELECT pg_drop_replication_slot('$slot')" >/dev/null
	[ -n "${STAT_EVENTS:-}" ] && awk -F, -v r="$nrun $sink" -v n="$EVENTS" \
		'$1 ~ /^[0-9]+$/ { printf "run %s: %.3f %s per event\n", r, $1 / n, $3 }' "$work/stat" >&2
	# cpu (perf's task-clock in ms, finer than time's 10 ms ticks), wall,
	# then syscalls, context switches and page faults
	awk -F, -v t="$(cat "$work/time")" 'BEGIN { split(t, a, " "); cpu = a[1] + a[2] }
		$3 == "task-clock" { cpu = $1 / 1000 } $1 ~ /^[0-9]+$/ { n = n " " $1 }
		END { print cpu, a[3] n }' "$work/stat"
}

nrun=0
bins=("$ORDERSYNCD")
[ -n "$BASE" ] && bins=("$BASE" "$ORDERSYNCD")
[ -n "${BINS:-}" ] && read -ra bins <<<"$BINS"
for ((r = 1; r <= ROUNDS; r++)); do
	for b in "${!bins[@]}"; do
		for s in $SINKS; do
			nrun=$((nrun + 1))
			read -r c w sc cs pf < <(one "$nrun" "${bins[$b]}" "$s") || exit 1
			echo "$c" >>"$work/$b.$s.cpu"
			echo "$w" >>"$work/$b.$s.wall"
			echo "$sc" >>"$work/$b.$s.sys"
			echo "$cs" >>"$work/$b.$s.cs"
			echo "$pf" >>"$work/$b.$s.pf"
		done
	done
done
printf "%-40s %-8s %9s %9s %9s %9s %9s %12s\n" binary sink "us/event" "events/s" "sysc/ev" "cs/ev" "pf/ev" "instr/event"
for b in "${!bins[@]}"; do
	for s in $SINKS; do
		ins=-
		if [ -n "$PERF" ]; then
			mkdir -p "$PERF"
			nrun=$((nrun + 1))
			one "$nrun" "${bins[$b]}" "$s" perf record -q -g --call-graph dwarf,16384 -F 2000 \
				-o "$PERF/$b.$s.data" >/dev/null || exit 1
		fi
		if [ -n "$CALLGRIND" ]; then
			nrun=$((nrun + 1))
			one "$nrun" "${bins[$b]}" "$s" valgrind --tool=callgrind --callgrind-out-file="$work/cg" >/dev/null || exit 1
			ins=$(awk -v n="$EVENTS" '/^(summary|totals):/ { printf "%d\n", $2 / n; exit }' "$work/cg")
		fi
		per() { echo "$(median <"$work/$b.$s.$1") / $EVENTS" | bc -l; }
		printf "%-40s %-8s %9.2f %9.0f %9.2f %9.3f %9.3f %12s\n" "${bins[$b]}" "$s" \
			"$(echo "$(median <"$work/$b.$s.cpu") * 1000000 / $EVENTS" | bc -l)" \
			"$(echo "$EVENTS / $(median <"$work/$b.$s.wall")" | bc -l)" "$(per sys)" "$(per cs)" "$(per pf)" "$ins"
	done
done
kill -TERM "$rpid"
wait "$rpid" 2>/dev/null
rpid=
read -r _ acc _ ref _ ooo _ <"$work/receiver.out"
echo "($EVENTS events over $SUBJECTS subjects, median of $ROUNDS runs; events/s include the relay's"
echo " start and its exit at --endpos; C receiver: $acc accepted, $ref bad signatures, $ooo out of order)"
[ "$ref" = 0 ] && [ "$ooo" = 0 ]
