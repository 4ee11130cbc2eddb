/*
 * ordersync--0.3.0--0.4.0.sql — forecasts, and the NATS JetStream sink.
 *
 * Each part of this release has a section of its own below.
 */

-- complain if the script is sourced in psql rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ordersync UPDATE TO '0.4.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Forecasts (issue 13)
-- ---------------------------------------------------------------------------
-- Pure computation on its arguments: IMMUTABLE and PARALLEL SAFE, and
-- neither SECURITY DEFINER (it reads nothing it would need rights for) nor
-- STRICT (a NULL argument is refused with OS004).  See doc/forecast.md.
CREATE FUNCTION ordersync.forecast(history float8[], season integer, horizon integer,
								   level float8 DEFAULT 0.95)
	RETURNS TABLE (step integer, value float8, lower float8, upper float8)
	LANGUAGE c IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'ordersync_forecast';
COMMENT ON FUNCTION ordersync.forecast(float8[], integer, integer, float8) IS 'forecasts horizon steps after history (oldest first; season values per season, 0 for none) by exponential smoothing or the seasonal naive method, chosen automatically, with level prediction intervals';
REVOKE ALL ON FUNCTION ordersync.forecast(float8[], integer, integer, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ordersync.forecast(float8[], integer, integer, float8)
	TO ordersync_app, ordersync_admin;

-- ---------------------------------------------------------------------------
-- Rollups (issue 13, item 1)
-- ---------------------------------------------------------------------------
-- Orders, units and revenue per hour and channel, and stock movements per
-- day, SKU and location, kept from ordersync.history by refresh_rollups()
-- and, with ordersync preloaded, by the background worker every
-- ordersync.rollup_interval: never by the order path, where one counter row
-- per hour and channel would be a hot row in every flash sale.  Hours and
-- days are UTC, whatever the session's TimeZone.  The *_recount views count
-- the same figures from scratch: they are the definition, and the rollups
-- equal them once a refresh has run after the last write (the proof is at
-- the top of src/extension/rollup.c).
--
-- pg_dump: the rollups could be recounted from the history, but a restore
-- would then start with empty rollups and recount every history row.  They
-- are dumped instead, with their state, which holds history ids only (no
-- transaction ids) and so stays right in the restored cluster; pg_dump
-- reads them and the history in one snapshot.  The state row is created by
-- the first refresh, not here, so a restore does not meet a row of its own.
CREATE TABLE ordersync.rollup_hourly (
	hour		timestamptz NOT NULL,
	channel		text NOT NULL,
	orders		bigint NOT NULL,
	units		bigint NOT NULL,
	revenue		numeric NOT NULL,
	PRIMARY KEY (hour, channel)
);
COMMENT ON TABLE ordersync.rollup_hourly IS 'per UTC hour and channel: orders placed, their units and revenue (orders.total), as placed; see rollup_hourly_recount';

CREATE TABLE ordersync.rollup_daily_sku (
	day			date NOT NULL,
	sku			text NOT NULL,
	location	text NOT NULL,
	reserved	bigint NOT NULL,
	released	bigint NOT NULL,
	shipped		bigint NOT NULL,
	returned	bigint NOT NULL,
	units_sold	bigint NOT NULL GENERATED ALWAYS AS (shipped - returned) STORED,
	PRIMARY KEY (day, sku, location)
);
COMMENT ON TABLE ordersync.rollup_daily_sku IS 'per UTC day, SKU and location: units reserved, released (cancelled, expired), shipped and returned that day; see rollup_daily_sku_recount';
COMMENT ON COLUMN ordersync.rollup_daily_sku.units_sold IS 'units that left the warehouse for good that day: shipped - returned (negative on a day with more returns than shipments)';

CREATE TABLE ordersync.rollup_state (
	id			boolean PRIMARY KEY DEFAULT true CONSTRAINT rollup_state_one_row CHECK (id),
	-- every history id up to here has been looked at ...
	high_id		bigint NOT NULL DEFAULT 0,
	-- ... and these were not committed then: they are looked at again
	gaps		int8multirange NOT NULL DEFAULT '{}',
	-- once every transaction of fence_xacts has ended, no id up to
	-- fence_id can commit any more and those leave gaps
	fence_id	bigint NOT NULL DEFAULT 0,
	fence_xacts	bigint[] NOT NULL DEFAULT '{}',
	rows_processed bigint NOT NULL DEFAULT 0,
	refreshed_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE ordersync.rollup_state IS 'where the rollups stand in ordersync.history; written with the rollups, in the same transaction';

CREATE VIEW ordersync.rollup_hourly_recount AS
SELECT pg_catalog.date_trunc('hour', h.at, 'UTC') AS hour, o.channel,
	   pg_catalog.count(*) AS orders,
	   pg_catalog.sum(l.units)::bigint AS units,
	   pg_catalog.sum(o.total) AS revenue
  FROM ordersync.history h
  JOIN ordersync.orders o ON o.id = h.order_id
 CROSS JOIN LATERAL (SELECT coalesce(pg_catalog.sum(ol.qty), 0) AS units
					   FROM ordersync.order_line ol WHERE ol.order_id = o.id) l
 WHERE h.action = 'created'
 GROUP BY 1, 2;
COMMENT ON VIEW ordersync.rollup_hourly_recount IS 'rollup_hourly counted from scratch from every created history row: the definition (slow: reads the whole history)';

CREATE VIEW ordersync.rollup_daily_sku_recount AS
SELECT d.day, d.sku, d.location, d.reserved, d.released, d.shipped, d.returned,
	   d.shipped - d.returned AS units_sold
  FROM (SELECT (h.at AT TIME ZONE 'UTC')::date AS day, h.sku, h.location,
			   coalesce(pg_catalog.sum(h.qty) FILTER (WHERE h.action = 'reserve'), 0)::bigint AS reserved,
			   coalesce(pg_catalog.sum(h.qty) FILTER (WHERE h.action = 'release'), 0)::bigint AS released,
			   coalesce(pg_catalog.sum(h.qty) FILTER (WHERE h.action = 'consume'), 0)::bigint AS shipped,
			   coalesce(pg_catalog.sum(h.qty) FILTER (WHERE h.action = 'restock'), 0)::bigint AS returned
		  FROM ordersync.history h
		 WHERE h.action IN ('reserve', 'release', 'consume', 'restock')
		 GROUP BY 1, 2, 3) d;
COMMENT ON VIEW ordersync.rollup_daily_sku_recount IS 'rollup_daily_sku counted from scratch from every reserve, release, consume and restock history row: the definition (slow: reads the whole history)';

CREATE FUNCTION ordersync.refresh_rollups()
	RETURNS bigint
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_refresh_rollups';
COMMENT ON FUNCTION ordersync.refresh_rollups() IS 'adds the history rows committed since the last refresh to the rollups (the whole history the first time); waits for a refresh running elsewhere; returns how many rows it added';

REVOKE ALL ON ordersync.rollup_hourly, ordersync.rollup_daily_sku, ordersync.rollup_state,
	ordersync.rollup_hourly_recount, ordersync.rollup_daily_sku_recount FROM PUBLIC;
REVOKE ALL ON FUNCTION ordersync.refresh_rollups() FROM PUBLIC;
GRANT SELECT ON ordersync.rollup_hourly, ordersync.rollup_daily_sku, ordersync.rollup_state,
	ordersync.rollup_hourly_recount, ordersync.rollup_daily_sku_recount
	TO ordersync_app, ordersync_admin;
GRANT EXECUTE ON FUNCTION ordersync.refresh_rollups() TO ordersync_app, ordersync_admin;

SELECT pg_catalog.pg_extension_config_dump('ordersync.rollup_hourly', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.rollup_daily_sku', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.rollup_state', '');

-- ---------------------------------------------------------------------------
-- Sinks (issue 11)
-- ---------------------------------------------------------------------------
