-- events: one transactional logical message per change, decoded by wal2json
SELECT 'init' FROM pg_create_logical_replication_slot('regress_events', 'wal2json');


SELECT ordersync.receive_stock('V-1', 'main', 3);
SELECT * FROM slot_events('regress_events');

SELECT ordersync.place_order('web', 'EV-1',
	'[{"sku": "V-1", "qty": 2, "price": "7.5"}]', '{"name": "Ada"}') AS v1 \gset
CREATE TEMP TABLE ev AS SELECT * FROM slot_events('regress_events');
SELECT type, subject = 'order/' || :v1 AS subject_ok,
	   data - 'created_at' - 'expires_at' - 'order_id' AS data,
	   data->>'created_at' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$' AS iso_time,
	   (data->>'order_id')::bigint = :v1 AS id_ok
FROM ev WHERE type LIKE 'order.%';
SELECT type, subject, data - 'order_id' AS data FROM ev WHERE type NOT LIKE 'order.%';

-- one transaction: the order event first, then the stock events it causes
SELECT ordersync.set_status(:v1, 'cancelled', 'changed mind');
SELECT type, subject LIKE 'order/%' AS order_subject,
	   data->>'status' AS status, data->>'previous_status' AS previous, data->>'reason' AS reason,
	   data->>'expires_at' AS expires_at, data->>'qty' AS qty, data->>'available' AS available
FROM slot_events('regress_events');

-- a rolled back change and a refused transition emit nothing
BEGIN;
SELECT ordersync.place_order('web', 'EV-2', '[{"sku": "V-1", "qty": 1, "price": "7.50"}]') > 0 AS placed;
ROLLBACK;
SELECT ordersync.set_status(:v1, 'paid');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS events FROM slot_events('regress_events');

-- every status an order reaches has its own event type
SELECT ordersync.place_order('web', 'EV-3', '[{"sku": "V-1", "qty": 1, "price": "7.50"}]') AS v3 \gset
SELECT ordersync.set_status(:v3, 'paid');
SELECT ordersync.set_status(:v3, 'fulfilling');
SELECT ordersync.set_status(:v3, 'shipped');
SELECT ordersync.set_status(:v3, 'delivered');
SELECT ordersync.set_status(:v3, 'returned');
SELECT type, data->>'previous_status' AS previous FROM slot_events('regress_events');

-- no secret and no internal column leaks into an order event
SELECT ordersync.place_order('web', 'EV-4', '[{"sku": "V-1", "qty": 1, "price": "7.50"}]') AS v4 \gset
SELECT array_agg(k ORDER BY k) AS keys
FROM slot_events('regress_events'), jsonb_object_keys(data) k WHERE type = 'order.created';

SELECT pg_drop_replication_slot('regress_events');
