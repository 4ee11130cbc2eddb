-- rollup: orders, units and revenue per hour and channel, stock movements
-- per day, SKU and location, kept from history by refresh_rollups() and
-- equal to the recount views after every refresh: late commits, aborted
-- and rolled-back work, subtransactions, UTC buckets

-- rows of the rollups that differ from the recount, in either direction
CREATE FUNCTION rollup_diff() RETURNS bigint LANGUAGE sql AS $$
	SELECT (SELECT count(*) FROM ((TABLE ordersync.rollup_hourly EXCEPT ALL TABLE ordersync.rollup_hourly_recount)
								  UNION ALL
								  (TABLE ordersync.rollup_hourly_recount EXCEPT ALL TABLE ordersync.rollup_hourly)) h)
		 + (SELECT count(*) FROM ((TABLE ordersync.rollup_daily_sku EXCEPT ALL TABLE ordersync.rollup_daily_sku_recount)
								  UNION ALL
								  (TABLE ordersync.rollup_daily_sku_recount EXCEPT ALL TABLE ordersync.rollup_daily_sku)) d)
$$;
-- this test's figures, summed over hours and days (the clock decides those)
CREATE FUNCTION rollup_channels() RETURNS TABLE (channel text, orders numeric, units numeric, revenue numeric)
LANGUAGE sql AS $$
	SELECT channel, sum(orders), sum(units), sum(revenue) FROM ordersync.rollup_hourly
	 WHERE channel LIKE 'rollup-%' AND hour >= '2025-01-01' GROUP BY 1 ORDER BY 1
$$;
CREATE FUNCTION rollup_skus() RETURNS TABLE (sku text, location text, reserved numeric, released numeric,
											 shipped numeric, returned numeric, units_sold numeric)
LANGUAGE sql AS $$
	SELECT sku, location, sum(reserved), sum(released), sum(shipped), sum(returned), sum(units_sold)
	  FROM ordersync.rollup_daily_sku WHERE sku LIKE 'ROLL-%' AND day >= '2025-01-01' GROUP BY 1, 2 ORDER BY 1, 2
$$;

-- the first refresh counts the whole history so far (the backfill)
SELECT rows_processed FROM ordersync.rollup_state;
SELECT ordersync.refresh_rollups() = (SELECT count(*) FROM ordersync.history) AS backfilled_everything;
SELECT high_id = (SELECT max(id) FROM ordersync.history) AS high_is_last_id,
	   rows_processed = (SELECT count(*) FROM ordersync.history) AS rows_counted
  FROM ordersync.rollup_state;
SELECT rollup_diff();
SELECT ordersync.refresh_rollups();		-- nothing new

-- two channels, two SKUs at two locations
SELECT ordersync.add_channel('rollup-a');
SELECT ordersync.add_channel('rollup-b');
SELECT ordersync.add_location('rollup-north', 5);
SELECT ordersync.add_location('rollup-south', 0);
SELECT ordersync.receive_stock('ROLL-1', 'rollup-north', 100);
SELECT ordersync.receive_stock('ROLL-2', 'rollup-north', 100);
SELECT ordersync.receive_stock('ROLL-2', 'rollup-south', 100);
SELECT ordersync.place_order('rollup-a', 'R-1', '[{"sku": "ROLL-1", "qty": 2, "price": "10.00"}, {"sku": "ROLL-2", "qty": 1, "price": "5.50"}]') AS r1 \gset
SELECT ordersync.place_order('rollup-a', 'R-2', '[{"sku": "ROLL-1", "qty": 1, "price": "10.00"}]') AS r2 \gset
SELECT ordersync.place_order('rollup-b', 'R-3', '[{"sku": "ROLL-2", "qty": 150, "price": "1.00"}]', NULL, true) AS r3 \gset
SELECT ordersync.place_order('rollup-a', 'R-1', '[{"sku": "ROLL-1", "qty": 2, "price": "10.00"}, {"sku": "ROLL-2", "qty": 1, "price": "5.50"}]') = :r1 AS reimport_same_order;
-- r1 is shipped, delivered and returned; r2 cancelled; r3 shipped from both locations
SELECT ordersync.set_status(:r1, 'paid'), ordersync.set_status(:r1, 'fulfilling'), ordersync.set_status(:r1, 'shipped'),
	   ordersync.set_status(:r1, 'delivered'), ordersync.set_status(:r1, 'returned');
SELECT ordersync.set_status(:r2, 'cancelled');
SELECT ordersync.set_status(:r3, 'paid'), ordersync.set_status(:r3, 'fulfilling'), ordersync.set_status(:r3, 'shipped');
SELECT ordersync.refresh_rollups();		-- the history rows above, and no other
SELECT * FROM rollup_channels();
SELECT * FROM rollup_skus();
SELECT rollup_diff();

-- refreshing again adds nothing; a refresh that rolls back changes nothing
SELECT ordersync.refresh_rollups();
BEGIN;
SELECT ordersync.place_order('rollup-a', 'R-4', '[{"sku": "ROLL-1", "qty": 4, "price": "10.00"}]') > 0 AS placed;
SELECT ordersync.refresh_rollups();
SELECT * FROM rollup_channels();
ROLLBACK;
SELECT * FROM rollup_channels();
SELECT gaps = '{}' AS no_gaps FROM ordersync.rollup_state;

-- an aborted order leaves a gap in the ids (two here, and the two of R-4),
-- looked at again until no transaction that could still commit it remains
-- (the next refresh here)
BEGIN;
SELECT ordersync.place_order('rollup-a', 'R-5', '[{"sku": "ROLL-1", "qty": 1, "price": "10.00"}]') > 0 AS placed;
ROLLBACK;
SELECT ordersync.place_order('rollup-b', 'R-6', '[{"sku": "ROLL-2", "qty": 1, "price": "2.00"}]') > 0 AS placed;
SELECT ordersync.refresh_rollups();
SELECT pg_catalog.upper(gaps) - pg_catalog.lower(gaps) AS gap_ids FROM ordersync.rollup_state;
SELECT ordersync.refresh_rollups();
SELECT gaps FROM ordersync.rollup_state;
SELECT * FROM rollup_channels();
SELECT rollup_diff();

-- subtransactions: what rolled back to a savepoint is not counted
BEGIN;
SAVEPOINT s;
SELECT ordersync.place_order('rollup-a', 'R-7', '[{"sku": "ROLL-1", "qty": 1, "price": "10.00"}]') > 0 AS placed;
ROLLBACK TO SAVEPOINT s;
SAVEPOINT t;
SELECT ordersync.place_order('rollup-a', 'R-8', '[{"sku": "ROLL-1", "qty": 3, "price": "10.00"}]') > 0 AS placed;
RELEASE SAVEPOINT t;
COMMIT;
SELECT ordersync.refresh_rollups();
SELECT * FROM rollup_channels();
SELECT rollup_diff();

-- a late commit: a transaction that took its ids first and commits after
-- a refresh saw later ids is counted by the next refresh, once
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT dblink_connect('rollup_late', format('dbname=%s host=%s port=%s', current_database(),
	split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port')));
SELECT dblink_exec('rollup_late', 'BEGIN');
SELECT count(*) AS placed_elsewhere FROM dblink('rollup_late',
	$$SELECT ordersync.place_order('rollup-b', 'R-LATE', '[{"sku": "ROLL-1", "qty": 7, "price": "3.00"}]')$$) AS t(id bigint);
SELECT ordersync.place_order('rollup-b', 'R-EARLY', '[{"sku": "ROLL-2", "qty": 1, "price": "2.00"}]') > 0 AS placed;
SELECT ordersync.refresh_rollups();
SELECT pg_catalog.upper(gaps) - pg_catalog.lower(gaps) AS gap_ids, cardinality(fence_xacts) > 0 AS fence_waits
  FROM ordersync.rollup_state;
SELECT * FROM rollup_channels();
SELECT ordersync.refresh_rollups();		-- still in flight: nothing yet, and the gap stays
SELECT pg_catalog.upper(gaps) - pg_catalog.lower(gaps) AS gap_ids FROM ordersync.rollup_state;
SELECT dblink_exec('rollup_late', 'COMMIT');
SELECT dblink_disconnect('rollup_late');
SELECT ordersync.refresh_rollups();
SELECT ordersync.refresh_rollups();
SELECT gaps FROM ordersync.rollup_state;
SELECT * FROM rollup_channels();
SELECT * FROM rollup_skus();
SELECT rollup_diff();

-- hours and days are UTC whatever the session's time zone: two orders
-- 40 minutes apart across midnight UTC, both at 05:xx on the same day in
-- Kolkata (+05:30), fall into two hours and two days
SET ordersync.actor = 'regress';
WITH o AS (
	INSERT INTO ordersync.orders (channel, external_id, lines, total, status, created_at, updated_at)
	VALUES ('rollup-a', 'FIXED-1', '[{"line_no": 1, "sku": "ROLL-1", "qty": 5, "price": "1.00"}]', 5.00, 'shipped',
			'2024-03-30 23:30:00+00', '2024-03-30 23:30:00+00'),
		   ('rollup-a', 'FIXED-2', '[{"line_no": 1, "sku": "ROLL-1", "qty": 2, "price": "1.00"}]', 2.00, 'returned',
			'2024-03-31 00:10:00+00', '2024-03-31 00:10:00+00')
	RETURNING id, external_id, created_at
), l AS (
	INSERT INTO ordersync.order_line (order_id, line_no, sku, qty, price)
	SELECT id, 1, 'ROLL-1', CASE external_id WHEN 'FIXED-1' THEN 5 ELSE 2 END, 1.00 FROM o
)
INSERT INTO ordersync.history (at, action, order_id, to_status, sku, location, qty, actor, role)
SELECT o.created_at, a.action, o.id, a.to_status, a.sku, a.location, a.qty, 'regress', current_user
  FROM o, LATERAL (VALUES ('created', 'pending', NULL, NULL, NULL::bigint),
						  ('consume', NULL, 'ROLL-1', 'rollup-north', CASE o.external_id WHEN 'FIXED-1' THEN 5 ELSE 2 END)) a(action, to_status, sku, location, qty);
INSERT INTO ordersync.history (at, action, sku, location, qty, actor, role)
VALUES ('2024-03-31 00:20:00+00', 'restock', 'ROLL-1', 'rollup-north', 3, 'regress', current_user);
RESET ordersync.actor;
SET TimeZone = 'Asia/Kolkata';
SELECT ordersync.refresh_rollups();
SET TimeZone = 'UTC';
SELECT hour, channel, orders, units, revenue FROM ordersync.rollup_hourly WHERE hour < '2025-01-01' ORDER BY 1, 2;
SELECT day, sku, location, reserved, released, shipped, returned, units_sold
  FROM ordersync.rollup_daily_sku WHERE day < '2025-01-01' ORDER BY 1, 2, 3;
RESET TimeZone;
SELECT rollup_diff();

-- REPEATABLE READ: counted the same, and the ids it cannot yet give up on
-- wait for a refresh at READ COMMITTED
BEGIN;
SELECT ordersync.place_order('rollup-b', 'R-RR', '[{"sku": "ROLL-2", "qty": 1, "price": "2.00"}]') > 0 AS placed;
ROLLBACK;
SELECT ordersync.place_order('rollup-b', 'R-RR2', '[{"sku": "ROLL-2", "qty": 1, "price": "2.00"}]') > 0 AS placed;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT ordersync.refresh_rollups();
SELECT ordersync.refresh_rollups();
SELECT gaps <> '{}' AS gap_kept FROM ordersync.rollup_state;
COMMIT;
SELECT ordersync.refresh_rollups();
SELECT ordersync.refresh_rollups();
SELECT gaps FROM ordersync.rollup_state;
SELECT rollup_diff();

-- a history sequence that caches ids hands them out of order: the refresh
-- says so, and stays exact
ALTER SEQUENCE ordersync.history_id_seq CACHE 10;
SELECT ordersync.place_order('rollup-b', 'R-CACHE', '[{"sku": "ROLL-2", "qty": 1, "price": "2.00"}]') > 0 AS placed;
SELECT ordersync.refresh_rollups();
ALTER SEQUENCE ordersync.history_id_seq CACHE 1;
SELECT ordersync.refresh_rollups();
SELECT rollup_diff();

-- the application reads the rollups and may refresh them, but not write them
CREATE ROLE regress_rollup_app IN ROLE ordersync_app;
SET ROLE regress_rollup_app;
SELECT count(*) > 0 AS can_read FROM ordersync.rollup_hourly;
SELECT ordersync.refresh_rollups();
DELETE FROM ordersync.rollup_hourly;
UPDATE ordersync.rollup_state SET high_id = 0;
RESET ROLE;
DROP ROLE regress_rollup_app;
SELECT * FROM rollup_channels();
SELECT rollup_diff();
