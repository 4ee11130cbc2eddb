-- import: the same (channel, external_id) is one order
SELECT ordersync.receive_stock('D-4', 'main', 5);

SELECT ordersync.place_order('market', 'M-100',
	'[{"sku": "D-4", "qty": 2, "price": "10.5"}]', '{"name": "Grace"}') AS first;
-- the same content, even written differently, returns the first order
SELECT ordersync.place_order('market', 'M-100',
	'[{"price": "10.50", "qty": 2, "sku": "D-4"}]', '{"name": "Grace"}') AS again;
SELECT ordersync.place_order('market', 'M-100',
	'[{"sku": "D-4", "qty": 2, "price": 10.5}]', '{"name": "Grace"}') AS again_number;
-- nothing was reserved or recorded twice
SELECT count(*) AS orders FROM ordersync.orders WHERE external_id = 'M-100';
SELECT sum(qty) AS reserved FROM ordersync.reservation r
JOIN ordersync.orders o ON o.id = r.order_id WHERE o.external_id = 'M-100';
SELECT ordersync.available('D-4');
SELECT count(*) AS created FROM ordersync.history h
JOIN ordersync.orders o ON o.id = h.order_id
WHERE o.external_id = 'M-100' AND h.action = 'created';

-- the same key with other content is an error (OS003) and changes nothing
SELECT ordersync.place_order('market', 'M-100', '[{"sku": "D-4", "qty": 3, "price": "10.50"}]', '{"name": "Grace"}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('market', 'M-100', '[{"sku": "D-4", "qty": 2, "price": "10.50"}]', '{"name": "Linus"}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('market', 'M-100', '[{"sku": "D-4", "qty": 2, "price": "10.50"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('market', 'M-100', '[{"sku": "D-4", "qty": 2, "price": "10.49"}]', '{"name": "Grace"}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.available('D-4');

-- the same external id on another channel is another order
SELECT ordersync.place_order('web', 'M-100', '[{"sku": "D-4", "qty": 1, "price": "10.50"}]') <>
	   ordersync.place_order('market', 'M-100', '[{"sku": "D-4", "qty": 2, "price": "10.50"}]', '{"name": "Grace"}')
	   AS different_orders;
SELECT ordersync.available('D-4');

-- a re-import returns the order whatever its status now
SELECT ordersync.set_status(ordersync.place_order('market', 'M-100',
	'[{"sku": "D-4", "qty": 2, "price": "10.50"}]', '{"name": "Grace"}'), 'paid');
SELECT status FROM ordersync.orders WHERE channel = 'market' AND external_id = 'M-100';
SELECT ordersync.place_order('market', 'M-100',
	'[{"sku": "D-4", "qty": 2, "price": "10.50"}]', '{"name": "Grace"}') AS still_first;
