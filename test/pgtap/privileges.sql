-- test/pgtap/privileges.sql — who may do what: the grants of ordersync_app,
-- ordersync_admin, ordersync_relay and PUBLIC as the catalog records them,
-- and the same rules seen by login roles that try.  The login roles are created inside the
-- transaction that run.sh rolls back, so nothing is left in the cluster.

SELECT plan(228);

CREATE ROLE pgtap_priv_app LOGIN IN ROLE ordersync_app;
CREATE ROLE pgtap_priv_admin LOGIN IN ROLE ordersync_admin;
CREATE ROLE pgtap_priv_nobody LOGIN;
CREATE ROLE pgtap_priv_relay LOGIN REPLICATION IN ROLE ordersync_relay;

-- some data to act on (as the superuser)
DO $$
BEGIN
	PERFORM ordersync.add_location('priv-wh', 0);
	PERFORM ordersync.receive_stock('PRIV-1', 'priv-wh', 100);
	PERFORM ordersync.add_channel('priv-shop', '{"PAID": "paid"}');
	PERFORM ordersync.place_order('priv-shop', 'P-1', '[{"sku": "PRIV-1", "qty": 1, "price": "1"}]');
END $$;

-- ---------------------------------------------------------------------------
-- The catalog: schema and tables
-- ---------------------------------------------------------------------------
SELECT schema_privs_are('ordersync', 'ordersync_app', ARRAY['USAGE'], 'ordersync_app has USAGE on schema ordersync (no CREATE)');
SELECT schema_privs_are('ordersync', 'ordersync_admin', ARRAY['USAGE'], 'ordersync_admin has USAGE on schema ordersync (no CREATE)');
SELECT ok(NOT has_schema_privilege('public', 'ordersync', 'USAGE'), 'PUBLIC has no USAGE on schema ordersync');

SELECT table_privs_are('ordersync', 'channel', 'ordersync_app', ARRAY['SELECT'], 'app: SELECT only on channel');
SELECT table_privs_are('ordersync', 'location', 'ordersync_app', ARRAY['SELECT'], 'app: SELECT only on location');
SELECT table_privs_are('ordersync', 'sku', 'ordersync_app', ARRAY['SELECT'], 'app: SELECT only on sku');
SELECT table_privs_are('ordersync', 'stock', 'ordersync_app', ARRAY['SELECT'], 'app: SELECT only on stock');
SELECT table_privs_are('ordersync', 'status', 'ordersync_app', ARRAY['SELECT'], 'app: SELECT only on status');
SELECT table_privs_are('ordersync', 'transition', 'ordersync_app', ARRAY['SELECT'], 'app: SELECT only on transition');
SELECT table_privs_are('ordersync', 'orders', 'ordersync_app', ARRAY['SELECT'], 'app: SELECT only on orders (table level)');
SELECT table_privs_are('ordersync', 'order_line', 'ordersync_app', ARRAY['SELECT'], 'app: SELECT only on order_line');
SELECT table_privs_are('ordersync', 'reservation', 'ordersync_app', ARRAY['SELECT'], 'app: SELECT only on reservation');
SELECT table_privs_are('ordersync', 'history', 'ordersync_app', ARRAY['SELECT'], 'app: SELECT only on history');
SELECT table_privs_are('ordersync', 'sink', 'ordersync_app', ARRAY[]::text[], 'app: nothing on sink');
SELECT table_privs_are('ordersync', 'route', 'ordersync_app', ARRAY[]::text[], 'app: nothing on route');
SELECT table_privs_are('ordersync', 'dead_letter', 'ordersync_app', ARRAY[]::text[], 'app: nothing on dead_letter (events may carry personal data)');

SELECT table_privs_are('ordersync', 'channel', 'ordersync_admin', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE'], 'admin: manages channel');
SELECT table_privs_are('ordersync', 'location', 'ordersync_admin', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE'], 'admin: manages location');
SELECT table_privs_are('ordersync', 'status', 'ordersync_admin', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE'], 'admin: manages status');
SELECT table_privs_are('ordersync', 'transition', 'ordersync_admin', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE'], 'admin: manages transition');
SELECT table_privs_are('ordersync', 'sku', 'ordersync_admin', ARRAY['SELECT'], 'admin: SELECT only on sku');
SELECT table_privs_are('ordersync', 'stock', 'ordersync_admin', ARRAY['SELECT'], 'admin: SELECT only on stock');
SELECT table_privs_are('ordersync', 'orders', 'ordersync_admin', ARRAY['SELECT'], 'admin: SELECT only on orders (table level)');
SELECT table_privs_are('ordersync', 'order_line', 'ordersync_admin', ARRAY['SELECT'], 'admin: SELECT only on order_line');
SELECT table_privs_are('ordersync', 'reservation', 'ordersync_admin', ARRAY['SELECT'], 'admin: SELECT only on reservation');
SELECT table_privs_are('ordersync', 'history', 'ordersync_admin', ARRAY['SELECT'], 'admin: SELECT only on history');
SELECT table_privs_are('ordersync', 'sink', 'ordersync_admin', ARRAY['SELECT'], 'admin: SELECT only on sink (changes go through add_sink/drop_sink)');
SELECT table_privs_are('ordersync', 'dead_letter', 'ordersync_admin', ARRAY['SELECT'], 'admin: SELECT only on dead_letter');
SELECT function_privs_are('ordersync', 'add_sink', ARRAY['text', 'text', 'jsonb'], 'ordersync_admin', ARRAY['EXECUTE'], 'admin: EXECUTE add_sink');
SELECT function_privs_are('ordersync', 'redeliver', ARRAY['bigint'], 'ordersync_admin', ARRAY['EXECUTE'], 'admin: EXECUTE redeliver');
SELECT function_privs_are('ordersync', 'add_sink', ARRAY['text', 'text', 'jsonb'], 'ordersync_app', ARRAY[]::text[], 'app: no EXECUTE on add_sink');
SELECT function_privs_are('ordersync', 'record_dead_letter', ARRAY['text', 'jsonb', 'text', 'integer'], 'ordersync_admin', ARRAY[]::text[],
	'admin: no EXECUTE on record_dead_letter (it could forge a dead letter and redeliver it)');
SELECT table_privs_are('ordersync', 'redelivery', 'ordersync_admin', ARRAY['SELECT'], 'admin: SELECT only on redelivery (redeliver() writes it)');
SELECT table_privs_are('ordersync', 'redelivery', 'ordersync_app', ARRAY[]::text[], 'app: nothing on redelivery');
SELECT table_privs_are('ordersync', 'route', 'ordersync_admin', ARRAY['SELECT'], 'admin: SELECT only on route (changes go through add_route/drop_route)');

-- ---------------------------------------------------------------------------
-- The catalog: ordersync_relay has exactly what ordersyncd needs
-- ---------------------------------------------------------------------------
SELECT schema_privs_are('ordersync', 'ordersync_relay', ARRAY['USAGE'], 'relay: USAGE on schema ordersync (no CREATE)');
SELECT set_eq(
	$$SELECT c.relname::text || ':' || p.priv
	    FROM pg_class c, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p(priv)
	   WHERE c.relnamespace = 'ordersync'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
	     AND has_table_privilege('ordersync_relay', c.oid, p.priv)$$,
	ARRAY['sink:SELECT', 'route:SELECT', 'orders:SELECT', 'channel_inbound:SELECT'],
	'relay: SELECT on sink, route, orders (for --snapshot) and channel_inbound (--inbound), nothing else on any table');
SELECT is_empty(
	$$SELECT c.relname FROM pg_class c
	   WHERE c.relnamespace = 'ordersync'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
	     AND (has_any_column_privilege('ordersync_relay', c.oid, 'INSERT')
	       OR has_any_column_privilege('ordersync_relay', c.oid, 'UPDATE')
	       OR has_any_column_privilege('ordersync_relay', c.oid, 'REFERENCES'))$$,
	'relay: no column privilege to write anything');
SELECT is_empty(
	$$SELECT c.relname FROM pg_class c
	   WHERE c.relnamespace = 'ordersync'::regnamespace AND c.relkind = 'S'
	     AND (has_sequence_privilege('ordersync_relay', c.oid, 'USAGE') OR has_sequence_privilege('ordersync_relay', c.oid, 'SELECT')
	       OR has_sequence_privilege('ordersync_relay', c.oid, 'UPDATE'))$$,
	'relay: nothing on the sequences');
SELECT set_eq(
	$$SELECT oid::regprocedure::text FROM pg_proc WHERE pronamespace = 'ordersync'::regnamespace
	   AND has_function_privilege('ordersync_relay', oid, 'EXECUTE')$$,
	ARRAY['ordersync.relay_config()', 'ordersync.record_dead_letter(text,jsonb,text,integer)',
		  'ordersync.inbox_receive(text,text,text,jsonb,text)', 'ordersync.inbox_apply(integer,integer,integer)',
		  'ordersync.inbox_receive_apply(text,text,text,jsonb,text)'],
	'relay: EXECUTE on relay_config(), record_dead_letter(), inbox_receive(), inbox_apply() and inbox_receive_apply() only');
SELECT is_empty(
	$$SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
	   WHERE m.member = 'ordersync_relay'::regrole$$,
	'relay: member of no other role');
SELECT is_empty(
	$$SELECT p.oid::regprocedure, r.role FROM pg_proc p,
	         unnest(ARRAY['public', 'ordersync_app', 'ordersync_admin', 'ordersync_relay']) r(role)
	   WHERE p.oid IN ('pg_catalog.pg_logical_emit_message(boolean, text, text)'::regprocedure,
	                   'pg_catalog.pg_logical_emit_message(boolean, text, bytea)'::regprocedure)
	     AND has_function_privilege(r.role, p.oid, 'EXECUTE')$$,
	'neither PUBLIC nor app, admin or relay can EXECUTE either pg_logical_emit_message signature');
SELECT is_empty(
	$$SELECT p.oid::regprocedure, r.role FROM pg_proc p,
	         unnest(ARRAY['ordersync_app', 'ordersync_admin', 'ordersync_relay']) r(role)
	   WHERE p.oid IN ('ordersync.check_sink_uri(text, text)'::regprocedure,
	                   'ordersync.check_sink_options(text, text, jsonb, text[])'::regprocedure,
	                   'ordersync.require_sink(text, text)'::regprocedure)
	     AND has_function_privilege(r.role, p.oid, 'EXECUTE')$$,
	'the sink helpers are for add_sink() and friends only');

SELECT is_empty(
	$$SELECT c.relname FROM pg_class c
	   WHERE c.relnamespace = 'ordersync'::regnamespace AND c.relkind IN ('r', 'S')
	     AND (has_table_privilege('public', c.oid, 'SELECT') OR has_table_privilege('public', c.oid, 'INSERT')
	       OR has_table_privilege('public', c.oid, 'UPDATE') OR has_table_privilege('public', c.oid, 'DELETE')
	       OR has_table_privilege('public', c.oid, 'TRUNCATE'))$$,
	'PUBLIC has no privilege on any ordersync table or sequence');
SELECT is_empty(
	$$SELECT c.relname FROM pg_class c
	   WHERE c.relnamespace = 'ordersync'::regnamespace AND c.relkind = 'S'
	     AND (has_sequence_privilege('ordersync_app', c.oid, 'USAGE') OR has_sequence_privilege('ordersync_admin', c.oid, 'USAGE')
	       OR has_sequence_privilege('ordersync_app', c.oid, 'UPDATE') OR has_sequence_privilege('ordersync_admin', c.oid, 'UPDATE'))$$,
	'neither role may advance the identity sequences');

SELECT column_privs_are('ordersync', 'orders', 'status', 'ordersync_app', ARRAY['SELECT', 'UPDATE'], 'app: may UPDATE orders.status');
SELECT column_privs_are('ordersync', 'orders', 'status', 'ordersync_admin', ARRAY['SELECT', 'UPDATE'], 'admin: may UPDATE orders.status');
SELECT is_empty(
	$$SELECT a.attname FROM pg_attribute a
	   WHERE a.attrelid = 'ordersync.orders'::regclass AND a.attnum > 0 AND NOT a.attisdropped
	     AND a.attname <> 'status'
	     AND (has_column_privilege('ordersync_app', a.attrelid, a.attnum, 'UPDATE')
	       OR has_column_privilege('ordersync_admin', a.attrelid, a.attnum, 'UPDATE')
	       OR has_column_privilege('ordersync_app', a.attrelid, a.attnum, 'INSERT')
	       OR has_column_privilege('ordersync_admin', a.attrelid, a.attnum, 'INSERT'))$$,
	'no other column of orders may be inserted or updated by app or admin');

-- ---------------------------------------------------------------------------
-- The catalog: functions
-- ---------------------------------------------------------------------------
SELECT function_privs_are('ordersync', 'place_order', ARRAY['text', 'text', 'jsonb', 'jsonb', 'boolean'], 'ordersync_app', ARRAY['EXECUTE'], 'app: EXECUTE place_order');
SELECT function_privs_are('ordersync', 'set_status', ARRAY['bigint', 'text', 'text'], 'ordersync_app', ARRAY['EXECUTE'], 'app: EXECUTE set_status');
SELECT function_privs_are('ordersync', 'available', ARRAY['text'], 'ordersync_app', ARRAY['EXECUTE'], 'app: EXECUTE available');
SELECT function_privs_are('ordersync', 'receive_stock', ARRAY['text', 'text', 'bigint'], 'ordersync_app', ARRAY['EXECUTE'], 'app: EXECUTE receive_stock');
SELECT function_privs_are('ordersync', 'expire_reservations', ARRAY[]::name[], 'ordersync_app', ARRAY['EXECUTE'], 'app: EXECUTE expire_reservations');
SELECT function_privs_are('ordersync', 'set_channel_status', ARRAY['text', 'text', 'text', 'text'], 'ordersync_app', ARRAY['EXECUTE'], 'app: EXECUTE set_channel_status');
SELECT function_privs_are('ordersync', 'add_location', ARRAY['text', 'integer'], 'ordersync_app', ARRAY[]::name[], 'app: no EXECUTE on add_location');
SELECT function_privs_are('ordersync', 'add_channel', ARRAY['text', 'jsonb'], 'ordersync_app', ARRAY[]::name[], 'app: no EXECUTE on add_channel');
SELECT function_privs_are('ordersync', 'set_safety_stock', ARRAY['text', 'text', 'bigint'], 'ordersync_app', ARRAY[]::name[], 'app: no EXECUTE on set_safety_stock');
SELECT function_privs_are('ordersync', 'set_hot', ARRAY['text', 'integer'], 'ordersync_app', ARRAY[]::name[], 'app: no EXECUTE on set_hot');
SELECT function_privs_are('ordersync', 'set_low_stock', ARRAY['text', 'bigint'], 'ordersync_app', ARRAY[]::name[], 'app: no EXECUTE on set_low_stock');

SELECT function_privs_are('ordersync', 'place_order', ARRAY['text', 'text', 'jsonb', 'jsonb', 'boolean'], 'ordersync_admin', ARRAY['EXECUTE'], 'admin: EXECUTE place_order');
SELECT function_privs_are('ordersync', 'set_status', ARRAY['bigint', 'text', 'text'], 'ordersync_admin', ARRAY['EXECUTE'], 'admin: EXECUTE set_status');
SELECT function_privs_are('ordersync', 'available', ARRAY['text'], 'ordersync_admin', ARRAY['EXECUTE'], 'admin: EXECUTE available');
SELECT function_privs_are('ordersync', 'receive_stock', ARRAY['text', 'text', 'bigint'], 'ordersync_admin', ARRAY['EXECUTE'], 'admin: EXECUTE receive_stock');
SELECT function_privs_are('ordersync', 'expire_reservations', ARRAY[]::name[], 'ordersync_admin', ARRAY['EXECUTE'], 'admin: EXECUTE expire_reservations');
SELECT function_privs_are('ordersync', 'set_channel_status', ARRAY['text', 'text', 'text', 'text'], 'ordersync_admin', ARRAY['EXECUTE'], 'admin: EXECUTE set_channel_status');
SELECT function_privs_are('ordersync', 'add_location', ARRAY['text', 'integer'], 'ordersync_admin', ARRAY['EXECUTE'], 'admin: EXECUTE add_location');
SELECT function_privs_are('ordersync', 'add_channel', ARRAY['text', 'jsonb'], 'ordersync_admin', ARRAY['EXECUTE'], 'admin: EXECUTE add_channel');
SELECT function_privs_are('ordersync', 'set_safety_stock', ARRAY['text', 'text', 'bigint'], 'ordersync_admin', ARRAY['EXECUTE'], 'admin: EXECUTE set_safety_stock');
SELECT function_privs_are('ordersync', 'set_hot', ARRAY['text', 'integer'], 'ordersync_admin', ARRAY['EXECUTE'], 'admin: EXECUTE set_hot');
SELECT function_privs_are('ordersync', 'set_low_stock', ARRAY['text', 'bigint'], 'ordersync_admin', ARRAY['EXECUTE'], 'admin: EXECUTE set_low_stock');

SELECT is_empty(
	$$SELECT oid::regprocedure FROM pg_proc WHERE pronamespace = 'ordersync'::regnamespace
	   AND has_function_privilege('public', oid, 'EXECUTE')$$,
	'PUBLIC has no EXECUTE on any ordersync function');
SELECT is_empty(
	$$SELECT oid::regprocedure FROM pg_proc WHERE pronamespace = 'ordersync'::regnamespace
	   AND prorettype = 'trigger'::regtype
	   AND (has_function_privilege('ordersync_app', oid, 'EXECUTE') OR has_function_privilege('ordersync_admin', oid, 'EXECUTE'))$$,
	'neither role may EXECUTE the trigger functions directly');

-- ---------------------------------------------------------------------------
-- A login role with ordersync_app, trying
-- ---------------------------------------------------------------------------
SET ROLE pgtap_priv_app;
SELECT is(current_user, 'pgtap_priv_app', 'acting as an application login role');

SELECT lives_ok('SELECT * FROM ordersync.channel', 'app: can SELECT channel');
SELECT lives_ok('SELECT * FROM ordersync.location', 'app: can SELECT location');
SELECT lives_ok('SELECT * FROM ordersync.sku', 'app: can SELECT sku');
SELECT lives_ok('SELECT * FROM ordersync.stock', 'app: can SELECT stock');
SELECT lives_ok('SELECT * FROM ordersync.status', 'app: can SELECT status');
SELECT lives_ok('SELECT * FROM ordersync.transition', 'app: can SELECT transition');
SELECT lives_ok('SELECT * FROM ordersync.orders', 'app: can SELECT orders');
SELECT lives_ok('SELECT * FROM ordersync.order_line', 'app: can SELECT order_line');
SELECT lives_ok('SELECT * FROM ordersync.reservation', 'app: can SELECT reservation');
SELECT lives_ok('SELECT * FROM ordersync.history', 'app: can SELECT history');

SELECT ordersync.place_order('web', 'priv-app-1', '[{"sku": "PRIV-1", "qty": 2, "price": "5"}]') AS app_o1 \gset
SELECT ok(:app_o1 > 0, 'app: can place_order');
SELECT is(ordersync.available('PRIV-1'), 97::bigint, 'app: can call available');
SELECT is(ordersync.receive_stock('PRIV-1', 'priv-wh', 1), 101::bigint, 'app: can receive_stock');
SELECT lives_ok(format($$SELECT ordersync.set_status(%s, 'paid')$$, :app_o1), 'app: can set_status');
SELECT is(ordersync.set_channel_status('priv-shop', 'P-1', 'PAID'),
	(SELECT id FROM ordersync.orders WHERE channel = 'priv-shop' AND external_id = 'P-1'),
	'app: can set_channel_status');
SELECT is(ordersync.expire_reservations(), 0, 'app: can expire_reservations');

-- a plain UPDATE of orders.status is allowed, and checked by the state machine
SELECT lives_ok(format($$UPDATE ordersync.orders SET status = 'fulfilling' WHERE id = %s$$, :app_o1),
	'app: can UPDATE orders.status along a transition');
SELECT throws_ok(format($$UPDATE ordersync.orders SET status = 'completed' WHERE id = %s$$, :app_o1),
	'OS002', NULL, 'app: an UPDATE of orders.status off the graph fails with OS002');
SELECT is((SELECT status FROM ordersync.orders WHERE id = :app_o1), 'fulfilling', 'app: the refused UPDATE changed nothing');
SELECT lives_ok(format($$UPDATE ordersync.orders SET status = 'shipped' WHERE id = %s$$, :app_o1),
	'app: an UPDATE to shipped works');
SELECT results_eq($$SELECT on_hand, reserved FROM ordersync.stock WHERE sku = 'PRIV-1'$$,
	$$VALUES (99::bigint, 1::bigint)$$, 'app: the UPDATE applied the transition''s effect (stock consumed)');

-- ... but nothing else
SELECT throws_ok(format($$UPDATE ordersync.orders SET total = 0 WHERE id = %s$$, :app_o1), '42501', NULL, 'app: cannot UPDATE orders.total');
SELECT throws_ok(format($$UPDATE ordersync.orders SET expires_at = now() WHERE id = %s$$, :app_o1), '42501', NULL, 'app: cannot UPDATE orders.expires_at');
SELECT throws_ok(format($$UPDATE ordersync.orders SET status = 'delivered', updated_at = now() WHERE id = %s$$, :app_o1), '42501', NULL, 'app: cannot UPDATE status together with another column');
SELECT throws_ok($$INSERT INTO ordersync.orders (channel, external_id, lines, total) VALUES ('web', 'priv-x', '[]', 0)$$, '42501', NULL, 'app: cannot INSERT orders');
SELECT throws_ok($$DELETE FROM ordersync.orders$$, '42501', NULL, 'app: cannot DELETE orders');
SELECT throws_ok($$INSERT INTO ordersync.stock (sku, location, on_hand) VALUES ('PRIV-1', 'pgtap-none', 1)$$, '42501', NULL, 'app: cannot INSERT stock');
SELECT throws_ok($$UPDATE ordersync.stock SET on_hand = on_hand + 1000$$, '42501', NULL, 'app: cannot UPDATE stock');
SELECT throws_ok($$DELETE FROM ordersync.stock$$, '42501', NULL, 'app: cannot DELETE stock');
SELECT throws_ok($$TRUNCATE ordersync.stock$$, '42501', NULL, 'app: cannot TRUNCATE stock');
SELECT throws_ok($$SELECT * FROM ordersync.stock FOR UPDATE$$, '42501', NULL, 'app: cannot lock stock rows (SELECT ... FOR UPDATE)');
SELECT throws_ok($$INSERT INTO ordersync.reservation (order_id, line_no, sku, location, qty) VALUES (1, 1, 'PRIV-1', 'priv-wh', 1)$$, '42501', NULL, 'app: cannot INSERT reservation');
SELECT throws_ok($$UPDATE ordersync.reservation SET state = 'released'$$, '42501', NULL, 'app: cannot UPDATE reservation');
SELECT throws_ok($$DELETE FROM ordersync.reservation$$, '42501', NULL, 'app: cannot DELETE reservation');
SELECT throws_ok($$INSERT INTO ordersync.history (action, actor, role) VALUES ('receive', 'x', 'postgres')$$, '42501', NULL, 'app: cannot INSERT history');
SELECT throws_ok($$UPDATE ordersync.history SET reason = 'x'$$, '42501', NULL, 'app: cannot UPDATE history');
SELECT throws_ok($$DELETE FROM ordersync.history$$, '42501', NULL, 'app: cannot DELETE history');
SELECT throws_ok($$TRUNCATE ordersync.history$$, '42501', NULL, 'app: cannot TRUNCATE history');
SELECT throws_ok($$INSERT INTO ordersync.order_line (order_id, line_no, sku, qty, price) VALUES (1, 9, 'PRIV-1', 1, 0)$$, '42501', NULL, 'app: cannot INSERT order_line');
SELECT throws_ok($$UPDATE ordersync.order_line SET qty = 1000$$, '42501', NULL, 'app: cannot UPDATE order_line');
SELECT throws_ok($$DELETE FROM ordersync.order_line$$, '42501', NULL, 'app: cannot DELETE order_line');
SELECT throws_ok($$INSERT INTO ordersync.transition (from_status, to_status) VALUES ('pending', 'shipped')$$, '42501', NULL, 'app: cannot INSERT transition');
SELECT throws_ok($$UPDATE ordersync.transition SET effect = 'none'$$, '42501', NULL, 'app: cannot UPDATE transition');
SELECT throws_ok($$DELETE FROM ordersync.transition$$, '42501', NULL, 'app: cannot DELETE transition');
SELECT throws_ok($$INSERT INTO ordersync.status (name) VALUES ('priv_status')$$, '42501', NULL, 'app: cannot INSERT status');
SELECT throws_ok($$INSERT INTO ordersync.channel (id) VALUES ('priv-ch')$$, '42501', NULL, 'app: cannot INSERT channel');
SELECT throws_ok($$UPDATE ordersync.channel SET status_map = '{}'$$, '42501', NULL, 'app: cannot UPDATE channel');
SELECT throws_ok($$INSERT INTO ordersync.location (id) VALUES ('priv-loc')$$, '42501', NULL, 'app: cannot INSERT location');
SELECT throws_ok($$INSERT INTO ordersync.sku (sku) VALUES ('PRIV-NEW')$$, '42501', NULL, 'app: cannot INSERT sku');
SELECT throws_ok($$SELECT ordersync.add_location('priv-loc')$$, '42501', NULL, 'app: cannot call add_location');
SELECT throws_ok($$SELECT ordersync.add_channel('priv-ch')$$, '42501', NULL, 'app: cannot call add_channel');
SELECT throws_ok($$SELECT ordersync.set_safety_stock('PRIV-1', 'priv-wh', 1)$$, '42501', NULL, 'app: cannot call set_safety_stock');
SELECT throws_ok($$SELECT ordersync.set_hot('PRIV-1', 4)$$, '42501', NULL, 'app: cannot call set_hot');
SELECT throws_ok($$SELECT ordersync.set_low_stock('PRIV-1', 4)$$, '42501', NULL, 'app: cannot call set_low_stock');
SELECT throws_ok($$SELECT nextval('ordersync.orders_id_seq')$$, '42501', NULL, 'app: cannot advance the orders id sequence');
-- the state machine cannot be switched off
SELECT throws_ok($$ALTER TABLE ordersync.orders DISABLE TRIGGER orders_status$$, '42501', NULL, 'app: cannot disable the status trigger');
SELECT throws_ok($$SET session_replication_role = replica$$, '42501', NULL, 'app: cannot turn triggers off with session_replication_role');
SELECT throws_ok($$CREATE TABLE ordersync.priv_evil (x int)$$, '42501', NULL, 'app: cannot create objects in schema ordersync');
-- compliance (0.5.0): erasure and export through the API, nothing more
SELECT ordersync.place_order('web', 'priv-gdpr-1', '[{"sku": "PRIV-1", "qty": 1, "price": "5"}]',
	'{"email": "victim@example.com"}') AS gdpr_victim \gset
SELECT ordersync.place_order('web', 'priv-gdpr-2', '[{"sku": "PRIV-1", "qty": 1, "price": "5"}]',
	'{"email": "me@example.com"}') AS gdpr_me \gset
SELECT throws_ok($$SELECT ordersync.forget_customer('{"customer": {"email": {"$ne": ""}}}', 'x', true)$$, 'OS031', NULL,
	'app: forget_customer takes no operator as a value (no "everyone")');
SELECT throws_ok($$SELECT ordersync.customer_data('{"customer": {}}')$$, 'OS031', NULL,
	'app: customer_data refuses an empty selector (no "everyone")');
SELECT is(jsonb_array_length(ordersync.customer_data('{"customer": {"email": "%"}}') -> 'orders'), 0,
	'app: customer_data matches values, not patterns');
SELECT is(ordersync.forget_customer('{"customer": {"email": "me@example.com"}}', 'my request', true), 1,
	'app: forget_customer erases the orders it names');
SELECT is((SELECT customer FROM ordersync.orders WHERE id = :gdpr_victim), '{"email": "victim@example.com"}'::jsonb,
	'app: and nobody else''s');
SELECT throws_ok(format($$SELECT ordersync.compliance_record('status', %s, 'x', 'order.paid', '{}')$$, :gdpr_victim),
	'42501', NULL, 'app: cannot write history rows or events through compliance_record');
SELECT throws_ok(format($$SELECT ordersync.purge_orders(ARRAY[%s]::bigint[], 'x')$$, :gdpr_victim), '42501', NULL, 'app: cannot purge an order');
SELECT throws_ok($$SELECT ordersync.set_retention('eu', '0 s', '0 s')$$, '42501', NULL, 'app: cannot set a retention rule');
SELECT throws_ok(format($$SELECT ordersync.legal_hold(%s, 'x')$$, :gdpr_victim), '42501', NULL, 'app: cannot put a legal hold');
SELECT throws_ok($$UPDATE ordersync.orders SET customer = '{}'$$, '42501', NULL, 'app: cannot UPDATE orders.customer');
SELECT throws_ok($$INSERT INTO ordersync.retention (market, updated_by) VALUES ('eu', 'x')$$, '42501', NULL, 'app: cannot write retention rules');
SELECT throws_ok($$UPDATE ordersync.history_seal SET sealed_from = 0$$, '42501', NULL, 'app: cannot move the seal of the history');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- A login role with ordersync_admin, trying
-- ---------------------------------------------------------------------------
SET ROLE pgtap_priv_admin;
SELECT is(current_user, 'pgtap_priv_admin', 'acting as an admin login role');

SELECT lives_ok($$INSERT INTO ordersync.channel (id, status_map) VALUES ('priv-ch', '{}')$$, 'admin: can INSERT channel');
SELECT lives_ok($$UPDATE ordersync.channel SET status_map = '{"OK": "paid"}' WHERE id = 'priv-ch'$$, 'admin: can UPDATE channel');
SELECT lives_ok($$DELETE FROM ordersync.channel WHERE id = 'priv-ch'$$, 'admin: can DELETE channel');
SELECT lives_ok($$INSERT INTO ordersync.location (id, priority) VALUES ('priv-loc', 1)$$, 'admin: can INSERT location');
SELECT lives_ok($$UPDATE ordersync.location SET priority = 2 WHERE id = 'priv-loc'$$, 'admin: can UPDATE location');
SELECT lives_ok($$DELETE FROM ordersync.location WHERE id = 'priv-loc'$$, 'admin: can DELETE location');
SELECT lives_ok($$INSERT INTO ordersync.status (name, open) VALUES ('priv_hold', true)$$, 'admin: can INSERT status');
SELECT lives_ok($$UPDATE ordersync.status SET open = false WHERE name = 'priv_hold'$$, 'admin: can UPDATE status');
SELECT lives_ok($$INSERT INTO ordersync.transition (from_status, to_status) VALUES ('paid', 'priv_hold')$$, 'admin: can INSERT transition');
SELECT lives_ok($$UPDATE ordersync.transition SET effect = 'firm' WHERE from_status = 'paid' AND to_status = 'priv_hold'$$, 'admin: can UPDATE transition');
SELECT lives_ok($$DELETE FROM ordersync.transition WHERE from_status = 'paid' AND to_status = 'priv_hold'$$, 'admin: can DELETE transition');
SELECT lives_ok($$DELETE FROM ordersync.status WHERE name = 'priv_hold'$$, 'admin: can DELETE status');
SELECT lives_ok($$SELECT ordersync.add_location('priv-loc2', 3)$$, 'admin: can call add_location');
SELECT lives_ok($$SELECT ordersync.add_channel('priv-ch2', '{"DONE": "completed"}')$$, 'admin: can call add_channel');
SELECT lives_ok($$SELECT ordersync.set_safety_stock('PRIV-1', 'priv-wh', 3)$$, 'admin: can call set_safety_stock');
SELECT lives_ok($$SELECT ordersync.set_hot('PRIV-1', 2)$$, 'admin: can call set_hot');
SELECT lives_ok($$SELECT ordersync.set_low_stock('PRIV-1', 10)$$, 'admin: can call set_low_stock');
SELECT is(ordersync.receive_stock('PRIV-1', 'priv-loc2', 5), 5::bigint, 'admin: can call receive_stock');
SELECT ordersync.place_order('web', 'priv-admin-1', '[{"sku": "PRIV-1", "qty": 1, "price": "5"}]') AS adm_o1 \gset
SELECT ok(:adm_o1 > 0, 'admin: can call place_order');
SELECT lives_ok(format($$UPDATE ordersync.orders SET status = 'cancelled' WHERE id = %s$$, :adm_o1), 'admin: can UPDATE orders.status along a transition');
SELECT throws_ok(format($$UPDATE ordersync.orders SET status = 'paid' WHERE id = %s$$, :adm_o1), 'OS002', NULL, 'admin: an UPDATE of orders.status off the graph fails with OS002');

SELECT throws_ok($$INSERT INTO ordersync.stock (sku, location, on_hand) VALUES ('PRIV-1', 'priv-wh', 1)$$, '42501', NULL, 'admin: cannot INSERT stock');
SELECT throws_ok($$UPDATE ordersync.stock SET on_hand = on_hand + 1000$$, '42501', NULL, 'admin: cannot UPDATE stock');
SELECT throws_ok($$DELETE FROM ordersync.stock$$, '42501', NULL, 'admin: cannot DELETE stock');
SELECT throws_ok($$INSERT INTO ordersync.history (action, actor, role) VALUES ('receive', 'x', 'postgres')$$, '42501', NULL, 'admin: cannot INSERT history');
SELECT throws_ok($$UPDATE ordersync.history SET reason = 'x'$$, '42501', NULL, 'admin: cannot UPDATE history');
SELECT throws_ok($$DELETE FROM ordersync.history$$, '42501', NULL, 'admin: cannot DELETE history');
SELECT throws_ok($$TRUNCATE ordersync.history$$, '42501', NULL, 'admin: cannot TRUNCATE history');
SELECT throws_ok($$UPDATE ordersync.reservation SET state = 'released'$$, '42501', NULL, 'admin: cannot UPDATE reservation');
SELECT throws_ok($$INSERT INTO ordersync.order_line (order_id, line_no, sku, qty, price) VALUES (1, 9, 'PRIV-1', 1, 0)$$, '42501', NULL, 'admin: cannot INSERT order_line');
SELECT throws_ok($$INSERT INTO ordersync.orders (channel, external_id, lines, total) VALUES ('web', 'priv-y', '[]', 0)$$, '42501', NULL, 'admin: cannot INSERT orders');
SELECT throws_ok($$UPDATE ordersync.orders SET total = 0$$, '42501', NULL, 'admin: cannot UPDATE orders.total');
SELECT throws_ok($$DELETE FROM ordersync.orders$$, '42501', NULL, 'admin: cannot DELETE orders');
SELECT throws_ok($$INSERT INTO ordersync.sku (sku) VALUES ('PRIV-NEW')$$, '42501', NULL, 'admin: cannot INSERT sku');
SELECT throws_ok($$ALTER TABLE ordersync.history DISABLE TRIGGER history_append_only$$, '42501', NULL, 'admin: cannot disable the append-only trigger');
RESET ROLE;

-- history is append-only even for an admin who was granted more than the
-- extension grants: the trigger, not only the privileges, refuses
GRANT UPDATE, DELETE, TRUNCATE ON ordersync.history TO pgtap_priv_admin;
SET ROLE pgtap_priv_admin;
SELECT throws_ok($$UPDATE ordersync.history SET reason = 'x'$$, 'OS005', NULL, 'admin granted UPDATE on history: still OS005');
SELECT throws_ok($$DELETE FROM ordersync.history$$, 'OS005', NULL, 'admin granted DELETE on history: still OS005');
SELECT throws_ok($$TRUNCATE ordersync.history$$, 'OS005', NULL, 'admin granted TRUNCATE on history: still OS005');
RESET ROLE;
REVOKE UPDATE, DELETE, TRUNCATE ON ordersync.history FROM pgtap_priv_admin;

-- ---------------------------------------------------------------------------
-- A login role with neither role (PUBLIC), trying
-- ---------------------------------------------------------------------------
SET ROLE pgtap_priv_nobody;
SELECT is(current_user, 'pgtap_priv_nobody', 'acting as a login role without ordersync roles');
SELECT throws_ok($$SELECT * FROM ordersync.orders$$, '42501', NULL, 'PUBLIC: cannot SELECT orders');
SELECT throws_ok($$SELECT * FROM ordersync.stock$$, '42501', NULL, 'PUBLIC: cannot SELECT stock');
SELECT throws_ok($$SELECT * FROM ordersync.history$$, '42501', NULL, 'PUBLIC: cannot SELECT history');
SELECT throws_ok($$SELECT ordersync.place_order('web', 'priv-z', '[{"sku": "PRIV-1", "qty": 1, "price": "5"}]')$$, '42501', NULL, 'PUBLIC: cannot call place_order');
SELECT throws_ok($$SELECT ordersync.available('PRIV-1')$$, '42501', NULL, 'PUBLIC: cannot call available');
SELECT throws_ok($$SELECT ordersync.receive_stock('PRIV-1', 'priv-wh', 1)$$, '42501', NULL, 'PUBLIC: cannot call receive_stock');
SELECT throws_ok($$SELECT ordersync.set_status(1, 'cancelled')$$, '42501', NULL, 'PUBLIC: cannot call set_status');
SELECT throws_ok($$SELECT ordersync.set_channel_status('priv-shop', 'P-1', 'PAID')$$, '42501', NULL, 'PUBLIC: cannot call set_channel_status');
SELECT throws_ok($$SELECT ordersync.expire_reservations()$$, '42501', NULL, 'PUBLIC: cannot call expire_reservations');
SELECT throws_ok($$UPDATE ordersync.orders SET status = 'cancelled'$$, '42501', NULL, 'PUBLIC: cannot UPDATE orders.status');
-- ... and cannot forge an event; no role but a superuser can
SELECT throws_ok($$SELECT pg_logical_emit_message(true, 'ordersync', '{"type": "order.paid", "subject": "order/1", "data": {}}')$$,
	'42501', NULL, 'PUBLIC: cannot call pg_logical_emit_message(boolean, text, text)');
SELECT throws_ok($$SELECT pg_logical_emit_message(true, 'ordersync', '\x7b7d'::bytea)$$,
	'42501', NULL, 'PUBLIC: cannot call pg_logical_emit_message(boolean, text, bytea)');
SELECT throws_ok($$SELECT pg_logical_emit_message(false, 'ordersync', 'x')$$,
	'42501', NULL, 'PUBLIC: cannot write a non-transactional message either');
RESET ROLE;
SET ROLE pgtap_priv_app;
SELECT throws_ok($$SELECT pg_logical_emit_message(true, 'ordersync', '{"type": "relay.config", "subject": "relay/config", "data": {}}')$$,
	'42501', NULL, 'app: cannot call pg_logical_emit_message');
RESET ROLE;
SET ROLE pgtap_priv_admin;
SELECT throws_ok($$SELECT pg_logical_emit_message(true, 'ordersync', '{"type": "relay.redeliver", "subject": "order/1", "data": {}}')$$,
	'42501', NULL, 'admin: cannot call pg_logical_emit_message');
SELECT throws_ok($$SELECT ordersync.record_dead_letter('priv-hook', '{"id": "0/1/1", "type": "ordersync.order.paid", "subject": "order/1"}', 'forged', 1)$$,
	'42501', NULL, 'admin: cannot write a dead letter (and so cannot redeliver a forged event)');
SELECT lives_ok($$SELECT * FROM ordersync.redelivery$$, 'admin: can SELECT redelivery');
SELECT throws_ok($$INSERT INTO ordersync.redelivery (dead_letter_id, sink, event) VALUES (1, 'priv-hook', '{}')$$,
	'42501', NULL, 'admin: cannot INSERT redelivery');
SELECT throws_ok($$INSERT INTO ordersync.sink (name, uri) VALUES ('priv-evil', 'https://evil.example.com/')$$,
	'42501', NULL, 'admin: cannot INSERT sink directly (add_sink checks it)');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- The relay's login role (CREATE ROLE ... LOGIN REPLICATION IN ROLE
-- ordersync_relay), trying
-- ---------------------------------------------------------------------------
SELECT ordersync.add_sink('priv-hook', 'https://hooks.example.com/orders', '{"secret_env": "PRIV_HOOK_SECRET"}');
SELECT ordersync.add_route('priv-hook', 'order.*');
SET ROLE pgtap_priv_relay;
SELECT is(current_user, 'pgtap_priv_relay', 'acting as the relay''s login role');
SELECT is((SELECT count(*)::int FROM ordersync.sink WHERE name = 'priv-hook'), 1, 'relay: can SELECT sink');
SELECT is((SELECT count(*)::int FROM ordersync.route WHERE sink = 'priv-hook'), 1, 'relay: can SELECT route');
SELECT is(ordersync.relay_config() -> 'routes' -> 0 ->> 'pattern', 'order.*', 'relay: can call relay_config()');
-- the query of ordersyncd --snapshot (src/relay/snapshot.c)
SELECT lives_ok($$SELECT o.id::text, pg_catalog.json_build_object(
	'order_id', o.id, 'channel', o.channel, 'external_id', o.external_id,
	'status', o.status, 'total', pg_catalog.round(o.total, 2)::text,
	'lines', o.lines, 'customer', o.customer,
	'created_at', o.created_at, 'expires_at', o.expires_at)::text
	FROM ordersync.orders o
	WHERE NOT (o.status::text = ANY (pg_catalog.string_to_array('completed,cancelled,expired,refunded', ',')))
	ORDER BY o.id$$, 'relay: can run the --snapshot query on orders');
SELECT ok(ordersync.record_dead_letter('priv-hook', '{"id": "0/1/1", "type": "ordersync.order.paid", "subject": "order/1"}',
	'HTTP 500', 25) > 0, 'relay: can write a dead letter without SELECT on dead_letter');
SELECT throws_ok($$SELECT * FROM ordersync.dead_letter$$, '42501', NULL, 'relay: cannot SELECT dead_letter (it does not need it)');
SELECT throws_ok($$SELECT * FROM ordersync.redelivery$$, '42501', NULL, 'relay: cannot SELECT redelivery (it reads the inserts from the stream)');
SELECT throws_ok($$SELECT ordersync.redeliver(1)$$, '42501', NULL, 'relay: cannot call redeliver');
SELECT throws_ok($$INSERT INTO ordersync.redelivery (dead_letter_id, sink, event) VALUES (1, 'priv-hook', '{}')$$, '42501', NULL, 'relay: cannot INSERT redelivery');
SELECT throws_ok($$INSERT INTO ordersync.sink (name, uri) VALUES ('priv-evil', 'https://evil.example.com/')$$, '42501', NULL, 'relay: cannot INSERT sink');
SELECT throws_ok($$UPDATE ordersync.sink SET uri = 'https://evil.example.com/'$$, '42501', NULL, 'relay: cannot UPDATE sink');
SELECT throws_ok($$DELETE FROM ordersync.route$$, '42501', NULL, 'relay: cannot DELETE route');
SELECT throws_ok($$SELECT ordersync.add_sink('priv-evil', 'https://evil.example.com/')$$, '42501', NULL, 'relay: cannot call add_sink');
SELECT throws_ok($$SELECT ordersync.add_route('priv-hook', '*')$$, '42501', NULL, 'relay: cannot call add_route');
SELECT throws_ok($$SELECT ordersync.place_order('web', 'priv-relay', '[{"sku": "PRIV-1", "qty": 1, "price": "5"}]')$$, '42501', NULL, 'relay: cannot call place_order');
SELECT throws_ok($$SELECT ordersync.receive_stock('PRIV-1', 'priv-wh', 1)$$, '42501', NULL, 'relay: cannot call receive_stock');
SELECT throws_ok($$SELECT ordersync.set_status(1, 'cancelled')$$, '42501', NULL, 'relay: cannot call set_status');
SELECT throws_ok($$INSERT INTO ordersync.orders (channel, external_id, lines, total) VALUES ('web', 'priv-r', '[]', 0)$$, '42501', NULL, 'relay: cannot INSERT orders');
SELECT throws_ok($$UPDATE ordersync.orders SET status = 'cancelled'$$, '42501', NULL, 'relay: cannot UPDATE orders.status');
SELECT throws_ok($$SELECT * FROM ordersync.stock$$, '42501', NULL, 'relay: cannot SELECT stock');
SELECT throws_ok($$SELECT * FROM ordersync.history$$, '42501', NULL, 'relay: cannot SELECT history');
SELECT throws_ok($$SELECT pg_logical_emit_message(true, 'ordersync', '{"type": "order.paid", "subject": "order/1", "data": {}}')$$,
	'42501', NULL, 'relay: cannot call pg_logical_emit_message');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- A login role that is both app and admin gets the union, nothing more
-- ---------------------------------------------------------------------------
GRANT ordersync_app TO pgtap_priv_admin;
SET ROLE pgtap_priv_admin;
SELECT throws_ok($$UPDATE ordersync.stock SET on_hand = 0$$, '42501', NULL, 'app + admin: still cannot UPDATE stock');
SELECT throws_ok($$INSERT INTO ordersync.history (action, actor, role) VALUES ('receive', 'x', 'postgres')$$, '42501', NULL, 'app + admin: still cannot INSERT history');
RESET ROLE;

SELECT is(current_user, session_user, 'back to the superuser');

SELECT * FROM finish();
