/*
 * ordersync--0.4.0--0.5.0.sql — stock outlook and analytics, compliance, and
 * operations.
 *
 * Each part of this release has a section of its own below.
 */

-- complain if the script is sourced in psql rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ordersync UPDATE TO '0.5.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Outlook: forecasts on the shop's own data, stock-out predictions, hot SKUs
-- before the peak (issue 13, items 3 and 4)
-- ---------------------------------------------------------------------------
-- See doc/forecast.md ("Order volume", "Intermittent demand", "Stock
-- outlook", "Ready before the peak") and doc/events.md.  The computing
-- functions read the rollups as they are: without the background worker,
-- run refresh_rollups() first.

-- Croston, SBA and TSB on a demand history: pure computation, like forecast().
CREATE FUNCTION ordersync.forecast_intermittent(history float8[], method text DEFAULT 'auto')
	RETURNS TABLE (method text, value float8, alpha float8, beta float8, mse float8)
	LANGUAGE c IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'ordersync_forecast_intermittent';
COMMENT ON FUNCTION ordersync.forecast_intermittent(float8[], text) IS 'forecasts intermittent demand per period from history (oldest first, units per period, 0 for none) by Croston, SBA or TSB (method, or auto: the smallest in-sample error), with the parameters fitted over a fixed grid; one row';

-- Orders per bucket from ordersync.rollup_hourly; reads tables, so STABLE.
CREATE FUNCTION ordersync.forecast_orders(bucket interval DEFAULT '1 hour', horizon integer DEFAULT 48,
										  channel text DEFAULT NULL)
	RETURNS TABLE (bucket_start timestamptz, value float8, lower float8, upper float8)
	LANGUAGE c STABLE
	AS 'MODULE_PATHNAME', 'ordersync_forecast_orders';
COMMENT ON FUNCTION ordersync.forecast_orders(interval, integer, text) IS 'forecasts the orders of the next horizon buckets (the current one first) of one channel, or all with NULL, from rollup_hourly, with 95% intervals';

CREATE FUNCTION ordersync.stock_outlook(lead_time interval DEFAULT '7 days', service_level float8 DEFAULT 0.95)
	RETURNS TABLE (sku text, location text, on_hand bigint, available bigint, daily_demand float8,
				   method text, days_of_cover float8, projected_stockout date, safety_stock bigint,
				   reorder_point bigint, suggested_reorder bigint)
	LANGUAGE c STABLE
	AS 'MODULE_PATHNAME', 'ordersync_stock_outlook';
COMMENT ON FUNCTION ordersync.stock_outlook(interval, float8) IS 'per SKU and location: stock, forecast demand per day (rollup_daily_sku, intermittent methods), days of cover, projected stock-out date, and the safety stock, reorder point and reorder quantity for lead_time at service_level';

-- The crossing state of inventory.stockout_predicted: a pair is here while
-- its projected stock-out lies within ordersync.outlook_lead_time.  Dumped,
-- so a restore does not announce the same stock-outs again.
CREATE TABLE ordersync.stockout_watch (
	sku			text NOT NULL,
	location	text NOT NULL,
	projected_stockout date,
	days_of_cover float8 NOT NULL,
	entered_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (sku, location)
);
COMMENT ON TABLE ordersync.stockout_watch IS 'SKUs and locations whose projected stock-out lies within ordersync.outlook_lead_time, as of the last check, with the projection when they entered; written by check_stockouts() and the background worker';

CREATE FUNCTION ordersync.check_stockouts()
	RETURNS integer
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_check_stockouts';
COMMENT ON FUNCTION ordersync.check_stockouts() IS 'emits inventory.stockout_predicted for each SKU and location whose projected stock-out came within ordersync.outlook_lead_time since the last check (once per crossing); returns how many';

-- Peak preparation marks the SKUs it splits 'forecast'.
ALTER TABLE ordersync.sku DROP CONSTRAINT sku_hot_source,
	ADD CONSTRAINT sku_hot_source CHECK (hot_source IN ('operator', 'auto', 'forecast'));
COMMENT ON COLUMN ordersync.sku.hot_source IS
	'who set the bucket count: operator (set_hot, never changed automatically), auto (the worker''s auto-hot, merged back when quiet), forecast (prepare_peak, merged back when the forecast falls), or NULL (never set)';

CREATE FUNCTION ordersync.prepare_peak()
	RETURNS TABLE (sku text, buckets integer, previous_buckets integer, units_per_hour float8)
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_prepare_peak';
COMMENT ON FUNCTION ordersync.prepare_peak() IS 'splits SKUs forecast to sell ordersync.peak_units_per_hour or more in the next hour into ordersync.peak_buckets buckets, and merges back those it split once below half that; never a SKU set by the operator or auto-hot; returns the changes';

REVOKE ALL ON FUNCTION ordersync.forecast_intermittent(float8[], text), ordersync.forecast_orders(interval, integer, text),
	ordersync.stock_outlook(interval, float8), ordersync.check_stockouts(), ordersync.prepare_peak() FROM PUBLIC;
REVOKE ALL ON ordersync.stockout_watch FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ordersync.forecast_intermittent(float8[], text), ordersync.forecast_orders(interval, integer, text),
	ordersync.stock_outlook(interval, float8), ordersync.check_stockouts()
	TO ordersync_app, ordersync_admin;
GRANT EXECUTE ON FUNCTION ordersync.prepare_peak() TO ordersync_admin;
GRANT SELECT ON ordersync.stockout_watch TO ordersync_app, ordersync_admin;

SELECT pg_catalog.pg_extension_config_dump('ordersync.stockout_watch', '');
