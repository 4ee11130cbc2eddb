-- state machine: the C trigger lets a status change through only along
-- ordersync.transition, with its stock effect, history row and event
SELECT ordersync.receive_stock('S-1', 'main', 10);

CREATE TEMP VIEW s1 AS
SELECT on_hand, reserved, ordersync.available('S-1') AS available
FROM ordersync.stock WHERE sku = 'S-1' AND location = 'main';

-- the happy path: pending -> paid -> fulfilling -> shipped -> delivered -> completed
SELECT ordersync.place_order('web', 'SM-1', '[{"sku": "S-1", "qty": 3, "price": "1.00"}]') AS o1 \gset
SELECT * FROM s1;
SELECT ordersync.set_status(:o1, 'paid', 'payment captured');
SELECT status, expires_at IS NULL AS firm FROM ordersync.orders WHERE id = :o1;
SELECT ordersync.set_status(:o1, 'fulfilling');
-- a plain UPDATE goes through the same trigger
UPDATE ordersync.orders SET status = 'shipped' WHERE id = :o1;
SELECT * FROM s1;
SELECT state FROM ordersync.reservation WHERE order_id = :o1;
SELECT ordersync.set_status(:o1, 'delivered');
SELECT ordersync.set_status(:o1, 'completed');
SELECT from_status, to_status, reason FROM ordersync.history
WHERE order_id = :o1 AND action IN ('created', 'status') ORDER BY id;

-- completed is final
SELECT ordersync.set_status(:o1, 'returned');
\echo :LAST_ERROR_SQLSTATE
UPDATE ordersync.orders SET status = 'pending' WHERE id = :o1;
\echo :LAST_ERROR_SQLSTATE

-- illegal transitions fail with the allowed next statuses in the hint
SELECT ordersync.place_order('web', 'SM-2', '[{"sku": "S-1", "qty": 2, "price": "1.00"}]') AS o2 \gset
SELECT ordersync.set_status(:o2, 'shipped');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_status(:o2, 'delivered');
\echo :LAST_ERROR_SQLSTATE
UPDATE ordersync.orders SET status = 'completed' WHERE id = :o2;
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_status(:o2, 'no_such_status');
\echo :LAST_ERROR_SQLSTATE
UPDATE ordersync.orders SET status = NULL WHERE id = :o2;
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_status(:o2, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_status(NULL, 'paid');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_status(999999, 'paid');
\echo :LAST_ERROR_SQLSTATE
-- and they changed nothing
SELECT status FROM ordersync.orders WHERE id = :o2;
SELECT * FROM s1;

-- one statement updating several orders: all or nothing
SELECT ordersync.place_order('web', 'SM-3', '[{"sku": "S-1", "qty": 1, "price": "1.00"}]') AS o3 \gset
SELECT ordersync.set_status(:o3, 'paid');
UPDATE ordersync.orders SET status = 'fulfilling' WHERE id IN (:o2, :o3);
\echo :LAST_ERROR_SQLSTATE
SELECT id = :o2 AS is_o2, status FROM ordersync.orders WHERE id IN (:o2, :o3) ORDER BY id;

-- setting the status an order already has is a no-op: no history, no event
SELECT count(*) AS history_before FROM ordersync.history WHERE order_id = :o3 \gset
SELECT ordersync.set_status(:o3, 'paid');
SELECT count(*) - :history_before AS new_history FROM ordersync.history WHERE order_id = :o3;

-- cancel releases held stock, from pending, paid and fulfilling
SELECT * FROM s1;
SELECT ordersync.set_status(:o2, 'cancelled', 'customer asked');
SELECT * FROM s1;
SELECT ordersync.set_status(:o3, 'fulfilling');
SELECT ordersync.set_status(:o3, 'cancelled');
SELECT * FROM s1;
SELECT state FROM ordersync.reservation WHERE order_id IN (:o2, :o3) ORDER BY order_id;
SELECT ordersync.set_status(:o3, 'refunded');
-- a cancelled order cannot be shipped
SELECT ordersync.set_status(:o2, 'shipped');
\echo :LAST_ERROR_SQLSTATE

-- return restocks what was consumed, at the same location
SELECT ordersync.place_order('web', 'SM-4', '[{"sku": "S-1", "qty": 4, "price": "1.00"}]') AS o4 \gset
SELECT ordersync.set_status(:o4, 'paid');
SELECT ordersync.set_status(:o4, 'fulfilling');
SELECT ordersync.set_status(:o4, 'shipped');
SELECT ordersync.set_status(:o4, 'delivered');
SELECT * FROM s1;
SELECT ordersync.set_status(:o4, 'returned', 'damaged box');
SELECT * FROM s1;
SELECT state FROM ordersync.reservation WHERE order_id = :o4;
SELECT ordersync.set_status(:o4, 'refunded');

-- the operator extends the graph; it applies at once, in this session and others
INSERT INTO ordersync.status (name) VALUES ('on_hold');
INSERT INTO ordersync.transition (from_status, to_status) VALUES ('paid', 'on_hold');
SELECT ordersync.place_order('web', 'SM-5', '[{"sku": "S-1", "qty": 1, "price": "1.00"}]') AS o5 \gset
SELECT ordersync.set_status(:o5, 'paid');
SELECT ordersync.set_status(:o5, 'on_hold');
SELECT ordersync.set_status(:o5, 'paid');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO ordersync.transition (from_status, to_status, effect) VALUES ('on_hold', 'paid', 'none'),
	('on_hold', 'cancelled', 'release');
SELECT ordersync.set_status(:o5, 'paid');
DELETE FROM ordersync.transition WHERE from_status = 'paid' AND to_status = 'on_hold';
SELECT ordersync.set_status(:o5, 'on_hold');
\echo :LAST_ERROR_SQLSTATE
-- inside one transaction too: a rolled back change of the graph is forgotten
BEGIN;
INSERT INTO ordersync.transition (from_status, to_status) VALUES ('paid', 'on_hold');
SELECT ordersync.set_status(:o5, 'on_hold');
ROLLBACK;
SELECT ordersync.set_status(:o5, 'on_hold');
\echo :LAST_ERROR_SQLSTATE
SELECT status FROM ordersync.orders WHERE id = :o5;
-- a status some order has cannot be deleted or renamed
DELETE FROM ordersync.transition WHERE from_status = 'on_hold' OR to_status = 'on_hold';
SELECT ordersync.set_status(:o5, 'cancelled');
DELETE FROM ordersync.status WHERE name = 'paid';
\echo :LAST_ERROR_SQLSTATE
UPDATE ordersync.status SET name = 'settled' WHERE name = 'paid';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM ordersync.status WHERE name = 'on_hold';
-- the graph's own checks
INSERT INTO ordersync.transition (from_status, to_status) VALUES ('paid', 'paid');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO ordersync.transition (from_status, to_status) VALUES ('paid', 'nowhere');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO ordersync.transition (from_status, to_status, effect) VALUES ('paid', 'expired', 'explode');
\echo :LAST_ERROR_SQLSTATE

-- a channel reports status in its own words
SELECT ordersync.place_order('market', 'M-200', '[{"sku": "S-1", "qty": 1, "price": "1.00"}]') AS o6 \gset
SELECT ordersync.set_channel_status('market', 'M-200', 'PAID', 'marketplace webhook') = :o6 AS same_order;
SELECT status FROM ordersync.orders WHERE id = :o6;
SELECT ordersync.set_channel_status('market', 'M-200', 'REFUNDED');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_channel_status('market', 'M-999', 'PAID');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_channel_status('nochannel', 'M-200', 'PAID');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_channel_status('market', 'M-200', 'SHIPPED');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_channel_status('market', 'M-200', 'CANCELED');
SELECT status FROM ordersync.orders WHERE id = :o6;

-- stock invariants hold after all of it
SELECT s.sku, s.location, s.reserved,
	   coalesce((SELECT sum(qty) FROM ordersync.reservation r
				 WHERE r.sku = s.sku AND r.location = s.location AND r.state = 'held'), 0) AS held
FROM ordersync.stock s
WHERE s.reserved <> coalesce((SELECT sum(qty) FROM ordersync.reservation r
							  WHERE r.sku = s.sku AND r.location = s.location AND r.state = 'held'), 0);
