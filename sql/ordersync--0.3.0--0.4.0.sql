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
-- Sinks (issue 11)
-- ---------------------------------------------------------------------------
