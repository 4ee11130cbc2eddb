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

-- ---------------------------------------------------------------------------
-- Sinks (issue 11)
-- ---------------------------------------------------------------------------
