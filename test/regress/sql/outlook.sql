-- outlook (issue 13, items 3 and 4): forecast_intermittent() against the
-- reference outputs of bench/forecast/intermittent/reference.R,
-- forecast_orders() over the hourly rollup, stock_outlook(),
-- inventory.stockout_predicted once per crossing (check_stockouts()), and
-- SKUs bucketed before the peak (prepare_peak()); every refusal with its
-- SQLSTATE.  Histories are laid out relative to now() inside a transaction,
-- whose start time every one of these functions reads, so the figures do
-- not depend on the hour the test runs.
SELECT 'init' FROM pg_create_logical_replication_slot('regress_outlook', 'wal2json');

-- the contract
SELECT p.oid::regprocedure AS function, pg_get_function_arguments(p.oid) AS arguments,
	   pg_get_function_result(p.oid) AS result, provolatile, prosecdef
FROM pg_proc p WHERE pronamespace = 'ordersync'::regnamespace
 AND proname IN ('forecast_intermittent', 'forecast_orders', 'stock_outlook', 'check_stockouts', 'prepare_peak')
ORDER BY proname;

-- ---------------------------------------------------------------------------
-- forecast_intermittent(): refusals
-- ---------------------------------------------------------------------------
SELECT * FROM ordersync.forecast_intermittent(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast_intermittent('{1,0,2}', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast_intermittent('{1,0,2}', 'holt');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast_intermittent('{}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast_intermittent('{{1,0},{2,0}}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast_intermittent('{1,NULL,2}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast_intermittent('[0:2]={1,0,NaN}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast_intermittent('{1,0,Infinity}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast_intermittent('{1,-2,3}');
\echo :LAST_ERROR_SQLSTATE

-- ---------------------------------------------------------------------------
-- forecast_intermittent(): by hand, then against the reference
-- ---------------------------------------------------------------------------
-- no demand at all: nothing to fit, 0
SELECT * FROM ordersync.forecast_intermittent('{0,0,0}');
-- a steady demand: Croston and TSB are exact, SBA's correction is not; TSB
-- wins the tie with Croston
SELECT m AS asked, f.method, f.value, round(f.mse::numeric, 6) AS mse
FROM unnest(ARRAY['croston', 'sba', 'tsb', 'auto']) m,
	 LATERAL ordersync.forecast_intermittent('{2,2,2,2,2}', m) f;
-- a first demand in period 2 counts an interval of 2 (as R's croston()):
-- Croston starts at 2 / 2 and learns the interval of 1 slowly
SELECT m AS asked, f.method, round(f.value::numeric, 4) AS value, round(f.alpha::numeric, 2) AS alpha
FROM unnest(ARRAY['croston', 'tsb']) m,
	 LATERAL ordersync.forecast_intermittent('{0,2,2,2,2,2}', m) f;
-- one demand of 6 in the third period: 6 / 3 (Croston), 0.975 of it (SBA)
SELECT m AS asked, f.method, round(f.value::numeric, 4) AS value
FROM unnest(ARRAY['croston', 'sba', 'tsb']) m,
	 LATERAL ordersync.forecast_intermittent('{0,0,6}', m) f;

\getenv abs_srcdir PG_ABS_SRCDIR
\set dir :abs_srcdir '/../../bench/forecast/intermittent'
\set file :dir '/series.csv'
\set csv `cat :'file'`
CREATE TEMP TABLE fi_series AS
SELECT f[1] AS series, f[2]::int AS t, f[3]::float8 AS demand
FROM regexp_split_to_table(:'csv', E'\n') WITH ORDINALITY AS r(line, n),
	 LATERAL string_to_array(line, ',') AS f
WHERE n > 1 AND line <> '';
\set file :dir '/reference.csv'
\set csv `cat :'file'`
CREATE TEMP TABLE fi_reference AS
SELECT f[1] AS series, f[2] AS asked, f[3] AS method, f[4]::float8 AS value,
	   nullif(f[5], '')::float8 AS alpha, nullif(f[6], '')::float8 AS beta, f[7]::float8 AS mse
FROM regexp_split_to_table(:'csv', E'\n') WITH ORDINALITY AS r(line, n),
	 LATERAL string_to_array(line, ',') AS f
WHERE n > 1 AND line <> '';
SELECT count(DISTINCT series) AS series, count(*) AS cases FROM fi_reference;

CREATE TEMP TABLE fi_ours AS
SELECT r.series, r.asked, f.*
FROM fi_reference r,
	 LATERAL ordersync.forecast_intermittent(ARRAY(SELECT demand FROM fi_series s
												   WHERE s.series = r.series ORDER BY t), r.asked) f;
-- the same method and parameters, the forecast and its error to 1e-9
-- (relative): any row here is a difference
SELECT r.series, r.asked, r.method AS r_method, o.method, r.value AS r_value, o.value,
	   r.alpha AS r_alpha, o.alpha, r.beta AS r_beta, o.beta, r.mse AS r_mse, o.mse
FROM fi_reference r JOIN fi_ours o USING (series, asked)
WHERE r.method <> o.method
   OR abs(r.value - o.value) > 1e-9 * greatest(1, abs(r.value))
   OR abs(r.mse - o.mse) > 1e-9 * greatest(1, abs(r.mse))
   OR r.alpha IS DISTINCT FROM o.alpha AND abs(r.alpha - o.alpha) > 1e-12
   OR r.beta IS DISTINCT FROM o.beta AND abs(r.beta - o.beta) > 1e-12;
-- what the automatic choice took
SELECT series, method, round(value::numeric, 4) AS value, round(alpha::numeric, 2) AS alpha,
	   round(beta::numeric, 2) AS beta
FROM fi_ours WHERE asked = 'auto' ORDER BY series;

-- ---------------------------------------------------------------------------
-- forecast_orders(): refusals
-- ---------------------------------------------------------------------------
SELECT * FROM ordersync.forecast_orders(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast_orders('1 hour', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast_orders('90 minutes');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast_orders('5 hours');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast_orders('36 hours');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast_orders('1 month');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast_orders('0');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast_orders('-1 hour');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast_orders('92 days');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast_orders('1 hour', 0);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast_orders('1 hour', 10001);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast_orders('1 hour', 48, 'no-such-channel');
\echo :LAST_ERROR_SQLSTATE

-- ---------------------------------------------------------------------------
-- forecast_orders() on three weeks of hourly orders (whole UTC days, then
-- today's hours so far): channel outlook-a has 2 orders an hour at night
-- and 12 from 09:00 to 17:59 UTC, every day; outlook-b has 3 every hour.  Written into the rollup directly (the
-- figures are the test's; the rollup's exactness is rollup.sql's) and
-- taken out again at the end of the transaction.
-- ---------------------------------------------------------------------------
SELECT ordersync.add_channel('outlook-a');
SELECT ordersync.add_channel('outlook-b');
SELECT ordersync.add_channel('outlook-new');
BEGIN;
DELETE FROM ordersync.rollup_hourly;
CREATE TEMP VIEW now_hour AS SELECT date_bin('1 hour', now(), '2000-01-03 00:00+00') AS h;
CREATE FUNCTION pattern(at timestamptz) RETURNS float8 LANGUAGE sql AS
$$ SELECT CASE WHEN extract(hour FROM at AT TIME ZONE 'UTC') BETWEEN 9 AND 17 THEN 12 ELSE 2 END $$;
INSERT INTO ordersync.rollup_hourly (hour, channel, orders, units, revenue)
SELECT t, c, CASE c WHEN 'outlook-a' THEN pattern(t) ELSE 3 END, 1, 1
FROM now_hour h,
	 generate_series(date_bin('1 day', h.h, '2000-01-03 00:00+00') - interval '21 days', h.h - interval '1 hour',
					 interval '1 hour') t,
	 unnest(ARRAY['outlook-a', 'outlook-b']) c;
-- two hours of a new channel are too few
INSERT INTO ordersync.rollup_hourly (hour, channel, orders, units, revenue)
SELECT h.h - k * interval '1 hour', 'outlook-new', 1, 1, 1 FROM now_hour h, generate_series(1, 2) k;
SAVEPOINT s;
SELECT * FROM ordersync.forecast_orders('1 hour', 48, 'outlook-new');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO SAVEPOINT s;
-- the default: the next 48 hours from the current one, the day's shape
-- exactly (the seasonal naive forecast of a history that repeats), and
-- intervals of width 0 around it
SELECT count(*) AS buckets, min(bucket_start) = (SELECT h FROM now_hour) AS from_current_hour,
	   max(bucket_start) = (SELECT h FROM now_hour) + interval '47 hours' AS to_47_hours_later,
	   count(*) FILTER (WHERE round(value::numeric, 6) <> pattern(bucket_start)) AS off_pattern,
	   max(upper - lower) < 1e-6 AS exact
FROM ordersync.forecast_orders(channel => 'outlook-a');
-- all channels: the sum; one channel alone: its own
SELECT count(*) FILTER (WHERE round(value::numeric, 6) <> pattern(bucket_start) + 3) AS off_sum
FROM ordersync.forecast_orders();
SELECT DISTINCT round(value::numeric, 6) AS value FROM ordersync.forecast_orders('1 hour', 10, 'outlook-b');
-- days: 9 * 12 + 15 * 2 = 138 orders of outlook-a a day, from midnight UTC
-- whatever the session's time zone (the current day first)
SET TimeZone = 'Asia/Kolkata';
SELECT (bucket_start AT TIME ZONE 'UTC')::time AS starts_utc,
	   (bucket_start AT TIME ZONE 'UTC')::date - (now() AT TIME ZONE 'UTC')::date AS day,
	   round(value::numeric, 6) AS value
FROM ordersync.forecast_orders('1 day', 3, 'outlook-a') ORDER BY bucket_start;
RESET TimeZone;
-- six hours: 00-06 12, 06-12 3 * 2 + 3 * 12 = 42, 12-18 72, 18-24 12
SELECT extract(hour FROM bucket_start AT TIME ZONE 'UTC') AS from_hour, round(value::numeric, 6) AS value
FROM ordersync.forecast_orders('6 hours', 4, 'outlook-a') ORDER BY 1;
-- the season follows the bucket and the history: a week of hours from two
-- weeks on, else a day of hours from two days on, else none (debug1 shows it)
SET client_min_messages = debug1;
DELETE FROM ordersync.rollup_hourly WHERE channel = 'outlook-a' AND hour < (SELECT h FROM now_hour) - interval '15 days';
SELECT count(*) AS buckets FROM ordersync.forecast_orders('1 hour', 24, 'outlook-a');
DELETE FROM ordersync.rollup_hourly WHERE channel = 'outlook-a' AND hour < (SELECT h FROM now_hour) - interval '3 days';
SELECT count(*) AS buckets FROM ordersync.forecast_orders('1 hour', 24, 'outlook-a');
INSERT INTO ordersync.rollup_hourly (hour, channel, orders, units, revenue)
SELECT h.h - k * interval '1 hour', 'outlook-new', 1, 1, 1 FROM now_hour h, generate_series(3, 30) k;
SELECT count(*) AS buckets FROM ordersync.forecast_orders('1 hour', 24, 'outlook-new');
RESET client_min_messages;
-- a history with noise: intervals hold their forecast, nothing negative
UPDATE ordersync.rollup_hourly SET orders = orders + (extract(epoch FROM hour)::bigint / 3600 * 7919) % 5
 WHERE channel = 'outlook-b';
SELECT count(*) AS buckets, bool_and(lower <= value AND value <= upper) AS ordered,
	   bool_and(lower >= 0) AS not_negative, round(avg(value)) AS about
FROM ordersync.forecast_orders('1 hour', 24, 'outlook-b');
ROLLBACK;

-- ---------------------------------------------------------------------------
-- stock_outlook(): refusals
-- ---------------------------------------------------------------------------
SELECT * FROM ordersync.stock_outlook(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.stock_outlook('7 days', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.stock_outlook('0');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.stock_outlook('-1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.stock_outlook('1 month');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.stock_outlook('366 days');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.stock_outlook('7 days', 0.4);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.stock_outlook('7 days', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.stock_outlook('7 days', 'NaN');
\echo :LAST_ERROR_SQLSTATE

-- ---------------------------------------------------------------------------
-- stock_outlook() on 30 days of demand, written as reserve history rows of
-- past days and counted by refresh_rollups() (today's are not a whole day)
-- ---------------------------------------------------------------------------
SELECT ordersync.add_location('outlook-wh');
SELECT ordersync.receive_stock(s, 'outlook-wh', q)
FROM (VALUES ('OUT-STEADY', 100), ('OUT-LOW', 20), ('OUT-NONE', 10), ('OUT-LUMPY', 40),
			 ('OUT-OPS', 500), ('OUT-AUTO', 500)) v(s, q);
SELECT ordersync.set_hot('OUT-OPS', 1);
-- what auto-hot would have done to a SKU whose buyers queued
UPDATE ordersync.sku SET hot_source = 'auto' WHERE sku = 'OUT-AUTO';
CREATE FUNCTION outlook_demand(sku text, qty int[]) RETURNS void LANGUAGE sql AS $$
	INSERT INTO ordersync.history (at, action, sku, location, qty, actor, role)
	SELECT ((now() AT TIME ZONE 'UTC')::date - (cardinality(qty) - i + 1)::int + time '12:00') AT TIME ZONE 'UTC',
		   'reserve', sku, 'outlook-wh', q, 'regress', current_user
	  FROM unnest(qty) WITH ORDINALITY u(q, i) WHERE q > 0
$$;
CREATE TEMP TABLE lumpy AS SELECT ARRAY[0,0,6,0,0,0,1,0,9,0,0,0,0,3,0,0,0,0,0,8,0,2,0,0,0,0,5,0,0,4]::int[] AS qty;
BEGIN;
SELECT outlook_demand('OUT-STEADY', array_fill(5, ARRAY[30]));
SELECT outlook_demand('OUT-LOW', array_fill(4, ARRAY[30]));
SELECT outlook_demand('OUT-LUMPY', qty) FROM lumpy;
SELECT outlook_demand('OUT-OPS', array_fill(10, ARRAY[30]));
SELECT outlook_demand('OUT-AUTO', array_fill(10, ARRAY[30]));
SELECT ordersync.refresh_rollups() > 0 AS counted;
-- steady demand of 5 a day and 100 available: 20 days of cover, no safety
-- stock (no error), reorder point 35; 20 available at 4 a day: 5 days, to
-- reorder 28 + 28 - 20 = 36; no demand: no stock-out
SELECT sku, on_hand, available, round(daily_demand::numeric, 4) AS daily_demand, method,
	   round(days_of_cover::numeric, 4) AS days_of_cover,
	   -- the stock-out is the UTC date of now() + the days of cover: a
	   -- fractional cover lands on one day or the next by the hour the test
	   -- runs, so only whole covers print their distance in days
	   CASE WHEN days_of_cover = floor(days_of_cover)
			THEN projected_stockout - (now() AT TIME ZONE 'UTC')::date END AS stockout_in_days,
	   projected_stockout IS NOT DISTINCT FROM
		 ((now() + make_interval(secs => days_of_cover * 86400)) AT TIME ZONE 'UTC')::date AS stockout_ok,
	   safety_stock, reorder_point, suggested_reorder
FROM ordersync.stock_outlook() WHERE sku LIKE 'OUT-%' ORDER BY sku;
-- the formulas (doc/forecast.md), recomputed from forecast_intermittent()
-- over the same days (from the first one with demand), at two lead times
-- and service levels (z of 0.95 and 0.99)
SELECT o.lead, o.level, o.daily_demand = f.value AS same_demand, o.method = f.method AS same_method,
	   o.safety_stock = ceil(CASE o.level WHEN 0.95 THEN 1.6448536269514729 ELSE 2.3263478740408408 END
							 * sqrt(f.mse) * sqrt(extract(epoch FROM o.lead) / 86400) - 1e-9) AS safety_ok,
	   o.reorder_point = ceil(f.value * extract(epoch FROM o.lead) / 86400 - 1e-9) + o.safety_stock AS reorder_ok,
	   o.safety_stock > 0 AS has_safety_stock
FROM (SELECT l AS lead, s AS level, x.*
		FROM unnest(ARRAY[interval '7 days', interval '36 hours']) l, unnest(ARRAY[0.95, 0.99]) s,
			 LATERAL ordersync.stock_outlook(l, s) x WHERE x.sku = 'OUT-LUMPY') o,
	 LATERAL ordersync.forecast_intermittent((SELECT qty[3:30]::float8[] FROM lumpy)) f
ORDER BY 1, 2;
COMMIT;

-- ---------------------------------------------------------------------------
-- inventory.stockout_predicted, once per crossing
-- ---------------------------------------------------------------------------
SHOW ordersync.outlook_lead_time;
SELECT count(*) > 0 AS drained FROM slot_events('regress_outlook');
-- OUT-LOW runs out in 5 days, within the lead time of 7: one event
SELECT ordersync.check_stockouts();
SELECT sku, location, projected_stockout - (now() AT TIME ZONE 'UTC')::date AS stockout_in_days, days_of_cover
FROM ordersync.stockout_watch ORDER BY sku;
SELECT type, subject, data - 'projected_stockout' AS data,
	   (data->>'projected_stockout')::date - (now() AT TIME ZONE 'UTC')::date AS stockout_in_days
FROM slot_events('regress_outlook');
-- still inside: no second event
SELECT ordersync.check_stockouts();
SELECT count(*) AS events FROM slot_events('regress_outlook');
-- 100 more units: 30 days of cover, out of the lead time, no event
SELECT ordersync.receive_stock('OUT-LOW', 'outlook-wh', 100);
SELECT ordersync.check_stockouts();
SELECT count(*) AS watched FROM ordersync.stockout_watch;
-- a lead time of 60 days: every SKU with demand enters (one event each), once
SET ordersync.outlook_lead_time = '60d';
SELECT ordersync.check_stockouts();
SELECT ordersync.check_stockouts();
SELECT subject, data->>'lead_time_days' AS lead_time_days, data->>'suggested_reorder' AS suggested
FROM slot_events('regress_outlook') WHERE type = 'inventory.stockout_predicted' ORDER BY subject;
-- back to 7 days: they all leave; at 60 again they re-enter and fire again
RESET ordersync.outlook_lead_time;
SELECT ordersync.check_stockouts();
SELECT count(*) AS watched FROM ordersync.stockout_watch;
SET ordersync.outlook_lead_time = '60d';
SELECT ordersync.check_stockouts();
SELECT subject FROM slot_events('regress_outlook') ORDER BY subject;
RESET ordersync.outlook_lead_time;
SELECT ordersync.check_stockouts();
-- routable like any event: purchasing gets exactly these
SELECT ordersync.add_sink('outlook-purchasing', 'https://purchasing.example.com/hooks');
SELECT ordersync.add_route('outlook-purchasing', 'inventory.stockout_predicted');
SELECT sink, pattern FROM ordersync.route WHERE sink = 'outlook-purchasing';
SELECT ordersync.drop_sink('outlook-purchasing');
-- a check that rolls back leaves the state and emits nothing
BEGIN;
SET LOCAL ordersync.outlook_lead_time = '60d';
SELECT ordersync.check_stockouts();
ROLLBACK;
SELECT count(*) AS watched FROM ordersync.stockout_watch;
SELECT count(*) AS events FROM slot_events('regress_outlook');

-- ---------------------------------------------------------------------------
-- prepare_peak(): SKUs forecast to sell ordersync.peak_units_per_hour or more
-- in the next hour are split ahead of time.  With orders flat over the day
-- (10 an hour for three weeks), a SKU's hour is 1/24 of its day: OUT-STEADY
-- 5 / 24 = 0.21, OUT-LOW 4 / 24 = 0.17, OUT-OPS and OUT-AUTO 10 / 24 = 0.42.
-- ---------------------------------------------------------------------------
BEGIN;
CREATE TEMP TABLE saved_hourly AS TABLE ordersync.rollup_hourly;
DELETE FROM ordersync.rollup_hourly;
INSERT INTO ordersync.rollup_hourly (hour, channel, orders, units, revenue)
SELECT date_bin('1 hour', now(), '2000-01-03 00:00+00') - k * interval '1 hour', 'outlook-a', 10, 10, 10
FROM generate_series(1, 21 * 24) k;
COMMIT;
-- off by default
SHOW ordersync.peak_units_per_hour;
SELECT * FROM ordersync.prepare_peak();
SET ordersync.peak_units_per_hour = 0.2;
SET ordersync.peak_buckets = 4;
SELECT sku, buckets, previous_buckets, round(units_per_hour::numeric, 4) AS units_per_hour
FROM ordersync.prepare_peak();
-- split as set_hot() splits (the units all there), marked 'forecast';
-- the operator's SKU and auto-hot's are left alone
SELECT sku, buckets, hot_source, (SELECT sum(on_hand) FROM ordersync.stock t WHERE t.sku = s.sku) AS on_hand,
	   (SELECT count(*) FROM ordersync.stock t WHERE t.sku = s.sku) AS rows
FROM ordersync.sku s WHERE sku LIKE 'OUT-%' ORDER BY sku;
SELECT sku, qty, reason FROM ordersync.history WHERE action = 'set_hot' AND reason LIKE 'forecast:%' ORDER BY id;
SELECT type, subject, data FROM slot_events('regress_outlook');
-- again: nothing more to do
SELECT * FROM ordersync.prepare_peak();
-- above half the threshold it stays split; below, it is merged back
SET ordersync.peak_units_per_hour = 0.4;
SELECT * FROM ordersync.prepare_peak();
SET ordersync.peak_units_per_hour = 0.5;
SELECT sku, buckets, previous_buckets, round(units_per_hour::numeric, 4) AS units_per_hour
FROM ordersync.prepare_peak();
SELECT sku, buckets, hot_source, (SELECT sum(on_hand) FROM ordersync.stock t WHERE t.sku = s.sku) AS on_hand,
	   (SELECT count(*) FROM ordersync.stock t WHERE t.sku = s.sku) AS rows
FROM ordersync.sku s WHERE sku = 'OUT-STEADY';
SELECT type, subject, data->>'buckets' AS buckets, data->>'source' AS source FROM slot_events('regress_outlook');
-- an operator's set_hot() on a SKU split for the peak makes it the operator's
SET ordersync.peak_units_per_hour = 0.2;
SELECT sku FROM ordersync.prepare_peak();
SELECT ordersync.set_hot('OUT-STEADY', 2);
SET ordersync.peak_units_per_hour = 100;
SELECT * FROM ordersync.prepare_peak();
SELECT buckets, hot_source FROM ordersync.sku WHERE sku = 'OUT-STEADY';
-- turned off, the SKUs split for a peak are merged back
SET ordersync.peak_units_per_hour = 0.15;
SELECT sku, buckets FROM ordersync.prepare_peak();
RESET ordersync.peak_units_per_hour;
SELECT sku, buckets, previous_buckets FROM ordersync.prepare_peak();
SELECT sku, buckets, hot_source FROM ordersync.sku WHERE sku = 'OUT-LOW';
SELECT sku, qty, reason FROM ordersync.history
 WHERE action = 'set_hot' AND reason LIKE 'forecast:%' AND sku = 'OUT-LOW' ORDER BY id;
RESET ordersync.peak_buckets;
BEGIN;
DELETE FROM ordersync.rollup_hourly;
INSERT INTO ordersync.rollup_hourly SELECT * FROM saved_hourly;
COMMIT;

-- ---------------------------------------------------------------------------
-- who may do what: the application reads the outlook and may run the
-- stock-out check; only the admin prepares the peak; nobody but the
-- extension writes the crossing state or sets the thresholds
-- ---------------------------------------------------------------------------
CREATE ROLE regress_outlook_app IN ROLE ordersync_app;
CREATE ROLE regress_outlook_admin IN ROLE ordersync_admin;
SET ROLE regress_outlook_app;
SELECT count(*) > 0 AS reads FROM ordersync.stock_outlook();
SELECT ordersync.check_stockouts();
SELECT count(*) AS watched FROM ordersync.stockout_watch;
SELECT * FROM ordersync.prepare_peak();
\echo :LAST_ERROR_SQLSTATE
DELETE FROM ordersync.stockout_watch;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO ordersync.stockout_watch (sku, location, days_of_cover) VALUES ('X', 'Y', 1);
\echo :LAST_ERROR_SQLSTATE
SET ordersync.peak_units_per_hour = 1;
\echo :LAST_ERROR_SQLSTATE
SET ordersync.outlook_lead_time = '1d';
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_outlook_admin;
SELECT * FROM ordersync.prepare_peak();
RESET ROLE;
DROP ROLE regress_outlook_app;
DROP ROLE regress_outlook_admin;
SELECT pg_drop_replication_slot('regress_outlook');
