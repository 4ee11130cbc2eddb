-- test/pgtap/events.sql — the append-only history: which rows each action
-- writes, with actor = the ordersync.actor setting when set (else the role)
-- and role = the database role that acted, also through the API's SECURITY
-- DEFINER functions.  Runs inside a transaction that run.sh rolls back; the
-- login roles it creates go with it.

SELECT plan(39);

CREATE ROLE pgtap_ev_app LOGIN IN ROLE ordersync_app;
CREATE ROLE pgtap_ev_admin LOGIN IN ROLE ordersync_admin;

-- the rows written since the watermark :h, without the columns that vary
CREATE FUNCTION pg_temp.since(h bigint)
	RETURNS TABLE (action text, order_id bigint, from_status text, to_status text,
	               sku text, location text, qty bigint, actor text, role text, reason text)
	LANGUAGE sql AS $$
	SELECT action, order_id, from_status, to_status, sku, location, qty, actor, role, reason
	  FROM ordersync.history WHERE id > h ORDER BY id
$$;
GRANT EXECUTE ON FUNCTION pg_temp.since(bigint) TO PUBLIC;

-- ordersync.actor set before the library is loaded in this session is kept
SET ordersync.actor = 'setup-script';
SELECT coalesce(max(id), 0) AS h FROM ordersync.history \gset
DO $$
BEGIN
	PERFORM ordersync.add_location('ev-wh1', 10);
	PERFORM ordersync.add_location('ev-wh2', 0);
	PERFORM ordersync.add_channel('ev-shop', '{"CANCELED": "cancelled"}');
END $$;
SELECT is_empty(format('SELECT * FROM pg_temp.since(%s)', :h), 'add_location and add_channel write no history');

SELECT coalesce(max(id), 0) AS h FROM ordersync.history \gset
DO $$
BEGIN
	PERFORM ordersync.receive_stock('EV-1', 'ev-wh1', 3);
	PERFORM ordersync.receive_stock('EV-1', 'ev-wh2', 10);
	PERFORM ordersync.receive_stock('EV-2', 'ev-wh1', 5);
END $$;
SELECT results_eq(format('SELECT * FROM pg_temp.since(%s)', :h),
	format($$VALUES ('receive', NULL::bigint, NULL::text, NULL::text, 'EV-1', 'ev-wh1', 3::bigint, 'setup-script', %1$L, NULL::text),
	                ('receive', NULL, NULL, NULL, 'EV-1', 'ev-wh2', 10, 'setup-script', %1$L, NULL),
	                ('receive', NULL, NULL, NULL, 'EV-2', 'ev-wh1', 5, 'setup-script', %1$L, NULL)$$, session_user),
	'receive_stock writes one receive row each; actor set before the library loaded is used');

SELECT coalesce(max(id), 0) AS h FROM ordersync.history \gset
RESET ordersync.actor;
SELECT ordersync.set_safety_stock('EV-1', 'ev-wh2', 1);
SELECT results_eq(format('SELECT * FROM pg_temp.since(%s)', :h),
	format($$VALUES ('safety', NULL::bigint, NULL::text, NULL::text, 'EV-1', 'ev-wh2', 1::bigint, %1$L, %1$L, NULL::text)$$, session_user),
	'set_safety_stock writes one safety row; without ordersync.actor the actor is the role');

-- ---------------------------------------------------------------------------
-- The application, through the SECURITY DEFINER API
-- ---------------------------------------------------------------------------
SET ROLE pgtap_ev_app;
SET ordersync.actor = 'checkout-svc';

SELECT coalesce(max(id), 0) AS h FROM ordersync.history \gset
SELECT ordersync.place_order('web', 'ev-1',
	'[{"sku": "EV-2", "qty": 1, "price": "3.00"}, {"sku": "EV-1", "qty": 5, "price": "1.00"}]',
	allow_split => true) AS o1 \gset
SELECT results_eq(format('SELECT * FROM pg_temp.since(%s) WHERE action = %L', :h, 'created'),
	format($$VALUES ('created', %s::bigint, NULL::text, 'pending'::text, NULL::text, NULL::text, NULL::bigint,
	                 'checkout-svc', 'pgtap_ev_app', NULL::text)$$, :o1),
	'place_order writes one created row: actor from ordersync.actor, role = the calling role, not the function owner');
SELECT results_eq(format('SELECT * FROM pg_temp.since(%s) WHERE action = %L ORDER BY sku, location', :h, 'reserve'),
	format($$VALUES ('reserve', %1$s::bigint, NULL::text, NULL::text, 'EV-1', 'ev-wh1', 3::bigint, 'checkout-svc', 'pgtap_ev_app', NULL::text),
	                ('reserve', %1$s, NULL, NULL, 'EV-1', 'ev-wh2', 2, 'checkout-svc', 'pgtap_ev_app', NULL),
	                ('reserve', %1$s, NULL, NULL, 'EV-2', 'ev-wh1', 1, 'checkout-svc', 'pgtap_ev_app', NULL)$$, :o1),
	'place_order writes one reserve row per SKU and location (a line split over two locations gives two)');
SELECT is((SELECT count(*)::int FROM ordersync.history WHERE id > :h), 4, 'place_order wrote exactly four rows');
SELECT is((SELECT min(id) FROM ordersync.history WHERE id > :h AND action = 'created'),
	(SELECT min(id) FROM ordersync.history WHERE id > :h), 'the created row comes first');

SELECT coalesce(max(id), 0) AS h FROM ordersync.history \gset
SELECT is(ordersync.place_order('web', 'ev-1',
	'[{"sku": "EV-2", "qty": 1, "price": "3.00"}, {"sku": "EV-1", "qty": 5, "price": "1.00"}]'), :o1::bigint,
	're-importing the same order returns it');
SELECT is_empty(format('SELECT * FROM pg_temp.since(%s)', :h), 're-importing the same order writes no history');
SELECT throws_ok($$SELECT ordersync.place_order('web', 'ev-x', '[{"sku": "EV-1", "qty": 1, "price": "1"}, {"sku": "EV-2", "qty": 500, "price": "1"}]')$$,
	'OS001', NULL, 'an order that cannot be reserved fails');
SELECT is_empty(format('SELECT * FROM pg_temp.since(%s)', :h), 'a failed place_order writes no history');
SELECT throws_ok(format($$SELECT ordersync.set_status(%s, 'delivered', 'nope')$$, :o1),
	'OS002', NULL, 'an illegal transition fails');
SELECT is_empty(format('SELECT * FROM pg_temp.since(%s)', :h), 'a failed set_status writes no history');

SELECT lives_ok(format($$SELECT ordersync.set_status(%s, 'paid', 'card captured')$$, :o1), 'set_status to paid');
SELECT results_eq(format('SELECT * FROM pg_temp.since(%s)', :h),
	format($$VALUES ('status', %s::bigint, 'pending'::text, 'paid'::text, NULL::text, NULL::text, NULL::bigint,
	                 'checkout-svc', 'pgtap_ev_app', 'card captured'::text)$$, :o1),
	'set_status writes one status row with from, to and the reason (firm moves no stock)');

SELECT coalesce(max(id), 0) AS h FROM ordersync.history \gset
SELECT lives_ok(format($$SELECT ordersync.set_status(%s, 'paid', 'again')$$, :o1), 'set_status to the current status');
SELECT is_empty(format('SELECT * FROM pg_temp.since(%s)', :h), 'set_status to the current status writes no history');

-- an empty ordersync.actor means the role
SET ordersync.actor = '';
UPDATE ordersync.orders SET status = 'fulfilling' WHERE id = :o1;
SELECT results_eq(format('SELECT * FROM pg_temp.since(%s)', :h),
	format($$VALUES ('status', %s::bigint, 'paid'::text, 'fulfilling'::text, NULL::text, NULL::text, NULL::bigint,
	                 'pgtap_ev_app', 'pgtap_ev_app', NULL::text)$$, :o1),
	'a plain UPDATE of orders.status writes a status row; empty ordersync.actor means the role');

SET ordersync.actor = 'warehouse-7';
SELECT coalesce(max(id), 0) AS h FROM ordersync.history \gset
SELECT ordersync.set_status(:o1, 'shipped', 'DHL 123');
SELECT results_eq(format('SELECT * FROM pg_temp.since(%s) ORDER BY action, sku, location', :h),
	format($$VALUES ('consume', %1$s::bigint, NULL::text, NULL::text, 'EV-1'::text, 'ev-wh1'::text, 3::bigint, 'warehouse-7', 'pgtap_ev_app', 'DHL 123'::text),
	                ('consume', %1$s, NULL, NULL, 'EV-1', 'ev-wh2', 2, 'warehouse-7', 'pgtap_ev_app', 'DHL 123'),
	                ('consume', %1$s, NULL, NULL, 'EV-2', 'ev-wh1', 1, 'warehouse-7', 'pgtap_ev_app', 'DHL 123'),
	                ('status', %1$s, 'fulfilling', 'shipped', NULL, NULL, NULL, 'warehouse-7', 'pgtap_ev_app', 'DHL 123')$$, :o1),
	'shipping writes a consume row per reservation and a status row, all with the reason');

SELECT coalesce(max(id), 0) AS h FROM ordersync.history \gset
SELECT ordersync.set_status(:o1, 'delivered');
SELECT ordersync.set_status(:o1, 'returned', 'damaged');
SELECT results_eq(format('SELECT * FROM pg_temp.since(%s) ORDER BY action, sku, location, to_status', :h),
	format($$VALUES ('restock', %1$s::bigint, NULL::text, NULL::text, 'EV-1'::text, 'ev-wh1'::text, 3::bigint, 'warehouse-7', 'pgtap_ev_app', 'damaged'::text),
	                ('restock', %1$s, NULL, NULL, 'EV-1', 'ev-wh2', 2, 'warehouse-7', 'pgtap_ev_app', 'damaged'),
	                ('restock', %1$s, NULL, NULL, 'EV-2', 'ev-wh1', 1, 'warehouse-7', 'pgtap_ev_app', 'damaged'),
	                ('status', %1$s, 'shipped', 'delivered', NULL, NULL, NULL, 'warehouse-7', 'pgtap_ev_app', NULL),
	                ('status', %1$s, 'delivered', 'returned', NULL, NULL, NULL, 'warehouse-7', 'pgtap_ev_app', 'damaged')$$, :o1),
	'delivery writes a status row; the return writes a restock row per reservation and a status row');

-- a channel cancels in its own words
SET ordersync.actor = 'marketplace-sync';
SELECT ordersync.place_order('ev-shop', 'M-1', '[{"sku": "EV-2", "qty": 2, "price": "3.00"}]') AS o2 \gset
SELECT coalesce(max(id), 0) AS h FROM ordersync.history \gset
SELECT is(ordersync.set_channel_status('ev-shop', 'M-1', 'CANCELED', 'buyer cancelled'), :o2::bigint, 'set_channel_status cancels the order');
SELECT results_eq(format('SELECT * FROM pg_temp.since(%s) ORDER BY action', :h),
	format($$VALUES ('release', %1$s::bigint, NULL::text, NULL::text, 'EV-2'::text, 'ev-wh1'::text, 2::bigint, 'marketplace-sync', 'pgtap_ev_app', 'buyer cancelled'::text),
	                ('status', %1$s, 'pending', 'cancelled', NULL, NULL, NULL, 'marketplace-sync', 'pgtap_ev_app', 'buyer cancelled')$$, :o2),
	'a cancellation writes a release row per reservation and a status row');

-- expiry, run by the application's job
SET ordersync.actor = 'expiry-job';
SELECT ordersync.place_order('web', 'ev-3', '[{"sku": "EV-1", "qty": 4, "price": "1.00"}]') AS o3 \gset
RESET ROLE;
UPDATE ordersync.orders SET expires_at = now() - interval '1 minute' WHERE id = :o3;
SET ROLE pgtap_ev_app;
SELECT coalesce(max(id), 0) AS h FROM ordersync.history \gset
SELECT is(ordersync.expire_reservations(), 1, 'expire_reservations expires the due order');
SELECT results_eq(format('SELECT * FROM pg_temp.since(%s) ORDER BY action, sku, location', :h),
	format($$VALUES ('release', %1$s::bigint, NULL::text, NULL::text, 'EV-1'::text, 'ev-wh2'::text, 4::bigint, 'expiry-job', 'pgtap_ev_app', 'reservation expired'::text),
	                ('status', %1$s, 'pending', 'expired', NULL, NULL, NULL, 'expiry-job', 'pgtap_ev_app', 'reservation expired')$$, :o3),
	'expiry writes a release row and a status row with the reason "reservation expired"');
RESET ordersync.actor;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- The admin, and the superuser
-- ---------------------------------------------------------------------------
SET ROLE pgtap_ev_admin;
SELECT coalesce(max(id), 0) AS h FROM ordersync.history \gset
SELECT ordersync.receive_stock('EV-2', 'ev-wh2', 7);
SELECT ordersync.set_safety_stock('EV-2', 'ev-wh2', 2);
SELECT results_eq(format('SELECT * FROM pg_temp.since(%s)', :h),
	$$VALUES ('receive', NULL::bigint, NULL::text, NULL::text, 'EV-2'::text, 'ev-wh2'::text, 7::bigint, 'pgtap_ev_admin', 'pgtap_ev_admin', NULL::text),
	         ('safety', NULL, NULL, NULL, 'EV-2', 'ev-wh2', 2, 'pgtap_ev_admin', 'pgtap_ev_admin', NULL)$$,
	'the admin''s stock changes are recorded with the admin''s role');
SELECT is(current_user, 'pgtap_ev_admin', 'still the admin after the SECURITY DEFINER calls');

-- a hot SKU: movements are still recorded once per location, not per bucket
SELECT coalesce(max(id), 0) AS h FROM ordersync.history \gset
SELECT ordersync.set_hot('EV-2', 3);
SELECT results_eq(format('SELECT * FROM pg_temp.since(%s)', :h),
	$$VALUES ('set_hot', NULL::bigint, NULL::text, NULL::text, 'EV-2'::text, NULL::text, 3::bigint, 'pgtap_ev_admin', 'pgtap_ev_admin', NULL::text)$$,
	'set_hot writes one set_hot row with the bucket count');
RESET ROLE;
SET ROLE pgtap_ev_app;
SELECT coalesce(max(id), 0) AS h FROM ordersync.history \gset
SELECT ordersync.place_order('web', 'ev-4', '[{"sku": "EV-2", "qty": 4, "price": "3.00"}]') AS o4 \gset
SELECT ok((SELECT count(*) FROM ordersync.reservation WHERE order_id = :o4) > 1, 'the hot SKU''s order is reserved from several buckets');
SELECT results_eq(format('SELECT * FROM pg_temp.since(%s)', :h),
	format($$VALUES ('created', %1$s::bigint, NULL::text, 'pending'::text, NULL::text, NULL::text, NULL::bigint, 'pgtap_ev_app', 'pgtap_ev_app', NULL::text),
	                ('reserve', %1$s, NULL, NULL, 'EV-2', 'ev-wh1', 4, 'pgtap_ev_app', 'pgtap_ev_app', NULL)$$, :o4),
	'an order of a hot SKU writes one reserve row for the location, whatever the buckets');
SELECT coalesce(max(id), 0) AS h FROM ordersync.history \gset
SELECT ordersync.set_status(:o4, 'cancelled');
SELECT results_eq(format('SELECT * FROM pg_temp.since(%s) ORDER BY action', :h),
	format($$VALUES ('release', %1$s::bigint, NULL::text, NULL::text, 'EV-2'::text, 'ev-wh1'::text, 4::bigint, 'pgtap_ev_app', 'pgtap_ev_app', NULL::text),
	                ('status', %1$s, 'pending', 'cancelled', NULL, NULL, NULL, 'pgtap_ev_app', 'pgtap_ev_app', NULL)$$, :o4),
	'cancelling it writes one release row for the location');
RESET ROLE;

-- an actor may be any text the application chooses; the role may not be chosen
SET ordersync.actor = 'Ada Lovelace <ada@example.org>';
SELECT coalesce(max(id), 0) AS h FROM ordersync.history \gset
SELECT ordersync.receive_stock('EV-2', 'ev-wh2', 1);
SELECT results_eq(format('SELECT actor, role FROM pg_temp.since(%s)', :h),
	format($$VALUES ('Ada Lovelace <ada@example.org>'::text, %L::text)$$, session_user),
	'any actor text is recorded verbatim, next to the real role');
RESET ordersync.actor;

SET ordersync.actor = 'session-level';
SELECT coalesce(max(id), 0) AS h FROM ordersync.history \gset
DO $$
BEGIN
	SET LOCAL ordersync.actor = 'local-level';
	PERFORM ordersync.receive_stock('EV-2', 'ev-wh2', 1);
END $$;
SELECT is((SELECT actor FROM pg_temp.since(:h)), 'local-level', 'SET LOCAL ordersync.actor wins over the session setting');
RESET ordersync.actor;

-- ---------------------------------------------------------------------------
-- The history as a whole
-- ---------------------------------------------------------------------------
SELECT is_empty(
	$$SELECT s.sku, s.location
	  FROM (SELECT sku, location, sum(on_hand) AS on_hand, sum(reserved) AS reserved
	          FROM ordersync.stock GROUP BY sku, location) s
	  LEFT JOIN (SELECT sku, location,
	                    sum(CASE action WHEN 'receive' THEN qty WHEN 'restock' THEN qty WHEN 'consume' THEN -qty ELSE 0 END) AS on_hand,
	                    sum(CASE action WHEN 'reserve' THEN qty WHEN 'release' THEN -qty WHEN 'consume' THEN -qty ELSE 0 END) AS reserved
	               FROM ordersync.history WHERE sku IS NOT NULL GROUP BY sku, location) h
	    USING (sku, location)
	 WHERE s.on_hand IS DISTINCT FROM coalesce(h.on_hand, 0) OR s.reserved IS DISTINCT FROM coalesce(h.reserved, 0)$$,
	'replaying the history gives every location''s on_hand and reserved');
SELECT is_empty(
	$$SELECT o.id FROM ordersync.orders o
	   WHERE o.status IS DISTINCT FROM (SELECT h.to_status FROM ordersync.history h
	                                     WHERE h.order_id = o.id AND h.action IN ('created', 'status')
	                                     ORDER BY h.id DESC LIMIT 1)$$,
	'every order''s status is the to_status of its last created/status row');
SELECT is_empty(
	$$SELECT h.id FROM ordersync.history h
	   WHERE h.action = 'status' AND h.from_status IS DISTINCT FROM
	         (SELECT p.to_status FROM ordersync.history p
	           WHERE p.order_id = h.order_id AND p.action IN ('created', 'status') AND p.id < h.id
	           ORDER BY p.id DESC LIMIT 1)$$,
	'status rows chain: each from_status is the previous to_status');
SELECT is_empty(
	$$SELECT h.id FROM ordersync.history h
	   WHERE h.action = 'status' AND NOT EXISTS (SELECT 1 FROM ordersync.transition t
	                                             WHERE t.from_status = h.from_status AND t.to_status = h.to_status)$$,
	'every recorded status change is a transition of the state machine');
SELECT set_eq($$SELECT DISTINCT action FROM ordersync.history$$,
	ARRAY['created', 'status', 'reserve', 'release', 'consume', 'restock', 'receive', 'safety', 'set_hot'],
	'the actions recorded are created, status, reserve, release, consume, restock, receive, safety and set_hot');
SELECT is_empty($$SELECT id FROM ordersync.history WHERE at <> now()$$,
	'history.at is the time of the transaction');
SELECT is_empty($$SELECT id FROM ordersync.history WHERE role = (SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'place_order' AND pronamespace = 'ordersync'::regnamespace)
	   AND actor IN ('checkout-svc', 'warehouse-7', 'marketplace-sync', 'expiry-job')$$,
	'no application action is recorded under the function owner''s role');

SELECT * FROM finish();
