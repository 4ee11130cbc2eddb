-- sinks: where the relay delivers, configured as data; every change is a
-- relay.config message in the same transaction; secrets never stored;
-- dead letters and redelivery
SELECT 'init' FROM pg_create_logical_replication_slot('regress_sinks', 'wal2json');
\set VERBOSITY default
\set SHOW_CONTEXT never

SELECT ordersync.add_sink('warehouse', 'https://wms.example.com/hooks/orders', '{"secret_env": "WMS_SECRET", "max_attempts": 5}');
SELECT ordersync.add_sink('payments', 'kafka://k1:9092,k2:9092/orders');
SELECT ordersync.add_route('warehouse', 'order.*');
SELECT ordersync.add_route('warehouse', 'inventory.low_stock');
SELECT ordersync.add_route('payments', 'order.paid');
SELECT ordersync.add_route('payments', 'order.paid');	-- already there: false, no message
SELECT * FROM ordersync.route ORDER BY 1, 2;

-- each change announced the whole configuration, in order
SELECT type, subject, jsonb_array_length(data->'sinks') AS sinks, jsonb_array_length(data->'routes') AS routes
FROM slot_events('regress_sinks');
SELECT ordersync.relay_config();

-- bad input: own SQLSTATE, nothing changes
SELECT ordersync.add_sink('Bad Name', 'https://x.example.com/');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('files', 'file:/tmp/events.jsonl');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('rmq', 'amqp://ordersync:hunter2@mq:5672/%2f?exchange=orders');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://x.example.com/', '{"secret": "hunter2"}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://x.example.com/', '{"retries": 3}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('k', 'kafka://k1/t', '{"kafka": {"sasl.password": "hunter2"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('k', 'kafka://k1/t', '{"kafka": {"acks": "1"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('warehouse', 'https://other.example.com/');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://x.example.com/', '[]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_route('nosuch', 'order.*');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_route('warehouse', 'order.*.paid');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.drop_sink('nosuch');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS sinks FROM ordersync.sink;
SELECT count(*) AS events_from_failures FROM slot_events('regress_sinks');

-- drop_route, drop_sink (its routes go with it)
SELECT ordersync.drop_route('warehouse', 'inventory.low_stock');
SELECT ordersync.drop_route('warehouse', 'inventory.low_stock');
SELECT ordersync.drop_sink('payments');
SELECT * FROM ordersync.route ORDER BY 1, 2;
SELECT type, jsonb_array_length(data->'sinks') AS sinks, jsonb_array_length(data->'routes') AS routes
FROM slot_events('regress_sinks');

-- a rolled back change tells the relay nothing
BEGIN;
SELECT ordersync.add_route('warehouse', '*');
ROLLBACK;
SELECT count(*) AS events FROM slot_events('regress_sinks');

-- dead letters are written by the relay; redeliver sends one again
SELECT ordersync.record_dead_letter('warehouse',
	'{"specversion": "1.0", "id": "0/1A2B3C/1", "type": "ordersync.order.paid", "subject": "order/7", "data": {"order_id": 7}}',
	'HTTP 400 from https://wms.example.com/hooks/orders: unknown order', 3) AS dl \gset
SELECT sink, event_id, type, subject, error, attempts, redelivered_at IS NULL AS waiting FROM ordersync.dead_letter;
SELECT ordersync.redeliver(:dl);
SELECT type, subject, data->>'sink' AS sink, (data->>'dead_letter_id')::bigint = :dl AS same_id,
	   data->'event'->>'id' AS event_id
FROM slot_events('regress_sinks');
SELECT redeliveries, redelivered_at IS NOT NULL AS redelivered FROM ordersync.dead_letter;
SELECT ordersync.redeliver(-1);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.record_dead_letter('gone', '{"id": "0/1/1", "type": "ordersync.order.paid", "subject": "order/8"}', 'x', 1) AS dl2 \gset
SELECT ordersync.redeliver(:dl2);
\echo :LAST_ERROR_SQLSTATE

-- the application role may not touch sinks or dead letters
SET ROLE ordersync_app;
SELECT ordersync.add_sink('evil', 'https://evil.example.com/');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM ordersync.dead_letter;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

SELECT ordersync.drop_sink('warehouse');
SELECT 'dropped' FROM pg_drop_replication_slot('regress_sinks');
