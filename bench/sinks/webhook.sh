#!/usr/bin/env bash
# bench/sinks/webhook.sh — throughput of ordersyncd's webhook sink, next to
# its file sink on the same WAL, for 1, 16 and 256 subjects (a webhook
# subject has one request in flight at a time, so the number of subjects
# bounds the parallelism; max_in_flight is 256).
#
# For each subject count: EVENTS (default 50000) events, 5 per transaction,
# subjects order/0..order/S-1 in turn; slots made before producing, so
# every run reads the same WAL. Then ROUNDS (default 3) interleaved runs of
#   ordersyncd --sink=file:...                      (fsynced JSON lines)
#   ordersyncd --sink=http://127.0.0.1:25469/hook   (signed POSTs)
# each with --endpos (it exits once everything is confirmed, i.e. every
# POST answered 2xx). Medians are compared: RATIO = webhook / file.
#
# The receiver is bench/sinks/webhook_receiver.c (libmicrohttpd, checks
# every signature and per-subject order), built here: the Python receiver
# of the integration tests tops out at a few thousand requests a second
# and would measure Python. One run against the Python receiver
# (PY_EVENTS, default 3000 events of the same WAL) is printed beside it
# to show that.
#
# Also prints the relay's CPU per event (user+system) for each sink.
# Ports 25468 (PostgreSQL), 25469 (C receiver), 25470 (Python receiver).
# Env: ORDERSYNCD, EVENTS, ROUNDS, PY_EVENTS (0 skips the Python runs).
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
ORDERSYNCD=${ORDERSYNCD:-$root/src/relay/ordersyncd}
EVENTS=${EVENTS:-50000}
ROUNDS=${ROUNDS:-3}
PY_EVENTS=${PY_EVENTS:-3000}
PORT=25468
RPORT=25469
PYPORT=25470
export WH_SECRET='whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
work=$(mktemp -d /tmp/ordersyncd-bench-webhook.XXXXXX)
chmod 0755 "$work"
cl="$work/cluster"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	"$root/scripts/cluster.sh" stop "$cl" >/dev/null 2>&1
	[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$ROUNDS" -gt 4 ]; then
	echo "ROUNDS is at most 4 (two slots per round, max_replication_slots is 10)" >&2
	exit 2
fi
if ! cc -O2 -std=gnu11 -Wall -Wextra -Werror -o "$work/webhook_receiver" "$root/bench/sinks/webhook_receiver.c" \
	$(pkg-config --cflags --libs libmicrohttpd libcrypto) -lpthread; then
	echo "cannot build bench/sinks/webhook_receiver.c (needs libmicrohttpd-dev, libssl-dev)" >&2
	exit 1
fi
"$root/scripts/cluster.sh" start "$cl" "$PORT" >/dev/null || exit 1
eval "$("$root/scripts/cluster.sh" env "$cl" "$PORT")"
export PGOPTIONS="-c client_min_messages=warning"
CONN="host=$cl port=$PORT user=postgres dbname=postgres"
sql() { psql -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }

# events only, no extension: the sink is given on the command line
psql -X -q -v ON_ERROR_STOP=1 -f "$root/bench/sinks/produce.sql" || exit 1

"$work/webhook_receiver" "$RPORT" "$WH_SECRET" >"$work/receiver.out" 2>"$work/receiver.log" &
rpid=$!
pids+=("$rpid")
if [ "$PY_EVENTS" -gt 0 ]; then
	python3 "$root/test/integration/webhook_receiver.py" --port "$PYPORT" --secret "$WH_SECRET" \
		--events "$work/py.jsonl" --ready "$work/py.ready" 2>"$work/py.log" &
	pids+=("$!")
	disown "$!"				# killed at the end: no "Killed" line from bash
fi
sleep 0.5

# run NAME SLOT ENDPOS COUNTER TARGET SINK [OPTIONS]: one relay run; prints
# "seconds cpu_seconds": the time from starting ordersyncd until the sink
# holds TARGET events (COUNTER: a file whose lines count, or a URL giving
# a count), and the relay's CPU once it has exited at --endpos. Timing
# the arrival rather than the exit keeps the relay's wait for its next
# status update or keepalive out of the figures.
run() {
	local name=$1 slot=$2 end=$3 counter=$4 target=$5 sink=$6 opts=${7:-}
	local args=(--dbname="$CONN" --slot="$slot" --endpos="$end" --sink="$sink" ${DEBUG:+--log-level=debug})
	[ -n "$opts" ] && args+=(--sink-options="$opts")
	if ! python3 - "$counter" "$target" "$ORDERSYNCD" "${args[@]}" 2>"$work/$name.log" <<'PY'
import resource, subprocess, sys, time, urllib.request
counter, target = sys.argv[1], int(sys.argv[2])
def count():
    if counter.startswith("http"):
        return int(urllib.request.urlopen(counter, timeout=5).read())
    try:
        with open(counter, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except FileNotFoundError:
        return 0
t = time.monotonic()
p = subprocess.Popen(sys.argv[3:], stdout=subprocess.DEVNULL)
while count() < target:
    if p.poll() is not None or time.monotonic() - t > 600:
        p.kill()
        sys.exit("ordersyncd exited or took over 600 s before the sink had %d events" % target)
    time.sleep(0.005)
wall = time.monotonic() - t
try:
    rc = p.wait(timeout=120)
except subprocess.TimeoutExpired:
    p.kill()
    sys.exit("ordersyncd did not stop at --endpos within 120 s after delivering everything")
if rc != 0:
    sys.exit(rc)
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%.3f %.3f" % (wall, ru.ru_utime + ru.ru_stime))
PY
	then
		echo "ordersyncd ($name) failed:" >&2
		tail -5 "$work/$name.log" >&2
		exit 1
	fi
}
# accepted so far by the C receiver
received() { curl -s "http://127.0.0.1:$RPORT/count"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rate() { echo "$1 / $2" | bc -l; }

wh_opts='{"secret_env":"WH_SECRET","max_in_flight":256}'
printf "%-9s %12s %14s %8s %14s %8s %11s %11s\n" subjects "file ev/s" "webhook ev/s" RATIO "python ev/s" RATIO \
	"file us/ev" "hook us/ev"
for nsubj in 1 16 256; do
	slots=()
	for ((r = 1; r <= ROUNDS; r++)); do slots+=("f$r" "w$r"); done
	[ "$PY_EVENTS" -gt 0 ] && slots+=(py)
	for s in "${slots[@]}"; do sql "SELECT pg_create_logical_replication_slot('$s', 'wal2json')" >/dev/null; done
	py_end=
	if [ "$PY_EVENTS" -gt 0 ]; then
		sql "CALL bench_produce($PY_EVENTS, 5, $nsubj)"
		py_end=$(sql "SELECT pg_current_wal_lsn()")
		sql "SELECT pg_logical_emit_message(true, 'ordersync', '{\"type\":\"bench.end\",\"subject\":\"bench/end\",\"data\":{}}')" >/dev/null
		sql "CALL bench_produce($((EVENTS - PY_EVENTS)), 5, $nsubj)"
	else
		sql "CALL bench_produce($EVENTS, 5, $nsubj)"
	fi
	end=$(sql "SELECT pg_current_wal_lsn()")
	# one more event ends past $end: the relay sees --endpos reached at that
	# commit instead of waiting for the server's next keepalive
	sql "SELECT pg_logical_emit_message(true, 'ordersync', '{\"type\":\"bench.end\",\"subject\":\"bench/end\",\"data\":{}}')" >/dev/null
	: >"$work/f.secs"
	: >"$work/w.secs"
	: >"$work/f.cpu"
	: >"$work/w.cpu"
	for ((r = 1; r <= ROUNDS; r++)); do
		read -r t c < <(run "file_$nsubj" "f$r" "$end" "$work/events.jsonl" "$EVENTS" "file:$work/events.jsonl") || exit 1
		echo "$t" >>"$work/f.secs"
		echo "$c" >>"$work/f.cpu"
		rm -f "$work/events.jsonl"
		read -r t c < <(run "webhook_$nsubj" "w$r" "$end" "http://127.0.0.1:$RPORT/count" \
			$(($(received) + EVENTS)) "http://127.0.0.1:$RPORT/hook/$nsubj/$r" "$wh_opts") || exit 1
		echo "$t" >>"$work/w.secs"
		echo "$c" >>"$work/w.cpu"
	done
	ft=$(median <"$work/f.secs")
	wt=$(median <"$work/w.secs")
	fc=$(median <"$work/f.cpu")
	wc=$(median <"$work/w.cpu")
	py_rate=- py_ratio=-
	if [ "$PY_EVENTS" -gt 0 ]; then
		read -r t c < <(run "python_$nsubj" py "$py_end" "$work/py.jsonl" $(($(wc -l <"$work/py.jsonl") + PY_EVENTS)) \
			"http://127.0.0.1:$PYPORT/hook" "$wh_opts") || exit 1
		py_rate=$(printf %.0f "$(rate "$PY_EVENTS" "$t")")
		py_ratio=$(printf %.3f "$(echo "$py_rate / ($EVENTS / $ft)" | bc -l)")
	fi
	printf "%-9s %12.0f %14.0f %8.3f %14s %8s %11.1f %11.1f\n" "$nsubj" "$(rate "$EVENTS" "$ft")" "$(rate "$EVENTS" "$wt")" \
		"$(echo "$ft / $wt" | bc -l)" "$py_rate" "$py_ratio" "$(echo "$fc * 1000000 / $EVENTS" | bc -l)" \
		"$(echo "$wc * 1000000 / $EVENTS" | bc -l)"
	[ -n "${BENCH_RESULTS:-}" ] && echo "webhook_ratio_$nsubj $(echo "$ft / $wt" | bc -l)" >>"$BENCH_RESULTS"
	for s in "${slots[@]}"; do sql "SELECT pg_drop_replication_slot('$s')" >/dev/null; done
done
kill -TERM "$rpid"
wait "$rpid" 2>/dev/null
read -r _ acc _ ref _ ooo <"$work/receiver.out"
want=$((3 * ROUNDS * (EVENTS + 2)))  # + the two bench.end markers
echo "C receiver: $acc requests accepted (want $want), $ref bad signatures, $ooo out of per-subject order"
echo "(RATIO = events/s of the webhook sink / events/s of the file sink on the same WAL; us/ev = relay CPU"
echo " user+system per event; times run from the relay's start until the sink has every event)"
[ "$acc" = "$want" ] && [ "$ref" = 0 ] && [ "$ooo" = 0 ]
