-- analytics: time in status, the funnel, stock-out spans, sell-through, stuck
-- orders (order.stuck once per order and status) and demand turned away,
-- kept by the rollup refresh and equal to the recount views.  Times are
-- fixed (history rows of March 2025 written directly, as a superuser may),
-- so every figure is exact; the rest goes through the API.
\set VERBOSITY default

-- rows of the analytics rollups that differ from their recount views
CREATE FUNCTION analytics_diff() RETURNS bigint LANGUAGE sql AS $$
	SELECT (SELECT count(*) FROM ((TABLE ordersync.rollup_status_time EXCEPT ALL TABLE ordersync.rollup_status_time_recount)
								  UNION ALL
								  (TABLE ordersync.rollup_status_time_recount EXCEPT ALL TABLE ordersync.rollup_status_time)) s)
		 + (SELECT count(*) FROM ((TABLE ordersync.rollup_funnel EXCEPT ALL TABLE ordersync.rollup_funnel_recount)
								  UNION ALL
								  (TABLE ordersync.rollup_funnel_recount EXCEPT ALL TABLE ordersync.rollup_funnel)) f)
		 + (SELECT count(*) FROM ((TABLE ordersync.rollup_stockout EXCEPT ALL TABLE ordersync.rollup_stockout_recount)
								  UNION ALL
								  (TABLE ordersync.rollup_stockout_recount EXCEPT ALL TABLE ordersync.rollup_stockout)) o)
$$;

SELECT ordersync.refresh_rollups() >= 0 AS caught_up;
SELECT analytics_diff();

-- an order written as ordersync would have: its row, and history rows at
-- fixed times (created, reserve at a location, then each status)
CREATE FUNCTION an_order(ch text, ext text, loc text, steps text[], secs int[]) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	o_id bigint;
	t timestamptz := timestamptz '2025-03-01 08:00:00+00';
	prev text := 'pending';
BEGIN
	INSERT INTO ordersync.orders (channel, external_id, status, lines, total, created_at, updated_at)
	VALUES (ch, ext, coalesce(steps[array_length(steps, 1)], 'pending'), '[]', 10, t, t) RETURNING id INTO o_id;
	INSERT INTO ordersync.history (at, action, order_id, to_status, actor, role)
	VALUES (t, 'created', o_id, 'pending', 'regress', 'regress');
	INSERT INTO ordersync.history (at, action, order_id, sku, location, qty, actor, role)
	VALUES (t, 'reserve', o_id, 'AN-X', loc, 1, 'regress', 'regress');
	FOR i IN 1 .. coalesce(array_length(steps, 1), 0) LOOP
		t := t + make_interval(secs => secs[i]);
		INSERT INTO ordersync.history (at, action, order_id, from_status, to_status, actor, role)
		VALUES (t, 'status', o_id, prev, steps[i], 'regress', 'regress');
		prev := steps[i];
	END LOOP;
	RETURN o_id;
END
$$;
SELECT ordersync.add_channel('an-web'), ordersync.add_channel('an-app');
SELECT ordersync.add_location('an-north'), ordersync.add_location('an-south');
-- pending -> paid after 60 s, 120 s, 600 s and 1 h on the web; south ships in a day
SELECT an_order('an-web', 'A1', 'an-north', '{paid,fulfilling,shipped,delivered}', '{60,300,3600,86400}') IS NOT NULL AS a1,
	   an_order('an-web', 'A2', 'an-north', '{paid,fulfilling,shipped}', '{120,300,7200}') IS NOT NULL AS a2,
	   an_order('an-web', 'A3', 'an-south', '{paid,fulfilling,shipped}', '{600,300,86400}') IS NOT NULL AS a3,
	   an_order('an-web', 'A4', 'an-north', '{paid,cancelled}', '{3600,60}') IS NOT NULL AS a4,
	   an_order('an-app', 'A5', 'an-north', '{expired}', '{900}') IS NOT NULL AS a5,
	   an_order('an-app', 'A6', 'an-south', '{cancelled}', '{30}') IS NOT NULL AS a6,
	   an_order('an-app', 'A7', 'an-south', '{}', '{}') IS NOT NULL AS a7;

-- stock of AN-S at an-north: 2 received, both reserved (out), one released
-- (back), safety 1 (out: 1 - 1 = 0), 5 more received (back), 6 reserved (out)
INSERT INTO ordersync.history (at, action, sku, location, qty, actor, role) VALUES
	('2025-03-01 06:00+00', 'receive', 'AN-S', 'an-north', 2, 'regress', 'regress'),
	('2025-03-01 09:00+00', 'reserve', 'AN-S', 'an-north', 2, 'regress', 'regress'),
	('2025-03-01 12:00+00', 'release', 'AN-S', 'an-north', 1, 'regress', 'regress'),
	('2025-03-01 13:00+00', 'safety', 'AN-S', 'an-north', 1, 'regress', 'regress'),
	('2025-03-01 18:00+00', 'receive', 'AN-S', 'an-north', 5, 'regress', 'regress'),
	('2025-03-01 20:00+00', 'consume', 'AN-S', 'an-north', 1, 'regress', 'regress'),
	('2025-03-01 21:00+00', 'reserve', 'AN-S', 'an-north', 5, 'regress', 'regress');

-- the refresh adds them; then it is the recount
SELECT ordersync.refresh_rollups() AS rows_added;
SELECT analytics_diff();

-- time in status over the day: the four web payments took 60 s, 120 s,
-- 600 s and 1 h; p50 is the second (120 s, shown as its bin's middle)
SELECT from_status, to_status, location, channel, transitions, p50, p95, p99, mean
  FROM ordersync.status_times('2025-03-01', '2025-03-01')
 WHERE channel LIKE 'an-%' ORDER BY 1, 2, 3, 4;
-- the slowest transition of the day by p95
SELECT from_status || ' -> ' || to_status AS slowest, location, p95
  FROM ordersync.status_times('2025-03-01', '2025-03-01') WHERE channel LIKE 'an-%'
 ORDER BY p95 DESC, 1, 2 LIMIT 1;
-- days outside the window count nothing
SELECT count(*) FROM ordersync.status_times('2025-03-03', '2025-03-09') WHERE channel LIKE 'an-%';
-- the histograms themselves (bin b: 2^(b/8) to 2^((b+1)/8) ms)
SELECT day, from_status, to_status, location, channel, bin, transitions, total_ms
  FROM ordersync.rollup_status_time WHERE channel LIKE 'an-%' AND from_status = 'pending' ORDER BY 1, 2, 3, 4, 5, 6;

-- the funnel of the day's orders per channel, with its rates
SELECT * FROM ordersync.funnel WHERE channel LIKE 'an-%' ORDER BY day, channel;

-- stock-outs of AN-S: 09:00-12:00, 13:00-18:00, and since 21:00 (still out)
SELECT sku, location, started_at, ended_at FROM ordersync.rollup_stockout WHERE sku = 'AN-S' ORDER BY started_id;
SELECT unreserved, safety FROM ordersync.rollup_stock_level WHERE sku = 'AN-S';
-- hours inside a window: 3 + 5 + 1 (21:00 to 22:00)
SELECT * FROM ordersync.stockout_hours('2025-03-01 00:00+00', '2025-03-01 22:00+00') WHERE sku = 'AN-S';
-- a window inside one span, and one before any
SELECT * FROM ordersync.stockout_hours('2025-03-01 10:00+00', '2025-03-01 11:30+00') WHERE sku = 'AN-S';
SELECT count(*) FROM ordersync.stockout_hours('2025-02-01', '2025-02-02') WHERE sku = 'AN-S';

-- a later batch continues from the stored level: 6 more come back
INSERT INTO ordersync.history (at, action, sku, location, qty, actor, role) VALUES
	('2025-03-02 07:00+00', 'receive', 'AN-S', 'an-north', 6, 'regress', 'regress');
SELECT ordersync.refresh_rollups() AS rows_added;
SELECT sku, location, started_at, ended_at FROM ordersync.rollup_stockout WHERE sku = 'AN-S' ORDER BY started_id;
SELECT analytics_diff();

-- sell-through, through the API today: 10 received, 3 shipped
SELECT ordersync.receive_stock('AN-1', 'an-north', 10);
SELECT ordersync.place_order('an-web', 'T1', '[{"sku": "AN-1", "qty": 3, "price": "5.00"}]') AS t1 \gset
SELECT ordersync.set_status(:t1, 'paid'), ordersync.set_status(:t1, 'fulfilling'), ordersync.set_status(:t1, 'shipped');
SELECT ordersync.refresh_rollups() > 0 AS refreshed;
SELECT * FROM ordersync.sell_through(30) WHERE sku = 'AN-1';
SELECT analytics_diff();

-- demand turned away: without shared_preload_libraries nothing is counted
-- (the bgworker suite counts it exactly under concurrency), and a refusal
-- writes nothing
SELECT ordersync.place_order('an-web', 'T2', '[{"sku": "AN-1", "qty": 50, "price": "5.00"}]');
SELECT ordersync.flush_refusals();
SELECT count(*) FROM ordersync.demand_refused;
SELECT * FROM ordersync.sell_through(30) WHERE sku = 'AN-1';

-- stuck orders: an SLA per status; unknown statuses and non-positive SLAs
-- are refused and change nothing
SELECT ordersync.set_sla('nope', '1 hour');
SELECT ordersync.set_sla('shipped', '0 seconds');
SELECT ordersync.set_sla('shipped', '-1 hour');
SELECT name, sla FROM ordersync.status WHERE sla IS NOT NULL;
SELECT 'init' FROM pg_create_logical_replication_slot('regress_analytics', 'wal2json');
SELECT ordersync.set_sla('shipped', '2 days');
SELECT ordersync.set_sla('pending', '1 day');
-- A2 and A3 have been shipped since March 2025, A7 pending since then
SELECT external_id, status, since, sla FROM ordersync.stuck_orders WHERE channel LIKE 'an-%' ORDER BY order_id;
SELECT ordersync.flag_stuck_orders() >= 3 AS flagged;
-- once per order and status: a second round flags none of them again
SELECT ordersync.flag_stuck_orders();
SELECT o.external_id, s.status, s.since FROM ordersync.order_stuck s JOIN ordersync.orders o ON o.id = s.order_id
 WHERE o.channel LIKE 'an-%' ORDER BY o.id;
SELECT type, data->>'external_id' AS external_id, data->>'status' AS status, data->>'since' AS since,
	   data->>'sla_seconds' AS sla_seconds, (data->>'in_status_seconds')::bigint > 86400 AS over_a_day
  FROM slot_events('regress_analytics') WHERE type = 'order.stuck' AND data->>'channel' LIKE 'an-%'
 ORDER BY 2;
-- A7 is paid now: no longer stuck, and nothing more is flagged
SELECT ordersync.set_status(id, 'paid') FROM ordersync.orders WHERE external_id = 'A7' AND channel = 'an-app';
SELECT count(*) FROM ordersync.stuck_orders WHERE channel LIKE 'an-%' AND status = 'pending';
SELECT ordersync.flag_stuck_orders();
SELECT count(*) AS events FROM slot_events('regress_analytics') WHERE type = 'order.stuck';
SELECT ordersync.set_sla('pending', NULL), ordersync.set_sla('shipped', NULL);
SELECT pg_drop_replication_slot('regress_analytics');

-- who may: the application reads and flags, only an admin sets SLAs; a
-- role without ordersync's grants reads nothing
CREATE ROLE regress_analytics_app IN ROLE ordersync_app;
CREATE ROLE regress_analytics_nobody;
SET ROLE regress_analytics_app;
SELECT count(*) >= 0 AS reads FROM ordersync.status_times('2025-03-01', '2025-03-01');
SELECT ordersync.flag_stuck_orders();
SELECT ordersync.set_sla('paid', '1 hour');
INSERT INTO ordersync.demand_refused VALUES ('2025-03-01', 'AN-1', 1000, 1000);
RESET ROLE;
SET ROLE regress_analytics_nobody;
SELECT count(*) FROM ordersync.funnel;
SELECT * FROM ordersync.status_times();
SELECT ordersync.flush_refusals();
RESET ROLE;
DROP ROLE regress_analytics_app, regress_analytics_nobody;
SELECT name, sla FROM ordersync.status WHERE sla IS NOT NULL;
SELECT analytics_diff();
