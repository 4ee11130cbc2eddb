-- inbox: channels' webhooks kept once per (channel, event id) and applied
-- once, in version order per order (issue 12).  Without the background
-- worker here, inbox_apply(100) does what the worker and ordersyncd do,
-- many orders per call (they apply one order per transaction).
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT 'init' FROM pg_create_logical_replication_slot('regress_inbox', 'wal2json');
SELECT ordersync.receive_stock('IN-1', 'main', 10);
SELECT ordersync.receive_stock('IN-FEW', 'main', 1);
SELECT ordersync.add_channel('mp', '{"PAID": "paid", "PICKING": "fulfilling", "SHIPPED": "shipped", "CANCELED": "cancelled"}');

-- ---------------------------------------------------------------------------
-- Settings: secrets by reference only, known schemes and formats
-- ---------------------------------------------------------------------------
SELECT ordersync.set_channel_inbound('mp', '{"signature": "standard-webhooks", "secret_env": "ORDERSYNC_MP", "format": "ordersync"}');
SELECT channel, signature, format, options FROM ordersync.channel_inbound;
SELECT ordersync.set_channel_inbound('mp', '{"signature": "standard-webhooks", "secret": "whsec_abc", "format": "ordersync"}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_channel_inbound('mp', '{"signature": "hmac", "secret_env": "ORDERSYNC_MP", "format": "ordersync"}');
SELECT ordersync.set_channel_inbound('mp', '{"signature": "shopify", "secret_env": "ORDERSYNC_MP", "format": "amazon"}');
SELECT ordersync.set_channel_inbound('mp', '{"signature": "shopify", "format": "shopify"}');
SELECT ordersync.set_channel_inbound('mp', '{"signature": "shopify", "secret_env": "A", "secret_file": "/s", "format": "shopify"}');
SELECT ordersync.set_channel_inbound('mp', '{"signature": "shopify", "secret_file": "/etc/../etc/shadow", "format": "shopify"}');
SELECT ordersync.set_channel_inbound('mp', '{"signature": "shopify", "secret_env": "ORDERSYNC_MP", "format": "shopify", "tolerance_seconds": 60}');
SELECT ordersync.set_channel_inbound('mp', '{"signature": "standard-webhooks", "secret_env": "ORDERSYNC_MP", "format": "ordersync", "url": "x"}');
SELECT ordersync.set_channel_inbound('nowhere', '{}');
SELECT channel, options FROM ordersync.channel_inbound;	-- unchanged

-- ---------------------------------------------------------------------------
-- Receiving: one row per (channel, event id); what it is about is checked
-- ---------------------------------------------------------------------------
SELECT ordersync.inbox_receive('mp', 'status', 'ev-3', '{"external_id": "MP-1", "status": "SHIPPED", "version": 3}') IS NOT NULL AS kept;
SELECT ordersync.inbox_receive('mp', 'status', 'ev-1', '{"external_id": "MP-1", "status": "PAID", "version": 1}') IS NOT NULL AS kept;
SELECT ordersync.inbox_receive('mp', 'status', 'ev-2', '{"external_id": "MP-1", "status": "PICKING", "version": "1970-01-01T00:00:02Z"}') IS NOT NULL AS kept;
SELECT ordersync.inbox_receive('mp', 'order', 'ev-0', '{"external_id": "MP-1", "lines": [{"sku": "IN-1", "qty": 2, "price": "4.50"}], "customer": {"name": "Grace"}}') IS NOT NULL AS kept;
-- the same event again: NULL, nothing written
SELECT ordersync.inbox_receive('mp', 'order', 'ev-0', '{"external_id": "MP-1", "lines": [{"sku": "IN-1", "qty": 2, "price": "4.50"}]}') AS repeat;
SELECT count(*) FROM ordersync.inbox;
-- refused: OS004, nothing written
SELECT ordersync.inbox_receive('web', 'order', 'ev-9', '{"external_id": "W-9", "lines": []}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.inbox_receive('mp', 'refund', 'ev-9', '{}');
SELECT ordersync.inbox_receive('mp', 'order', E'ev\u200b9', '{"external_id": "MP-9", "lines": []}');
SELECT ordersync.inbox_receive('mp', 'order', 'ev-9', '[1, 2]');
SELECT ordersync.inbox_receive('mp', 'order', 'ev-9', '{"external_id": 9, "lines": []}');
SELECT ordersync.inbox_receive('mp', 'order', 'ev-9', '{"external_id": "MP-9", "lines": [], "total": "9.00"}');
SELECT ordersync.inbox_receive('mp', 'order', 'ev-9', '{"external_id": "MP-9"}');
SELECT ordersync.inbox_receive('mp', 'status', 'ev-9', '{"external_id": "MP-9", "status": "PAID"}');
SELECT ordersync.inbox_receive('mp', 'status', 'ev-9', '{"external_id": "MP-9", "status": "PAID", "version": "now"}');
SELECT ordersync.inbox_receive('mp', 'status', 'ev-9', '{"external_id": "MP-9", "status": "PAID", "version": -1}');
SELECT ordersync.inbox_receive('mp', 'status', 'ev-9', '{"external_id": "MP-9", "status": "PAID", "version": 1.5}');
SELECT count(*) FROM ordersync.inbox;

-- versions: integers as they are, RFC 3339 times as Unix seconds
SELECT v, ordersync.channel_version(v::jsonb)
  FROM unnest(ARRAY['7', '"2024-05-01T10:00:00Z"', '"2024-05-01T12:00:00.5+02:00"',
					'"2024-13-01T10:00:00Z"', '"tomorrow"', '7.0', 'null']) v;

-- ---------------------------------------------------------------------------
-- Applying: the order first, then its updates by version, each once
-- ---------------------------------------------------------------------------
SELECT count(*) > 0 AS skip FROM slot_events('regress_inbox');
SELECT * FROM ordersync.inbox_apply(100);
SELECT event_id, kind, state, error, version FROM ordersync.inbox ORDER BY version NULLS FIRST;
SELECT status, total, customer FROM ordersync.orders WHERE channel = 'mp' AND external_id = 'MP-1';
SELECT type, data->>'status' AS status FROM slot_events('regress_inbox') WHERE type LIKE 'order.%';
SELECT * FROM ordersync.inbox_version;
-- nothing left to do
SELECT * FROM ordersync.inbox_apply(100);

-- an update older than the last applied one is stale; the same word again too
SELECT ordersync.inbox_receive('mp', 'status', 'ev-4', '{"external_id": "MP-1", "status": "CANCELED", "version": 2}') IS NOT NULL AS kept;
SELECT ordersync.inbox_receive('mp', 'status', 'ev-5', '{"external_id": "MP-1", "status": "SHIPPED", "version": 3}') IS NOT NULL AS kept;
SELECT * FROM ordersync.inbox_apply(100);
SELECT event_id, state, error FROM ordersync.inbox WHERE event_id IN ('ev-4', 'ev-5') ORDER BY 1;

-- parked: the state machine cannot take it yet; applied once the order moves
SELECT ordersync.place_order('mp', 'MP-2', '[{"sku": "IN-1", "qty": 1, "price": "4.50"}]') > 0 AS placed;
SELECT ordersync.inbox_receive('mp', 'status', 'ev-21', '{"external_id": "MP-2", "status": "PICKING", "version": 2}') IS NOT NULL AS kept;
SELECT * FROM ordersync.inbox_apply(100);
SELECT event_id, state, regexp_replace(error, 'Order [0-9]+', 'Order N') AS error, attempts FROM ordersync.inbox WHERE external_id = 'MP-2';
SELECT ordersync.inbox_receive('mp', 'status', 'ev-20', '{"external_id": "MP-2", "status": "PAID", "version": 1}') IS NOT NULL AS kept;
SELECT * FROM ordersync.inbox_apply(100);
SELECT event_id, state, error, attempts FROM ordersync.inbox WHERE external_id = 'MP-2' ORDER BY version;
SELECT status FROM ordersync.orders WHERE external_id = 'MP-2';

-- a word the status map does not know: failed, with what to do
SELECT ordersync.inbox_receive('mp', 'status', 'ev-22', '{"external_id": "MP-2", "status": "LOST", "version": 5}') IS NOT NULL AS kept;
SELECT * FROM ordersync.inbox_apply(100);
SELECT state, error FROM ordersync.inbox WHERE event_id = 'ev-22';

-- parked until it runs out of attempts, then failed
SET ordersync.inbox_max_attempts = 2;
SELECT ordersync.inbox_receive('mp', 'status', 'ev-30', '{"external_id": "MP-3", "status": "PAID", "version": 1}') IS NOT NULL AS kept;
SELECT * FROM ordersync.inbox_apply(100);
SELECT state, attempts, error FROM ordersync.inbox WHERE event_id = 'ev-30';
UPDATE ordersync.inbox SET attempted_at = attempted_at - interval '1 hour' WHERE event_id = 'ev-30';
SELECT pg_sleep(1.1);	-- each session looks for parked rows that are due once a second
SELECT * FROM ordersync.inbox_apply(100);
SELECT state, attempts, error FROM ordersync.inbox WHERE event_id = 'ev-30';
RESET ordersync.inbox_max_attempts;

-- an order the stock cannot cover: failed with the OS001 facts, and an event
SELECT ordersync.inbox_receive('mp', 'order', 'ev-40', '{"external_id": "MP-4", "lines": [{"sku": "IN-FEW", "qty": 3, "price": "1.00"}]}') IS NOT NULL AS kept;
SELECT ordersync.inbox_receive('mp', 'order', 'ev-41', '{"external_id": "MP-5", "lines": [{"sku": "IN-1", "qty": 1, "price": "1.005"}]}') IS NOT NULL AS kept;
SELECT * FROM ordersync.inbox_apply(100);
SELECT event_id, state, error FROM ordersync.inbox WHERE event_id IN ('ev-40', 'ev-41') ORDER BY 1;
SELECT type, subject, data - 'inbox_id' AS data FROM slot_events('regress_inbox') WHERE type = 'order.import_failed' ORDER BY data->>'external_id';
SELECT count(*) FROM ordersync.orders WHERE external_id IN ('MP-4', 'MP-5');

-- ---------------------------------------------------------------------------
-- Shopify and WooCommerce payloads (abridged; full samples in test/inbound/)
-- ---------------------------------------------------------------------------
SELECT ordersync.add_channel('sh', '{"paid": "paid", "fulfilled": "fulfilling", "cancelled": "cancelled"}');
SELECT ordersync.set_channel_inbound('sh', '{"signature": "shopify", "secret_env": "ORDERSYNC_SH", "format": "shopify"}');
SELECT ordersync.inbox_receive('sh', 'order', 'sh-1', '{"id": 820982911946154508, "email": "jon@example.com", "updated_at": "2021-12-31T19:00:00-05:00", "financial_status": "pending", "fulfillment_status": null, "cancelled_at": null, "customer": {"id": 1, "first_name": "John", "last_name": "Smith"}, "line_items": [{"id": 1, "sku": "IN-1", "quantity": 1, "price": "199.00", "title": "IPod"}], "shipping_address": {"city": "Shippington", "country_code": "US"}}', 'orders/create') IS NOT NULL AS kept;
SELECT ordersync.inbox_receive('sh', 'status', 'sh-2', '{"id": 820982911946154508, "updated_at": "2021-12-31T19:05:00-05:00", "financial_status": "paid", "fulfillment_status": null, "cancelled_at": null, "line_items": []}', 'orders/paid') IS NOT NULL AS kept;
SELECT ordersync.inbox_receive('sh', 'status', 'sh-3', '{"id": 820982911946154508, "updated_at": "2021-12-31T19:06:00-05:00", "financial_status": "paid", "fulfillment_status": null, "cancelled_at": "2021-12-31T19:06:00-05:00", "line_items": []}', 'orders/cancelled') IS NOT NULL AS kept;
SELECT ordersync.add_channel('wc', '{"processing": "paid", "completed": "fulfilling"}');
SELECT ordersync.set_channel_inbound('wc', '{"signature": "woocommerce", "secret_file": "/etc/ordersync/wc.secret", "format": "woocommerce"}');
SELECT ordersync.inbox_receive('wc', 'order', 'wc-1', '{"id": 727, "status": "pending", "date_modified_gmt": "2017-03-22T19:28:08", "billing": {"first_name": "John", "last_name": "Doe", "email": "john.doe@example.com"}, "shipping": {"city": "San Francisco"}, "line_items": [{"id": 315, "sku": "IN-1", "quantity": 2, "price": 3.333, "total": "6.67"}]}', 'order.created') IS NOT NULL AS kept;
SELECT ordersync.inbox_receive('wc', 'status', 'wc-2', '{"id": 727, "status": "processing", "date_modified_gmt": "2017-03-22T19:40:00", "line_items": []}', 'order.updated') IS NOT NULL AS kept;
SELECT ordersync.inbox_receive('wc', 'status', 'wc-3', '{"id": 727, "status": "processing", "date_modified_gmt": "2017-03-22 19:40"}', 'order.updated');
SELECT * FROM ordersync.inbox_apply(100);
SELECT channel, event_id, topic, state, error FROM ordersync.inbox WHERE channel IN ('sh', 'wc') ORDER BY id;
SELECT channel, external_id, status, lines, customer FROM ordersync.orders WHERE channel IN ('sh', 'wc') ORDER BY id;

-- ---------------------------------------------------------------------------
-- Reconciliation: the channel's own list against ours
-- ---------------------------------------------------------------------------
SELECT external_id, issue, channel_status, status, action,
	   regexp_replace(detail, '(order|row) [0-9]+', '\1 N') AS detail
  FROM ordersync.reconcile('mp', '[
	{"external_id": "MP-1", "status": "SHIPPED", "version": 3},
	{"external_id": "MP-2", "status": "SHIPPED", "version": 9},
	{"external_id": "MP-4", "status": "PAID", "version": 1},
	{"external_id": "MP-8", "status": "PAID", "version": 1},
	{"external_id": "MP-1", "status": "CANCELED", "version": 1},
	{"external_id": "MP-2", "status": "REFUNDED", "version": 10}
]')
 ORDER BY external_id, issue;
SELECT status FROM ordersync.orders WHERE external_id = 'MP-2';
SELECT external_id, issue, status, action, regexp_replace(detail, '(order|row) [0-9]+', '\1 N') AS detail
  FROM ordersync.reconcile('mp', '[{"external_id": "MP-2", "status": "CANCELED"}]') ORDER BY 1;
SELECT * FROM ordersync.reconcile('mp', '{"external_id": "MP-2"}');
SELECT * FROM ordersync.reconcile('mp', '[{"external_id": "MP-2", "status": "PAID", "version": "soon"}]');
SELECT * FROM ordersync.reconcile('nowhere', '[]');

-- ---------------------------------------------------------------------------
-- Pruning: final rows older than ordersync.inbox_retention
-- ---------------------------------------------------------------------------
UPDATE ordersync.inbox SET received_at = received_at - interval '30 days' WHERE channel = 'wc';
SELECT ordersync.prune_inbox();
SELECT count(*) FROM ordersync.inbox WHERE channel = 'wc';

-- ---------------------------------------------------------------------------
-- Who may do what
-- ---------------------------------------------------------------------------
SELECT p.proname, has_function_privilege('ordersync_relay', p.oid, 'EXECUTE') AS relay,
	   has_function_privilege('ordersync_app', p.oid, 'EXECUTE') AS app,
	   has_function_privilege('ordersync_admin', p.oid, 'EXECUTE') AS admin,
	   has_function_privilege('public', p.oid, 'EXECUTE') AS public
  FROM pg_proc p
 WHERE p.pronamespace = 'ordersync'::regnamespace
   AND p.proname IN ('set_channel_inbound', 'inbox_receive', 'inbox_apply', 'prune_inbox', 'reconcile', 'channel_version')
 ORDER BY 1;
SELECT c.relname, has_table_privilege('ordersync_relay', c.oid, 'SELECT') AS relay_reads,
	   has_table_privilege('ordersync_relay', c.oid, 'INSERT') OR has_table_privilege('ordersync_relay', c.oid, 'UPDATE') AS relay_writes,
	   has_table_privilege('ordersync_app', c.oid, 'SELECT') AS app_reads,
	   has_table_privilege('ordersync_admin', c.oid, 'INSERT') AS admin_writes
  FROM pg_class c
 WHERE c.relnamespace = 'ordersync'::regnamespace AND c.relname IN ('channel_inbound', 'inbox', 'inbox_version')
 ORDER BY 1;
SET ROLE ordersync_relay;
SELECT ordersync.inbox_receive('mp', 'order', 'ev-50', '{"external_id": "MP-50", "lines": [{"sku": "IN-1", "qty": 1, "price": "1.00"}]}') IS NOT NULL AS kept;
INSERT INTO ordersync.inbox (channel, event_id, kind, format, external_id, payload) VALUES ('mp', 'ev-51', 'order', 'ordersync', 'MP-51', '{}');
SELECT ordersync.place_order('mp', 'MP-52', '[{"sku": "IN-1", "qty": 1, "price": "1.00"}]');
SELECT ordersync.set_channel_inbound('web', '{"signature": "shopify", "secret_env": "ORDERSYNC_X", "format": "shopify"}');
SELECT processed, applied FROM ordersync.inbox_apply(100);
RESET ROLE;
SELECT state FROM ordersync.inbox WHERE event_id = 'ev-50';
SELECT 'dropped' FROM pg_drop_replication_slot('regress_inbox');
