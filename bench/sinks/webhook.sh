#!/usr/bin/env bash
# bench/sinks/webhook.sh — throughput of ordersyncd's webhook sink, next to
# its file sink on the same WAL, for 1, 16 and 256 subjects (a webhook
# subject has one request in flight at a time, so the number of subjects
# bounds the parallelism; max_in_flight is 256).
#
# For each subject count: EVENTS (default 200000: a run of several seconds,
# as long as wrk's, is the steady state a shop sees; with 30000, runs of
# under a second, WRK RATIO came out 0.57/0.59 at 16/256 subjects where
# 200000 gave 0.61/0.67 in the same session) events, 5 per transaction,
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
# The reference: in each round, wrk (Debian package wrk, installed through
# scripts/deps.sh when missing) posts for WRK_SECS (default 5) seconds to
# the same C receiver with as many connections as the relay has requests in
# flight (one per subject, at most max_in_flight: 1, 16, 256) and 2 threads
# (1 for one connection). Its requests are the relay's: the body is an
# event of this WAL (from the file sink's output) with its own id and
# subject, signed with the same secret and carrying the same headers; the
# requests are pre-signed by a generated Lua script and each (path,
# subject) is used once, so the receiver does all its work (signature,
# order check) for wrk as it does for the relay. WRK RATIO = relay events/s
# / wrk requests/s (the goal of issue 11 is >= 0.6).
#
# The sink alone: the same events (captured once from the slot "cap" with
# pg_recvlogical) fed by bench/sinks/replay.c through the relay's own
# library (line parser, envelopes, delivery core, this sink) to the same
# receiver, without PostgreSQL, in each round right after wrk. ALONE RATIO
# = its events/s / wrk's requests/s: the HTTP path of the relay against the
# reference client when the walsender does not take a core beside it.
#
# Slow receiver: a second C receiver that answers every request 50 ms
# (SLOW_MS) after it arrived; the relay relays SLOW_EVENTS (default 25000)
# events over 256 subjects with max_in_flight SLOW_IN_FLIGHT (default 256)
# to it, ROUNDS times. Printed: events/s against the ceiling in-flight /
# 50 ms and their ratio (goal >= 0.8), and the receiver's per-subject order
# check (must be 0 out of order).
#
# Also prints the relay's CPU per event (user+system) for each sink.
# Ports 25468 (PostgreSQL), 25469 (C receiver), 25470 (Python receiver),
# 25510 (slow C receiver); when taken, other ones through WH_PG_PORT,
# WH_PORT, WH_PY_PORT and WH_SLOW_PORT.
# Env: ORDERSYNCD, EVENTS, ROUNDS, PY_EVENTS (0 skips the Python runs),
# WRK_SECS (0 skips wrk and the sink alone), SLOW_EVENTS (0 skips the slow receiver), SLOW_MS,
# SLOW_IN_FLIGHT, SUBJECTS (default "1 16 256": the subject counts run).
# Appends webhook_ratio_S, webhook_wrk_ratio_S,
# webhook_alone_ratio_S (S = 1, 16, 256) and webhook_slow_ratio to $BENCH_RESULTS when set.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
ORDERSYNCD=${ORDERSYNCD:-$root/src/relay/ordersyncd}
EVENTS=${EVENTS:-200000}
ROUNDS=${ROUNDS:-3}
PY_EVENTS=${PY_EVENTS:-3000}
WRK_SECS=${WRK_SECS:-5}
SLOW_EVENTS=${SLOW_EVENTS:-25000}
SLOW_MS=${SLOW_MS:-50}
SLOW_IN_FLIGHT=${SLOW_IN_FLIGHT:-256}
SUBJECTS=${SUBJECTS:-1 16 256}
PORT=${WH_PG_PORT:-25468}
RPORT=${WH_PORT:-25469}
PYPORT=${WH_PY_PORT:-25470}
SLOWPORT=${WH_SLOW_PORT:-25510}
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
if [ "$WRK_SECS" != 0 ] && ! command -v wrk >/dev/null; then
	"$root/scripts/deps.sh" bench >&2 || true
	command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk): no wrk reference" >&2; WRK_SECS=0; }
fi
# the sink is given on the command line (the cluster: bench/sinks/lib.sh)
. "$root/bench/sinks/lib.sh"
sinks_cluster "$cl" "$PORT" || exit 1
replay_build "$work/replay" || exit 1

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
# held TARGET events, and the relay's CPU once it has exited at --endpos.
# Timing the arrival rather than the exit keeps the relay's wait for its
# next status update or keepalive out of the figures. Nothing watches the
# sink during the run (polling it every few ms took a tenth of a core from
# the relay on 2 cores, which wrk does not pay): COUNTER is the C
# receiver's base URL, armed to note when its TARGETth request is accepted
# (GET /arm/N, /reached), or a file, whose last modification is the last
# arrival and whose lines are counted once the relay has exited.
run() {
	local name=$1 slot=$2 end=$3 counter=$4 target=$5 sink=$6 opts=${7:-}
	local args=(--dbname="$CONN" --slot="$slot" --endpos="$end" --sink="$sink" ${DEBUG:+--log-level=debug})
	[ -n "$opts" ] && args+=(--sink-options="$opts")
	if ! python3 - "$counter" "$target" "$ORDERSYNCD" "${args[@]}" 2>"$work/$name.log" <<'PY'
import os, resource, subprocess, sys, time, urllib.request
counter, target = sys.argv[1], int(sys.argv[2])
def get(path):
    return int(urllib.request.urlopen(counter + path, timeout=5).read())
def lines():
    try:
        with open(counter, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except FileNotFoundError:
        return 0
if counter.startswith("http"):
    get("/arm/%d" % target)
t, t_real = time.monotonic(), time.time()
p = subprocess.Popen(sys.argv[3:], stdout=subprocess.DEVNULL)
try:
    rc = p.wait(timeout=600)
except subprocess.TimeoutExpired:
    p.kill()
    sys.exit("ordersyncd did not stop at --endpos within 600 s")
if rc != 0:
    sys.exit(rc)
if counter.startswith("http"):
    # the last answer may land just after the relay exited
    for _ in range(100):
        reached = get("/reached")
        if reached:
            break
        time.sleep(0.01)
    else:
        sys.exit("the receiver got %d of %d events" % (get("/count"), target))
    wall = reached / 1e9 - t
else:
    n = lines()
    if n < target:
        sys.exit("the file holds %d of %d events" % (n, target))
    wall = os.stat(counter).st_mtime_ns / 1e9 - t_real
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
wrk_accepted=0				# requests of wrk the C receiver accepted
replayed=0					# events replay.c delivered to the C receiver

# wrk_script SAMPLE LUA: a Lua script for wrk whose requests are the relay's
# (same headers, same body size) for an event like SAMPLE (one line of the
# file sink), each with its own id and subject, signed with $WH_SECRET.
wrk_script() {
	python3 - "$1" "$2" "$RPORT" <<'PY'
import base64, hashlib, hmac, os, re, sys, time
sample, out, port = open(sys.argv[1]).readline().rstrip("\n"), sys.argv[2], sys.argv[3]
secret = os.environ["WH_SECRET"]
key = base64.b64decode(secret[6:]) if secret.startswith("whsec_") else secret.encode()
ts = str(int(time.time()))
def lua(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r").replace("\n", "\\n") + '"'
tails = []
for k in range(2000):
    # ids shaped like the relay's (commit LSN/ordinal), a subject each
    eid = "0/%X/%d" % (0x2000000 + k // 5 * 256, k % 5)
    body = re.sub(r'"id":"[^"]*"', '"id":"%s"' % eid, sample, count=1)
    body = re.sub(r'"subject":"[^"]*"', '"subject":"order/%d"' % k, body, count=1)
    sig = base64.b64encode(hmac.new(key, ("%s.%s.%s" % (eid, ts, body)).encode(), hashlib.sha256).digest()).decode()
    tails.append(" HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nUser-Agent: ordersyncd\r\nAccept: */*\r\n"
                 "Content-Type: application/cloudevents+json\r\nce-specversion: 1.0\r\nce-id: %s\r\n"
                 "ce-type: ordersync.order.paid\r\nwebhook-id: %s\r\nwebhook-timestamp: %s\r\n"
                 "webhook-signature: v1,%s\r\nContent-Length: %d\r\n\r\n%s"
                 % (port, eid, eid, ts, sig, len(body.encode()), body))
with open(out, "w") as f:
    f.write("-- generated by bench/sinks/webhook.sh: pre-signed requests like the relay's;\n")
    f.write("-- the path /wrk/<thread>/<cycle> makes every (path, subject) new to the receiver\n")
    f.write("local n = 0\nlocal setup_n = 0\n")
    f.write("function setup(thread) setup_n = setup_n + 1; thread:set('tid', setup_n) end\n")
    f.write("local tails = {\n" + ",\n".join(lua(t) for t in tails) + "\n}\n")
    f.write("local cycle = 0\n")
    f.write("function request()\n  n = n + 1\n  if n > #tails then n = 1; cycle = cycle + 1 end\n"
            "  return 'POST /wrk/' .. tostring(tid) .. '/' .. cycle .. tails[n]\nend\n")
PY
}

# run_wrk CONNECTIONS: one wrk run against the C receiver; appends its
# requests/s to $work/wrk.rate (not in a subshell: it counts wrk_accepted)
run_wrk() {
	local c=$1 t=2 before after out
	[ "$c" -lt 2 ] && t=1
	# the relay's last request (the marker past --endpos) may still be
	# answered just after it exited: let it land before counting wrk's
	sleep 0.3
	before=$(received)
	# wrk's own CPU (user+system), for its CPU per request
	out=$(TIMEFORMAT='%U %S'; { time wrk -t"$t" -c"$c" -d"${WRK_SECS}s" -s "$work/wrk.lua" \
		"http://127.0.0.1:$RPORT/" >"$work/wrk.out" 2>&1; } 2>"$work/wrk.time"; cat "$work/wrk.out")
	sleep 0.2
	after=$(received)
	wrk_accepted=$((wrk_accepted + after - before))
	if echo "$out" | grep -q 'Non-2xx'; then
		echo "wrk -c$c got errors from the receiver:" >&2
		echo "$out" >&2
		exit 1
	fi
	echo "$out" | awk '/^Requests\/sec:/ { print $2 }' >>"$work/wrk.rate"
	# microseconds of wrk's CPU per request it made
	read -r u s <"$work/wrk.time"
	echo "$out" | awk -v cpu="$(echo "$u + $s" | bc -l)" '/ requests in / { print cpu * 1000000 / $1 }' >>"$work/wrk.cpu"
}

wh_opts='{"secret_env":"WH_SECRET","max_in_flight":256}'
printf "%-9s %12s %14s %8s %14s %8s %11s %11s %5s %12s %9s %11s %9s %11s %11s\n" subjects "file ev/s" "webhook ev/s" RATIO \
	"python ev/s" RATIO "file us/ev" "hook us/ev" conns "wrk req/s" "WRK RATIO" "wrk us/req" "CPU RATIO" "alone ev/s" \
	"ALONE RATIO"
for nsubj in $SUBJECTS; do
	slots=()
	for ((r = 1; r <= ROUNDS; r++)); do slots+=("f$r" "w$r"); done
	[ "$PY_EVENTS" -gt 0 ] && slots+=(py)
	[ "$WRK_SECS" != 0 ] && slots+=(cap)
	for s in "${slots[@]}"; do sql "SELECT pg_create_logical_replication_slot('$s', 'wal2json')" >/dev/null; done
	py_end=
	if [ "$PY_EVENTS" -gt 0 ]; then
		sql "CALL bench_produce($PY_EVENTS, 5, $nsubj)"
		py_end=$(sql "SELECT pg_current_wal_insert_lsn()")
		bench_end
		sql "CALL bench_produce($((EVENTS - PY_EVENTS)), 5, $nsubj)"
	else
		sql "CALL bench_produce($EVENTS, 5, $nsubj)"
	fi
	end=$(sql "SELECT pg_current_wal_insert_lsn()")
	# one more event past $end: the relay sees --endpos passed at its begin
	# instead of waiting for the server's next keepalive
	bench_end
	# the stream once more, for the sink alone (replay.c, bench/sinks/lib.sh)
	if [ "$WRK_SECS" != 0 ]; then
		capture cap "$work/stream.w2j" $((PY_EVENTS > 0 ? 2 : 1)) || exit 1
	fi
	: >"$work/a.rate"
	: >"$work/a.ratio"
	: >"$work/f.secs"
	: >"$work/w.secs"
	: >"$work/f.cpu"
	: >"$work/w.cpu"
	: >"$work/wrk.rate"
	: >"$work/wrk.ratio"
	: >"$work/wrk.cpu"
	conns=$((nsubj < 256 ? nsubj : 256))	# the relay's requests in flight
	for ((r = 1; r <= ROUNDS; r++)); do
		read -r t c < <(run "file_$nsubj" "f$r" "$end" "$work/events.jsonl" "$EVENTS" "file:$work/events.jsonl") || exit 1
		echo "$t" >>"$work/f.secs"
		echo "$c" >>"$work/f.cpu"
		if [ ! -s "$work/sample.jsonl" ]; then
			grep -m1 '"subject":"order/' "$work/events.jsonl" >"$work/sample.jsonl" ||
				{ echo "no order event in the file sink's output" >&2; exit 1; }
			[ "$WRK_SECS" != 0 ] && { wrk_script "$work/sample.jsonl" "$work/wrk.lua" || exit 1; }
		fi
		rm -f "$work/events.jsonl"
		read -r t c < <(run "webhook_$nsubj" "w$r" "$end" "http://127.0.0.1:$RPORT" \
			$(($(received) + EVENTS)) "http://127.0.0.1:$RPORT/hook/$nsubj/$r" "$wh_opts") || exit 1
		echo "$t" >>"$work/w.secs"
		echo "$c" >>"$work/w.cpu"
		if [ "$WRK_SECS" != 0 ]; then
			run_wrk "$conns" || exit 1
			echo "$EVENTS / $t / $(tail -1 "$work/wrk.rate")" | bc -l >>"$work/wrk.ratio"
			# the sink alone, to the same receiver right after wrk
			read -r an at _ < <(replay_run "http://127.0.0.1:$RPORT/hook/alone$nsubj/$r" "$wh_opts") || exit 1
			replayed=$((replayed + an))
			echo "$an / $at" | bc -l >>"$work/a.rate"
			echo "$an / $at / $(tail -1 "$work/wrk.rate")" | bc -l >>"$work/a.ratio"
		fi
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
	wrk_rate=- wrk_ratio=- wrk_us=- cpu_ratio=- alone_rate=- alone_ratio=-
	if [ "$WRK_SECS" != 0 ]; then
		wrk_rate=$(printf %.0f "$(median <"$work/wrk.rate")")
		wrk_ratio=$(printf %.3f "$(median <"$work/wrk.ratio")")
		wrk_us=$(printf %.1f "$(median <"$work/wrk.cpu")")
		# wrk's CPU per request / the relay's CPU per event above the file
		# sink (what HTTP costs the relay), as for Kafka (see the note below)
		cpu_ratio=$(printf %.3f "$(echo "$wrk_us / (($wc - $fc) * 1000000 / $EVENTS)" | bc -l 2>/dev/null || echo 0)")
		alone_rate=$(printf %.0f "$(median <"$work/a.rate")")
		alone_ratio=$(printf %.3f "$(median <"$work/a.ratio")")
	fi
	printf "%-9s %12.0f %14.0f %8.3f %14s %8s %11.1f %11.1f %5s %12s %9s %11s %9s %11s %11s\n" "$nsubj" "$(rate "$EVENTS" "$ft")" \
		"$(rate "$EVENTS" "$wt")" "$(echo "$ft / $wt" | bc -l)" "$py_rate" "$py_ratio" "$(echo "$fc * 1000000 / $EVENTS" | bc -l)" \
		"$(echo "$wc * 1000000 / $EVENTS" | bc -l)" "$conns" "$wrk_rate" "$wrk_ratio" "$wrk_us" "$cpu_ratio" "$alone_rate" \
		"$alone_ratio"
	[ -n "${BENCH_RESULTS:-}" ] && echo "webhook_ratio_$nsubj $(echo "$ft / $wt" | bc -l)" >>"$BENCH_RESULTS"
	[ -n "${BENCH_RESULTS:-}" ] && [ "$wrk_ratio" != - ] && echo "webhook_wrk_ratio_$nsubj $wrk_ratio" >>"$BENCH_RESULTS"
	[ -n "${BENCH_RESULTS:-}" ] && [ "$alone_ratio" != - ] && echo "webhook_alone_ratio_$nsubj $alone_ratio" >>"$BENCH_RESULTS"
	for s in "${slots[@]}"; do sql "SELECT pg_drop_replication_slot('$s')" >/dev/null; done
done
kill -TERM "$rpid"
wait "$rpid" 2>/dev/null
read -r _ acc _ ref _ ooo _ wooo <"$work/receiver.out"
# a relay run delivers EVENTS, and the bench.end event after the Python
# part; the one at the end is committed after --endpos and not relayed
markers=0
[ "$PY_EVENTS" -gt 0 ] && markers=1
want=$(($(echo $SUBJECTS | wc -w) * ROUNDS * (EVENTS + markers) + wrk_accepted + replayed))
echo "C receiver: $acc requests accepted (want $want, $wrk_accepted of them wrk's), $ref bad signatures," \
	"$ooo out of per-subject order ($wooo of them wrk's)"
echo "(RATIO = events/s of the webhook sink / events/s of the file sink on the same WAL; us/ev = relay CPU"
echo " user+system per event; times run from the relay's start until the sink has every event;"
echo " conns = the relay's requests in flight = wrk's connections; wrk posts the relay's signed requests"
echo " to the same receiver for ${WRK_SECS} s right after the relay's run; WRK RATIO = webhook ev/s / wrk"
echo " req/s, median of the $ROUNDS rounds' ratios (wall clock: on a small machine the relay shares the"
echo " CPUs with PostgreSQL's walsender and the receiver, wrk only with the receiver, so it is bounded"
echo " by the file sink's rate / wrk's); wrk us/req = wrk's CPU per request; CPU RATIO = wrk us/req /"
echo " (hook us/ev - file us/ev): the relay's HTTP cost per event against the reference client's;"
echo " alone = replay.c over the captured stream, no walsender, to the same receiver right after wrk,"
echo " timed from the sink's start until every event is answered; ALONE RATIO = alone ev/s / wrk req/s,"
echo " median of the rounds' ratios; goal of issue 11 >= 0.6 for the ratios to wrk)"
ok=0
[ "$acc" = "$want" ] && [ "$ref" = 0 ] && [ "$ooo" = 0 ] || {
	ok=1
	# where: the receiver's first ones, and what the relay runs said
	grep -m10 -E "out of order|late answer" "$work/receiver.log"
	grep -H -m5 -E "WARN|ERROR" "$work"/webhook_*.log "$work/replay.log" 2>/dev/null
}

# the slow receiver: every answer SLOW_MS after the request arrived
if [ "$SLOW_EVENTS" -gt 0 ]; then
	echo
	"$work/webhook_receiver" "$SLOWPORT" "$WH_SECRET" "$SLOW_MS" >"$work/slow.out" 2>"$work/slow.log" &
	spid=$!
	pids+=("$spid")
	sleep 0.3
	slots=()
	for ((r = 1; r <= ROUNDS; r++)); do slots+=("s$r"); done
	for s in "${slots[@]}"; do sql "SELECT pg_create_logical_replication_slot('$s', 'wal2json')" >/dev/null; done
	sql "CALL bench_produce($SLOW_EVENTS, 5, 256)"
	end=$(sql "SELECT pg_current_wal_insert_lsn()")
	bench_end
	: >"$work/s.secs"
	slow_opts="{\"secret_env\":\"WH_SECRET\",\"max_in_flight\":$SLOW_IN_FLIGHT}"
	for ((r = 1; r <= ROUNDS; r++)); do
		n0=$(curl -s "http://127.0.0.1:$SLOWPORT/count")
		read -r t c < <(run "slow_$r" "s$r" "$end" "http://127.0.0.1:$SLOWPORT" $((n0 + SLOW_EVENTS)) \
			"http://127.0.0.1:$SLOWPORT/hook/slow/$r" "$slow_opts") || exit 1
		echo "$t" >>"$work/s.secs"
	done
	for s in "${slots[@]}"; do sql "SELECT pg_drop_replication_slot('$s')" >/dev/null; done
	kill -TERM "$spid"
	wait "$spid" 2>/dev/null
	read -r _ sacc _ sref _ sooo _ <"$work/slow.out"
	st=$(median <"$work/s.secs")
	ceiling=$(echo "$SLOW_IN_FLIGHT * 1000 / $SLOW_MS" | bc -l)
	printf "%-34s %10s %14s %8s %14s\n" "slow receiver (${SLOW_MS} ms)" "events/s" "in-flight/${SLOW_MS}ms" RATIO "out of order"
	printf "%-34s %10.0f %14.0f %8.3f %14s\n" "webhook, 256 subjects, in flight $SLOW_IN_FLIGHT" "$(rate "$SLOW_EVENTS" "$st")" \
		"$ceiling" "$(echo "$SLOW_EVENTS / $st / $ceiling" | bc -l)" "$sooo"
	[ -n "${BENCH_RESULTS:-}" ] && echo "webhook_slow_ratio $(echo "$SLOW_EVENTS / $st / $ceiling" | bc -l)" >>"$BENCH_RESULTS"
	swant=$((ROUNDS * SLOW_EVENTS))
	echo "(slow C receiver: $sacc accepted (want $swant), $sref bad signatures, $sooo out of per-subject order;"
	echo " $SLOW_EVENTS events, 5 per transaction, median of $ROUNDS runs, timed from the relay's start until the"
	echo " receiver has answered every event; RATIO = events/s / (in-flight / ${SLOW_MS} ms), goal >= 0.8)"
	[ "$sacc" = "$swant" ] && [ "$sref" = 0 ] && [ "$sooo" = 0 ] || ok=1
fi
exit $ok
