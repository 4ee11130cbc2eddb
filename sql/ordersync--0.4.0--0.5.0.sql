/*
 * ordersync--0.4.0--0.5.0.sql — stock outlook and analytics, compliance, and
 * operations.
 *
 * Each part of this release has a section of its own below.
 */

-- complain if the script is sourced in psql rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ordersync UPDATE TO '0.5.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Analytics: where orders wait (issue 13, item 5)
-- ---------------------------------------------------------------------------
-- Bottlenecks answered from what the rollups keep (src/extension/rollup.c
-- adds every history row to them once, with the same watermark): time in
-- each status, the funnel per creation day and channel, stock-out spans.
-- A view over 10M history rows would read them all for every question;
-- these read a few thousand rows.  Orders stuck past their status's SLA
-- (order.stuck, once per order and status) and the demand turned away
-- (OS001 refusals, counted in shared memory, never by a write in the
-- refused transaction) are kept by the background worker, or by
-- flag_stuck_orders() and flush_refusals() for those who do not preload.
-- See doc/analytics.md.

-- the status's service level: an order in it longer is stuck
ALTER TABLE ordersync.status ADD COLUMN sla interval
	CONSTRAINT status_sla_positive CHECK (sla > interval '0');
COMMENT ON COLUMN ordersync.status.sla IS 'an order in this status for longer is stuck: flagged once with order.stuck (NULL: never); set with set_sla()';

-- Time in a status, as a histogram per UTC day of leaving it, transition,
-- location and channel: bin b holds the durations d (milliseconds) with
-- 2^(b/8) <= d < 2^((b+1)/8) (bin 0 also holds d < 1 ms).  A quantile
-- read from it is the exact percentile_disc's bin, shown as the bin's
-- geometric middle: within 4.5% of it.
CREATE TABLE ordersync.rollup_status_time (
	day			date NOT NULL,
	from_status	text NOT NULL,
	to_status	text NOT NULL,
	-- the order's first location (by name) with a reservation; '' for none
	location	text NOT NULL,
	channel		text NOT NULL,
	bin			integer NOT NULL,
	transitions	bigint NOT NULL,
	total_ms	bigint NOT NULL,
	PRIMARY KEY (day, from_status, to_status, location, channel, bin)
);
COMMENT ON TABLE ordersync.rollup_status_time IS 'per UTC day of the transition, from and to status, location and channel: a histogram of the time spent in from_status (bin b: 2^(b/8) to 2^((b+1)/8) milliseconds); see rollup_status_time_recount and status_times()';

-- the funnel, by the order's creation day (a cohort): how many of the
-- orders created that day reached each status so far
CREATE TABLE ordersync.rollup_funnel (
	day			date NOT NULL,
	channel		text NOT NULL,
	created		bigint NOT NULL,
	paid		bigint NOT NULL,
	shipped		bigint NOT NULL,
	delivered	bigint NOT NULL,
	cancelled	bigint NOT NULL,
	expired		bigint NOT NULL,
	PRIMARY KEY (day, channel)
);
COMMENT ON TABLE ordersync.rollup_funnel IS 'per UTC day of creation and channel: orders created, and how many of them entered paid, shipped, delivered, cancelled and expired since; see rollup_funnel_recount and the funnel view';

-- Stock per SKU and location as the history tells it (on_hand - reserved,
-- and the safety stock), and the spans when nothing was available to sell
-- (on_hand - reserved - safety <= 0), opened and closed by the refresh.
CREATE TABLE ordersync.rollup_stock_level (
	sku			text NOT NULL,
	location	text NOT NULL,
	unreserved	bigint NOT NULL,
	safety		bigint NOT NULL,
	PRIMARY KEY (sku, location)
);
COMMENT ON TABLE ordersync.rollup_stock_level IS 'per SKU and location: on_hand - reserved and the safety stock after the history rows the rollups have counted';

CREATE TABLE ordersync.rollup_stockout (
	sku			text NOT NULL,
	location	text NOT NULL,
	-- the history row that took the last available unit, and its time
	started_id	bigint NOT NULL,
	started_at	timestamptz NOT NULL,
	-- the one that brought one back; NULL while still out of stock
	ended_at	timestamptz,
	PRIMARY KEY (sku, location, started_id)
);
COMMENT ON TABLE ordersync.rollup_stockout IS 'spans when a SKU had nothing available to sell at a location (on_hand - reserved - safety <= 0), from the history; see stockout_hours()';

CREATE VIEW ordersync.rollup_status_time_recount AS
SELECT (h.at AT TIME ZONE 'UTC')::date AS day, h.from_status, h.to_status,
	   coalesce(p.location, '') AS location, o.channel,
	   CASE WHEN p.ms < 1 THEN 0
			ELSE pg_catalog.floor(8 * pg_catalog.ln(p.ms::float8) / pg_catalog.ln(2::float8))::integer END AS bin,
	   pg_catalog.count(*) AS transitions, pg_catalog.sum(p.ms)::bigint AS total_ms
  FROM ordersync.history h
  JOIN ordersync.orders o ON o.id = h.order_id
 CROSS JOIN LATERAL (
	SELECT pg_catalog.min(e.location) FILTER (WHERE e.action = 'reserve') AS location,
		   pg_catalog.round(extract(epoch FROM h.at - (pg_catalog.array_agg(e.at ORDER BY e.id DESC)
				FILTER (WHERE e.action IN ('created', 'status')))[1]) * 1000)::bigint AS ms
	  FROM ordersync.history e
	 WHERE e.order_id = h.order_id AND e.id < h.id) p
 WHERE h.action = 'status' AND p.ms IS NOT NULL
 GROUP BY 1, 2, 3, 4, 5, 6;
COMMENT ON VIEW ordersync.rollup_status_time_recount IS 'rollup_status_time counted from scratch from every status history row: the definition (slow: reads the whole history)';

CREATE VIEW ordersync.rollup_funnel_recount AS
SELECT (o.created_at AT TIME ZONE 'UTC')::date AS day, o.channel,
	   pg_catalog.count(*) FILTER (WHERE h.action = 'created') AS created,
	   pg_catalog.count(*) FILTER (WHERE h.to_status = 'paid' AND h.action = 'status') AS paid,
	   pg_catalog.count(*) FILTER (WHERE h.to_status = 'shipped' AND h.action = 'status') AS shipped,
	   pg_catalog.count(*) FILTER (WHERE h.to_status = 'delivered' AND h.action = 'status') AS delivered,
	   pg_catalog.count(*) FILTER (WHERE h.to_status = 'cancelled' AND h.action = 'status') AS cancelled,
	   pg_catalog.count(*) FILTER (WHERE h.to_status = 'expired' AND h.action = 'status') AS expired
  FROM ordersync.history h
  JOIN ordersync.orders o ON o.id = h.order_id
 WHERE h.action = 'created'
	OR (h.action = 'status' AND h.to_status IN ('paid', 'shipped', 'delivered', 'cancelled', 'expired'))
 GROUP BY 1, 2;
COMMENT ON VIEW ordersync.rollup_funnel_recount IS 'rollup_funnel counted from scratch from the history: the definition (slow: reads the whole history)';

CREATE VIEW ordersync.rollup_stockout_recount AS
WITH mv AS (
	SELECT h.id, h.at, h.action, h.sku, h.location, h.qty,
		   CASE WHEN h.action IN ('receive', 'release', 'restock') THEN h.qty
				WHEN h.action = 'reserve' THEN -h.qty ELSE 0 END AS d
	  FROM ordersync.history h
	 WHERE h.action IN ('receive', 'reserve', 'release', 'consume', 'restock', 'safety')
	   AND h.sku IS NOT NULL AND h.location IS NOT NULL
), run AS (
	SELECT m.*, pg_catalog.sum(m.d) OVER w AS u,
		   pg_catalog.count(*) FILTER (WHERE m.action = 'safety') OVER w AS sg
	  FROM mv m WINDOW w AS (PARTITION BY m.sku, m.location ORDER BY m.id)
), lvl AS (
	SELECT r.*, CASE WHEN r.sg = 0 THEN 0 ELSE pg_catalog.max(r.qty)
				FILTER (WHERE r.action = 'safety') OVER (PARTITION BY r.sku, r.location, r.sg) END AS s
	  FROM run r
), flip AS (
	SELECT v.sku, v.location, v.id, v.at, v.u - v.s > 0 AS avail,
		   coalesce(pg_catalog.lag(v.u - v.s > 0) OVER w, false) AS before
	  FROM lvl v WINDOW w AS (PARTITION BY v.sku, v.location ORDER BY v.id)
), edge AS (
	SELECT f.*, pg_catalog.lead(f.at) OVER w AS next_at
	  FROM flip f WHERE f.avail <> f.before
	WINDOW w AS (PARTITION BY f.sku, f.location ORDER BY f.id)
)
SELECT e.sku, e.location, e.id AS started_id, e.at AS started_at, e.next_at AS ended_at
  FROM edge e WHERE NOT e.avail;
COMMENT ON VIEW ordersync.rollup_stockout_recount IS 'rollup_stockout counted from scratch from every stock movement in history, in id order: the definition (slow: reads the whole history; equal to the rollup when the movements of a SKU at a location commit in id order, as they do unless the SKU is bucketed)';

CREATE VIEW ordersync.funnel AS
SELECT f.day, f.channel, f.created, f.paid, f.shipped, f.delivered, f.cancelled, f.expired,
	   pg_catalog.round(f.paid::numeric / nullif(f.created, 0), 4) AS paid_rate,
	   pg_catalog.round(f.shipped::numeric / nullif(f.paid, 0), 4) AS shipped_rate,
	   pg_catalog.round(f.delivered::numeric / nullif(f.shipped, 0), 4) AS delivered_rate,
	   pg_catalog.round(f.cancelled::numeric / nullif(f.created, 0), 4) AS cancellation_rate,
	   pg_catalog.round(f.expired::numeric / nullif(f.created, 0), 4) AS expiry_rate
  FROM ordersync.rollup_funnel f;
COMMENT ON VIEW ordersync.funnel IS 'created -> paid -> shipped -> delivered per UTC day of creation and channel, with the step rates and the cancellation and expiry rates of the day''s orders; as of the last rollup refresh';

-- set_sla(status, sla): an order in status for longer than sla is stuck
CREATE FUNCTION ordersync.set_sla(status text, sla interval)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF sla IS NOT NULL AND sla <= interval '0' THEN
		RAISE EXCEPTION 'an SLA must be a positive interval'
			USING ERRCODE = 'OS021', DETAIL = format('set_sla(%L, %L) was called.', status, sla),
				  HINT = 'Pass a positive interval such as ''2 hours'', or NULL for no SLA.';
	END IF;
	UPDATE ordersync.status s SET sla = set_sla.sla WHERE s.name = set_sla.status;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown status "%"', status
			USING ERRCODE = 'OS020',
				  DETAIL = format('ordersync.status has no status %L.', status),
				  HINT = 'Pass one of the names in ordersync.status.';
	END IF;
END
$$;
COMMENT ON FUNCTION ordersync.set_sla(text, interval) IS 'sets how long an order may stay in a status before it is stuck (NULL: never); refuses an unknown status (OS020) or an SLA that is not positive (OS021)';

CREATE VIEW ordersync.stuck_orders AS
SELECT o.id AS order_id, o.channel, o.external_id, o.status, o.updated_at AS since, s.sla,
	   pg_catalog.now() - o.updated_at - s.sla AS overdue
  FROM ordersync.orders o
  JOIN ordersync.status s ON s.name = o.status
 WHERE s.sla IS NOT NULL AND o.updated_at < pg_catalog.now() - s.sla;
COMMENT ON VIEW ordersync.stuck_orders IS 'orders in their status for longer than its SLA (since: the last change of the order, its status change)';

CREATE TABLE ordersync.order_stuck (
	order_id	bigint NOT NULL,
	status		text NOT NULL,
	since		timestamptz NOT NULL,
	flagged_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (order_id, status)
);
COMMENT ON TABLE ordersync.order_stuck IS 'orders flagged stuck, once per order and status: the event order.stuck was written with the row';

CREATE FUNCTION ordersync.flag_stuck_orders()
	RETURNS bigint
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_flag_stuck_orders';
COMMENT ON FUNCTION ordersync.flag_stuck_orders() IS 'flags the orders stuck past their status''s SLA that were not flagged in that status yet, each with one order.stuck event; returns how many (the background worker does it every ordersync.stuck_interval)';

-- status_times(since, until): time in status per transition, location and
-- channel over the UTC days from since's to until's, from the histograms
CREATE FUNCTION ordersync.status_times(since timestamptz DEFAULT pg_catalog.now() - interval '7 days',
									   until timestamptz DEFAULT pg_catalog.now())
	RETURNS TABLE (from_status text, to_status text, location text, channel text, transitions bigint,
				   p50 interval, p95 interval, p99 interval, mean interval)
	LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
	WITH b AS (
		SELECT t.from_status, t.to_status, t.location, t.channel, t.bin,
			   sum(t.transitions) AS n, sum(t.total_ms) AS ms
		  FROM ordersync.rollup_status_time t
		 WHERE t.day BETWEEN (since AT TIME ZONE 'UTC')::date AND (until AT TIME ZONE 'UTC')::date
		 GROUP BY 1, 2, 3, 4, 5
	), c AS (
		SELECT b.*, sum(b.n) OVER w AS cum, sum(b.n) OVER (PARTITION BY b.from_status, b.to_status, b.location, b.channel) AS tot
		  FROM b WINDOW w AS (PARTITION BY b.from_status, b.to_status, b.location, b.channel ORDER BY b.bin)
	)
	SELECT c.from_status, c.to_status, c.location, c.channel, max(c.tot)::bigint,
		   make_interval(secs => power(2::float8, (min(c.bin) FILTER (WHERE c.cum >= 0.50 * c.tot) + 0.5) / 8) / 1000),
		   make_interval(secs => power(2::float8, (min(c.bin) FILTER (WHERE c.cum >= 0.95 * c.tot) + 0.5) / 8) / 1000),
		   make_interval(secs => power(2::float8, (min(c.bin) FILTER (WHERE c.cum >= 0.99 * c.tot) + 0.5) / 8) / 1000),
		   make_interval(secs => (sum(c.ms) / max(c.tot)) / 1000)
	  FROM c
	 GROUP BY 1, 2, 3, 4
	 ORDER BY 1, 2, 3, 4
$$;
COMMENT ON FUNCTION ordersync.status_times(timestamptz, timestamptz) IS 'time spent in from_status before to_status per location and channel, over the UTC days from since''s to until''s: p50, p95, p99 (within 4.5%) and the exact mean; as of the last rollup refresh';

-- stockout_hours(since, until): hours without anything available to sell
CREATE FUNCTION ordersync.stockout_hours(since timestamptz DEFAULT pg_catalog.now() - interval '7 days',
										 until timestamptz DEFAULT pg_catalog.now())
	RETURNS TABLE (sku text, location text, stockouts bigint, hours float8, out_now boolean)
	LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
	SELECT s.sku, s.location, count(*),
		   sum(extract(epoch FROM least(coalesce(s.ended_at, 'infinity'), until, now())
								  - greatest(s.started_at, since)))::float8 / 3600,
		   bool_or(s.ended_at IS NULL)
	  FROM ordersync.rollup_stockout s
	 WHERE s.started_at < least(until, now()) AND coalesce(s.ended_at, 'infinity') > since
	 GROUP BY 1, 2
	 ORDER BY 4 DESC, 1, 2
$$;
COMMENT ON FUNCTION ordersync.stockout_hours(timestamptz, timestamptz) IS 'per SKU and location: the stock-outs that overlap [since, until) and the hours of it inside, and whether it is out of stock now; as of the last rollup refresh';

-- demand turned away: OS001 refusals per UTC day (of the flush) and SKU
CREATE TABLE ordersync.demand_refused (
	day			date NOT NULL,
	-- the SKU the refusal named; '' for the refusals of SKUs the shared
	-- counters had no room for (ordersync.refusal_skus)
	sku			text NOT NULL,
	refusals	bigint NOT NULL,
	units		bigint NOT NULL,
	PRIMARY KEY (day, sku)
);
COMMENT ON TABLE ordersync.demand_refused IS 'OS001 refusals (insufficient stock) per UTC day they were flushed and SKU, and the units they asked for; counted in shared memory, flushed by the worker or flush_refusals()';

CREATE FUNCTION ordersync.flush_refusals()
	RETURNS bigint
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_flush_refusals';
COMMENT ON FUNCTION ordersync.flush_refusals() IS 'adds the OS001 refusals counted in shared memory since the last flush to demand_refused; returns how many refusals it added (always 0 unless ordersync is in shared_preload_libraries)';

-- sell_through(days): per SKU, what sold against what was there to sell
CREATE FUNCTION ordersync.sell_through(days integer DEFAULT 30)
	RETURNS TABLE (sku text, units_sold numeric, on_hand numeric, sell_through numeric,
				   refusals numeric, units_refused numeric)
	LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
	WITH sold AS (
		SELECT r.sku, sum(r.units_sold) AS n FROM ordersync.rollup_daily_sku r
		 WHERE r.day > (now() AT TIME ZONE 'UTC')::date - days GROUP BY 1
	), here AS (
		SELECT st.sku, sum(st.on_hand) AS n FROM ordersync.stock st GROUP BY 1
	), refused AS (
		SELECT d.sku, sum(d.refusals) AS r, sum(d.units) AS u FROM ordersync.demand_refused d
		 WHERE d.day > (now() AT TIME ZONE 'UTC')::date - days GROUP BY 1
	)
	-- sums as numeric: a SKU's stock over its locations may pass bigint
	SELECT k.sku, coalesce(sold.n, 0), coalesce(here.n, 0),
		   round(coalesce(sold.n, 0) / nullif(coalesce(sold.n, 0) + coalesce(here.n, 0), 0), 4),
		   coalesce(refused.r, 0), coalesce(refused.u, 0)
	  FROM ordersync.sku k
	  LEFT JOIN sold ON sold.sku = k.sku
	  LEFT JOIN here ON here.sku = k.sku
	  LEFT JOIN refused ON refused.sku = k.sku
	 ORDER BY 1
$$;
COMMENT ON FUNCTION ordersync.sell_through(integer) IS 'per SKU over the last days UTC days: units sold (shipped - returned), on hand now, sell-through = sold / (sold + on hand), and the OS001 refusals and units turned away';

-- The refresh is one statement over a batch of 50,000 history rows whose
-- estimated cost (the gaps are guessed large) makes JIT compile it every
-- time: seconds of compilation for a statement that runs in a fraction of
-- that.  The worker turns JIT off for its step too (rollup.c).
ALTER FUNCTION ordersync.refresh_rollups() SET jit = off;

-- The new rollups are counted from the whole history, like the first
-- ones were: an upgrade from 0.4.0 starts every rollup again from id 0, so
-- the next refresh (the worker's, or refresh_rollups()) recounts all of
-- them, in batches, exactly once.
TRUNCATE ordersync.rollup_hourly, ordersync.rollup_daily_sku;
DELETE FROM ordersync.rollup_state;

REVOKE ALL ON ordersync.rollup_status_time, ordersync.rollup_funnel, ordersync.rollup_stock_level,
	ordersync.rollup_stockout, ordersync.rollup_status_time_recount, ordersync.rollup_funnel_recount,
	ordersync.rollup_stockout_recount,
	ordersync.funnel, ordersync.stuck_orders, ordersync.order_stuck, ordersync.demand_refused FROM PUBLIC;
GRANT SELECT ON ordersync.rollup_status_time, ordersync.rollup_funnel, ordersync.rollup_stock_level,
	ordersync.rollup_stockout, ordersync.rollup_status_time_recount, ordersync.rollup_funnel_recount,
	ordersync.rollup_stockout_recount,
	ordersync.funnel, ordersync.stuck_orders, ordersync.order_stuck, ordersync.demand_refused
	TO ordersync_app, ordersync_admin;
REVOKE ALL ON FUNCTION ordersync.set_sla(text, interval), ordersync.flag_stuck_orders(),
	ordersync.status_times(timestamptz, timestamptz), ordersync.stockout_hours(timestamptz, timestamptz),
	ordersync.flush_refusals(), ordersync.sell_through(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ordersync.set_sla(text, interval) TO ordersync_admin;
GRANT EXECUTE ON FUNCTION ordersync.flag_stuck_orders(), ordersync.flush_refusals(),
	ordersync.status_times(timestamptz, timestamptz), ordersync.stockout_hours(timestamptz, timestamptz),
	ordersync.sell_through(integer) TO ordersync_app, ordersync_admin;

SELECT pg_catalog.pg_extension_config_dump('ordersync.rollup_status_time', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.rollup_funnel', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.rollup_stock_level', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.rollup_stockout', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.order_stuck', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.demand_refused', '');
