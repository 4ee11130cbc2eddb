#!/usr/bin/env bash
# bench/analytics/run.sh — the bottleneck analytics on a shop's month: ORDERS
# orders (default 1,000,000) and their history (about 10 rows per order),
# written straight into the tables by generate.sql.  Each analytics question
# is timed side by side with the same answer computed by plain SQL straight
# over ordersync.history (the reference), and the ratio printed; the answers
# are compared too (equal, or for the percentiles within the 4.5% the
# histograms promise).  First, refresh_rollups() catches up on the whole
# history, against the recount views' time (what a view over history would
# cost each time it is read).
#   ORDERS (default 1000000), ORDERSYNC_BENCH_ANALYTICS_PORT (default
#   26021), ORDERSYNC_PGBIN (a private server build, as scripts/cluster.sh)
# Not part of `make test`: it takes minutes.  Exits non-zero when an answer
# differs from its reference.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
PORT=${ORDERSYNC_BENCH_ANALYTICS_PORT:-26021}
ORDERS=${ORDERS:-1000000}
dir=$(mktemp -d /tmp/ordersync-bench-analytics.XXXXXX)
chmod 0755 "$dir"
trap '"$top/scripts/cluster.sh" stop "$dir/pg" >/dev/null 2>&1; rm -rf "$dir"' EXIT

"$top/scripts/cluster.sh" start "$dir/pg" "$PORT" "synchronous_commit = off" \
	"max_wal_size = 8GB" "checkpoint_timeout = 30min" "autovacuum = off" \
	"work_mem = 64MB" "maintenance_work_mem = 512MB" >/dev/null
eval "$("$top/scripts/cluster.sh" env "$dir/pg" "$PORT")"
export PGHOST PGPORT PGUSER PGDATABASE
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
fail=0

now_s() { date +%s.%N; }
# timed SQL: prints the seconds it took
timed() {
	local t0 t1
	t0=$(now_s)
	q -c "$1" >/dev/null
	t1=$(now_s)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}
# best of 3, for the fast side
timed3() {
	local best=999999 t
	for _ in 1 2 3; do
		t=$(timed "$1")
		best=$(awk -v a="$best" -v b="$t" 'BEGIN { print (b < a) ? b : a }')
	done
	echo "$best"
}
row() { # name, analytics seconds, reference seconds, answer check
	awk -v n="$1" -v a="$2" -v r="$3" -v c="$4" \
		'BEGIN { printf "%-34s %10.3f %12.3f %9.1fx   %s\n", n, a, r, (a > 0 ? r / a : 0), c }'
}

q -c "CREATE EXTENSION ordersync"
echo "generating $ORDERS orders and their history ..."
t=$(now_s)
q -v orders="$ORDERS" -f "$here/generate.sql" >/dev/null
gen=$(awk -v a="$t" -v b="$(now_s)" 'BEGIN { printf "%.0f", b - a }')
echo "  $(q -c "SELECT count(*) FROM ordersync.orders") orders, $(q -c "SELECT count(*) FROM ordersync.history") history rows in ${gen}s"

# the window of the percentiles: the last 7 days of the month
since=$(q -c "SELECT date_trunc('day', now()) - interval '19 days'")
until=$(q -c "SELECT date_trunc('day', now()) - interval '13 days'")

printf '\n%-34s %10s %12s %10s   %s\n' "question" "analytics s" "reference s" "ratio" "answer"

# --- catching up: refresh_rollups() over the whole history, once, against
# reading the five recount views once (a view answers from scratch each time)
a=$(timed "SELECT ordersync.refresh_rollups()")
r=$(timed "SELECT (SELECT count(*) FROM ordersync.rollup_hourly_recount),
                  (SELECT count(*) FROM ordersync.rollup_daily_sku_recount),
                  (SELECT count(*) FROM ordersync.rollup_status_time_recount),
                  (SELECT count(*) FROM ordersync.rollup_funnel_recount),
                  (SELECT count(*) FROM ordersync.rollup_stockout_recount)")
diff=$(q -c "SELECT (SELECT count(*) FROM ((TABLE ordersync.rollup_status_time EXCEPT TABLE ordersync.rollup_status_time_recount)
                      UNION ALL (TABLE ordersync.rollup_status_time_recount EXCEPT TABLE ordersync.rollup_status_time)) x)
                  + (SELECT count(*) FROM ((TABLE ordersync.rollup_funnel EXCEPT TABLE ordersync.rollup_funnel_recount)
                      UNION ALL (TABLE ordersync.rollup_funnel_recount EXCEPT TABLE ordersync.rollup_funnel)) y)
                  + (SELECT count(*) FROM ((TABLE ordersync.rollup_stockout EXCEPT TABLE ordersync.rollup_stockout_recount)
                      UNION ALL (TABLE ordersync.rollup_stockout_recount EXCEPT TABLE ordersync.rollup_stockout)) z)")
[ "$diff" = 0 ] || fail=1
row "refresh_rollups() from empty (once)" "$a" "$r" "rows differing from the recount: $diff"
hist=$(q -c "SELECT count(*) FROM ordersync.history")
awk -v a="$a" -v n="$hist" 'BEGIN { printf "  the worker keeps up at %.0f history rows/s: a day of this shop (%.0f rows) in %.1f s\n", n / a, n / 42, n / 42 / (n / a) }'

# --- time in status, p50/p95/p99 per transition x location x channel, 7 days
a=$(timed3 "DROP TABLE IF EXISTS mine_st; CREATE TABLE mine_st AS SELECT * FROM ordersync.status_times('$since', '$until')")
r=$(timed "DROP TABLE IF EXISTS ref_st; CREATE TABLE ref_st AS
WITH e AS (
	SELECT h.order_id, h.id, h.at, h.action, h.from_status, h.to_status,
		   h.at - lag(h.at) OVER (PARTITION BY h.order_id ORDER BY h.id) AS spent
	  FROM ordersync.history h WHERE h.action IN ('created', 'status')
), loc AS (
	SELECT order_id, min(location) AS location FROM ordersync.history WHERE action = 'reserve' GROUP BY 1
)
SELECT e.from_status, e.to_status, coalesce(loc.location, '') AS location, o.channel, count(*) AS transitions,
	   percentile_disc(0.50) WITHIN GROUP (ORDER BY e.spent) AS p50,
	   percentile_disc(0.95) WITHIN GROUP (ORDER BY e.spent) AS p95,
	   percentile_disc(0.99) WITHIN GROUP (ORDER BY e.spent) AS p99,
	   avg(e.spent) AS mean
  FROM e JOIN ordersync.orders o ON o.id = e.order_id LEFT JOIN loc ON loc.order_id = e.order_id
 WHERE e.action = 'status' AND e.at >= timestamptz '$since' AND e.at < timestamptz '$until' + interval '1 day'
 GROUP BY 1, 2, 3, 4")
check=$(q -c "SELECT format('%s groups, counts equal: %s, worst percentile error %s%%',
	count(*), bool_and(m.transitions = r.transitions),
	round(max(greatest(abs(extract(epoch FROM m.p50 - r.p50)) / greatest(extract(epoch FROM r.p50), 0.001),
	                   abs(extract(epoch FROM m.p95 - r.p95)) / greatest(extract(epoch FROM r.p95), 0.001),
	                   abs(extract(epoch FROM m.p99 - r.p99)) / greatest(extract(epoch FROM r.p99), 0.001)))::numeric * 100, 2))
	FROM mine_st m FULL JOIN ref_st r USING (from_status, to_status, location, channel)")
grep -q "counts equal: t," <<<"$check" || fail=1
awk -v e="${check##*error }" 'BEGIN { exit !(e + 0 <= 4.5) }' || fail=1
row "status_times(7 days)" "$a" "$r" "$check"
echo "  the slowest transitions (p95), analytics | reference:"
q -c "SELECT format('    %-10s -> %-10s %-6s %-7s p95 %s | %s', m.from_status, m.to_status, m.location, m.channel,
                    justify_hours(date_trunc('second', m.p95)), justify_hours(date_trunc('second', r.p95)))
        FROM mine_st m JOIN ref_st r USING (from_status, to_status, location, channel) ORDER BY m.p95 DESC LIMIT 3"

# --- funnel per day x channel with rates
a=$(timed3 "SELECT * FROM ordersync.funnel")
r=$(timed "SELECT * FROM ordersync.rollup_funnel_recount")
check=$(q -c "SELECT format('days x channels: %s, differing: %s', (SELECT count(*) FROM ordersync.funnel),
	(SELECT count(*) FROM ((TABLE ordersync.rollup_funnel EXCEPT TABLE ordersync.rollup_funnel_recount)
	 UNION ALL (TABLE ordersync.rollup_funnel_recount EXCEPT TABLE ordersync.rollup_funnel)) d))")
grep -q "differing: 0" <<<"$check" || fail=1
row "funnel (all days)" "$a" "$r" "$check"

# --- stock-out hours per SKU x location over the month
a=$(timed3 "SELECT * FROM ordersync.stockout_hours(now() - interval '60 days', now())")
r=$(timed "SELECT sku, location, count(*), sum(extract(epoch FROM coalesce(ended_at, now()) - started_at)) / 3600
             FROM ordersync.rollup_stockout_recount GROUP BY 1, 2")
check=$(q -c "SELECT format('%s SKU x location out of stock at some time, %s hours in all; differing: %s',
	count(*), round(sum(m.hours)),
	count(*) FILTER (WHERE m.stockouts IS DISTINCT FROM r.n OR abs(m.hours - r.h) > 1e-6))
	FROM ordersync.stockout_hours(now() - interval '60 days', now()) m
	FULL JOIN (SELECT sku, location, count(*) AS n, sum(extract(epoch FROM coalesce(ended_at, now()) - started_at))::float8 / 3600 AS h
	             FROM ordersync.rollup_stockout_recount GROUP BY 1, 2) r USING (sku, location)")
grep -q "differing: 0" <<<"$check" || fail=1
row "stockout_hours(60 days)" "$a" "$r" "$check"

# --- sell-through per SKU over 60 days
a=$(timed3 "SELECT * FROM ordersync.sell_through(60)")
r=$(timed "SELECT k.sku, coalesce(s.n, 0), (SELECT sum(on_hand) FROM ordersync.stock st WHERE st.sku = k.sku)
             FROM ordersync.sku k LEFT JOIN (SELECT sku, sum(CASE action WHEN 'consume' THEN qty ELSE -qty END) AS n
               FROM ordersync.history WHERE action IN ('consume', 'restock')
                AND at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '59 days'
              GROUP BY 1) s ON s.sku = k.sku")
check=$(q -c "SELECT format('%s SKUs, differing: %s', count(*), count(*) FILTER (WHERE m.units_sold IS DISTINCT FROM r.n))
	FROM ordersync.sell_through(60) m FULL JOIN (SELECT sku, sum(CASE action WHEN 'consume' THEN qty ELSE -qty END) AS n
	  FROM ordersync.history WHERE action IN ('consume', 'restock')
	   AND at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '59 days' GROUP BY 1) r USING (sku)")
grep -q "differing: 0" <<<"$check" || fail=1
row "sell_through(60 days)" "$a" "$r" "$check"

# --- stuck orders: completed more than 20 days ago (an SLA on 'completed')
q -c "SELECT ordersync.set_sla('completed', '20 days')" >/dev/null
a=$(timed3 "SELECT count(*) FROM ordersync.stuck_orders")
r=$(timed "SELECT count(*) FROM (SELECT DISTINCT ON (order_id) order_id, to_status, at FROM ordersync.history
             WHERE action IN ('created', 'status') ORDER BY order_id, id DESC) l
            WHERE l.to_status = 'completed' AND l.at < now() - interval '20 days'")
m=$(q -c "SELECT count(*) FROM ordersync.stuck_orders")
rr=$(q -c "SELECT count(*) FROM (SELECT DISTINCT ON (order_id) order_id, to_status, at FROM ordersync.history
             WHERE action IN ('created', 'status') ORDER BY order_id, id DESC) l
            WHERE l.to_status = 'completed' AND l.at < now() - interval '20 days'")
[ "$m" = "$rr" ] || fail=1
row "stuck_orders (count)" "$a" "$r" "$m stuck, reference $rr"

q -c "SELECT ordersync.set_sla('completed', NULL)" >/dev/null
echo
[ "$fail" -eq 0 ] && echo "analytics bench OK: every answer equals its reference" ||
	{ echo "analytics bench FAILED: an answer differs from its reference"; exit 1; }
