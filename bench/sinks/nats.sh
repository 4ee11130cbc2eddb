#!/usr/bin/env bash
# bench/sinks/nats.sh — throughput of ordersyncd's NATS JetStream sink next
# to its file sink on the same WAL, and next to a minimal JetStream
# publisher on the same server, in one run.
#
# EVENTS (default 200000) order.paid events over 256 subjects, 5 per
# transaction, are produced once; one slot per run is made before that, so
# every run reads the same WAL. Then ROUNDS (default 3) interleaved rounds
# of
#   ordersyncd --sink=file:...                        (fsynced JSON lines)
#   ordersyncd --sink=nats://ordersync@127.0.0.1:25476/bench
#              (the sink's defaults: 1000 publishes awaiting their PubAck)
#   nats_ref   (bench/sinks/nats_ref.c: a minimal libnats JetStream
#              publisher, the same window, messages of the relay's mean
#              event size with a Nats-Msg-Id each, 256 subjects)
#   replay     (bench/sinks/replay.c: the relay's library, this sink, the
#              same events captured once with pg_recvlogical, no walsender)
# each timed until JetStream has acknowledged every message (the relay:
# from its start to its exit at --endpos; the others as they print). The
# stream, file-stored with a 2-minute duplicate window, must hold exactly
# what each run published; it is made anew between runs. Medians:
# RATIO = nats / file events/s; REF RATIO = relay events/s / nats_ref
# msgs/s (median of the rounds' ratios); alone = replay.c's events/s, and
# its ratio to nats_ref. Issue 11 sets no figure for NATS; AMQP's (>= 0.9
# of the reference) is the one to compare with.
#
# nats-server runs on the same 2 cores (test/integration/nats.sh).
# Ports 25475 (PostgreSQL), 25476 (NATS) and 25477 (its monitoring).
# Env: ORDERSYNCD, EVENTS, ROUNDS (at most 4: two slots per round).
# Appends nats_ratio, nats_ref_ratio and nats_alone_ratio to $BENCH_RESULTS
# when set.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
ORDERSYNCD=${ORDERSYNCD:-$root/src/relay/ordersyncd}
EVENTS=${EVENTS:-200000}
ROUNDS=${ROUNDS:-3}
PORT=25475
NPORT=25476
NATS="$root/test/integration/nats.sh"
work=$(mktemp -d /tmp/ordersyncd-bench-nats.XXXXXX)
chmod 0755 "$work"
cl="$work/cluster"
ndir="$work/nats"
export NATS_USER=ordersync NATS_PASSWORD
NATS_PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
cleanup() {
	"$NATS" kill "$ndir" >/dev/null 2>&1
	"$root/scripts/cluster.sh" stop "$cl" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$ROUNDS" -lt 1 ] || [ "$ROUNDS" -gt 4 ]; then
	echo "ROUNDS must be 1..4 (two slots per round, max_replication_slots is 10)" >&2
	exit 2
fi
mkdir -p "$ndir"
if ! "$NATS" start "$ndir" "$NPORT" ordersync "$NATS_PASSWORD" >"$work/nats.log" 2>&1; then
	cat "$work/nats.log" >&2
	exit 1
fi
js() { "$NATS" js "$ndir" "$@"; }
# the stream every run publishes to: file-stored, 2-minute duplicate window
new_stream() { js add-stream BENCH 'bench.>' 120 >/dev/null; }
new_stream || exit 1
if ! cc -O2 -Wall -Werror -o "$work/nats_ref" "$root/bench/sinks/nats_ref.c" -lnats 2>"$work/ref-build.log"; then
	cat "$work/ref-build.log" >&2
	echo "cannot build bench/sinks/nats_ref.c (needs libnats-dev)" >&2
	exit 1
fi
# the cluster, its extension, bench_produce, capture and replay (lib.sh)
. "$root/bench/sinks/lib.sh"
sinks_cluster "$cl" "$PORT" "synchronous_commit = off" || exit 1
replay_build "$work/replay" || exit 1

uri="nats://ordersync@127.0.0.1:$NPORT/bench"
opts='{"password_env":"NATS_PASSWORD","stream":"BENCH"}'
bad=0

# expect N WHAT: the stream holds N messages; then it is made anew (every
# run publishes the same event ids: the duplicate window would drop them)
expect() {
	local n
	n=$(js count BENCH)
	if [ "$n" != "$1" ]; then
		echo "$2: the stream holds $n messages, not $1" >&2
		bad=1
	fi
	js delete BENCH >/dev/null && new_stream || exit 1
}

slots=(cap)
for ((r = 1; r <= ROUNDS; r++)); do slots+=("f$r" "n$r"); done
for s in "${slots[@]}"; do sql "SELECT pg_create_logical_replication_slot('$s', 'wal2json')" >/dev/null; done
sql "CALL bench_produce($EVENTS, 5, 256)"
end=$(sql "SELECT pg_current_wal_insert_lsn()")
bench_end
sync
capture cap "$work/stream.w2j" || exit 1

size=
for k in f n r a; do : >"$work/$k.secs"; : >"$work/$k.cpu"; done
: >"$work/r.ratio"
: >"$work/a.ratio"
for ((r = 1; r <= ROUNDS; r++)); do
	read -r t c < <(relay_run "file_$r" "f$r" "file:$work/events.jsonl") || exit 1
	echo "$t" >>"$work/f.secs"
	echo "$c" >>"$work/f.cpu"
	[ -z "$size" ] && size=$(LC_ALL=C awk '{ n += length($0) } END { printf "%d", n / NR + 0.5 }' "$work/events.jsonl")
	rm -f "$work/events.jsonl"

	read -r t c < <(relay_run "nats_$r" "n$r" "$uri" "$opts") || exit 1
	echo "$t" >>"$work/n.secs"
	echo "$c" >>"$work/n.cpu"
	# (the bench.end event after $end ends the run; committed after
	# --endpos, it is not relayed)
	expect $EVENTS "run nats_$r"

	if ! out=$(/usr/bin/time -o "$work/ref.time" -f "%U %S" "$work/nats_ref" "nats://127.0.0.1:$NPORT" \
		bench "$EVENTS" "$size" 1000 "ref$r" 256 2>&1); then
		echo "nats_ref failed: $out" >&2
		exit 1
	fi
	rt=$(echo "$out" | awk '{ print $2 }')
	echo "$rt" >>"$work/r.secs"
	awk '{ print $1 + $2 }' "$work/ref.time" >>"$work/r.cpu"
	echo "$rt / $t" | bc -l >>"$work/r.ratio"
	expect "$EVENTS" "nats_ref round $r"

	read -r an at ac < <(replay_run "$uri" "$opts") || exit 1
	echo "$at * $EVENTS / $an" | bc -l >>"$work/a.secs"
	echo "$ac * $EVENTS / $an" | bc -l >>"$work/a.cpu"
	echo "($an / $at) / ($EVENTS / $rt)" | bc -l >>"$work/a.ratio"
	expect "$an" "replay round $r"
	printf "  round %d: file %6.2f s, nats %6.2f s, nats_ref %6.2f s, alone %6.2f s: ref ratio %5.3f, alone ratio %5.3f\n" \
		"$r" "$(tail -1 "$work/f.secs")" "$t" "$rt" "$at" "$(tail -1 "$work/r.ratio")" "$(tail -1 "$work/a.ratio")"
done
for s in "${slots[@]}"; do sql "SELECT pg_drop_replication_slot('$s')" >/dev/null; done

ft=$(median <"$work/f.secs")
nt=$(median <"$work/n.secs")
rt=$(median <"$work/r.secs")
at=$(median <"$work/a.secs")
us() { echo "$(median <"$work/$1.cpu") * 1000000 / $EVENTS" | bc -l; }
printf "%-34s %10s %8s %11s %12s %10s %9s\n" sink "events/s" RATIO "us/ev" "ref msgs/s" "ref us/msg" "REF RATIO"
printf "%-34s %10.0f %8.3f %11.1f %12s %10s %9s\n" "file (fsync)" "$(rate "$EVENTS" "$ft")" 1 "$(us f)" - - -
printf "%-34s %10.0f %8.3f %11.1f %12.0f %10.1f %9.3f\n" "nats, 1000 awaiting ack (default)" "$(rate "$EVENTS" "$nt")" \
	"$(echo "$ft / $nt" | bc -l)" "$(us n)" "$(rate "$EVENTS" "$rt")" "$(us r)" "$(median <"$work/r.ratio")"
printf "%-34s %10.0f %8s %11.1f %12.0f %10.1f %9.3f\n" "nats alone (replay.c)" "$(rate "$EVENTS" "$at")" - "$(us a)" \
	"$(rate "$EVENTS" "$rt")" "$(us r)" "$(median <"$work/a.ratio")"
if [ -n "${BENCH_RESULTS:-}" ]; then
	echo "nats_ratio $(echo "$ft / $nt" | bc -l)" >>"$BENCH_RESULTS"
	echo "nats_ref_ratio $(median <"$work/r.ratio")" >>"$BENCH_RESULTS"
	echo "nats_alone_ratio $(median <"$work/a.ratio")" >>"$BENCH_RESULTS"
fi
echo "($EVENTS events, 256 subjects, 5 per transaction, medians of $ROUNDS interleaved rounds; RATIO ="
echo " events/s of the sink / of the file sink on the same WAL; relay runs include its start and its"
echo " final confirmation; nats-server (file store) runs on the same machine. ref = bench/sinks/nats_ref.c,"
echo " $size-byte messages (the relay's mean event size), 1000 awaiting their ack, timed from its first"
echo " publish to its last ack; REF RATIO = relay events/s / ref msgs/s, median of the rounds' ratios;"
echo " alone = replay.c over the captured stream, no walsender, timed from the sink's start until every"
echo " message is acknowledged, its REF RATIO = its events/s / ref msgs/s, median of the rounds' ratios)"
exit $bad
