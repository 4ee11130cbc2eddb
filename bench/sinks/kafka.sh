#!/usr/bin/env bash
# bench/sinks/kafka.sh — throughput of ordersyncd's Kafka sink next to its
# file sink on the same WAL, in one run.
#
# EVENTS (default 200000) order.paid events over SUBJECTS (default 1000)
# subjects, 10 per transaction, are produced once; two slots per round are
# made before that, so every run reads the same WAL. Then ROUNDS (default 3)
# interleaved runs of
#   ordersyncd --sink=file:...                  (JSON lines, fsynced)
#   ordersyncd --sink=kafka://<mock>/benchN     (idempotent producer, acks=all,
#                                                the sink's defaults)
# each with --endpos: the relay exits once everything is confirmed, i.e.
# every record acknowledged by the cluster (checked: topic benchN then holds
# every event id, read back with kcat). Medians are compared:
# RATIO = kafka events/s / file events/s. Also the relay's CPU per event.
#
# The cluster is librdkafka's mock (test/integration/kafka_mock.c, 3 brokers,
# 4 partitions, in memory, no fsync) on the same 2 cores: it measures what
# the relay and librdkafka cost, not a real cluster's disks and network.
#
# In the same rounds, on the same mock cluster, the reference
# bench/sinks/kafka_ref.c (a minimal librdkafka producer with the sink's
# settings: idempotent, acks=all, message.timeout.ms=0, murmur2_random,
# librdkafka's defaults otherwise; keys = the same SUBJECTS subjects, values
# of the relay's mean event size measured from the file sink's output in
# round 1, the same three headers) produces EVENTS records to topic refN
# right after the relay's run; REF RATIO = relay events/s / reference
# records/s, the median of the rounds' ratios (each pair ran back to back,
# which keeps a busy machine's drift out of it; the goal of issue 11 is
# >= 0.9). The relay's time includes its start and its reading of the WAL,
# the reference's only the producing. Also the reference's CPU per record
# (its process: librdkafka's threads included) beside the relay's.
#
# Why REF RATIO cannot reach 0.9 here, and what is compared instead. On
# this 2-core machine the walsender decoding the WAL costs about as much
# CPU per event (~10 us) as the whole reference producer costs per record
# (6-9 us), and it runs beside the relay for the whole run; the relay
# cannot deliver faster than PostgreSQL hands it events, which the file
# sink's rate shows ("bound" below; typically 0.3-0.4). So the sink is
# judged by what it adds: SINK us/ev = the relay's CPU per event with the
# Kafka sink minus its CPU per event with the file sink on the same WAL
# (reading, parsing and building envelopes cancel out; what is left is
# the delivery core, the sink and librdkafka, threads included), against
# the reference's CPU per record: CPU RATIO = ref us/rec / sink us/ev, from
# the medians of the rounds (goal >= 0.9: the sink costs at most ~10% more
# than a bare producer). CPU time is steadier than wall time on a busy
# machine, but a difference of two is not: each round's own ratio is
# printed too, and single rounds scatter.
#
# The sink alone, wall clock: the same events (captured once from the slot
# "cap" with pg_recvlogical) fed by bench/sinks/replay.c through the relay's
# own library (line parser, envelopes, delivery core, this sink) to topic
# aloneN, without PostgreSQL, in each round right after the reference.
# ALONE RATIO = its events/s / the reference's records/s (median of the
# rounds' ratios): the Kafka path of the relay against a bare producer with
# both cores, minus the walsender. It still parses every line and builds
# every envelope, which the reference does not.
#
# The least any relay from PostgreSQL to Kafka must do, on the same WAL:
# pg_recvlogical (the relay's wal2json options) piped into kafka_ref, which
# produces one record per message line (the line's first SIZE bytes, the
# same key and headers) without parsing or checking anything, to topic
# pipeN, right after the relay's run; timed from pg_recvlogical's start
# until the last record is acknowledged, as the relay is timed. PIPE RATIO
# = relay events/s / pipeline events/s, median of the rounds' ratios: how
# close the relay's Kafka path comes to the plainest pipeline doing the
# same work with the walsender beside it.
# Port 25471 (PostgreSQL). Env: ORDERSYNCD, EVENTS, SUBJECTS, ROUNDS (<= 4).
# Appends kafka_ratio, kafka_ref_ratio, kafka_cpu_ratio, kafka_alone_ratio,
# kafka_source_ratio and kafka_pipe_ratio to $BENCH_RESULTS when set.
# Takes about 40 s with the defaults.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
ORDERSYNCD=${ORDERSYNCD:-$root/src/relay/ordersyncd}
EVENTS=${EVENTS:-200000}
SUBJECTS=${SUBJECTS:-1000}
ROUNDS=${ROUNDS:-3}
PORT=25471
work=$(mktemp -d /tmp/ordersyncd-bench-kafka.XXXXXX)
chmod 0755 "$work"
cl="$work/cluster"
mock_pid=
cleanup() {
	[ -n "$mock_pid" ] && kill -TERM "$mock_pid" 2>/dev/null
	"$root/scripts/cluster.sh" stop "$cl" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$ROUNDS" -lt 1 ] || [ "$ROUNDS" -gt 4 ]; then
	echo "ROUNDS must be 1..4 (three slots per round, max_replication_slots is 16)" >&2
	exit 2
fi
if ! cc -O2 -o "$work/kafka_mock" "$root/test/integration/kafka_mock.c" -lrdkafka 2>"$work/mock-build.log"; then
	cat "$work/mock-build.log" >&2
	exit 1
fi
if ! cc -O2 -Wall -Werror -o "$work/kafka_ref" "$root/bench/sinks/kafka_ref.c" -lrdkafka 2>"$work/ref-build.log"; then
	cat "$work/ref-build.log" >&2
	exit 1
fi
coproc MOCK { exec "$work/kafka_mock" 3 2>"$work/mock.err"; }
mock_pid=$MOCK_PID
if ! read -r -t 10 boot <&"${MOCK[0]}"; then
	echo "the mock cluster did not start: $(cat "$work/mock.err")" >&2
	exit 1
fi
mock() {
	local ans
	echo "$*" >&"${MOCK[1]}"
	read -r -t 10 ans <&"${MOCK[0]}" && [ "$ans" = ok ] && return 0
	echo "mock cluster: $* -> ${ans:-no answer}" >&2
	return 1
}

. "$root/bench/sinks/lib.sh"
sinks_cluster "$cl" "$PORT" "synchronous_commit = off" "max_replication_slots = 16" || exit 1
replay_build "$work/replay" || exit 1


sql "SELECT pg_create_logical_replication_slot('warm', 'wal2json')" >/dev/null
sql "SELECT pg_create_logical_replication_slot('cap', 'wal2json')" >/dev/null
for ((r = 1; r <= ROUNDS; r++)); do
	mock create-topic "bench$r" 4 3 || exit 1
	mock create-topic "ref$r" 4 3 || exit 1
	mock create-topic "alone$r" 4 3 || exit 1
	mock create-topic "pipe$r" 4 3 || exit 1
	for k in f k p; do sql "SELECT pg_create_logical_replication_slot('$k$r', 'wal2json')" >/dev/null; done
done
t0=$(date +%s.%N)
sql "CALL bench_produce($EVENTS, 10, $SUBJECTS)"
end=$(sql "SELECT pg_current_wal_insert_lsn()")
bench_end
echo "produced $EVENTS events in $(printf %.1f "$(echo "$(date +%s.%N) - $t0" | bc)") s, WAL end $end"
sync

# the first decoding of fresh WAL is slower: one unmeasured pass first
relay_run warm warm "file:$work/warm.jsonl" >/dev/null || exit 1
rm -f "$work/warm.jsonl"
# the stream once more, for the sink alone (replay.c, bench/sinks/lib.sh)
capture cap "$work/stream.w2j" || exit 1
bad=0
size=
# records TOPIC: the records in the topic's 4 partitions. The mock keeps
# only the newest few MB per partition, so count by offsets: the end
# offsets of the 4 partitions add up to the records written
records() {
	local n=0 p o
	for p in 0 1 2 3; do
		o=$(timeout 20 kcat -b "$boot" -Q -t "$1:$p:-1" 2>/dev/null | awk '/offset/ { print $NF }')
		n=$((n + ${o:-0}))
	done
	echo "$n"
}
: >"$work/f.secs"; : >"$work/f.cpu"; : >"$work/k.secs"; : >"$work/k.cpu"; : >"$work/r.secs"; : >"$work/r.cpu"
: >"$work/r.ratio"; : >"$work/c.ratio"; : >"$work/a.rate"; : >"$work/a.ratio"; : >"$work/a.cpu"
: >"$work/p.secs"; : >"$work/p.ratio"
mkfifo "$work/pipe"
# pipe_run ROUND: pg_recvlogical | kafka_ref from slot pROUND to topic
# pipeROUND; prints its seconds
pipe_run() {
	local t0 pid rc
	t0=$(date +%s.%N)
	pg_recvlogical -d "$CONN" -S "p$1" --start -F 0 -f - "${relay_w2j_opts[@]}" >"$work/pipe" 2>"$work/pipe.log" &
	pid=$!
	"$work/kafka_ref" "$boot" "pipe$1" - "$size" "$SUBJECTS" <"$work/pipe" >"$work/pipe.out" 2>&1
	rc=$?
	echo "$(date +%s.%N) - $t0" | bc -l
	kill -INT "$pid" 2>/dev/null
	wait "$pid"
	if [ "$rc" != 0 ]; then
		echo "pg_recvlogical | kafka_ref failed: $(cat "$work/pipe.out" "$work/pipe.log")" >&2
		return 1
	fi
}
for ((r = 1; r <= ROUNDS; r++)); do
	read -r t c < <(relay_run "file_$r" "f$r" "file:$work/events.jsonl") || exit 1
	echo "$t" >>"$work/f.secs"
	echo "$c" >>"$work/f.cpu"
	# the reference produces records of the relay's mean event size
	[ -z "$size" ] && size=$(LC_ALL=C awk '{ n += length($0) } END { printf "%d", n / NR + 0.5 }' "$work/events.jsonl")
	rm -f "$work/events.jsonl"
	read -r t c < <(relay_run "kafka_$r" "k$r" "kafka://$boot/bench$r") || exit 1
	echo "$t" >>"$work/k.secs"
	echo "$c" >>"$work/k.cpu"
	# everything is in the topic once the relay has exited
	n=$(records "bench$r")
	# (the bench.end event after $end ends the run; committed after
	# --endpos, it is not relayed; the pipeline below produces it)
	if [ "$n" != "$EVENTS" ]; then
		echo "run kafka_$r: topic bench$r has $n records, not $EVENTS" >&2
		bad=1
	fi
	# the plainest pipeline on the same WAL, right after the relay
	pt=$(pipe_run "$r") || exit 1
	echo "$pt" >>"$work/p.secs"
	echo "$pt / $t" | bc -l >>"$work/p.ratio"
	n=$(records "pipe$r")
	if [ "$n" != "$((EVENTS + 1))" ]; then
		echo "pipeline round $r: topic pipe$r has $n records, not $((EVENTS + 1))" >&2
		bad=1
	fi
	if ! out=$(/usr/bin/time -o "$work/ref.time" -f "%U %S" "$work/kafka_ref" "$boot" "ref$r" "$EVENTS" \
		"$size" "$SUBJECTS" 2>&1); then
		echo "kafka_ref failed: $out" >&2
		exit 1
	fi
	rt=$(echo "$out" | awk '{ print $2 }')
	echo "$rt" >>"$work/r.secs"
	awk '{ print $1 + $2 }' "$work/ref.time" >>"$work/r.cpu"
	echo "$rt / $t" | bc -l >>"$work/r.ratio"
	# the sink's own CPU (kafka run minus file run) against the reference's
	sink_cpu=$(echo "$c - $(tail -1 "$work/f.cpu")" | bc -l)
	if [ "$(echo "$sink_cpu > 0" | bc -l)" = 1 ]; then
		echo "$(tail -1 "$work/r.cpu") / $sink_cpu" | bc -l >>"$work/c.ratio"
	else
		echo 99 >>"$work/c.ratio"
	fi
	n=$(records "ref$r")
	if [ "$n" != "$EVENTS" ]; then
		echo "kafka_ref round $r: topic ref$r has $n records, not $EVENTS" >&2
		bad=1
	fi
	# the sink alone: the same events (and bench.end) from the capture
	read -r an at ac < <(replay_run "kafka://$boot/alone$r") || exit 1
	n=$(records "alone$r")
	if [ "$n" != "$an" ]; then
		echo "replay round $r: topic alone$r has $n records, not $an" >&2
		bad=1
	fi
	echo "$an / $at" | bc -l >>"$work/a.rate"
	echo "$ac * 1000000 / $an" | bc -l >>"$work/a.cpu"
	echo "($an / $at) / ($EVENTS / $rt)" | bc -l >>"$work/a.ratio"
	printf "  round %d: file %6.2f s, kafka %6.2f s, pipeline %6.2f s (ratio %5.3f), kafka_ref %6.2f s, ratio %5.3f, cpu ratio %5.3f, alone %6.2f s, alone ratio %5.3f\n" "$r" \
		"$(tail -1 "$work/f.secs")" "$t" "$pt" "$(tail -1 "$work/p.ratio")" "$rt" "$(tail -1 "$work/r.ratio")" \
		"$(tail -1 "$work/c.ratio")" "$at" "$(tail -1 "$work/a.ratio")"
done

ft=$(median <"$work/f.secs")
kt=$(median <"$work/k.secs")
fc=$(median <"$work/f.cpu")
kc=$(median <"$work/k.cpu")
rt=$(median <"$work/r.secs")
rc=$(median <"$work/r.cpu")
rr=$(median <"$work/r.ratio")
if [ "$(echo "$kc > $fc" | bc -l)" = 1 ]; then
	cr=$(echo "$rc / ($kc - $fc)" | bc -l)
else
	cr=99
fi
printf "%-34s %10s %8s %11s %12s %10s %9s\n" sink "events/s" RATIO "relay us/ev" "ref recs/s" "ref us/rec" "REF RATIO"
printf "%-34s %10.0f %8.3f %11.1f %12s %10s %9s\n" "file (fsync)" "$(echo "$EVENTS / $ft" | bc -l)" 1 \
	"$(echo "$fc * 1000000 / $EVENTS" | bc -l)" - - -
printf "%-34s %10.0f %8.3f %11.1f %12.0f %10.1f %9.3f\n" "kafka (idempotent, acks=all)" "$(echo "$EVENTS / $kt" | bc -l)" \
	"$(echo "$ft / $kt" | bc -l)" "$(echo "$kc * 1000000 / $EVENTS" | bc -l)" "$(echo "$EVENTS / $rt" | bc -l)" \
	"$(echo "$rc * 1000000 / $EVENTS" | bc -l)" "$rr"
# the source: pg_recvlogical reading the same WAL (the capture, timed)
src_rate=$(echo "$(grep -c '"action":"M"' "$work/stream.w2j") / $capture_secs" | bc -l)
if [ -n "${BENCH_RESULTS:-}" ]; then
	echo "kafka_ratio $(echo "$ft / $kt" | bc -l)" >>"$BENCH_RESULTS"
	echo "kafka_ref_ratio $rr" >>"$BENCH_RESULTS"
	echo "kafka_cpu_ratio $cr" >>"$BENCH_RESULTS"
	echo "kafka_alone_ratio $(median <"$work/a.ratio")" >>"$BENCH_RESULTS"
	echo "kafka_source_ratio $(echo "$EVENTS / $kt / $src_rate" | bc -l)" >>"$BENCH_RESULTS"
	echo "kafka_pipe_ratio $(median <"$work/p.ratio")" >>"$BENCH_RESULTS"
fi
printf "%-34s %10s %8s %11s %12s %10s %9.3f\n" "bound: file sink / ref" - - - - - "$(echo "$rt / $ft" | bc -l)"
printf "%-34s %10.0f %8.3f %11s %12.0f %10s %9.3f\n" "source: pg_recvlogical, same WAL" "$src_rate" \
	"$(echo "$EVENTS / $kt / $src_rate" | bc -l)" - "$(echo "$EVENTS / $rt" | bc -l)" - "$(echo "$src_rate * $rt / $EVENTS" | bc -l)"
printf "%-34s %10.0f %8.3f %11s %12s %10s %9s\n" "pipeline: pg_recvlogical|kafka_ref" \
	"$(echo "($EVENTS + 1) / $(median <"$work/p.secs")" | bc -l)" "$(echo "$ft / $(median <"$work/p.secs")" | bc -l)" - - - -
printf "%-34s %10.0f %8s %11.1f %12.0f %10.1f %9.3f\n" "kafka sink alone (replay.c)" "$(median <"$work/a.rate")" - \
	"$(median <"$work/a.cpu")" "$(echo "$EVENTS / $rt" | bc -l)" "$(echo "$rc * 1000000 / $EVENTS" | bc -l)" \
	"$(median <"$work/a.ratio")"
echo
printf "%-34s %11s %11s %10s %9s\n" "CPU per event (the fair comparison)" "relay us/ev" "sink us/ev" "ref us/rec" "CPU RATIO"
printf "%-34s %11.1f %11.1f %10.1f %9.3f\n" "kafka sink" "$(echo "$kc * 1000000 / $EVENTS" | bc -l)" \
	"$(echo "($kc - $fc) * 1000000 / $EVENTS" | bc -l)" "$(echo "$rc * 1000000 / $EVENTS" | bc -l)" "$cr"
echo "($EVENTS events, $SUBJECTS subjects, 10 per transaction, medians of $ROUNDS interleaved runs;"
echo " bound = file sink events/s / ref records/s: the relay's own ceiling, REF RATIO cannot pass it;"
echo " RATIO = events/s of the sink / events/s of the file sink on the same WAL; every run includes"
echo " the relay's start and its final confirmation; the mock cluster runs on the same machine."
echo " ref = bench/sinks/kafka_ref.c, $size-byte records (the relay's mean event size), the sink's"
echo " producer settings, timed from its first produce to its last delivery report; REF RATIO = relay"
echo " events/s / ref records/s, median of the rounds' ratios, goal >= 0.9; on 2 cores the walsender"
echo " caps it near the bound. sink us/ev = relay CPU per event with the Kafka sink minus with the file"
echo " sink (medians); CPU RATIO = ref us/rec / sink us/ev (medians), goal >= 0.9;"
echo " source = pg_recvlogical reading the same WAL to a file (timed to 20 ms): what PostgreSQL hands"
echo " the plainest client, a ceiling for any relay; its REF RATIO bounds the relay's on every machine,"
echo " its RATIO = kafka sink events/s / source events/s: how close the relay gets to that ceiling;"
echo " alone = replay.c over the captured stream, no walsender: timed from the sink's start until every"
echo " record is acknowledged, us/ev its CPU (librdkafka's threads included), ALONE RATIO = alone"
echo " events/s / ref records/s, median of the rounds' ratios)"
echo
printf "%-34s %9s\n" "the same work, plainest pipeline" "PIPE RATIO"
printf "%-34s %9.3f\n" "kafka sink / pg_recvlogical|kafka_ref" "$(median <"$work/p.ratio")"
echo "(the relay's events/s / those of pg_recvlogical piped into kafka_ref (one record per message"
echo " line, nothing parsed or checked) on the same slot's WAL, median of the rounds' ratios; both"
echo " timed from their start until every record is acknowledged)"
exit $bad
