#!/usr/bin/env bash
# bench/relay/run.sh — ordersyncd benchmarks, measured side by side in one
# run on one throwaway cluster (port 25443, metrics 25444):
#   1. throughput: the same WAL consumed by ordersyncd --sink=file vs
#      pg_recvlogical -f with the same wal2json options, interleaved, medians of 3; ratio =
#      ordersyncd rate / pg_recvlogical rate (target >= 0.9). Two workloads:
#      a) EVENTS (default 500000) bare messages, b) EVENTS/2 order-like
#      transactions (row changes + message per event);
#   2. latency commit -> event in sink at a steady RATE (default 1000) events/s
#      for SECS (default 10) s: p50/p99 of "durable" (ordersyncd's own
#      commit-to-fsync histogram) and "visible" (a reader tailing the file),
#      with pg_recvlogical's "visible" latency beside it (target p99 < 25 ms);
#   3. peak RSS (VmHWM) of ordersyncd and pg_recvlogical while each consumes
#      one 1,000,000-row transaction (target < 64 MiB).
# Env: ORDERSYNCD (binary), EVENTS, RATE, SECS. Appends relay_ratio_messages
# and relay_ratio_orderlike to $BENCH_RESULTS when set.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/bench/relay"
ORDERSYNCD=${ORDERSYNCD:-$root/src/relay/ordersyncd}
EVENTS=${EVENTS:-500000}
RATE=${RATE:-1000}
SECS=${SECS:-10}
PORT=25443
MPORT=25444
PGBIN=/usr/lib/postgresql/15/bin
work=$(mktemp -d /tmp/ordersyncd-bench.XXXXXX)
chmod 0755 "$work"
cl="$work/cluster"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	"$root/scripts/cluster.sh" stop "$cl" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$root/scripts/cluster.sh" start "$cl" "$PORT" >/dev/null || exit 1
eval "$("$root/scripts/cluster.sh" env "$cl" "$PORT")"
export PGOPTIONS="-c client_min_messages=warning"
CONN="host=$cl port=$PORT user=postgres dbname=postgres"
now() { date +%s.%N; }
# sql(), and the options ordersyncd streams with (its control tables' rows,
# nothing else), as the sink benchmarks have them
. "$root/bench/sinks/lib.sh"
# the 1M-row test passes rows through (--raw-changes): ordersyncd then adds
# ordersync.* to add-tables, the last option
W2J_ROWS=("${relay_w2j_opts[@]}")
W2J_ROWS[-1]+=",ordersync.*"

sql "CREATE SCHEMA ordersync; CREATE TABLE ordersync.bulk (id bigint PRIMARY KEY, v text)"
# ordersyncd relays only where nobody but superusers may write messages (trust.h)
sql "REVOKE EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text),
     pg_logical_emit_message(boolean, text, bytea) FROM PUBLIC"
sql "CREATE TABLE ordersync.b_orders (id bigint PRIMARY KEY, status text, version int, total numeric)
     ; INSERT INTO ordersync.b_orders SELECT g, 'pending', 0, 39.80 FROM generate_series(1, 10000) g
     ; CREATE TABLE ordersync.b_history (id bigserial PRIMARY KEY, order_id bigint, what text, at timestamptz DEFAULT now())"
# order-like transactions: per event an order row update and a history row, as the extension writes them
sql "CREATE PROCEDURE bench_produce_mix(total int, per_txn int) LANGUAGE plpgsql AS \$\$
     DECLARE o bigint;
     BEGIN FOR t IN 0..(total / per_txn) - 1 LOOP
       FOR g IN 1..per_txn LOOP
         o := 1 + (t * per_txn + g) % 10000;
         UPDATE ordersync.b_orders SET status = 'paid', version = version + 1 WHERE id = o;
         INSERT INTO ordersync.b_history (order_id, what) VALUES (o, 'paid');
         PERFORM pg_logical_emit_message(true, 'ordersync',
           '{\"type\":\"order.paid\",\"subject\":\"order/' || o || '\",\"data\":{\"order_id\":' || o ||
           ',\"status\":\"paid\",\"previous_status\":\"pending\",\"total\":\"39.80\",\"lines\":[{\"line_no\":1,\"sku\":\"A-1\",\"qty\":2,\"price\":\"19.90\"}],\"customer\":{\"name\":\"Ada\"}}}');
       END LOOP;
       COMMIT; END LOOP; END \$\$"
sql "CREATE PROCEDURE bench_produce(total int, per_txn int) LANGUAGE plpgsql AS \$\$
     BEGIN FOR t IN 0..(total / per_txn) - 1 LOOP
       PERFORM pg_logical_emit_message(true, 'ordersync',
         '{\"type\":\"order.paid\",\"subject\":\"order/' || (t * per_txn + g) || '\",\"data\":{\"order_id\":' || (t * per_txn + g) ||
         ',\"status\":\"paid\",\"total\":\"39.80\",\"lines\":[{\"sku\":\"A-1\",\"qty\":2,\"price\":\"19.90\"}]}}')
       FROM generate_series(1, per_txn) g;
       COMMIT; END LOOP; END \$\$"

declare -A secs
run_os() {
	local t
	t=$(now)
	"$ORDERSYNCD" --dbname="$CONN" --slot="$1" --sink=file:"$work/$1.jsonl" --endpos="$end" 2>"$work/$1.log" || {
		tail -3 "$work/$1.log"
		return 1
	}
	secs[$1]=$(echo "$(now) - $t" | bc)
	rm -f "$work/$1.jsonl"
}
run_rl() {
	local t
	t=$(now)
	"$PGBIN/pg_recvlogical" -d "$CONN" --slot="$1" --start -E "$end" -f "$work/$1.jsonl" "${relay_w2j_opts[@]}" 2>"$work/$1.log" || {
		tail -3 "$work/$1.log"
		return 1
	}
	secs[$1]=$(echo "$(now) - $t" | bc)
	rm -f "$work/$1.jsonl"
}
# median of three numbers
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
# throughput NAME PROCEDURE EVENTS PER_TXN: fresh slots, produce, one unmeasured
# warm-up pass, then three runs of each tool interleaved; medians compared
throughput() {
	local tag=$1 proc=$2 events=$3 per=$4 t0 os_t rl_t ratio i
	for s in warm_rl warm_os os_1 rl_1 os_2 rl_2 os_3 rl_3; do
		sql "SELECT pg_drop_replication_slot('$s') FROM pg_replication_slots WHERE slot_name = '$s'" >/dev/null
		sql "SELECT pg_create_logical_replication_slot('$s', 'wal2json')" >/dev/null
	done
	t0=$(now)
	sql "CALL $proc($events, $per)"
	end=$(sql "SELECT pg_current_wal_insert_lsn()")
	echo "   [$tag] produced $events events in $(printf %.1f "$(echo "$(now) - $t0" | bc)") s, WAL end $end"
	sync
	# the first decoding of fresh WAL is slower (and on this machine the first
	# ordersyncd pass too, for reasons outside the relay's CPU time): one
	# unmeasured pass of each tool first
	run_rl warm_rl && run_os warm_os || exit 1
	for i in 1 2 3; do
		run_os os_$i && run_rl rl_$i || exit 1
	done
	os_t=$(median3 "${secs[os_1]}" "${secs[os_2]}" "${secs[os_3]}")
	rl_t=$(median3 "${secs[rl_1]}" "${secs[rl_2]}" "${secs[rl_3]}")
	printf "   [$tag] ordersyncd     %6.2f s  %8.0f events/s   (median of %.2f %.2f %.2f)\n" "$os_t" "$(echo "$events / $os_t" | bc -l)" "${secs[os_1]}" "${secs[os_2]}" "${secs[os_3]}"
	printf "   [$tag] pg_recvlogical %6.2f s  %8.0f events/s   (median of %.2f %.2f %.2f)\n" "$rl_t" "$(echo "$events / $rl_t" | bc -l)" "${secs[rl_1]}" "${secs[rl_2]}" "${secs[rl_3]}"
	ratio=$(echo "$rl_t / $os_t" | bc -l)
	printf "   [$tag] RATIO throughput ordersyncd / pg_recvlogical = %.2fx  (target >= 0.90x) %s\n" "$ratio" \
		"$([ "$(echo "$ratio >= 0.9" | bc)" = 1 ] && echo OK || echo BELOW-TARGET)"
	[ -n "${BENCH_RESULTS:-}" ] && echo "relay_ratio_$tag $ratio" >>"$BENCH_RESULTS"
	# max_replication_slots is 10
	for s in warm_rl warm_os os_1 rl_1 os_2 rl_2 os_3 rl_3; do
		sql "SELECT pg_drop_replication_slot('$s')" >/dev/null
	done
}
echo "== 1. throughput on the same WAL, ordersyncd --sink=file vs pg_recvlogical -f (same wal2json options)"
echo "   a) messages only: $EVENTS events, 100 per transaction (worst case for ordersyncd: the server"
echo "      does least, ordersyncd parses every line and every message content (simdjson))"
throughput messages bench_produce "$EVENTS" 100
echo "   b) order-like transactions: per event one order UPDATE + one history INSERT + the message,"
echo "      $((EVENTS / 2)) events, 5 per transaction (rows stay on the server: filter-tables)"
throughput orderlike bench_produce_mix "$((EVENTS / 2))" 5

echo "== 2. latency: $RATE events/s for $SECS s, one event per transaction"
for s in lat_os lat_rl; do sql "SELECT pg_create_logical_replication_slot('$s', 'wal2json')" >/dev/null; done
"$ORDERSYNCD" --dbname="$CONN" --slot=lat_os --sink=file:"$work/lat_os.jsonl" --metrics-addr=127.0.0.1:$MPORT 2>"$work/lat_os.log" &
pids+=($!)
os_pid=$!
"$PGBIN/pg_recvlogical" -d "$CONN" --slot=lat_rl --start -f "$work/lat_rl.jsonl" "${relay_w2j_opts[@]}" 2>"$work/lat_rl.log" &
pids+=($!)
rl_pid=$!
sleep 1
n=$((RATE * SECS))
python3 "$here/tail_latency.py" "$work/lat_os.jsonl" ordersyncd "$n" $((SECS + 20)) >"$work/lat_os.res" &
tail_os=$!
python3 "$here/tail_latency.py" "$work/lat_rl.jsonl" recvlogical "$n" $((SECS + 20)) >"$work/lat_rl.res" &
tail_rl=$!
echo "SELECT pg_logical_emit_message(true, 'ordersync', '{\"type\":\"order.paid\",\"subject\":\"order/1\",\"data\":{\"order_id\":1}}');" >"$work/emit.sql"
"$PGBIN/pgbench" -n -c 4 -j 2 -R "$RATE" -T "$SECS" -f "$work/emit.sql" postgres >"$work/pgbench.log" 2>&1
wait $tail_os $tail_rl
sleep 0.5
read -r hn hp50 hp99 < <(curl -s "http://127.0.0.1:$MPORT/metrics" | python3 "$here/hist_quantiles.py")
read -r on op50 op99 omax <"$work/lat_os.res"
read -r rn rp50 rp99 rmax <"$work/lat_rl.res"
kill -TERM $os_pid $rl_pid 2>/dev/null
wait $os_pid $rl_pid 2>/dev/null
sql "SELECT pg_drop_replication_slot('lat_os'), pg_drop_replication_slot('lat_rl')" >/dev/null
echo "   pgbench: $(grep -E '^tps' "$work/pgbench.log" | head -1)"
printf "   ordersyncd durable (fsynced, own histogram): n=%s p50 %s ms  p99 %s ms  (target p99 < 25 ms) %s\n" \
	"$hn" "$hp50" "$hp99" "$([ "$(echo "$hp99 < 25" | bc)" = 1 ] && echo OK || echo ABOVE-TARGET)"
printf "   ordersyncd visible in file (tail):           n=%s p50 %s ms  p99 %s ms  max %s ms\n" "$on" "$op50" "$op99" "$omax"
printf "   pg_recvlogical visible in file (tail):       n=%s p50 %s ms  p99 %s ms  max %s ms\n" "$rn" "$rp50" "$rp99" "$rmax"

echo "== 3. peak RSS during one 1,000,000-row transaction"
for s in big_os big_rl; do sql "SELECT pg_create_logical_replication_slot('$s', 'wal2json')" >/dev/null; done
sql "INSERT INTO ordersync.bulk SELECT g, 'row ' || g FROM generate_series(1, 1000000) g"
end=$(sql "SELECT pg_current_wal_insert_lsn()")
peak() { # peak PID -> VmHWM kB once the process ends
	local pid=$1 h=0 x
	while kill -0 "$pid" 2>/dev/null; do
		x=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null)
		[ -n "$x" ] && h=$x
		sleep 0.05
	done
	echo "$h"
}
t0=$(now)
"$ORDERSYNCD" --dbname="$CONN" --slot=big_os --raw-changes --sink=file:"$work/big_os.jsonl" --endpos="$end" 2>"$work/big_os.log" &
pids+=($!)
os_h=$(peak $!)
os_t=$(echo "$(now) - $t0" | bc)
t0=$(now)
"$PGBIN/pg_recvlogical" -d "$CONN" --slot=big_rl --start -E "$end" -f "$work/big_rl.jsonl" "${W2J_ROWS[@]}" 2>"$work/big_rl.log" &
pids+=($!)
rl_h=$(peak $!)
rl_t=$(echo "$(now) - $t0" | bc)
printf "   ordersyncd     peak RSS %6.1f MiB  (%s row events in %.1f s)  (target < 64 MiB) %s\n" "$(echo "$os_h / 1024" | bc -l)" \
	"$(grep -c 'row.bulk.insert' "$work/big_os.jsonl")" "$os_t" "$([ "$os_h" -lt 65536 ] && echo OK || echo ABOVE-TARGET)"
printf "   pg_recvlogical peak RSS %6.1f MiB  (%s lines in %.1f s)\n" "$(echo "$rl_h / 1024" | bc -l)" "$(wc -l <"$work/big_rl.jsonl")" "$rl_t"
printf "   RATIO peak RSS ordersyncd / pg_recvlogical = %.2fx\n" "$(echo "$os_h / $rl_h" | bc -l)"
