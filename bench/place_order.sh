#!/usr/bin/env bash
# bench/place_order.sh — place_order() throughput on its own throwaway
# cluster (port 25461): 8 clients importing 2-line orders over many SKUs with
# plenty of stock, so they rarely queue on the same stock row.  (32 clients
# mean nothing on 2 cores.)  Prints per-round tps and the median, then checks
# the stock invariants on everything that was reserved.
#
#   bench/place_order.sh       BENCH_ROUNDS (5), BENCH_SECS (10)
# Appends "key value" result lines to $BENCH_RESULTS when set.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

PORT=25461
CLIENTS=8
NSKUS=2000
# place_order has no second variant to alternate with: fewer rounds suffice
ROUNDS=$(( ROUNDS > 3 ? 3 : ROUNDS ))

work=$(mktemp -d /tmp/ordersync-bench-place.XXXXXX)
chmod 0755 "$work"
trap '"$top/scripts/cluster.sh" stop "$work/pg" >/dev/null 2>&1; rm -rf "$work"' EXIT
bench_cluster "$work/pg" "$PORT"

psql_q >/dev/null <<SQL
CREATE EXTENSION ordersync;
CREATE SCHEMA ordersync_bench;
CREATE SEQUENCE ordersync_bench.ext_id;
SELECT ordersync.add_location('w1', 10), ordersync.add_location('w2', 5);
SELECT count(ordersync.receive_stock('S' || g, l, 1000000000))
  FROM generate_series(1, $NSKUS) g, (VALUES ('w1'), ('w2')) v(l);
VACUUM ANALYZE;
SQL

args=(-c "$CLIENTS" -j 2 -f "$top/bench/place_order.pgbench" -D nskus="$NSKUS")
echo
echo "== place_order, 2 lines on $NSKUS SKUs x 2 locations ($CLIENTS clients, $ROUNDS rounds x ${SECS} s)"
pgb "$work/warm.log" "${args[@]}" -T 2 >/dev/null
: >"$work/tps"
for r in $(seq 1 "$ROUNDS"); do
	read -r tps _ <<<"$(pgb "$work/$r.log" "${args[@]}" -T "$SECS")"
	echo "$tps" >>"$work/tps"
	printf '  round %s: %6s tps\n' "$r" "$tps"
done
med=$(median <"$work/tps")
printf '  median: %.0f tps\n' "$med"
[ -n "${BENCH_RESULTS:-}" ] && echo "place_order_tps $med" >>"$BENCH_RESULTS"

# every order placed must hold exactly its lines (split over locations)
bad=$(psql -X -At -c "SELECT count(*) FROM ordersync.order_line l
	LEFT JOIN (SELECT order_id, line_no, sum(qty) q FROM ordersync.reservation GROUP BY 1, 2) r
	USING (order_id, line_no) WHERE r.q IS DISTINCT FROM l.qty")
[ "$bad" -eq 0 ] || { echo "  $bad order lines are not fully reserved" >&2; exit 1; }
echo "  $(psql -X -At -c 'SELECT count(*) FROM ordersync.orders') orders placed, every line fully reserved"
check_invariants
