#!/usr/bin/env bash
# bench/hot_sku/run.sh — flash-sale throughput, measured side by side:
# place_order at 32 clients on
#   spread: 10,000 different SKUs (no two buyers share a stock row),
#   hot:    one SKU split into buckets (ordersync.set_hot),
#   naive:  one SKU in one stock row (every buyer queues on one row lock).
# Rounds alternate the three so machine noise hits them alike; prints tps
# per round and the median ratios hot/spread (target >= 0.9) and hot/naive
# (target >= 4), and checks the stock invariants after every run.
#   ROUNDS (default 3), SECONDS_PER_RUN (default 10), CLIENTS (default 32),
#   BUCKETS (default 64), SYNC_COMMIT (default on)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
PORT=${ORDERSYNC_BENCH_HOT_PORT:-25467}
ROUNDS=${ROUNDS:-3}
SECS=${SECONDS_PER_RUN:-10}
CLIENTS=${CLIENTS:-32}
BUCKETS=${BUCKETS:-64}
PGBENCH=/usr/lib/postgresql/15/bin/pgbench
dir=$(mktemp -d /tmp/ordersync-bench-hot.XXXXXX)
chmod 0755 "$dir"
trap '"$top/scripts/cluster.sh" stop "$dir/pg" >/dev/null 2>&1; rm -rf "$dir"' EXIT

# Commits are durable by default (SYNC_COMMIT=on), as a shop runs: a buyer
# holds its stock row lock until its commit is flushed, which is what turns
# one hot row into a queue.  SYNC_COMMIT=off measures CPU alone.
"$top/scripts/cluster.sh" start "$dir/pg" "$PORT" "synchronous_commit = ${SYNC_COMMIT:-on}" \
	"max_connections = 100" >/dev/null || exit 1
eval "$("$top/scripts/cluster.sh" env "$dir/pg" "$PORT")"
export PGOPTIONS="-c client_min_messages=warning"
q() { psql -X -At -v ON_ERROR_STOP=1 -d bench -c "$1"; }

psql -X -q -d postgres -c "CREATE DATABASE bench" || exit 1
q "CREATE EXTENSION ordersync" >/dev/null
q "SELECT ordersync.add_location('main')" >/dev/null
q "SELECT ordersync.receive_stock('HOT', 'main', 1000000000)" >/dev/null
q "SELECT ordersync.set_hot('HOT', $BUCKETS)" >/dev/null
q "SELECT ordersync.receive_stock('NAIVE', 'main', 1000000000)" >/dev/null
q "SELECT ordersync.receive_stock('S-' || i, 'main', 1000000) FROM generate_series(1, 10000) i" >/dev/null
q "VACUUM ANALYZE" >/dev/null

invariant() {
	q "SELECT CASE WHEN count(*) = 0 THEN 'ok' ELSE count(*) || ' rows violated' END
	   FROM ordersync.stock s
	   WHERE s.reserved > s.on_hand OR s.reserved < 0
	      OR s.reserved <> coalesce((SELECT sum(qty) FROM ordersync.reservation r
	             WHERE r.sku = s.sku AND r.location = s.location AND r.bucket = s.bucket
	               AND r.state = 'held'), 0)"
}

run() {
	local kind=$1
	local tps
	tps=$("$PGBENCH" -n -M prepared -c "$CLIENTS" -j 2 -T "$SECS" -f "$here/$kind.pgbench" bench 2>"$dir/$kind.err" |
		sed -n 's/^tps = \([0-9.]*\) .*/\1/p')
	if [ -z "$tps" ] || grep -q -E 'ERROR|aborted' "$dir/$kind.err"; then
		echo "bench/hot_sku: pgbench $kind failed:" >&2
		head -5 "$dir/$kind.err" >&2
		exit 1
	fi
	echo "$tps"
}

median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

echo "place_order, $CLIENTS clients, ${SECS}s per run, $ROUNDS rounds, hot SKU in $BUCKETS buckets, synchronous_commit=${SYNC_COMMIT:-on}"
printf "%-6s %10s %10s %10s %12s %12s  %s\n" round spread hot naive hot/spread hot/naive invariant
: >"$dir/r1"
: >"$dir/r2"
for r in $(seq 1 "$ROUNDS"); do
	s=$(run spread) || exit 1
	h=$(run hot) || exit 1
	n=$(run naive) || exit 1
	inv=$(invariant)
	r1=$(awk -v a="$h" -v b="$s" 'BEGIN {printf "%.2f", a / b}')
	r2=$(awk -v a="$h" -v b="$n" 'BEGIN {printf "%.2f", a / b}')
	echo "$r1" >>"$dir/r1"
	echo "$r2" >>"$dir/r2"
	printf "%-6s %10.0f %10.0f %10.0f %12s %12s  %s\n" "$r" "$s" "$h" "$n" "$r1" "$r2" "$inv"
	[ "$inv" = ok ] || exit 1
done
m1=$(median <"$dir/r1")
m2=$(median <"$dir/r2")
echo "median hot/spread = $m1 (target >= 0.9)   median hot/naive = $m2 (target >= 4)"
