/*
 * ordersync--0.7.0--0.8.0.sql — webhooks applied in the transaction that
 * receives them.
 */

-- complain if the script is sourced in psql rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ordersync UPDATE TO '0.8.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- inbox_receive_apply() keeps a webhook as inbox_receive() does and, in the
-- same transaction, applies it as inbox_apply() does when no other applier
-- holds its order: one transaction and one commit per webhook instead of
-- two, and a new order's row written once, with its outcome.  ordersyncd
-- --inbound calls it (falling back to inbox_receive() before 0.8.0) and
-- leaves to its appliers only what comes back "received".  Both receiving
-- functions now hold a lock per channel and event id until commit, so a
-- repeat arriving meanwhile waits and is then a repeat.
-- ---------------------------------------------------------------------------
CREATE FUNCTION ordersync.inbox_receive_apply(channel text, kind text, event_id text,
											  payload jsonb, topic text DEFAULT NULL,
											  OUT inbox_id bigint, OUT state text)
	RETURNS record
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_inbox_receive_apply';
COMMENT ON FUNCTION ordersync.inbox_receive_apply(text, text, text, jsonb, text) IS 'used by ordersyncd (role ordersync_relay): keeps a verified webhook in ordersync.inbox as inbox_receive() does and applies it in the same transaction when no other applier holds its order (lock waits bounded to 1 s); returns its id and state (received: left to inbox_apply()), both NULL when the channel sent that event id before (nothing is written)';

REVOKE ALL ON FUNCTION ordersync.inbox_receive_apply(text, text, text, jsonb, text) FROM PUBLIC;
-- as inbox_receive(): the relay's, which checked the signature
GRANT EXECUTE ON FUNCTION ordersync.inbox_receive_apply(text, text, text, jsonb, text)
	TO ordersync_relay;
