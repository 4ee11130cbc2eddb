-- test/integration/setup.sql — objects the relay integration tests use.
-- When the ordersync extension is not installed, a minimal stand-in
-- ordersync.orders (the columns --snapshot reads) is created instead.
\set ON_ERROR_STOP on
SELECT NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'ordersync') AS standin \gset
\if :standin
CREATE SCHEMA IF NOT EXISTS ordersync;
CREATE TABLE IF NOT EXISTS ordersync.orders (
	id bigserial PRIMARY KEY,
	channel text NOT NULL DEFAULT 'web',
	external_id text,
	status text NOT NULL DEFAULT 'pending',
	customer jsonb NOT NULL DEFAULT '{}',
	lines jsonb NOT NULL DEFAULT '[]',
	total numeric(12,2) NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz
);
\endif
-- Only superusers may write logical messages (ordersync 0.3.0 does this on
-- CREATE EXTENSION; the stand-in needs it too), or ordersyncd refuses to
-- relay: anyone could forge an event. The tests emit as a superuser.
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_logical_emit_message(boolean, text, text),
	pg_catalog.pg_logical_emit_message(boolean, text, bytea) FROM PUBLIC;
CREATE TABLE IF NOT EXISTS ordersync.it_bulk (id bigint PRIMARY KEY, v text);
CREATE TABLE IF NOT EXISTS public.not_ordersync (id bigint, v text);
CREATE SEQUENCE IF NOT EXISTS public.it_seq;
-- which n were committed (a producer killed by a server restart leaves gaps)
CREATE TABLE IF NOT EXISTS public.it_committed (n bigint PRIMARY KEY);

-- One producer session; nextval() order = commit order. Every big_every-th
-- transaction is 300x larger so kills also land inside big transactions;
-- pause_ms after each commit makes production last long enough to be
-- interrupted many times.
CREATE OR REPLACE PROCEDURE public.it_produce(total int, per_txn int, big_every int,
											 pause_ms int DEFAULT 0)
LANGUAGE plpgsql AS $$
DECLARE
	i int := 0;
	t int := 0;
	k int;
	n bigint;
BEGIN
	WHILE i < total LOOP
		t := t + 1;
		k := CASE WHEN big_every > 0 AND t % big_every = 0 THEN per_txn * 300 ELSE per_txn END;
		FOR j IN 1..k LOOP
			EXIT WHEN i >= total;
			n := nextval('public.it_seq');
			i := i + 1;
			PERFORM pg_logical_emit_message(true, 'ordersync',
				json_build_object('type', 'test.seq', 'subject', 'order/' || n,
								  'data', json_build_object('n', n))::text);
			INSERT INTO public.it_committed VALUES (n);
			IF j = 1 THEN
				-- rows of other tables are filtered out by the server
				INSERT INTO public.not_ordersync VALUES (n, 'x');
			END IF;
		END LOOP;
		COMMIT;
		IF pause_ms > 0 THEN
			PERFORM pg_sleep(pause_ms / 1000.0);	-- spread over time: kills land mid-stream
		END IF;
	END LOOP;
END $$;
