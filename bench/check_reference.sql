/*
 * bench/check_reference.sql — proves, before bench/status.sh measures
 * anything, that bench/plpgsql_reference.sql still does what the C trigger
 * does: the same lifecycle (firm, none, consume, restock, release, and an
 * illegal transition) runs once under each trigger on twin orders and SKUs,
 * and the history rows, the logical messages and the OS002 error must be
 * equal once order ids, SKU names and timestamps are normalised.  Raises an
 * error otherwise.  Needs plpgsql_reference.sql loaded and two locations.
 */
\set ON_ERROR_STOP 1
-- logical decoding reads flushed WAL only: flush every commit of this check
SET synchronous_commit = on;
SELECT 'slot' FROM pg_create_logical_replication_slot('bench_check', 'wal2json') \g /dev/null

-- twin SKUs with the same stock: C* for the C trigger, P* for PL/pgSQL;
-- *B is a hot SKU in 3 buckets; order 1 needs both locations
SELECT ordersync.receive_stock(s || k, l, 6)
  FROM unnest(array['C', 'P']) s, unnest(array['A', 'B']) k, unnest(array['w1', 'w2']) l \g /dev/null
SELECT ordersync.set_hot(s || 'B', 3) FROM unnest(array['C', 'P']) s \g /dev/null
SELECT ordersync.place_order('web', s || n, format(
		'[{"sku":"%sA","qty":%s,"price":"9.90"},{"sku":"%sB","qty":1,"price":"1.00"},{"sku":"%sA","qty":1,"price":"2.50"}]',
		s, CASE n WHEN 1 THEN 8 ELSE 1 END, s, s)::jsonb, '{"name":"Twin"}', true)
  FROM unnest(array['C', 'P']) s, generate_series(1, 2) n \g /dev/null

CREATE TEMP TABLE check_err (variant text, err text);
CREATE FUNCTION pg_temp.lifecycle(variant text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	st text; msg text; det text; hnt text;
BEGIN
	UPDATE ordersync.orders SET status = 'paid' WHERE external_id = variant || '1';
	UPDATE ordersync.orders SET status = 'fulfilling' WHERE external_id = variant || '1';
	UPDATE ordersync.orders SET status = 'shipped' WHERE external_id = variant || '1';
	UPDATE ordersync.orders SET status = 'delivered' WHERE external_id = variant || '1';
	UPDATE ordersync.orders SET status = 'returned' WHERE external_id = variant || '1';
	UPDATE ordersync.orders SET status = 'cancelled' WHERE external_id = variant || '2';
	BEGIN
		UPDATE ordersync.orders SET status = 'paid' WHERE external_id = variant || '2';
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
			det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
		INSERT INTO check_err VALUES (variant,
			concat_ws(' | ', st, msg, regexp_replace(det, '\d+', '#'), hnt));
	END;
END $$;

SET ordersync.actor = 'bench-check';
ALTER TABLE ordersync.orders ENABLE TRIGGER orders_status, DISABLE TRIGGER orders_status_plpgsql;
SELECT pg_temp.lifecycle('C') \g /dev/null
ALTER TABLE ordersync.orders DISABLE TRIGGER orders_status, ENABLE TRIGGER orders_status_plpgsql;
SELECT pg_temp.lifecycle('P') \g /dev/null
ALTER TABLE ordersync.orders ENABLE TRIGGER orders_status, DISABLE TRIGGER orders_status_plpgsql;

CREATE TEMP TABLE check_msg AS
SELECT row_number() OVER () AS n, data::jsonb ->> 'content' AS c
  FROM pg_logical_slot_get_changes('bench_check', NULL, NULL, 'format-version', '2',
                                   'add-msg-prefixes', 'ordersync')
 WHERE data::jsonb ->> 'action' = 'M';
SELECT pg_drop_replication_slot('bench_check') \g /dev/null

DO $$
DECLARE
	c_msgs text[]; p_msgs text[]; c_hist text[]; p_hist text[]; c_err text; p_err text;
BEGIN
	-- the messages of each variant, with its letter, order ids and times masked
	SELECT array_agg(regexp_replace(regexp_replace(regexp_replace(c,
				'"(sku/)?[CP]([AB12])"', '"\1#\2"', 'g'),
				'("order_id":|order/)\d+', '\1#', 'g'),
				'"(created_at|expires_at)":"[^"]*"', '"\1":"#"', 'g') ORDER BY n)
			FILTER (WHERE c ~ '"(sku/|external_id":")C'),
		   array_agg(regexp_replace(regexp_replace(regexp_replace(c,
				'"(sku/)?[CP]([AB12])"', '"\1#\2"', 'g'),
				'("order_id":|order/)\d+', '\1#', 'g'),
				'"(created_at|expires_at)":"[^"]*"', '"\1":"#"', 'g') ORDER BY n)
			FILTER (WHERE c ~ '"(sku/|external_id":")P')
	  INTO c_msgs, p_msgs FROM check_msg;
	SELECT array_agg(concat_ws('|', h.action, h.from_status, h.to_status, substr(h.sku, 2),
							   h.location, h.qty, h.actor, h.role, h.reason) ORDER BY h.id)
			FILTER (WHERE o.external_id LIKE 'C_'),
		   array_agg(concat_ws('|', h.action, h.from_status, h.to_status, substr(h.sku, 2),
							   h.location, h.qty, h.actor, h.role, h.reason) ORDER BY h.id)
			FILTER (WHERE o.external_id LIKE 'P_')
	  INTO c_hist, p_hist
	  FROM ordersync.history h JOIN ordersync.orders o ON o.id = h.order_id
	 WHERE h.actor = 'bench-check';
	SELECT max(err) FILTER (WHERE variant = 'C'), max(err) FILTER (WHERE variant = 'P')
	  INTO c_err, p_err FROM check_err;

	IF c_msgs IS NULL OR cardinality(c_msgs) < 10 OR c_hist IS NULL OR c_err IS NULL THEN
		RAISE EXCEPTION 'reference check: the C run left too little to compare (% messages, % history rows)',
			cardinality(c_msgs), cardinality(c_hist);
	END IF;
	IF c_msgs IS DISTINCT FROM p_msgs THEN
		RAISE EXCEPTION 'reference check: PL/pgSQL messages differ from C'
			USING DETAIL = format(E'C:\n%s\nPL/pgSQL:\n%s', array_to_string(c_msgs, E'\n'),
								  array_to_string(p_msgs, E'\n'));
	END IF;
	IF c_hist IS DISTINCT FROM p_hist THEN
		RAISE EXCEPTION 'reference check: PL/pgSQL history differs from C'
			USING DETAIL = format(E'C: %s\nPL/pgSQL: %s', c_hist, p_hist);
	END IF;
	IF c_err IS DISTINCT FROM p_err THEN
		RAISE EXCEPTION 'reference check: PL/pgSQL error differs from C'
			USING DETAIL = format(E'C: %s\nPL/pgSQL: %s', c_err, p_err);
	END IF;
	RAISE NOTICE 'reference check OK: % events, % history rows and the OS002 error identical',
		cardinality(c_msgs), cardinality(c_hist);
END $$;
