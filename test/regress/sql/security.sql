-- security (0.3.0): stock figures that would overflow a bigint are refused
-- with OS004 (never 22003, 23514 or undefined behaviour in C); identifiers
-- may not hide characters; the customer object is bounded; only superusers
-- and ordersync's own C code write logical messages
SELECT 'init' FROM pg_create_logical_replication_slot('regress_security', 'wal2json');
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT ordersync.add_location('sec-a', -10);
SELECT ordersync.add_location('sec-b', -11);

-- ---------------------------------------------------------------------------
-- Stock near the largest bigint
-- ---------------------------------------------------------------------------
SELECT ordersync.receive_stock('BIG-1', 'sec-a', 9223372036854775000);
SELECT ordersync.receive_stock('BIG-1', 'sec-a', 1000);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.receive_stock('BIG-1', 'sec-a', 9223372036854775807);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.receive_stock('BIG-1', 'sec-a', 807);	-- up to the maximum exactly
SELECT ordersync.receive_stock('BIG-1', 'sec-a', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.receive_stock('BIG-1', 'sec-b', 9223372036854775807);
SELECT location, on_hand, reserved, safety FROM ordersync.stock WHERE sku = 'BIG-1' ORDER BY 1;

-- available() over two such locations: the right number or OS004, never 22003
SELECT ordersync.available('BIG-1');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_safety_stock('BIG-1', 'sec-b', 9223372036854775807);
SELECT ordersync.available('BIG-1');
SELECT ordersync.set_safety_stock('BIG-1', 'sec-a', 100);
SELECT ordersync.available('BIG-1');

-- orders: a line near the maximum, two lines of one SKU adding up past it
SELECT ordersync.place_order('web', 'sec-big-1', '[{"sku": "BIG-1", "qty": 9223372036854775807, "price": "0"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'sec-big-2',
	'[{"sku": "BIG-1", "qty": 9223372036854775000, "price": "0"}, {"sku": "BIG-1", "qty": 9223372036854775000, "price": "0"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'sec-big-3', '[{"sku": "BIG-1", "qty": 9223372036854775807, "price": "0.01"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS orders FROM ordersync.orders WHERE external_id LIKE 'sec-big-%';

-- thresholds compared exactly at the maximum: everything that is free goes,
-- so out_of_stock fires; low_stock at the maximum does not (it never was above)
SELECT ordersync.set_low_stock('BIG-1', 9223372036854775807);
SELECT count(*) > 0 AS skip FROM slot_events('regress_security');
SELECT ordersync.place_order('web', 'sec-big-4', '[{"sku": "BIG-1", "qty": 9223372036854775707, "price": "0"}]') > 0 AS placed;
SELECT type, data->>'location' AS location, data->>'qty' AS qty, data->>'available' AS available,
	   data->>'threshold' AS threshold
FROM slot_events('regress_security');
SELECT ordersync.available('BIG-1');

-- two locations with more than a bigint free together: an order of a few
-- units crosses no threshold (the sum before it does not even fit)
SELECT ordersync.set_safety_stock('BIG-1', 'sec-b', 0);
SELECT ordersync.receive_stock('BIG-2', 'sec-a', 9223372036854775807);
SELECT ordersync.receive_stock('BIG-2', 'sec-b', 9223372036854775807);
SELECT ordersync.set_low_stock('BIG-2', 9223372036854775807);
SELECT count(*) > 0 AS skip FROM slot_events('regress_security');
SELECT ordersync.place_order('web', 'sec-big-5', '[{"sku": "BIG-2", "qty": 5, "price": "1.00"}]', allow_split => true) > 0 AS placed;
SELECT type, data->>'location' AS location, data->>'qty' AS qty, data->>'available' AS available
FROM slot_events('regress_security') WHERE type LIKE 'inventory.%';
SELECT ordersync.available('BIG-2');
\echo :LAST_ERROR_SQLSTATE

-- the same SKU hot: buckets of a location at the maximum add up exactly
SELECT ordersync.set_hot('BIG-2', 7);
SELECT location, sum(on_hand) AS on_hand, sum(reserved) AS reserved, count(*) AS buckets
FROM ordersync.stock WHERE sku = 'BIG-2' GROUP BY location ORDER BY 1;
SELECT ordersync.receive_stock('BIG-2', 'sec-b', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_safety_stock('BIG-2', 'sec-b', 9223372036854775807);
SELECT ordersync.place_order('web', 'sec-big-6', '[{"sku": "BIG-2", "qty": 3, "price": "1.00"}]', allow_split => true) > 0 AS placed;
SELECT ordersync.set_hot('BIG-2', 1);
SELECT location, on_hand, reserved, safety FROM ordersync.stock WHERE sku = 'BIG-2' ORDER BY 1;

-- a return that would take on hand past the maximum: OS004, nothing changes
SELECT ordersync.receive_stock('BIG-3', 'sec-a', 10);
SELECT ordersync.place_order('web', 'sec-big-7', '[{"sku": "BIG-3", "qty": 10, "price": "1.00"}]') AS ret \gset
SELECT ordersync.set_status(:ret, 'paid');
SELECT ordersync.set_status(:ret, 'fulfilling');
SELECT ordersync.set_status(:ret, 'shipped');
SELECT ordersync.set_status(:ret, 'delivered');
SELECT ordersync.receive_stock('BIG-3', 'sec-a', 9223372036854775800);
SELECT ordersync.set_status(:ret, 'returned');
\echo :LAST_ERROR_SQLSTATE
SELECT status FROM ordersync.orders WHERE id = :ret;
SELECT on_hand, reserved FROM ordersync.stock WHERE sku = 'BIG-3';

-- figures stored too large before 0.3.0 checked them (here written by the
-- owner): every function refuses with OS004 instead of 22003
SELECT ordersync.receive_stock('BIG-4', 'sec-a', 4);
SELECT ordersync.set_hot('BIG-4', 2);
UPDATE ordersync.stock SET on_hand = 9223372036854775807 WHERE sku = 'BIG-4';
SELECT ordersync.set_hot('BIG-4', 3);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.receive_stock('BIG-4', 'sec-a', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_safety_stock('BIG-4', 'sec-a', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.available('BIG-4');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'sec-big-8', '[{"sku": "BIG-4", "qty": 1, "price": "1.00"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) > 0 AS skip FROM slot_events('regress_security');

-- ---------------------------------------------------------------------------
-- Identifiers: no control or invisible characters, no spaces around
-- ---------------------------------------------------------------------------
SELECT ordersync.receive_stock(E'SEC\t1', 'sec-a', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.receive_stock(E'SEC\u200B1', 'sec-a', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.receive_stock(E'SEC-\u202Eg1', 'sec-a', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.receive_stock(E'\uFEFFSEC-1', 'sec-a', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.receive_stock(E'SEC-1\u0085', 'sec-a', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.receive_stock('SEC-1 ', 'sec-a', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.receive_stock(E'\u00A0SEC-1', 'sec-a', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.receive_stock(E'SEC-1', E'sec-a\n', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.receive_stock('SEC 1/ÄÖÜ-ß', 'sec-a', 10);	-- inner spaces and letters are fine
SELECT ordersync.add_location(E'sec\u2066x');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_channel(E'sec\x7f');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_channel('sec-shop', E'{"PAID\\u200F": "paid"}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_channel('sec-shop', '{"PAID": "paid", "SHIPPED": "shipped"}');
SELECT ordersync.place_order('web', E'W-\u202E1', '[{"sku": "SEC 1/ÄÖÜ-ß", "qty": 1, "price": "1.00"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', ' W-1', '[{"sku": "SEC 1/ÄÖÜ-ß", "qty": 1, "price": "1.00"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order(E'web\u200D', 'W-1', '[{"sku": "SEC 1/ÄÖÜ-ß", "qty": 1, "price": "1.00"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'sec-w-1',
	E'[{"sku": "SEC 1/ÄÖÜ-ß", "qty": 1, "price": "1.00"}, {"sku": "SEC\\u001b[31m", "qty": 1, "price": "1.00"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('sec-shop', 'sec-w-2', '[{"sku": "SEC 1/ÄÖÜ-ß", "qty": 1, "price": "1.00"}]') AS sec_o \gset
SELECT ordersync.set_status(:sec_o, E'paid\u2028');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_channel_status('sec-shop', 'sec-w-2', E'PAID\r');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_channel_status('sec-shop', E'sec-w-2\u2069', 'PAID');
\echo :LAST_ERROR_SQLSTATE
SET ROLE ordersync_app;
UPDATE ordersync.orders SET status = E'paid\u200E' WHERE id = :sec_o;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT status FROM ordersync.orders WHERE id = :sec_o;
SELECT count(*) AS skus FROM ordersync.sku WHERE sku LIKE 'SEC%';

-- the CHECK constraints are the backstop for writes around the API
\set VERBOSITY terse
INSERT INTO ordersync.sku (sku) VALUES (E'SEC\u200B2');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO ordersync.sku (sku) VALUES ('SEC-2 ');
\echo :LAST_ERROR_SQLSTATE
UPDATE ordersync.orders SET external_id = E'sec\tw' WHERE id = :sec_o;
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
SELECT conrelid::regclass AS tbl, conname, convalidated FROM pg_constraint
WHERE conname IN ('sku_plain_text', 'orders_external_id_plain_text') ORDER BY 2;

-- ---------------------------------------------------------------------------
-- The customer object: ordersync.max_customer_bytes, ordersync.max_customer_depth
-- ---------------------------------------------------------------------------
SHOW ordersync.max_customer_bytes;
SHOW ordersync.max_customer_depth;
SELECT name, setting, context FROM pg_settings WHERE name LIKE 'ordersync.max_customer%' ORDER BY 1;
SELECT ordersync.place_order('web', 'sec-c-1', '[{"sku": "SEC 1/ÄÖÜ-ß", "qty": 1, "price": "1.00"}]',
	jsonb_build_object('name', 'Ada', 'note', repeat('x', 16400)));
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'sec-c-2', '[{"sku": "SEC 1/ÄÖÜ-ß", "qty": 1, "price": "1.00"}]',
	'{"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": [1]}}}}}}}}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'sec-c-3', '[{"sku": "SEC 1/ÄÖÜ-ß", "qty": 1, "price": "1.00"}]',
	'{"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}}') > 0 AS eight_levels_fit;
SELECT ordersync.place_order('web', 'sec-c-4', '[{"sku": "SEC 1/ÄÖÜ-ß", "qty": 1, "price": "1.00"}]',
	jsonb_build_object('note', repeat('x', 16384 - 12))) > 0 AS exactly_the_limit_fits;
-- the application cannot raise its own limit; a superuser can
SET ROLE ordersync_app;
SET ordersync.max_customer_bytes = 1000000;
\echo :LAST_ERROR_SQLSTATE
SET ordersync.max_customer_depth = 64;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ordersync.max_customer_bytes = 32768;
SELECT ordersync.place_order('web', 'sec-c-1', '[{"sku": "SEC 1/ÄÖÜ-ß", "qty": 1, "price": "1.00"}]',
	jsonb_build_object('name', 'Ada', 'note', repeat('x', 16400))) > 0 AS placed_with_a_higher_limit;
RESET ordersync.max_customer_bytes;

-- ---------------------------------------------------------------------------
-- Logical messages: PUBLIC cannot forge an ordersync event any more
-- ---------------------------------------------------------------------------
SELECT p.oid::regprocedure AS function, has_function_privilege('public', p.oid, 'EXECUTE') AS public,
	   has_function_privilege('ordersync_app', p.oid, 'EXECUTE') AS app,
	   has_function_privilege('ordersync_admin', p.oid, 'EXECUTE') AS admin,
	   has_function_privilege('ordersync_relay', p.oid, 'EXECUTE') AS relay
FROM pg_proc p WHERE p.proname = 'pg_logical_emit_message' ORDER BY 1::text;
SET ROLE ordersync_app;
SELECT pg_logical_emit_message(true, 'ordersync', '{"type": "order.paid", "subject": "order/1", "data": {}}');
\echo :LAST_ERROR_SQLSTATE
SELECT pg_logical_emit_message(true, 'ordersync', '\x7b7d'::bytea);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- ordersync's own events still flow (LogLogicalMessage from C)
SELECT count(*) > 0 AS skip FROM slot_events('regress_security');
SELECT ordersync.receive_stock('SEC-EV', 'sec-a', 2);
SELECT type, subject FROM slot_events('regress_security');
SELECT 'dropped' FROM pg_drop_replication_slot('regress_security');
