-- test/pgtap/upgrade.sql — the upgrade path ends where a new installation
-- starts: CREATE EXTENSION ordersync VERSION '0.1.0' followed by ALTER
-- EXTENSION ordersync UPDATE gives the same objects, definitions,
-- privileges, comments and pg_dump settings as CREATE EXTENSION ordersync.
-- Runs as a superuser inside a transaction that run.sh rolls back, so the
-- extension dropped and re-created here comes back as it was.

SELECT plan(14);

-- Everything about the extension that pg_dump or a client could tell
-- apart, without OIDs: one line per fact.
CREATE FUNCTION pg_temp.catalog() RETURNS SETOF text LANGUAGE sql AS $$
	WITH ext AS (SELECT oid, extversion, extconfig, extcondition FROM pg_extension WHERE extname = 'ordersync'),
	member AS (
		SELECT d.classid, d.objid, d.objsubid FROM pg_depend d, ext
		 WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
	rel AS (
		SELECT c.oid, c.relname::text AS name, c.relkind, c.relacl, c.reloptions FROM pg_class c
		 WHERE c.relnamespace = 'ordersync'::regnamespace)
	SELECT 'version ' || extversion FROM ext
	UNION ALL
	SELECT 'member ' || pg_describe_object(classid, objid, objsubid) FROM member
	UNION ALL
	SELECT 'config ' || c::regclass::text || ' ' || coalesce(w, '')
	  FROM ext, unnest(extconfig, extcondition) AS u(c, w)
	UNION ALL
	SELECT format('relation %s %s acl=%s options=%s', name, relkind, relacl, reloptions) FROM rel
	UNION ALL
	SELECT format('column %s.%s %s notnull=%s default=%s identity=%s storage=%s acl=%s', r.name, a.attname,
				  format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid),
				  a.attidentity, a.attstorage, a.attacl)
	  FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
	  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	UNION ALL
	SELECT format('constraint %s.%s %s validated=%s', r.name, con.conname, pg_get_constraintdef(con.oid), con.convalidated)
	  FROM rel r JOIN pg_constraint con ON con.conrelid = r.oid
	UNION ALL
	SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM rel r JOIN pg_index i ON i.indrelid = r.oid
	UNION ALL
	SELECT format('trigger %s enabled=%s', pg_get_triggerdef(t.oid), t.tgenabled)
	  FROM rel r JOIN pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
	UNION ALL
	SELECT format('function %s secdef=%s config=%s volatile=%s strict=%s acl=%s body=%s', p.oid::regprocedure,
				  p.prosecdef, p.proconfig, p.provolatile, p.proisstrict, p.proacl, md5(pg_get_functiondef(p.oid)))
	  FROM pg_proc p WHERE p.pronamespace = 'ordersync'::regnamespace
	UNION ALL
	SELECT format('comment %s: %s', pg_describe_object(dsc.classoid, dsc.objoid, dsc.objsubid), dsc.description)
	  FROM pg_description dsc JOIN member m ON m.classid = dsc.classoid AND m.objid = dsc.objoid
	UNION ALL
	SELECT format('initprivs %s %s %s', pg_describe_object(i.classoid, i.objoid, i.objsubid), i.privtype, i.initprivs)
	  FROM pg_init_privs i
	 WHERE (i.classoid, i.objoid) IN (SELECT classid, objid FROM member)
		OR i.objoid IN ('pg_catalog.pg_logical_emit_message(boolean, text, text)'::regprocedure,
						'pg_catalog.pg_logical_emit_message(boolean, text, bytea)'::regprocedure)
	UNION ALL
	SELECT format('schema acl=%s', nspacl) FROM pg_namespace WHERE nspname = 'ordersync'
	UNION ALL
	SELECT format('emit_message %s acl=%s', oid::regprocedure, proacl) FROM pg_proc WHERE proname = 'pg_logical_emit_message'
	UNION ALL
	SELECT format('role %s login=%s', rolname, rolcanlogin) FROM pg_roles
	 WHERE rolname IN ('ordersync_app', 'ordersync_admin', 'ordersync_relay')
	UNION ALL
	SELECT format('data status %s %s %s', name, open, builtin) FROM ordersync.status
	UNION ALL
	SELECT format('data transition %s %s %s %s', from_status, to_status, effect, builtin) FROM ordersync.transition
	UNION ALL
	SELECT format('data channel %s %s', id, status_map) FROM ordersync.channel
$$;

CREATE TEMP TABLE fresh AS SELECT * FROM pg_temp.catalog() AS f(line);
SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'ordersync'), '0.8.0',
	'the fresh installation is 0.8.0');
SELECT ok((SELECT count(*) FROM fresh) > 300, 'the catalog listing of the fresh installation has every object');

DROP EXTENSION ordersync;
CREATE EXTENSION ordersync VERSION '0.1.0';
SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'ordersync'), '0.1.0', 'installed 0.1.0');
ALTER EXTENSION ordersync UPDATE TO '0.2.0';
SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'ordersync'), '0.2.0', 'updated to 0.2.0');
ALTER EXTENSION ordersync UPDATE;
SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'ordersync'), '0.8.0', 'ALTER EXTENSION ordersync UPDATE goes on to 0.8.0');

CREATE TEMP TABLE upgraded AS SELECT * FROM pg_temp.catalog() AS u(line);
SELECT is_empty($$SELECT line FROM fresh EXCEPT SELECT line FROM upgraded$$,
	'nothing of a fresh installation is missing after 0.1.0 -> 0.2.0 -> 0.3.0 -> 0.4.0 -> 0.5.0 -> 0.6.0 -> 0.7.0 -> 0.8.0');
SELECT is_empty($$SELECT line FROM upgraded EXCEPT SELECT line FROM fresh$$,
	'nothing is left over or different after 0.1.0 -> 0.2.0 -> 0.3.0 -> 0.4.0 -> 0.5.0 -> 0.6.0 -> 0.7.0 -> 0.8.0');
SELECT is_empty($$SELECT line FROM upgraded WHERE line ~ 'announce_relay_config|relay\.config'$$,
	'the relay.config announcement is gone');
SELECT ok(EXISTS (SELECT FROM upgraded WHERE line ~ '^emit_message pg_logical_emit_message\(boolean,text,text\) acl=\{[^}]*\}$'
				  AND line !~ '[{,]=X'),
	'after the upgrade PUBLIC cannot execute pg_logical_emit_message');

-- an installation with history from 0.4.0: its rows are not rewritten; the
-- chains start at the first row 0.5.0 writes (history_seal.sealed_from)
DROP EXTENSION ordersync;
CREATE EXTENSION ordersync VERSION '0.4.0';
SELECT ordersync.add_location('up-wh', 0);
SELECT ordersync.receive_stock('UP-1', 'up-wh', 10);
SELECT ordersync.place_order('web', 'up-1', '[{"sku": "UP-1", "qty": 1, "price": "1"}]', '{"email": "up@example.com"}') AS up_order \gset
SELECT ordersync.set_status(:up_order, 'paid');
CREATE TEMP TABLE up_before AS SELECT max(id) AS max_id, count(*) AS n FROM ordersync.history;
ALTER EXTENSION ordersync UPDATE;
SELECT is((SELECT sealed_from FROM ordersync.history_seal), (SELECT max_id + 1 FROM up_before),
	'upgraded from 0.4.0 with data: the chains start after the last row written before');
SELECT ordersync.set_status(:up_order, 'fulfilling');
SELECT ordersync.forget_customer(format('{"orders": [%s]}', :up_order)::jsonb, 'upgrade test', true);
SELECT is((SELECT count(*) FROM ordersync.history WHERE hash IS NULL), (SELECT n FROM up_before),
	'the rows written before 0.5.0 are left as they were (no hash)');
SELECT is((SELECT array_agg(prev_id IS NULL ORDER BY id) FROM ordersync.history WHERE order_id = :up_order AND hash IS NOT NULL),
	ARRAY[true, false], 'an old order''s chain starts at its first row written by 0.5.0');
SELECT is_empty($$SELECT * FROM ordersync.verify_history()$$, 'the upgraded history verifies');
SET LOCAL session_replication_role = replica;
UPDATE ordersync.history SET reason = 'rewritten' WHERE id = (SELECT max(id) FROM ordersync.history WHERE order_id = :up_order AND hash IS NOT NULL);
SET LOCAL session_replication_role = origin;
SELECT is((SELECT count(*)::int FROM ordersync.verify_history()), 1, 'an edit of a row written after the upgrade is caught');

SELECT * FROM finish();
