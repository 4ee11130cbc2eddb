#!/usr/bin/env bash
# bench/outlook/run.sh — the cost of the outlook, each figure side by side
# with a reference in the same rounds:
#
#   forecast_intermittent(history, 'auto') in C against the same
#   computation in PL/pgSQL (bench/outlook/plpgsql_reference.sql), on
#   SKUS x LOCATIONS daily series of DAYS days; the results must be equal.
#   stock_outlook() on that catalogue against the query that only reads the
#   same rollup window (what any outlook must at least do).
#
# Own throwaway cluster on ORDERSYNC_BENCH_OUTLOOK_PORT (default 26010),
# with the ordersync that scripts/cluster.sh runs (ORDERSYNC_PGBIN for a
# private copy, see scripts/private_pg.sh).  Wall time per call in one
# backend, medians of BENCH_ROUNDS (default 5) rounds.
#   SKUS (default 500), LOCATIONS (default 4), DAYS (default 180)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
PORT=${ORDERSYNC_BENCH_OUTLOOK_PORT:-26010}
ROUNDS=${BENCH_ROUNDS:-5}
SKUS=${SKUS:-500}
LOCATIONS=${LOCATIONS:-4}
DAYS=${DAYS:-180}
CLUSTER=$top/scripts/cluster.sh
dir=$(mktemp -d /tmp/ordersync-bench-outlook.XXXXXX)
chmod 0755 "$dir"
trap '"$CLUSTER" stop "$dir/pg" >/dev/null 2>&1; rm -rf "$dir"' EXIT

median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) exit 1
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

"$CLUSTER" start "$dir/pg" "$PORT" "autovacuum = off" >/dev/null || { echo "bench/outlook: cannot start a cluster" >&2; exit 1; }
eval "$("$CLUSTER" env "$dir/pg" "$PORT")"
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

q -c "CREATE EXTENSION ordersync" -f "$here/plpgsql_reference.sql" >/dev/null || exit 1
# demand on about a third of the days, 1 to 5 units, per SKU and location
q <<SQL >/dev/null || exit 1
INSERT INTO ordersync.location (id) SELECT 'L' || l FROM generate_series(1, $LOCATIONS) l;
INSERT INTO ordersync.sku (sku) SELECT 'S' || s FROM generate_series(1, $SKUS) s;
INSERT INTO ordersync.stock (sku, location, on_hand)
SELECT 'S' || s, 'L' || l, 100 FROM generate_series(1, $SKUS) s, generate_series(1, $LOCATIONS) l;
INSERT INTO ordersync.rollup_daily_sku (day, sku, location, reserved, released, shipped, returned)
SELECT (now() AT TIME ZONE 'UTC')::date - d, 'S' || s, 'L' || l, 1 + (s * d * l) % 5, 0, 0, 0
FROM generate_series(1, $DAYS) d, generate_series(1, $SKUS) s, generate_series(1, $LOCATIONS) l
WHERE (s + d * 7 + l * 3) % 3 = 0 OR (s % 10 = 0 AND d % 2 = 0);
CREATE TABLE series AS
SELECT sku, location, array_agg(reserved::float8 ORDER BY day) AS y
  FROM ordersync.rollup_daily_sku GROUP BY sku, location;
VACUUM ANALYZE;
SQL
pairs=$(q -c "SELECT count(*) FROM ordersync.stock")
echo "catalogue: $pairs SKU x location pairs, $DAYS days of demand ($(q -c "SELECT count(*) FROM ordersync.rollup_daily_sku") rollup rows)"

# the C and PL/pgSQL forecasts must agree before they are timed
diff=$(q -c "SELECT count(*) FROM series, LATERAL ordersync.forecast_intermittent(y) c, LATERAL bench_fi_auto(y) r
	WHERE c.method <> r.method OR abs(c.value - r.value) > 1e-9 * greatest(1, abs(r.value))")
[ "$diff" = 0 ] || { echo "bench/outlook: C and PL/pgSQL forecasts differ on $diff series" >&2; exit 1; }
echo "forecast_intermittent: C = PL/pgSQL on all $pairs series"

# ms of one statement, run in one backend after a warm-up
timed() {
	q <<SQL
SELECT count(*) FROM ($1) w WHERE w IS NOT NULL \\g /dev/null
DO \$\$
DECLARE t timestamptz := clock_timestamp(); n bigint;
BEGIN
	EXECUTE 'SELECT count(*) FROM ($1) w WHERE w IS NOT NULL' INTO n;
	RAISE NOTICE 'ms %', round(extract(epoch FROM clock_timestamp() - t) * 1000, 1);
END \$\$;
SQL
}
ms() { timed "$1" 2>&1 | sed -n 's/^NOTICE:  ms //p'; }

c_fi="SELECT c.value FROM series, LATERAL ordersync.forecast_intermittent(y) c"
r_fi="SELECT r.value FROM series, LATERAL bench_fi_auto(y) r"
c_so="SELECT * FROM ordersync.stock_outlook()"
r_so="SELECT s.sku, cardinality(d.days) + cardinality(d.qty) AS n FROM (SELECT sku, location, sum(on_hand) FROM ordersync.stock GROUP BY 1, 2) s
 LEFT JOIN (SELECT sku, location, array_agg(day ORDER BY day) days, array_agg(reserved::float8 ORDER BY day) qty
              FROM ordersync.rollup_daily_sku WHERE day >= current_date - 365 AND day < current_date GROUP BY 1, 2) d
   ON d.sku = s.sku AND d.location = s.location ORDER BY s.sku COLLATE \"C\", s.location COLLATE \"C\""
: >"$dir/fi"
: >"$dir/so"
for r in $(seq 1 "$ROUNDS"); do
	a=$(ms "$c_fi"); b=$(ms "$r_fi"); c=$(ms "$c_so"); d=$(ms "$r_so")
	echo "round $r: forecast_intermittent C ${a} ms, PL/pgSQL ${b} ms; stock_outlook ${c} ms, reading only ${d} ms"
	awk -v a="$a" -v b="$b" 'BEGIN { print a / b }' >>"$dir/fi"
	awk -v c="$c" -v d="$d" 'BEGIN { print c / d }' >>"$dir/so"
done
fi=$(median <"$dir/fi")
so=$(median <"$dir/so")
printf 'forecast_intermittent over %s series, C / PL/pgSQL (median of rounds):   %.3f\n' "$pairs" "$fi"
printf 'stock_outlook() / reading the same rollup window (median of rounds): %.2f\n' "$so"
if [ -n "${BENCH_RESULTS:-}" ]; then
	echo "outlook_fi_ratio $fi" >>"$BENCH_RESULTS"
	echo "outlook_stock_outlook_ratio $so" >>"$BENCH_RESULTS"
fi
