/*
 * ordersync--0.6.0--0.7.0.sql — any number of SKUs received in one
 * transaction.
 */

-- complain if the script is sourced in psql rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ordersync UPDATE TO '0.7.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- The history chains without an order (a SKU's receipts, safety stock and
-- hot changes; the rows with neither SKU nor order) were written under a
-- transaction advisory lock per chain, held until commit.  Each took a slot
-- of PostgreSQL's shared lock table, so one transaction receiving some 6,400
-- SKUs at default settings (1,800 with max_connections = 28) failed with
-- "out of shared memory".  The writers of such a chain now lock its row
-- here instead (src/extension/history_chain.c), made on first use: a row
-- lock is kept in the row, not in shared memory.  Same order of locking as
-- before (when the history row is written), so no new deadlocks.
-- ---------------------------------------------------------------------------
CREATE TABLE ordersync.history_chain_lock (
	chain		text PRIMARY KEY
);
COMMENT ON TABLE ordersync.history_chain_lock IS 'one row per history chain without an order (its SKU, '''' for the rows with neither), locked by the chain''s writers until they commit so its rows go in one transaction at a time';
COMMENT ON COLUMN ordersync.history_chain_lock.chain IS 'the SKU of the chain, or '''' for history rows with neither order nor SKU';
REVOKE ALL ON ordersync.history_chain_lock FROM PUBLIC;
-- like every table of the extension (its rows would also be made again)
SELECT pg_catalog.pg_extension_config_dump('ordersync.history_chain_lock', '');
