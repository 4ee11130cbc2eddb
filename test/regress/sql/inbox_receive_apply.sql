-- inbox_receive_apply (0.8.0): a webhook kept and applied in one
-- transaction, as inbox_receive() keeps it and inbox_apply() applies it;
-- what cannot be applied now is left received.  Runs after inbox (its
-- channels "mp" and "sh").  Concurrency: test/isolation's
-- inbox_receive_apply spec.
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT 'init' FROM pg_create_logical_replication_slot('regress_receive_apply', 'wal2json');
SELECT ordersync.receive_stock('RA-1', 'main', 10);
SELECT ordersync.receive_stock('RA-FEW', 'main', 1);

-- a new order: applied at once, its row written once with the outcome
SELECT * FROM ordersync.inbox_receive_apply('mp', 'order', 'ra-1', '{"external_id": "RA-O1", "lines": [{"sku": "RA-1", "qty": 2, "price": "4.50"}], "customer": {"name": "Ada"}}');
SELECT i.state, i.attempts, i.error, i.applied_at IS NOT NULL AS applied_at, i.order_id = o.id AS its_order,
	   o.status, o.customer
  FROM ordersync.inbox i JOIN ordersync.orders o ON o.external_id = i.external_id
 WHERE i.event_id = 'ra-1';
SELECT ordersync.available('RA-1');
SELECT type, subject FROM slot_events('regress_receive_apply') WHERE type LIKE 'order.%';
-- the same event again: both NULL, nothing written, no second order
SELECT * FROM ordersync.inbox_receive_apply('mp', 'order', 'ra-1', '{"external_id": "RA-O1", "lines": [{"sku": "RA-1", "qty": 2, "price": "4.50"}]}');
SELECT * FROM ordersync.inbox_receive_apply('mp', 'order', 'ra-1', '{"external_id": "RA-OTHER", "lines": []}');
SELECT count(*) AS rows, (SELECT count(*) FROM ordersync.orders WHERE external_id LIKE 'RA-O%') AS orders
  FROM ordersync.inbox WHERE event_id = 'ra-1';
-- the same order under other event ids: place_order() decides, as when applied later
SELECT state FROM ordersync.inbox_receive_apply('mp', 'order', 'ra-1b', '{"external_id": "RA-O1", "lines": [{"sku": "RA-1", "qty": 2, "price": "4.50"}], "customer": {"name": "Ada"}}');
SELECT state FROM ordersync.inbox_receive_apply('mp', 'order', 'ra-1c', '{"external_id": "RA-O1", "lines": [{"sku": "RA-1", "qty": 2, "price": "4.50"}]}');
SELECT event_id, state, order_id = (SELECT order_id FROM ordersync.inbox WHERE event_id = 'ra-1') AS same_order, error
  FROM ordersync.inbox WHERE event_id IN ('ra-1b', 'ra-1c') ORDER BY 1;
SELECT ordersync.available('RA-1');

-- an order the stock cannot cover: failed with the OS001 facts, and the event names the row
SELECT * FROM ordersync.inbox_receive_apply('mp', 'order', 'ra-2', '{"external_id": "RA-O2", "lines": [{"sku": "RA-FEW", "qty": 3, "price": "1.00"}]}');
SELECT state, error, order_id FROM ordersync.inbox WHERE event_id = 'ra-2';
SELECT type, subject, (data->>'inbox_id')::bigint = (SELECT id FROM ordersync.inbox WHERE event_id = 'ra-2') AS names_the_row,
	   data->>'sqlstate' AS sqlstate
  FROM slot_events('regress_receive_apply') WHERE type = 'order.import_failed' AND data->>'event_id' = 'ra-2';
SELECT count(*) FROM ordersync.orders WHERE external_id = 'RA-O2';

-- status updates: applied in version order; an older one is stale
SELECT * FROM ordersync.inbox_receive_apply('mp', 'status', 'ra-3', '{"external_id": "RA-O1", "status": "PAID", "version": 5}');
SELECT * FROM ordersync.inbox_receive_apply('mp', 'status', 'ra-4', '{"external_id": "RA-O1", "status": "CANCELED", "version": 4}');
SELECT event_id, state, error FROM ordersync.inbox WHERE event_id IN ('ra-3', 'ra-4') ORDER BY 1;
SELECT status FROM ordersync.orders WHERE external_id = 'RA-O1';
SELECT version FROM ordersync.inbox_version WHERE channel = 'mp' AND external_id = 'RA-O1';

-- an update before its order is parked; the order then applies both, in order
SELECT * FROM ordersync.inbox_receive_apply('mp', 'status', 'ra-5', '{"external_id": "RA-O3", "status": "PAID", "version": 1}');
SELECT state, error FROM ordersync.inbox WHERE event_id = 'ra-5';
SELECT * FROM ordersync.inbox_receive_apply('mp', 'order', 'ra-6', '{"external_id": "RA-O3", "lines": [{"sku": "RA-1", "qty": 1, "price": "4.50"}]}');
SELECT event_id, state, attempts FROM ordersync.inbox WHERE event_id IN ('ra-5', 'ra-6') ORDER BY 1;
SELECT status FROM ordersync.orders WHERE external_id = 'RA-O3';

-- a received row of the order waits: the receipt applies it first, then its own
SELECT ordersync.inbox_receive('mp', 'order', 'ra-7', '{"external_id": "RA-O4", "lines": [{"sku": "RA-1", "qty": 1, "price": "4.50"}]}') IS NOT NULL AS kept;
SELECT * FROM ordersync.inbox_receive_apply('mp', 'status', 'ra-8', '{"external_id": "RA-O4", "status": "PAID", "version": 1}');
SELECT event_id, state FROM ordersync.inbox WHERE event_id IN ('ra-7', 'ra-8') ORDER BY 1;
SELECT status FROM ordersync.orders WHERE external_id = 'RA-O4';

-- Shopify's order webhook, mapped from the payload it came with
SELECT * FROM ordersync.inbox_receive_apply('sh', 'order', 'ra-sh-1', '{"id": 4400000001, "email": "kim@example.com", "updated_at": "2022-01-01T10:00:00Z", "financial_status": "pending", "customer": {"id": 2, "first_name": "Kim", "last_name": "Lee"}, "line_items": [{"id": 1, "sku": "RA-1", "quantity": 2, "price": "3.00"}], "shipping_address": {"city": "Oslo"}}', 'orders/create');
SELECT o.customer, l.sku, l.qty, l.price
  FROM ordersync.orders o JOIN ordersync.order_line l ON l.order_id = o.id
 WHERE o.channel = 'sh' AND o.external_id = '4400000001';

-- refused as inbox_receive() refuses: OS004, nothing written
SELECT * FROM ordersync.inbox_receive_apply('nowhere', 'order', 'ra-9', '{"external_id": "RA-9", "lines": []}');
SELECT * FROM ordersync.inbox_receive_apply('mp', 'order', 'ra-9', '{"external_id": "RA-9"}');
SELECT * FROM ordersync.inbox_receive_apply('mp', 'refund', 'ra-9', '{"external_id": "RA-9", "lines": []}');
SELECT * FROM ordersync.inbox_receive_apply('mp', 'order', NULL, '{"external_id": "RA-9", "lines": []}');
SELECT count(*) FROM ordersync.inbox WHERE event_id = 'ra-9';

-- the relay may call it; applications may not
SET ROLE ordersync_relay;
SELECT state FROM ordersync.inbox_receive_apply('mp', 'order', 'ra-10', '{"external_id": "RA-O10", "lines": [{"sku": "RA-1", "qty": 1, "price": "1.00"}]}');
RESET ROLE;
SET ROLE ordersync_app;
SELECT state FROM ordersync.inbox_receive_apply('mp', 'order', 'ra-11', '{"external_id": "RA-O11", "lines": [{"sku": "RA-1", "qty": 1, "price": "1.00"}]}');
RESET ROLE;
SELECT count(*) FROM ordersync.inbox WHERE event_id = 'ra-11';
SELECT 'dropped' FROM pg_drop_replication_slot('regress_receive_apply');
