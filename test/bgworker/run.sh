#!/usr/bin/env bash
# test/bgworker/run.sh — the expiry background worker, on a cluster of its
# own with ordersync in shared_preload_libraries: a pending order whose
# reservation runs out is expired without anyone calling
# expire_reservations(), its stock comes back, and an order being paid at
# that moment is left alone.  Then auto-hot: a storm of buyers on a SKU
# nobody prepared splits it into buckets within seconds, and once quiet for
# ordersync.auto_hot_cooldown it is one row again; no unit is lost or
# counted twice across either switch, each switch is one history row and
# one inventory.hot_changed event, and a SKU the operator set is left alone.
# Then rollups: the worker keeps them equal to the recount, and killed in
# the middle of a backlog it resumes where its last commit left them.
# Then analytics: OS001 refusals under concurrent buyers are counted in
# shared memory and flushed by the worker exactly, and the worker flags
# orders stuck past their SLA once each, with one order.stuck event.
# Then the outlook: the worker announces a stock-out to come once
# (inventory.stockout_predicted), however often it checks, and splits a
# SKU forecast to sell fast before its peak.
# Then a hot SKU's event figures kept in shared memory between sums are
# exact in every event across sessions, rollbacks and receipts.
# Last, retention (0.5.0): the worker erases the personal data of a
# market's closed orders and then removes them, in batches of
# ordersync.retention_batch, leaving open and held orders alone.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$(dirname "$0")/../.." && pwd)
PORT=${ORDERSYNC_BGWORKER_PORT:-25434}
PGBENCH=${PGBENCH:-/usr/lib/postgresql/15/bin/pgbench}
# another cluster script (same commands), e.g. one for a private build
CLUSTER=${ORDERSYNC_CLUSTER_SH:-$top/scripts/cluster.sh}
dir=$(mktemp -d /tmp/ordersync-bgw.XXXXXX)
chmod 0755 "$dir"
trap '"$CLUSTER" stop "$dir/pg" >/dev/null 2>&1; rm -rf "$dir"' EXIT

# the database the worker works in must exist when the server starts
"$CLUSTER" start "$dir/pg" "$PORT" || { echo "FAIL: bgworker/cluster_start"; exit 1; }
eval "$("$CLUSTER" env "$dir/pg" "$PORT")"
export PGOPTIONS="-c client_min_messages=warning"
psql -X -q -d postgres -c "CREATE DATABASE shop" || exit 1
# (ALTER SYSTEM refuses ordersync.* before the library is loaded)
printf "%s\n" "shared_preload_libraries = 'ordersync'" "ordersync.database = 'shop'" \
	"ordersync.expire_interval = 1" "ordersync.auto_hot_cooldown = 3" "max_connections = 120" \
	"ordersync.retention_interval = 1" "ordersync.retention_batch = 2" | if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- tee -a "$dir/pg/data/postgresql.conf"
	else
		tee -a "$dir/pg/data/postgresql.conf"
	fi >/dev/null
"$CLUSTER" restart "$dir/pg" || { echo "FAIL: bgworker/cluster_restart"; exit 1; }

q() { psql -X -At -v ON_ERROR_STOP=1 -d shop -c "$1"; }
check() {
	if [ "$2" = "$3" ]; then echo "PASS: bgworker/$1"; else echo "FAIL: bgworker/$1 (got '$2', want '$3')"; fi
}

q "CREATE EXTENSION ordersync" >/dev/null
q "SELECT ordersync.add_location('main')" >/dev/null
q "SELECT ordersync.receive_stock('A', 'main', 10)" >/dev/null

# the worker waits for the extension, then runs in the configured database
for _ in $(seq 1 30); do
	[ "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ordersync expiry worker' AND datname = 'shop'")" = 1 ] && break
	sleep 0.5
done
check worker_running "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ordersync expiry worker' AND datname = 'shop'")" "1"

# two orders run out; one of them is being paid right now
q "SET ordersync.reservation_ttl = 1; SELECT ordersync.place_order('web', 'x1', '[{\"sku\": \"A\", \"qty\": 3, \"price\": \"1\"}]')" >/dev/null
q "SET ordersync.reservation_ttl = 1; SELECT ordersync.place_order('web', 'x2', '[{\"sku\": \"A\", \"qty\": 2, \"price\": \"1\"}]')" >/dev/null
check reserved "$(q "SELECT ordersync.available('A')")" "5"
# x2 is locked by a payment that takes 4 seconds, past its expiry
psql -X -q -d shop -c "BEGIN; SELECT ordersync.set_status(id, 'paid') FROM ordersync.orders WHERE external_id = 'x2'; SELECT pg_sleep(4); COMMIT;" >/dev/null &
payer=$!

for _ in $(seq 1 30); do
	[ "$(q "SELECT status FROM ordersync.orders WHERE external_id = 'x1'")" = expired ] && break
	sleep 0.2
done
check expired_by_worker "$(q "SELECT status FROM ordersync.orders WHERE external_id = 'x1'")" "expired"
check reason_recorded "$(q "SELECT reason FROM ordersync.history h JOIN ordersync.orders o ON o.id = h.order_id WHERE o.external_id = 'x1' AND h.to_status = 'expired'")" "reservation expired"
wait $payer
check payment_not_overtaken "$(q "SELECT status FROM ordersync.orders WHERE external_id = 'x2'")" "paid"
check stock_back "$(q "SELECT ordersync.available('A')")" "8"

# --- auto-hot: a storm on a SKU nobody prepared
q "SELECT ordersync.receive_stock('STORM', 'main', 100000)" >/dev/null
q "SELECT ordersync.receive_stock('OPS', 'main', 100000)" >/dev/null
q "SELECT ordersync.set_hot('OPS', 1)" >/dev/null
q "SELECT 'slot' FROM pg_create_logical_replication_slot('bgw_hot', 'test_decoding')" >/dev/null
q "CREATE TABLE refused (n int)" >/dev/null
q "CREATE FUNCTION try_buy(sku text) RETURNS void LANGUAGE plpgsql AS \$\$
BEGIN
	PERFORM ordersync.place_order('web', md5(random()::text),
		jsonb_build_array(jsonb_build_object('sku', sku, 'qty', 1, 'price', '1')));
EXCEPTION WHEN SQLSTATE 'OS001' THEN
	INSERT INTO refused VALUES (1);
END \$\$" >/dev/null
echo "SELECT try_buy('STORM');" >"$dir/storm.sql"
# the expiry worker stuck for the whole storm, releasing an order that ran
# out behind a row lock: auto-hot has a worker of its own (sharing the
# expiry worker's loop, it split nothing while expiry was busy)
check autohot_worker_running "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ordersync auto-hot worker' AND datname = 'shop'")" "1"
q "SELECT ordersync.receive_stock('STALL', 'main', 10)" >/dev/null
q "SET ordersync.reservation_ttl = 1; SELECT ordersync.place_order('web', 'stall', '[{\"sku\": \"STALL\", \"qty\": 1, \"price\": \"1\"}]')" >/dev/null
psql -X -q -d shop -c "BEGIN; SELECT 1 FROM ordersync.stock WHERE sku = 'STALL' FOR UPDATE; SELECT pg_sleep(15); COMMIT;" >/dev/null &
blocker=$!
expiry_worker_on_lock() { q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ordersync expiry worker' AND wait_event_type = 'Lock'"; }
stuck=no
for _ in $(seq 1 50); do
	if [ "$(expiry_worker_on_lock)" = 1 ]; then
		stuck=yes
		break
	fi
	sleep 0.1
done
check expiry_worker_stuck_during_storm "$stuck" "yes"
echo "SELECT try_buy('OPS');" >"$dir/ops.sql"
start=$(date +%s.%N)
"$PGBENCH" -n -c 48 -j 2 -T 6 -f "$dir/storm.sql" shop >"$dir/storm.log" 2>&1 &
storm=$!
"$PGBENCH" -n -c 16 -j 1 -T 6 -f "$dir/ops.sql" shop >"$dir/ops.log" 2>&1 &
ops=$!
split_after=none
for _ in $(seq 1 50); do
	if [ "$(q "SELECT buckets > 1 FROM ordersync.sku WHERE sku = 'STORM'")" = t ]; then
		split_after=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
		break
	fi
	sleep 0.1
done
wait $storm; rc1=$?
wait $ops; rc2=$?
check expiry_worker_was_stuck "$(expiry_worker_on_lock)" "1"
check storm_pgbench "$rc1/$rc2/$(grep -c -E 'ERROR|aborted' "$dir/storm.log" "$dir/ops.log" | awk -F: '{s += $2} END {print s}')" "0/0/0"
# decided within about a second of the first order (the worker's transaction
# then waits its turn in the queue for the SKU's row, which a busy machine
# makes longer: visible within a few seconds of pgbench starting)
decided=$(q "SELECT round(extract(epoch FROM (SELECT min(at) FROM ordersync.history WHERE sku = 'STORM' AND reason LIKE 'auto:%')
	- (SELECT min(created_at) FROM ordersync.orders o WHERE o.lines @> '[{\"sku\": \"STORM\"}]')), 2)")
echo "# auto-hot: split of STORM decided ${decided}s after its first order, visible ${split_after}s after pgbench started"
check storm_split_decided_within_2s "$(awk -v t="$decided" 'BEGIN {print (t != "" && t <= 2.0) ? "yes" : "no (" t ")"}')" "yes"
check storm_split_visible_within_6s "$(awk -v t="$split_after" 'BEGIN {print (t != "none" && t <= 6.0) ? "yes" : "no (" t ")"}')" "yes"
check storm_split_is_auto "$(q "SELECT hot_source FROM ordersync.sku WHERE sku = 'STORM'")" "auto"
check operator_choice_kept "$(q "SELECT buckets || '/' || hot_source FROM ordersync.sku WHERE sku = 'OPS'")" "1/operator"
sold=$(q "SELECT count(*) FROM ordersync.order_line WHERE sku = 'STORM'")
check storm_no_refusal "$(q "SELECT count(*) FROM refused")" "0"
check storm_units_kept "$(q "SELECT sum(on_hand) || '/' || sum(reserved) || '/' || ordersync.available('STORM') FROM ordersync.stock WHERE sku = 'STORM'")" "100000/$sold/$((100000 - sold))"
check storm_reservations_match "$(q "SELECT count(*) FROM ordersync.stock s WHERE s.reserved <> coalesce((SELECT sum(qty) FROM ordersync.reservation r WHERE r.sku = s.sku AND r.location = s.location AND r.bucket = s.bucket AND r.state = 'held'), 0)")" "0"
# the storm's reservation events, split or not (figures kept between sums
# once split, hot_figures.c): one per order, on hand as received, reserved
# within what was sold, available what is left of it
check storm_event_figures "$(q "SELECT count(*) || '/' || count(*) FILTER (WHERE (e->>'on_hand')::bigint <> 100000
	     OR (e->>'reserved')::bigint NOT BETWEEN 1 AND $sold OR (e->>'available')::bigint <> 100000 - (e->>'reserved')::bigint)
	FROM (SELECT substring(data FROM 'content:(.*)$')::jsonb->'data' e FROM pg_logical_slot_peek_changes('bgw_hot', NULL, NULL)
	      WHERE data LIKE '%inventory.reserved%sku/STORM%') s")" "$sold/0"

# quiet: back to one row after the cool-down (3 s here)
for _ in $(seq 1 60); do
	[ "$(q "SELECT buckets FROM ordersync.sku WHERE sku = 'STORM'")" = 1 ] && break
	sleep 0.2
done
check storm_merged_back "$(q "SELECT buckets || '/' || coalesce(hot_source, 'none') || '/' || (SELECT count(*) FROM ordersync.stock WHERE sku = 'STORM') FROM ordersync.sku WHERE sku = 'STORM'")" "1/none/1"
check merged_units_kept "$(q "SELECT on_hand || '/' || reserved FROM ordersync.stock WHERE sku = 'STORM'")" "100000/$sold"
check merged_reservations_match "$(q "SELECT sum(qty) FROM ordersync.reservation WHERE sku = 'STORM' AND state = 'held'")" "$sold"
# each automatic change: one history row with its reason, one event
hist=$(q "SELECT count(*) FROM ordersync.history WHERE sku = 'STORM' AND action = 'set_hot' AND reason LIKE 'auto:%'")
events=$(q "SELECT count(*) FROM pg_logical_slot_get_changes('bgw_hot', NULL, NULL) WHERE data LIKE '%inventory.hot_changed%'")
check hot_changed_events_once "$events" "$hist"
check hot_changed_split_and_merge "$(q "SELECT (count(*) FILTER (WHERE qty > 1) >= 1 AND (array_agg(qty ORDER BY id DESC))[1] = 1)::text FROM ordersync.history WHERE sku = 'STORM' AND action = 'set_hot'")" "true"
q "SELECT pg_drop_replication_slot('bgw_hot')" >/dev/null
wait $blocker

# a buyer whose wait for a row ends in an error (here lock_timeout) is not
# counted as queued afterwards: with a queue of one enough to split, a wait
# too short for two ticks must leave the SKU alone, even while the buyer's
# session stays open
q "SELECT ordersync.receive_stock('STALE', 'main', 100)" >/dev/null
q "ALTER SYSTEM SET ordersync.auto_hot_queue = 1" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
psql -X -q -d shop -c "BEGIN; SELECT try_buy('STALE'); SELECT pg_sleep(2); COMMIT;" >/dev/null &
holder=$!
sleep 0.5
printf "%s\n" "SET lock_timeout = '100ms';" \
	"SELECT ordersync.place_order('web', 'stale-1', '[{\"sku\": \"STALE\", \"qty\": 1, \"price\": \"1\"}]');" \
	"SELECT pg_sleep(2);" |
	psql -X -q -d shop -v ON_ERROR_STOP=0 >/dev/null 2>"$dir/stale.err"
wait $holder
check failed_wait_not_queued "$(grep -c 'lock timeout' "$dir/stale.err")/$(q "SELECT buckets FROM ordersync.sku WHERE sku = 'STALE'")" "1/1"
q "ALTER SYSTEM RESET ordersync.auto_hot_queue" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null

# --- rollups (issue 13): the worker keeps them equal to the recount, and
# a crash in the middle of a refresh loses nothing and counts nothing twice
rollup_diff() {
	q "SELECT (SELECT count(*) FROM ((TABLE ordersync.rollup_hourly EXCEPT ALL TABLE ordersync.rollup_hourly_recount)
	                                 UNION ALL (TABLE ordersync.rollup_hourly_recount EXCEPT ALL TABLE ordersync.rollup_hourly)) h)
	        + (SELECT count(*) FROM ((TABLE ordersync.rollup_daily_sku EXCEPT ALL TABLE ordersync.rollup_daily_sku_recount)
	                                 UNION ALL (TABLE ordersync.rollup_daily_sku_recount EXCEPT ALL TABLE ordersync.rollup_daily_sku)) d)
	        || '/' || coalesce((SELECT rows_processed - (SELECT count(*) FROM ordersync.history) FROM ordersync.rollup_state), -1)"
}
rollup_wait() {
	for _ in $(seq 1 ${1:-40}); do
		[ "$(rollup_diff 2>/dev/null)" = "0/0" ] && break
		sleep 0.5
	done
	rollup_diff
}
q "ALTER SYSTEM SET ordersync.rollup_interval = 1" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
check rollup_worker_backfilled "$(rollup_wait)" "0/0"
q "SELECT ordersync.place_order('app', 'roll-' || i, '[{\"sku\": \"A\", \"qty\": 1, \"price\": \"4.50\"}]') FROM generate_series(1, 3) i" >/dev/null
check rollup_worker_follows "$(rollup_wait)" "0/0"

# a backlog (fake stock movements, written directly) that takes the worker
# several batches; it is killed once it has committed one and is at the next
q "ALTER SYSTEM SET ordersync.rollup_interval = 0" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
sleep 1.5
q "INSERT INTO ordersync.history (action, sku, location, qty, actor, role)
   SELECT 'reserve', 'ROLL-' || (i % 97), 'main', 1 + i % 3, 'bgworker test', current_user FROM generate_series(1, 400000) i" >/dev/null
high0=$(q "SELECT high_id FROM ordersync.rollup_state")
q "ALTER SYSTEM SET ordersync.rollup_interval = 1" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
victim=$(q "DO \$\$
DECLARE
	t timestamptz := clock_timestamp();
BEGIN
	WHILE clock_timestamp() < t + interval '20 s' LOOP
		PERFORM pg_stat_clear_snapshot();
		IF (SELECT high_id FROM ordersync.rollup_state) > $high0 AND EXISTS (
			SELECT FROM pg_stat_activity WHERE backend_type = 'ordersync expiry worker'
			   AND query = 'ordersync: refreshing rollups' AND state = 'active') THEN
			EXIT;
		END IF;
		PERFORM pg_sleep(0.005);
	END LOOP;
END \$\$;
SELECT pid || ' ' || (SELECT high_id > $high0 AND high_id < (SELECT max(id) FROM ordersync.history) FROM ordersync.rollup_state)
  FROM pg_stat_activity WHERE backend_type = 'ordersync expiry worker'")
kill -9 "${victim% *}" 2>/dev/null
# what the crash left: the batches committed before it, and their rollups
check rollup_killed_mid_backlog "${victim#* }" "true"
sleep 1
for _ in $(seq 1 60); do
	q "SELECT 1" >/dev/null 2>&1 && break
	sleep 0.5
done
check rollup_resumed_after_crash "$(rollup_wait 120)" "0/0"
check rollup_worker_restarted "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ordersync expiry worker' AND datname = 'shop'")" "1"

# the analytics kept by the same refresh equal their recounts after the crash
check analytics_after_crash "$(q "SELECT (SELECT count(*) FROM ((TABLE ordersync.rollup_status_time EXCEPT ALL TABLE ordersync.rollup_status_time_recount)
	  UNION ALL (TABLE ordersync.rollup_status_time_recount EXCEPT ALL TABLE ordersync.rollup_status_time)) s)
	+ (SELECT count(*) FROM ((TABLE ordersync.rollup_funnel EXCEPT ALL TABLE ordersync.rollup_funnel_recount)
	  UNION ALL (TABLE ordersync.rollup_funnel_recount EXCEPT ALL TABLE ordersync.rollup_funnel)) f)
	+ (SELECT count(*) FROM ((TABLE ordersync.rollup_stockout EXCEPT ALL TABLE ordersync.rollup_stockout_recount)
	  UNION ALL (TABLE ordersync.rollup_stockout_recount EXCEPT ALL TABLE ordersync.rollup_stockout)) o)")" "0"

# --- demand turned away (issue 13 item 5): 8 sessions try 6 one-unit and
# 6 two-unit orders each for 10 units of RF; every OS001 is counted once,
# with its units, and the refused orders wrote nothing
q "SELECT ordersync.receive_stock('RF', 'main', 10)" >/dev/null
q "SELECT 'init' FROM pg_create_logical_replication_slot('bgw_stuck', 'wal2json')" >/dev/null
pids=()
for c in 1 2 3 4 5 6 7 8; do
	for i in 1 2 3 4 5 6; do
		echo "SELECT ordersync.place_order('web', 'rf-$c-$i-a', '[{\"sku\": \"RF\", \"qty\": 1, \"price\": \"1\"}]');"
		echo "SELECT ordersync.place_order('web', 'rf-$c-$i-b', '[{\"sku\": \"RF\", \"qty\": 2, \"price\": \"1\"}]');"
	done | psql -X -q -At -d shop >/dev/null 2>"$dir/rf.$c.err" &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
refused=$(cat "$dir"/rf.*.err | grep -c 'insufficient stock for SKU "RF"' || true)
units=$(cat "$dir"/rf.*.err | grep -o 'requested [0-9]*' | awk '{ s += $2 } END { print s + 0 }')
placed=$(q "SELECT count(*) FROM ordersync.orders WHERE external_id LIKE 'rf-%'")
check refusals_all_answered "$((refused + placed))" "96"
check refused_orders_wrote_nothing "$(q "SELECT count(*) FROM ordersync.history h JOIN ordersync.orders o ON o.id = h.order_id
	WHERE o.external_id LIKE 'rf-%'") $(q "SELECT sum(qty) + ordersync.available('RF') FROM ordersync.order_line l
	JOIN ordersync.orders o ON o.id = l.order_id WHERE o.external_id LIKE 'rf-%'")" "$((placed * 2)) 10"
for _ in $(seq 1 40); do
	[ "$(q "SELECT coalesce(sum(refusals), 0) FROM ordersync.demand_refused WHERE sku = 'RF'")" = "$refused" ] && break
	sleep 0.25
done
check refusals_flushed_exactly "$(q "SELECT coalesce(sum(refusals), 0) || ' ' || coalesce(sum(units), 0) FROM ordersync.demand_refused WHERE sku = 'RF'")" \
	"$refused $units"
# nothing is left to flush: a flush by hand adds nothing more
check refusals_flush_idempotent "$(q "SELECT ordersync.flush_refusals()")" "0"

# --- stuck orders: pending past a 1 s SLA, flagged by the worker once each
q "SELECT ordersync.set_sla('pending', '1 second')" >/dev/null
q "ALTER SYSTEM SET ordersync.stuck_interval = 1" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
want=$(q "SELECT count(*) FROM ordersync.orders WHERE status = 'pending'")
for _ in $(seq 1 40); do
	[ "$(q "SELECT count(*) FROM ordersync.order_stuck WHERE status = 'pending'")" = "$want" ] && break
	sleep 0.25
done
sleep 2.5	# two more rounds of the worker: nothing flagged twice
check stuck_flagged_by_worker "$(q "SELECT count(*) FROM ordersync.order_stuck WHERE status = 'pending'")" "$want"
check stuck_event_once_per_order "$(q "SELECT count(*) || ' ' || count(DISTINCT c->>'subject') FROM pg_logical_slot_get_changes('bgw_stuck', NULL, NULL,
	     'format-version', '2', 'add-msg-prefixes', 'ordersync') g, LATERAL (SELECT (g.data::jsonb->>'content')::jsonb AS c) m
	   WHERE g.data::jsonb->>'action' = 'M' AND c->>'type' = 'order.stuck'")" "$want $want"
q "SELECT pg_drop_replication_slot('bgw_stuck')" >/dev/null

# --- outlook (issue 13): a SKU selling 4 a day with 20 left runs out in 5
# days, within the lead time of 7: one event, however many checks follow;
# at 4 / 24 units an hour it is bucketed before the peak
q "SELECT 'slot' FROM pg_create_logical_replication_slot('bgw_outlook', 'test_decoding')" >/dev/null
q "SELECT ordersync.receive_stock('OUTLK', 'main', 20)" >/dev/null
q "INSERT INTO ordersync.history (at, action, sku, location, qty, actor, role)
   SELECT ((now() AT TIME ZONE 'UTC')::date - d + time '12:00') AT TIME ZONE 'UTC', 'reserve', 'OUTLK', 'main', 4,
          'bgworker test', current_user FROM generate_series(1, 30) d" >/dev/null
q "ALTER SYSTEM SET ordersync.outlook_interval = 1" >/dev/null
q "ALTER SYSTEM SET ordersync.peak_units_per_hour = 0.1" >/dev/null
q "ALTER SYSTEM SET ordersync.peak_buckets = 4" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 1 60); do
	[ "$(q "SELECT count(*) FROM ordersync.stockout_watch WHERE sku = 'OUTLK'")" = 1 ] &&
		[ "$(q "SELECT buckets FROM ordersync.sku WHERE sku = 'OUTLK'")" = 4 ] && break
	sleep 0.5
done
check outlook_stockout_watched "$(q "SELECT sku || '/' || round(days_of_cover) FROM ordersync.stockout_watch WHERE sku = 'OUTLK'")" "OUTLK/5"
sleep 3	# three more checks
check outlook_stockout_event_once "$(q "SELECT count(*) FROM pg_logical_slot_get_changes('bgw_outlook', NULL, NULL)
	WHERE data LIKE '%inventory.stockout_predicted%' AND data LIKE '%sku/OUTLK%'")" "1"
check outlook_peak_split "$(q "SELECT buckets || '/' || hot_source || '/' || (SELECT sum(on_hand) FROM ordersync.stock WHERE sku = 'OUTLK')
	FROM ordersync.sku WHERE sku = 'OUTLK'")" "4/forecast/20"
check outlook_peak_history "$(q "SELECT count(*) FROM ordersync.history WHERE sku = 'OUTLK' AND action = 'set_hot' AND reason LIKE 'forecast:%'")" "1"
# buyers busy on its buckets (no leases, each holding its bucket 50 ms:
# they wait for each other long enough for auto-hot to track the SKU; a
# queue threshold out of reach keeps it from splitting further), then quiet
# past the cool-down: auto-hot merges back only what it split itself, so
# the SKU bucketed for its peak stays bucketed
q "SELECT ordersync.receive_stock('OUTLK', 'main', 100000)" >/dev/null
q "ALTER SYSTEM SET ordersync.auto_hot_queue = 100000" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
printf "%s\n" "BEGIN;" "SELECT try_buy('OUTLK');" "SELECT pg_sleep(0.05);" "COMMIT;" >"$dir/outlk.sql"
PGOPTIONS="$PGOPTIONS -c ordersync.hot_lease=0" "$PGBENCH" -n -c 8 -j 2 -T 3 -f "$dir/outlk.sql" shop >"$dir/outlk.log" 2>&1
q "ALTER SYSTEM RESET ordersync.auto_hot_queue" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
check outlook_peak_busy_not_resplit "$(q "SELECT buckets || '/' || hot_source FROM ordersync.sku WHERE sku = 'OUTLK'")" "4/forecast"
sleep 5	# the cool-down is 3 s here
check outlook_peak_split_kept_after_busy "$(q "SELECT buckets || '/' || hot_source FROM ordersync.sku WHERE sku = 'OUTLK'")" "4/forecast"
q "SELECT pg_drop_replication_slot('bgw_outlook')" >/dev/null

# --- a hot SKU's event figures, kept in shared memory between sums
# (hot_figures.c): with a long ordersync.hot_figures_age every reservation
# below adds to the kept sum instead of reading the rows, and each event
# must still report exactly the stock the rows hold: across sessions, after
# a rollback, a savepoint rolled back, a receipt and a multi-line order.
q "SELECT ordersync.receive_stock('FIG', 'main', 1000); SELECT ordersync.set_hot('FIG', 4)" >/dev/null
q "SELECT 'slot' FROM pg_create_logical_replication_slot('bgw_fig', 'test_decoding')" >/dev/null
fig() { PGOPTIONS="$PGOPTIONS -c ordersync.hot_figures_age=10000" q "$1" >/dev/null; }
buy() { fig "SELECT ordersync.place_order('web', '$1', '[{\"sku\": \"FIG\", \"qty\": $2, \"price\": \"1\"}]')"; }
buy f1 3
buy f2 2
fig "BEGIN; SELECT ordersync.place_order('web', 'f-gone', '[{\"sku\": \"FIG\", \"qty\": 50, \"price\": \"1\"}]'); ROLLBACK"
buy f3 1
fig "BEGIN; SAVEPOINT s; SELECT ordersync.place_order('web', 'f-sp', '[{\"sku\": \"FIG\", \"qty\": 40, \"price\": \"1\"}]');
     ROLLBACK TO s; SELECT ordersync.place_order('web', 'f4', '[{\"sku\": \"FIG\", \"qty\": 4, \"price\": \"1\"}]'); COMMIT"
fig "SELECT ordersync.receive_stock('FIG', 'main', 100)"
buy f5 5
fig "SELECT ordersync.place_order('web', 'f6', '[{\"sku\": \"FIG\", \"qty\": 6, \"price\": \"1\"}, {\"sku\": \"A\", \"qty\": 1, \"price\": \"1\"}]')"
# each reservation event against what was reserved up to it, in order
check hot_figures_exact "$(q "SELECT string_agg(e->>'on_hand' || '/' || (e->>'reserved') || '/' || (e->>'available'), ' ' ORDER BY n)
	FROM (SELECT n, substring(data FROM 'content:(.*)$')::jsonb->'data' e
	      FROM pg_logical_slot_get_changes('bgw_fig', NULL, NULL) WITH ORDINALITY c(lsn, xid, data, n)
	      WHERE data LIKE '%inventory.reserved%sku/FIG%') s")" \
	"1000/3/997 1000/5/995 1000/6/994 1000/10/990 1100/15/1085 1100/21/1079"
# the kept sum serves: a change made behind ordersync's back (not a stock
# movement) is not seen until the next sum
q "UPDATE ordersync.stock SET on_hand = on_hand + 7 WHERE sku = 'FIG' AND bucket = 0" >/dev/null
buy f7 1
check hot_figures_served_from_kept_sum "$(q "SELECT e->>'on_hand' FROM (SELECT substring(data FROM 'content:(.*)$')::jsonb->'data' e
	FROM pg_logical_slot_get_changes('bgw_fig', NULL, NULL) WHERE data LIKE '%inventory.reserved%sku/FIG%') s")" "1100"
# with ordersync.hot_figures_age = 0 every event sums the rows
q "SET ordersync.hot_figures_age = 0; SELECT ordersync.place_order('web', 'f8', '[{\"sku\": \"FIG\", \"qty\": 1, \"price\": \"1\"}]')" >/dev/null
check hot_figures_age_0_sums "$(q "SELECT e->>'on_hand' || '/' || (e->>'reserved') FROM (SELECT substring(data FROM 'content:(.*)$')::jsonb->'data' e
	FROM pg_logical_slot_get_changes('bgw_fig', NULL, NULL) WHERE data LIKE '%inventory.reserved%sku/FIG%') s")" "1107/23"
q "SELECT pg_drop_replication_slot('bgw_fig')" >/dev/null

# --- retention by market, applied by the worker
q "SELECT ordersync.add_channel('eu-shop'); UPDATE ordersync.channel SET market = 'eu' WHERE id = 'eu-shop';
   SELECT ordersync.receive_stock('R', 'main', 100)" >/dev/null
for i in 1 2 3 4 5; do
	q "SELECT ordersync.set_status(ordersync.place_order('eu-shop', 'r$i', '[{\"sku\": \"R\", \"qty\": 1, \"price\": \"1\"}]', '{\"email\": \"c$i@example.com\"}'), 'cancelled')" >/dev/null
	q "SELECT ordersync.set_status(id, 'refunded') FROM ordersync.orders WHERE external_id = 'r$i'" >/dev/null
done
q "SELECT ordersync.place_order('eu-shop', 'r-open', '[{\"sku\": \"R\", \"qty\": 1, \"price\": \"1\"}]', '{\"email\": \"open@example.com\"}')" >/dev/null
q "SELECT ordersync.legal_hold(id, 'audit') FROM ordersync.orders WHERE external_id = 'r5'" >/dev/null
q "SELECT ordersync.set_retention('eu', '0 s', '1 day')" >/dev/null
retention_wait() {
	for _ in $(seq 1 40); do
		[ "$(q "$1")" = "$2" ] && break
		sleep 0.5
	done
	q "$1"
}
check retention_erased_by_worker "$(retention_wait "SELECT count(*) FROM ordersync.orders WHERE channel = 'eu-shop' AND customer IS NOT NULL" 2)" "2"
check retention_in_batches "$(q "SELECT count(DISTINCT xmin::text) >= 2 FROM ordersync.orders WHERE channel = 'eu-shop' AND erased_at IS NOT NULL")" "t"
check retention_left_open_and_held "$(q "SELECT string_agg(external_id, ',' ORDER BY external_id) FROM ordersync.orders WHERE channel = 'eu-shop' AND customer IS NOT NULL")" "r-open,r5"
q "SELECT ordersync.set_retention('eu', '0 s', '0 s')" >/dev/null
check retention_removed_by_worker "$(retention_wait "SELECT count(*) FROM ordersync.orders WHERE channel = 'eu-shop'" 2)" "2"
check retention_history_rows "$(q "SELECT count(*) FILTER (WHERE action = 'personal_data_expired') || '/' || count(*) FILTER (WHERE action = 'purged') FROM ordersync.history")" "4/4"
check retention_chain_intact "$(q "SELECT count(*) FROM ordersync.verify_history()")" "0"
