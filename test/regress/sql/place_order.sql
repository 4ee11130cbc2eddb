-- place_order: validation, normalization, reservation by location priority

-- one line, price as a string; main has priority
SELECT ordersync.place_order('web', 'W-1', '[{"sku": "A-1", "qty": 2, "price": "19.90"}]',
							 '{"name": "Ada", "email": "ada@example.org"}') AS order_id;
SELECT id, channel, external_id, status, lines, customer, total,
	   expires_at > created_at AS expires_later
FROM ordersync.orders WHERE id = 1;
SELECT order_id, line_no, sku, qty, price FROM ordersync.order_line WHERE order_id = 1;
SELECT order_id, line_no, sku, location, qty, state FROM ordersync.reservation WHERE order_id = 1;
SELECT ordersync.available('A-1');

-- by default an order ships from one location: main has 3 A-1 left, backup
-- has 4 but no B-2, so nobody alone has the whole order
SELECT ordersync.place_order('web', 'W-2',
	'[{"sku": "B-2", "qty": 1, "price": 5}, {"sku": "A-1", "qty": 5, "price": 9.5}]');
\echo :LAST_ERROR_SQLSTATE
-- when the order allows it, a line is split by priority: main 3, backup 2
SELECT ordersync.place_order('web', 'W-2',
	'[{"sku": "B-2", "qty": 1, "price": 5}, {"sku": "A-1", "qty": 5, "price": 9.5}]',
	allow_split => true);
SELECT order_id, line_no, sku, location, qty, state FROM ordersync.reservation
WHERE order_id = (SELECT id FROM ordersync.orders WHERE external_id = 'W-2') ORDER BY line_no, location;
SELECT total, lines FROM ordersync.orders WHERE external_id = 'W-2';
-- an order only a lower-priority location can ship goes there whole
SELECT ordersync.place_order('web', 'W-2b', '[{"sku": "A-1", "qty": 1, "price": "9.50"}]');
SELECT location, qty FROM ordersync.reservation r JOIN ordersync.orders o ON o.id = r.order_id
WHERE o.external_id = 'W-2b';
SELECT sku, location, on_hand, reserved FROM ordersync.stock ORDER BY 1, 2;

-- the reservation time comes from ordersync.reservation_ttl
SET ordersync.reservation_ttl = '1h';
SELECT ordersync.place_order('app', 'P-1', '[{"sku": "B-2", "qty": 1, "price": "0"}]');
SELECT expires_at - created_at AS ttl FROM ordersync.orders WHERE external_id = 'P-1';
RESET ordersync.reservation_ttl;

-- everything below fails and changes nothing
CREATE TEMP TABLE counts AS
SELECT (SELECT count(*) FROM ordersync.orders) AS orders,
	   (SELECT count(*) FROM ordersync.order_line) AS lines,
	   (SELECT count(*) FROM ordersync.reservation) AS reservations,
	   (SELECT count(*) FROM ordersync.history) AS history,
	   (SELECT sum(reserved) FROM ordersync.stock) AS reserved;

-- OS001: not enough of the second SKU; the first line is not reserved either
SELECT ordersync.place_order('web', 'W-3',
	'[{"sku": "B-2", "qty": 1, "price": "1"}, {"sku": "A-1", "qty": 3, "price": "1"}]');
\echo :LAST_ERROR_SQLSTATE
-- two lines of the same SKU count together
SELECT ordersync.place_order('web', 'W-3',
	'[{"sku": "C-3", "qty": 1, "price": "1"}, {"sku": "C-3", "qty": 1, "price": "1"}]');
\echo :LAST_ERROR_SQLSTATE
-- OS004: unknown SKU, channel
SELECT ordersync.place_order('web', 'W-3', '[{"sku": "Z-9", "qty": 1, "price": "1"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('nochannel', 'W-3', '[{"sku": "A-1", "qty": 1, "price": "1"}]');
\echo :LAST_ERROR_SQLSTATE
-- OS004: malformed lines
SELECT ordersync.place_order('web', 'W-3', '{"sku": "A-1"}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'W-3', '"A-1"');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'W-3', '[]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'W-3', '[1]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'W-3', '[{"qty": 1, "price": "1"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'W-3', '[{"sku": "A-1", "price": "1"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'W-3', '[{"sku": "A-1", "qty": 1}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'W-3', '[{"sku": "A-1", "qty": 0, "price": "1"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'W-3', '[{"sku": "A-1", "qty": -2, "price": "1"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'W-3', '[{"sku": "A-1", "qty": 1.5, "price": "1"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'W-3', '[{"sku": "A-1", "qty": "1", "price": "1"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'W-3', '[{"sku": "A-1", "qty": 1, "price": "1,50"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'W-3', '[{"sku": "A-1", "qty": 1, "price": "-1"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'W-3', '[{"sku": "A-1", "qty": 1, "price": "1.999"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'W-3', '[{"sku": "A-1", "qty": 1, "price": "NaN"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'W-3', '[{"sku": "A-1", "qty": 1, "price": "1e3"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'W-3', '[{"sku": "A-1", "qty": 1, "price": "1."}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'W-3', '[{"sku": "A-1", "qty": 1, "price": true}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'W-3', '[{"sku": "A-1", "qty": 1, "price": "1", "colour": "red"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'W-3', '[{"sku": 7, "qty": 1, "price": "1"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'W-3', '[{"sku": "A-1", "qty": 1, "price": "999999999999.99"}, {"sku": "B-2", "qty": 1, "price": "1"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'W-3', '[{"sku": "A-1", "qty": 1, "price": "1"}]', '[1]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'W-3', '[{"sku": "A-1", "qty": 1, "price": "1"}]', '"Ada"');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', '', '[{"sku": "A-1", "qty": 1, "price": "1"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', NULL, '[{"sku": "A-1", "qty": 1, "price": "1"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order(NULL, 'W-3', '[{"sku": "A-1", "qty": 1, "price": "1"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.place_order('web', 'W-3', NULL);
\echo :LAST_ERROR_SQLSTATE

SELECT (SELECT count(*) FROM ordersync.orders) = orders AS orders_unchanged,
	   (SELECT count(*) FROM ordersync.order_line) = lines AS lines_unchanged,
	   (SELECT count(*) FROM ordersync.reservation) = reservations AS reservations_unchanged,
	   (SELECT count(*) FROM ordersync.history) = history AS history_unchanged,
	   (SELECT sum(reserved) FROM ordersync.stock) = reserved AS stock_unchanged
FROM counts;

-- a JSON null customer is no customer; the largest allowed total is accepted
SELECT ordersync.place_order('web', 'W-4', '[{"sku": "B-2", "qty": 1, "price": "999999999999.99"}]', 'null');
SELECT customer IS NULL AS no_customer, total FROM ordersync.orders WHERE external_id = 'W-4';

-- the last unit can be sold, then no more
SELECT ordersync.place_order('web', 'W-5', '[{"sku": "C-3", "qty": 1, "price": "3.00"}]');
SELECT ordersync.available('C-3');
SELECT ordersync.place_order('web', 'W-6', '[{"sku": "C-3", "qty": 1, "price": "3.00"}]');
\echo :LAST_ERROR_SQLSTATE
