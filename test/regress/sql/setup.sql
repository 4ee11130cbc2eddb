-- setup: install the extension and the reference data the other tests use
CREATE EXTENSION ordersync;

-- the ordersync events a slot has decoded since it was last read
CREATE FUNCTION slot_events(slot name) RETURNS TABLE (type text, subject text, data jsonb)
LANGUAGE sql AS $$
	SELECT c->>'type', c->>'subject', c->'data'
	FROM pg_logical_slot_get_changes(slot, NULL, NULL,
		'format-version', '2', 'add-msg-prefixes', 'ordersync', 'filter-tables', '*.*') g,
		 LATERAL (SELECT (g.data::jsonb->>'content')::jsonb AS c) m
	WHERE g.data::jsonb->>'action' = 'M'
$$;
SELECT extversion FROM pg_extension WHERE extname = 'ordersync';

-- two warehouses; "main" is allocated first
SELECT ordersync.add_location('main', 10);
SELECT ordersync.add_location('backup', 0);
SELECT ordersync.add_location('main', 20);	-- changes the priority
SELECT id, priority FROM ordersync.location ORDER BY id;

-- receive creates SKU and stock rows, and adds up
SELECT ordersync.receive_stock('A-1', 'main', 3);
SELECT ordersync.receive_stock('A-1', 'main', 2);
SELECT ordersync.receive_stock('A-1', 'backup', 4);
SELECT ordersync.receive_stock('B-2', 'main', 10);
SELECT ordersync.receive_stock('C-3', 'backup', 1);
SELECT sku, location, on_hand, reserved, safety FROM ordersync.stock ORDER BY 1, 2;
SELECT ordersync.available('A-1'), ordersync.available('B-2'), ordersync.available('C-3');

-- safety stock is never sold
SELECT ordersync.set_safety_stock('B-2', 'main', 2);
SELECT ordersync.available('B-2');
SELECT ordersync.set_safety_stock('B-2', 'main', 0);

-- bad input: own SQLSTATE, nothing changed
SELECT ordersync.receive_stock('A-1', 'nowhere', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.receive_stock('A-1', 'main', 0);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.receive_stock('A-1', 'main', -5);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.receive_stock('', 'main', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.receive_stock(NULL, 'main', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.receive_stock(repeat('x', 101), 'main', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_location('has space');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_location('ok', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_safety_stock('A-1', 'nowhere', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_safety_stock('A-1', 'main', -1);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.available('nope');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_channel('Bad Channel');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_channel('shop-x', '{"PAID": "payed"}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_channel('shop-x', '[]');
\echo :LAST_ERROR_SQLSTATE
SELECT sku, location, on_hand, reserved, safety FROM ordersync.stock ORDER BY 1, 2;
SELECT count(*) AS locations FROM ordersync.location;
SELECT count(*) AS channels FROM ordersync.channel;
SELECT ordersync.available(NULL);

-- a marketplace with its own status words
SELECT ordersync.add_channel('market', '{"PAID": "paid", "CANCELED": "cancelled", "SHIPPED": "shipped"}');
SELECT id, status_map FROM ordersync.channel ORDER BY id;
