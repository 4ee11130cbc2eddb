-- test/pgtap/schema.sql — the shape of ordersync's data: tables, columns and
-- types, keys, CHECK constraints that exist and bite, triggers, indexes, the
-- shipped state machine and reference data.  Runs as a superuser inside a
-- transaction that run.sh rolls back.

SELECT plan(186);

-- ---------------------------------------------------------------------------
-- Schema, roles, tables
-- ---------------------------------------------------------------------------
SELECT has_schema('ordersync', 'schema ordersync exists');
SELECT is((SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'ordersync'),
	'ordersync', 'the extension lives in schema ordersync');
SELECT has_role('ordersync_app', 'role ordersync_app exists');
SELECT has_role('ordersync_admin', 'role ordersync_admin exists');
SELECT has_role('ordersync_relay', 'role ordersync_relay exists (0.3.0)');
SELECT is((SELECT rolcanlogin FROM pg_roles WHERE rolname = 'ordersync_app'), false,
	'ordersync_app is NOLOGIN (grant it to login roles)');
SELECT is((SELECT rolcanlogin FROM pg_roles WHERE rolname = 'ordersync_admin'), false,
	'ordersync_admin is NOLOGIN (grant it to login roles)');
SELECT is((SELECT rolcanlogin OR rolreplication OR rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls
	FROM pg_roles WHERE rolname = 'ordersync_relay'), false,
	'ordersync_relay is NOLOGIN and has no other attribute (the relay''s login role adds REPLICATION)');

SELECT tables_are('ordersync', ARRAY['channel', 'location', 'sku', 'stock', 'status',
	'transition', 'orders', 'order_line', 'reservation', 'history', 'sink', 'route', 'dead_letter',
	'redelivery', 'rollup_hourly', 'rollup_daily_sku', 'rollup_state', 'channel_inbound', 'inbox',
	'inbox_version', 'stockout_watch', 'history_seal', 'retention', 'order_hold',
	'rollup_status_time', 'rollup_funnel', 'rollup_stock_level', 'rollup_stockout',
	'order_stuck', 'demand_refused', 'history_chain_lock'],
	'ordersync has exactly the thirty-one documented tables');
SELECT views_are('ordersync', ARRAY['rollup_hourly_recount', 'rollup_daily_sku_recount',
	'rollup_status_time_recount', 'rollup_funnel_recount', 'rollup_stockout_recount', 'funnel', 'stuck_orders'],
	'ordersync has only the views that recount the rollups, and the funnel and stuck orders (0.5.0)');
SELECT sequences_are('ordersync', ARRAY['orders_id_seq', 'history_id_seq', 'dead_letter_id_seq',
	'redelivery_id_seq', 'inbox_id_seq'],
	'ordersync has only the identity sequences of orders, history, dead_letter and redelivery');
SELECT columns_are('ordersync', 'redelivery', ARRAY['id', 'dead_letter_id', 'sink', 'event', 'requested_at',
	'requested_by'], 'redelivery columns (the relay reads them from the stream)');
SELECT results_eq(
	$$SELECT a.attname::text COLLATE "default", format_type(a.atttypid, a.atttypmod), a.attnotnull,
	         pg_get_expr(d.adbin, d.adrelid) COLLATE "default"
	    FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	   WHERE a.attrelid = 'ordersync.redelivery'::regclass AND a.attnum > 0 AND NOT a.attisdropped
	   ORDER BY a.attnum$$,
	$$VALUES ('id', 'bigint', true, 'nextval(''ordersync.redelivery_id_seq''::regclass)'),
	         ('dead_letter_id', 'bigint', true, NULL), ('sink', 'text', true, NULL),
	         ('event', 'jsonb', true, NULL), ('requested_at', 'timestamp with time zone', true, 'now()'),
	         ('requested_by', 'text', true, 'CURRENT_USER')$$,
	'redelivery: types, NOT NULL and defaults');
SELECT col_is_pk('ordersync', 'redelivery', ARRAY['id'], 'redelivery primary key (id)');
SELECT results_eq(
	$$SELECT attname::text COLLATE "default", attstorage::text FROM pg_attribute
	   WHERE attrelid = 'ordersync.sink'::regclass AND attname IN ('uri', 'options') ORDER BY 1$$,
	$$VALUES ('options', 'm'), ('uri', 'm')$$,
	'sink.uri and sink.options are kept in the row (storage main), never moved out of line');
SELECT col_type_is('ordersync', 'sink', 'options', 'jsonb', 'sink.options is jsonb');
SELECT col_type_is('ordersync', 'dead_letter', 'event', 'jsonb', 'dead_letter.event is jsonb');
SELECT fk_ok('ordersync', 'route', 'sink', 'ordersync', 'sink', 'name', 'route.sink references sink.name');
SELECT hasnt_column('ordersync', 'sink', 'secret', 'sink has no column for a secret');

-- ---------------------------------------------------------------------------
-- Columns and types
-- ---------------------------------------------------------------------------
SELECT columns_are('ordersync', 'channel', ARRAY['id', 'status_map', 'created_at', 'market'], 'channel columns');
SELECT col_type_is('ordersync', 'channel', 'id', 'text', 'channel.id is text');
SELECT col_type_is('ordersync', 'channel', 'status_map', 'jsonb', 'channel.status_map is jsonb');
SELECT col_type_is('ordersync', 'channel', 'created_at', 'timestamp with time zone', 'channel.created_at is timestamptz');

SELECT columns_are('ordersync', 'location', ARRAY['id', 'priority', 'created_at'], 'location columns');
SELECT col_type_is('ordersync', 'location', 'id', 'text', 'location.id is text');
SELECT col_type_is('ordersync', 'location', 'priority', 'integer', 'location.priority is integer');
SELECT col_type_is('ordersync', 'location', 'created_at', 'timestamp with time zone', 'location.created_at is timestamptz');

SELECT columns_are('ordersync', 'sku', ARRAY['sku', 'buckets', 'low_stock_threshold', 'created_at', 'hot_source'], 'sku columns');
SELECT col_type_is('ordersync', 'sku', 'sku', 'text', 'sku.sku is text');
SELECT col_type_is('ordersync', 'sku', 'buckets', 'integer', 'sku.buckets is integer');
SELECT col_type_is('ordersync', 'sku', 'low_stock_threshold', 'bigint', 'sku.low_stock_threshold is bigint');
SELECT col_type_is('ordersync', 'sku', 'created_at', 'timestamp with time zone', 'sku.created_at is timestamptz');
SELECT col_type_is('ordersync', 'sku', 'hot_source', 'text', 'sku.hot_source is text (operator, auto or NULL)');

SELECT columns_are('ordersync', 'stock', ARRAY['sku', 'location', 'bucket', 'on_hand', 'reserved', 'safety'], 'stock columns');
SELECT col_type_is('ordersync', 'stock', 'bucket', 'integer', 'stock.bucket is integer');
SELECT col_type_is('ordersync', 'stock', 'sku', 'text', 'stock.sku is text');
SELECT col_type_is('ordersync', 'stock', 'location', 'text', 'stock.location is text');
SELECT col_type_is('ordersync', 'stock', 'on_hand', 'bigint', 'stock.on_hand is bigint');
SELECT col_type_is('ordersync', 'stock', 'reserved', 'bigint', 'stock.reserved is bigint');
SELECT col_type_is('ordersync', 'stock', 'safety', 'bigint', 'stock.safety is bigint');

SELECT columns_are('ordersync', 'status', ARRAY['name', 'open', 'builtin', 'sla'], 'status columns');
SELECT col_type_is('ordersync', 'status', 'name', 'text', 'status.name is text');
SELECT col_type_is('ordersync', 'status', 'open', 'boolean', 'status.open is boolean');
SELECT col_type_is('ordersync', 'status', 'builtin', 'boolean', 'status.builtin is boolean');

SELECT columns_are('ordersync', 'transition', ARRAY['from_status', 'to_status', 'effect', 'builtin'], 'transition columns');
SELECT col_type_is('ordersync', 'transition', 'from_status', 'text', 'transition.from_status is text');
SELECT col_type_is('ordersync', 'transition', 'to_status', 'text', 'transition.to_status is text');
SELECT col_type_is('ordersync', 'transition', 'effect', 'text', 'transition.effect is text');
SELECT col_type_is('ordersync', 'transition', 'builtin', 'boolean', 'transition.builtin is boolean');

SELECT columns_are('ordersync', 'orders', ARRAY['id', 'channel', 'external_id', 'status', 'lines',
	'customer', 'total', 'created_at', 'updated_at', 'expires_at', 'erased_at'], 'orders columns');
SELECT col_type_is('ordersync', 'orders', 'id', 'bigint', 'orders.id is bigint');
SELECT col_type_is('ordersync', 'orders', 'channel', 'text', 'orders.channel is text');
SELECT col_type_is('ordersync', 'orders', 'external_id', 'text', 'orders.external_id is text');
SELECT col_type_is('ordersync', 'orders', 'status', 'text', 'orders.status is text');
SELECT col_type_is('ordersync', 'orders', 'lines', 'jsonb', 'orders.lines is jsonb');
SELECT col_type_is('ordersync', 'orders', 'customer', 'jsonb', 'orders.customer is jsonb');
SELECT col_type_is('ordersync', 'orders', 'total', 'numeric(14,2)', 'orders.total is numeric(14,2)');
SELECT col_type_is('ordersync', 'orders', 'created_at', 'timestamp with time zone', 'orders.created_at is timestamptz');
SELECT col_type_is('ordersync', 'orders', 'updated_at', 'timestamp with time zone', 'orders.updated_at is timestamptz');
SELECT col_type_is('ordersync', 'orders', 'expires_at', 'timestamp with time zone', 'orders.expires_at is timestamptz');

SELECT columns_are('ordersync', 'order_line', ARRAY['order_id', 'line_no', 'sku', 'qty', 'price'], 'order_line columns');
SELECT col_type_is('ordersync', 'order_line', 'order_id', 'bigint', 'order_line.order_id is bigint');
SELECT col_type_is('ordersync', 'order_line', 'line_no', 'integer', 'order_line.line_no is integer');
SELECT col_type_is('ordersync', 'order_line', 'sku', 'text', 'order_line.sku is text');
SELECT col_type_is('ordersync', 'order_line', 'qty', 'bigint', 'order_line.qty is bigint');
SELECT col_type_is('ordersync', 'order_line', 'price', 'numeric(14,2)', 'order_line.price is numeric(14,2)');

SELECT columns_are('ordersync', 'reservation', ARRAY['order_id', 'line_no', 'sku', 'location', 'bucket', 'qty', 'state'], 'reservation columns');
SELECT col_type_is('ordersync', 'reservation', 'bucket', 'integer', 'reservation.bucket is integer');
SELECT col_type_is('ordersync', 'reservation', 'order_id', 'bigint', 'reservation.order_id is bigint');
SELECT col_type_is('ordersync', 'reservation', 'line_no', 'integer', 'reservation.line_no is integer');
SELECT col_type_is('ordersync', 'reservation', 'sku', 'text', 'reservation.sku is text');
SELECT col_type_is('ordersync', 'reservation', 'location', 'text', 'reservation.location is text');
SELECT col_type_is('ordersync', 'reservation', 'qty', 'bigint', 'reservation.qty is bigint');
SELECT col_type_is('ordersync', 'reservation', 'state', 'text', 'reservation.state is text');

SELECT columns_are('ordersync', 'history', ARRAY['id', 'at', 'action', 'order_id', 'from_status',
	'to_status', 'sku', 'location', 'qty', 'actor', 'role', 'reason', 'prev_id', 'hash'], 'history columns');
SELECT col_type_is('ordersync', 'history', 'id', 'bigint', 'history.id is bigint');
SELECT col_type_is('ordersync', 'history', 'at', 'timestamp with time zone', 'history.at is timestamptz');
SELECT col_type_is('ordersync', 'history', 'action', 'text', 'history.action is text');
SELECT col_type_is('ordersync', 'history', 'order_id', 'bigint', 'history.order_id is bigint');
SELECT col_type_is('ordersync', 'history', 'from_status', 'text', 'history.from_status is text');
SELECT col_type_is('ordersync', 'history', 'to_status', 'text', 'history.to_status is text');
SELECT col_type_is('ordersync', 'history', 'sku', 'text', 'history.sku is text');
SELECT col_type_is('ordersync', 'history', 'location', 'text', 'history.location is text');
SELECT col_type_is('ordersync', 'history', 'qty', 'bigint', 'history.qty is bigint');
SELECT col_type_is('ordersync', 'history', 'actor', 'text', 'history.actor is text');
SELECT col_type_is('ordersync', 'history', 'role', 'text', 'history.role is text');
SELECT col_type_is('ordersync', 'history', 'reason', 'text', 'history.reason is text');

-- every column is NOT NULL except these optional ones
SELECT set_eq(
	$$SELECT c.relname::text || '.' || a.attname::text
	    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
	   WHERE c.relnamespace = 'ordersync'::regnamespace AND c.relkind = 'r'
	     AND a.attnum > 0 AND NOT a.attisdropped AND NOT a.attnotnull$$,
	ARRAY['sku.low_stock_threshold', 'sku.hot_source', 'orders.customer', 'orders.expires_at', 'history.order_id', 'history.from_status',
	      'history.to_status', 'history.sku', 'history.location', 'history.qty', 'history.reason',
	      'dead_letter.redelivered_at', 'inbox.error', 'inbox.applied_at', 'inbox.topic', 'inbox.version',
	      'inbox.order_id', 'inbox.attempted_at', 'stockout_watch.projected_stockout',
	      'channel.market', 'orders.erased_at', 'history.prev_id', 'history.hash',
	      'retention.personal_data', 'retention.order_records',
	      'status.sla', 'rollup_stockout.ended_at'],
	'exactly the optional columns are nullable');

SELECT is((SELECT attidentity::text FROM pg_attribute WHERE attrelid = 'ordersync.orders'::regclass AND attname = 'id'),
	'a', 'orders.id is GENERATED ALWAYS AS IDENTITY');
SELECT is((SELECT attidentity::text FROM pg_attribute WHERE attrelid = 'ordersync.history'::regclass AND attname = 'id'),
	'a', 'history.id is GENERATED ALWAYS AS IDENTITY');

-- defaults
SELECT col_default_is('ordersync', 'orders', 'status', 'pending'::text, 'orders.status defaults to pending');
SELECT col_default_is('ordersync', 'stock', 'on_hand', 0, 'stock.on_hand defaults to 0');
SELECT col_default_is('ordersync', 'stock', 'reserved', 0, 'stock.reserved defaults to 0');
SELECT col_default_is('ordersync', 'stock', 'safety', 0, 'stock.safety defaults to 0');
SELECT col_default_is('ordersync', 'reservation', 'state', 'held'::text, 'reservation.state defaults to held');
SELECT col_default_is('ordersync', 'transition', 'effect', 'none'::text, 'transition.effect defaults to none');
SELECT col_default_is('ordersync', 'location', 'priority', 0, 'location.priority defaults to 0');
SELECT col_default_is('ordersync', 'sku', 'buckets', 1, 'sku.buckets defaults to 1 (not hot)');
SELECT col_default_is('ordersync', 'stock', 'bucket', 0, 'stock.bucket defaults to 0');
SELECT col_default_is('ordersync', 'reservation', 'bucket', 0, 'reservation.bucket defaults to 0');

-- ---------------------------------------------------------------------------
-- Keys
-- ---------------------------------------------------------------------------
SELECT col_is_pk('ordersync', 'channel', ARRAY['id'], 'channel primary key (id)');
SELECT col_is_pk('ordersync', 'location', ARRAY['id'], 'location primary key (id)');
SELECT col_is_pk('ordersync', 'sku', ARRAY['sku'], 'sku primary key (sku)');
SELECT col_is_pk('ordersync', 'stock', ARRAY['sku', 'location', 'bucket'], 'stock primary key (sku, location, bucket)');
SELECT col_is_pk('ordersync', 'status', ARRAY['name'], 'status primary key (name)');
SELECT col_is_pk('ordersync', 'transition', ARRAY['from_status', 'to_status'], 'transition primary key (from_status, to_status)');
SELECT col_is_pk('ordersync', 'orders', ARRAY['id'], 'orders primary key (id)');
SELECT col_is_pk('ordersync', 'order_line', ARRAY['order_id', 'line_no'], 'order_line primary key (order_id, line_no)');
SELECT col_is_pk('ordersync', 'reservation', ARRAY['order_id', 'line_no', 'location', 'bucket'], 'reservation primary key (order_id, line_no, location, bucket)');
SELECT col_is_pk('ordersync', 'history', ARRAY['id'], 'history primary key (id)');
SELECT col_is_unique('ordersync', 'orders', ARRAY['channel', 'external_id'], 'orders unique (channel, external_id)');

SELECT fk_ok('ordersync', 'stock', ARRAY['sku'], 'ordersync', 'sku', ARRAY['sku'], 'stock.sku references sku');
SELECT fk_ok('ordersync', 'stock', ARRAY['location'], 'ordersync', 'location', ARRAY['id'], 'stock.location references location');
SELECT fk_ok('ordersync', 'transition', ARRAY['from_status'], 'ordersync', 'status', ARRAY['name'], 'transition.from_status references status');
SELECT fk_ok('ordersync', 'transition', ARRAY['to_status'], 'ordersync', 'status', ARRAY['name'], 'transition.to_status references status');
SELECT fk_ok('ordersync', 'orders', ARRAY['channel'], 'ordersync', 'channel', ARRAY['id'], 'orders.channel references channel');
SELECT fk_ok('ordersync', 'order_line', ARRAY['order_id'], 'ordersync', 'orders', ARRAY['id'], 'order_line.order_id references orders');
SELECT set_eq(
	$$SELECT conrelid::regclass::text || '(' || array_to_string(ARRAY(SELECT attname FROM pg_attribute
	           WHERE attrelid = conrelid AND attnum = ANY (conkey) ORDER BY array_position(conkey, attnum)), ',')
	         || ')->' || confrelid::regclass::text
	    FROM pg_constraint WHERE connamespace = 'ordersync'::regnamespace AND contype = 'f'$$,
	ARRAY['ordersync.stock(sku)->ordersync.sku', 'ordersync.stock(location)->ordersync.location',
	      'ordersync.transition(from_status)->ordersync.status', 'ordersync.transition(to_status)->ordersync.status',
	      'ordersync.orders(channel)->ordersync.channel', 'ordersync.order_line(order_id)->ordersync.orders',
	      'ordersync.reservation(order_id,line_no)->ordersync.order_line',
	      'ordersync.route(sink)->ordersync.sink', 'ordersync.channel_inbound(channel)->ordersync.channel',
	      'ordersync.order_hold(order_id)->ordersync.orders'],
	'exactly these foreign keys (none from order_line.sku, so hot-SKU buyers do not share-lock the sku row)');
SELECT fk_ok('ordersync', 'reservation', ARRAY['order_id', 'line_no'], 'ordersync', 'order_line', ARRAY['order_id', 'line_no'], 'reservation (order_id, line_no) references order_line');

-- ---------------------------------------------------------------------------
-- CHECK constraints exist ...
-- ---------------------------------------------------------------------------
SELECT set_eq(
	$$SELECT conrelid::regclass::text || ':' || conname::text FROM pg_constraint
	   WHERE connamespace = 'ordersync'::regnamespace AND contype = 'c'$$,
	ARRAY['ordersync.channel:channel_id_format', 'ordersync.channel:channel_status_map_object',
	      'ordersync.location:location_id_format', 'ordersync.sku:sku_format',
	      'ordersync.sku:sku_buckets_range', 'ordersync.sku:sku_low_stock_threshold_nonnegative',
	      'ordersync.sku:sku_hot_source',
	      'ordersync.stock:stock_bucket_nonnegative',
	      'ordersync.stock:stock_on_hand_nonnegative', 'ordersync.stock:stock_reserved_nonnegative',
	      'ordersync.stock:stock_safety_nonnegative', 'ordersync.stock:stock_reserved_within_on_hand',
	      'ordersync.status:status_name_format', 'ordersync.transition:transition_effect_known',
	      'ordersync.transition:transition_not_to_self', 'ordersync.orders:orders_external_id_format',
	      'ordersync.orders:orders_customer_object', 'ordersync.orders:orders_total_nonnegative',
	      'ordersync.order_line:order_line_qty_positive', 'ordersync.order_line:order_line_price_nonnegative',
	      'ordersync.reservation:reservation_qty_positive', 'ordersync.reservation:reservation_state_known',
	      'ordersync.sink:sink_name_format', 'ordersync.sink:sink_options_object',
	      'ordersync.route:route_pattern_format', 'ordersync.sink:sink_uri_size',
	      'ordersync.sink:sink_options_size', 'ordersync.sku:sku_plain_text',
	      'ordersync.orders:orders_external_id_plain_text', 'ordersync.rollup_state:rollup_state_one_row',
	      'ordersync.channel_inbound:channel_inbound_signature_known',
	      'ordersync.channel_inbound:channel_inbound_format_known', 'ordersync.inbox:inbox_kind_known',
	      'ordersync.inbox:inbox_state_known',
	      'ordersync.channel:channel_market_format', 'ordersync.retention:retention_market_format',
	      'ordersync.retention:retention_personal_data_nonnegative',
	      'ordersync.retention:retention_order_records_nonnegative',
	      'ordersync.history_seal:history_seal_one_row', 'ordersync.status:status_sla_positive'],
	'the documented CHECK constraints exist');
SELECT is_empty(
	$$SELECT conname FROM pg_constraint WHERE connamespace = 'ordersync'::regnamespace AND NOT convalidated$$,
	'on a new installation every constraint is validated (the 0.3.0 ones validate on empty tables)');

-- ... and bite (as the superuser, so privileges do not get in the way)
DO $$
BEGIN
	PERFORM ordersync.add_location('pgtap-wh', 0);
	PERFORM ordersync.receive_stock('PGTAP-SKU', 'pgtap-wh', 5);
END $$;

SELECT throws_ok($$UPDATE ordersync.stock SET reserved = 6 WHERE sku = 'PGTAP-SKU'$$,
	'23514', NULL, 'stock: reserved > on_hand is refused');
SELECT throws_ok($$UPDATE ordersync.stock SET on_hand = 4, reserved = 5 WHERE sku = 'PGTAP-SKU'$$,
	'23514', NULL, 'stock: lowering on_hand below reserved is refused');
SELECT lives_ok($$UPDATE ordersync.stock SET reserved = 5 WHERE sku = 'PGTAP-SKU'$$,
	'stock: reserved = on_hand is allowed');
SELECT throws_ok($$UPDATE ordersync.stock SET on_hand = -1, reserved = 0 WHERE sku = 'PGTAP-SKU'$$,
	'23514', NULL, 'stock: negative on_hand is refused');
SELECT throws_ok($$UPDATE ordersync.stock SET reserved = -1 WHERE sku = 'PGTAP-SKU'$$,
	'23514', NULL, 'stock: negative reserved is refused');
SELECT throws_ok($$UPDATE ordersync.stock SET safety = -1 WHERE sku = 'PGTAP-SKU'$$,
	'23514', NULL, 'stock: negative safety is refused');
SELECT throws_ok($$INSERT INTO ordersync.sku (sku) VALUES (E'PGTAP\u202ESKU')$$,
	'23514', NULL, 'sku: a bidirectional override is refused (sku_plain_text)');
SELECT throws_ok($$INSERT INTO ordersync.sku (sku) VALUES (E'PGTAP\x01')$$,
	'23514', NULL, 'sku: a control character is refused (sku_plain_text)');
SELECT throws_ok($$INSERT INTO ordersync.sku (sku) VALUES (' PGTAP')$$,
	'23514', NULL, 'sku: a leading space is refused (sku_plain_text)');
SELECT lives_ok($$INSERT INTO ordersync.sku (sku) VALUES ('PGTAP Größe 42')$$,
	'sku: inner spaces and letters of any script are fine');
SELECT throws_ok($$INSERT INTO ordersync.orders (channel, external_id, lines, total) VALUES ('web', E'pgtap\u200Bo', '[]', 1)$$,
	'23514', NULL, 'orders: an external id with a zero-width space is refused (orders_external_id_plain_text)');
SELECT throws_ok($$INSERT INTO ordersync.sink (name, uri) VALUES ('pgtap-big', 'https://x.example.com/' || repeat('a', 2030))$$,
	'23514', NULL, 'sink: a uri over 2048 bytes is refused (sink_uri_size)');
SELECT throws_ok($$INSERT INTO ordersync.sink (name, uri, options) VALUES ('pgtap-big', 'https://x.example.com/', jsonb_build_object('x', repeat('a', 4090)))$$,
	'23514', NULL, 'sink: options over 4096 bytes are refused (sink_options_size)');
SELECT lives_ok($$UPDATE ordersync.stock SET safety = 100 WHERE sku = 'PGTAP-SKU'$$,
	'stock: safety above on_hand is allowed (available counts as 0)');
SELECT throws_ok($$INSERT INTO ordersync.stock (sku, location) VALUES ('NO-SUCH-SKU', 'pgtap-wh')$$,
	'23503', NULL, 'stock: unknown SKU is refused (foreign key)');
SELECT throws_ok($$INSERT INTO ordersync.sku (sku) VALUES ('')$$,
	'23514', NULL, 'sku: empty SKU is refused');
SELECT throws_ok($$INSERT INTO ordersync.sku (sku) VALUES (repeat('x', 101))$$,
	'23514', NULL, 'sku: SKU over 100 characters is refused');
SELECT throws_ok($$UPDATE ordersync.sku SET buckets = 0 WHERE sku = 'PGTAP-SKU'$$,
	'23514', NULL, 'sku: 0 buckets is refused');
SELECT throws_ok($$UPDATE ordersync.sku SET buckets = 1025 WHERE sku = 'PGTAP-SKU'$$,
	'23514', NULL, 'sku: more than 1024 buckets is refused');
SELECT lives_ok($$UPDATE ordersync.sku SET buckets = 1024 WHERE sku = 'PGTAP-SKU'$$,
	'sku: 1024 buckets is allowed');
SELECT throws_ok($$UPDATE ordersync.sku SET low_stock_threshold = -1 WHERE sku = 'PGTAP-SKU'$$,
	'23514', NULL, 'sku: negative low_stock_threshold is refused');
SELECT throws_ok($$INSERT INTO ordersync.stock (sku, location, bucket) VALUES ('PGTAP-SKU', 'pgtap-wh', -1)$$,
	'23514', NULL, 'stock: negative bucket is refused');
SELECT throws_ok($$INSERT INTO ordersync.stock (sku, location, bucket) VALUES ('PGTAP-SKU', 'pgtap-wh', 0)$$,
	'23505', NULL, 'stock: a second row for the same (sku, location, bucket) is refused');
SELECT throws_ok($$INSERT INTO ordersync.channel (id) VALUES ('Bad Channel')$$,
	'23514', NULL, 'channel: id with upper case and space is refused');
SELECT throws_ok($$INSERT INTO ordersync.channel (id, status_map) VALUES ('pgtap-ch', '[]')$$,
	'23514', NULL, 'channel: status_map that is not an object is refused');
SELECT throws_ok($$INSERT INTO ordersync.location (id) VALUES ('-leading-dash')$$,
	'23514', NULL, 'location: id starting with a dash is refused');
SELECT throws_ok($$INSERT INTO ordersync.status (name) VALUES ('On Hold')$$,
	'23514', NULL, 'status: name with upper case and space is refused');
SELECT throws_ok($$INSERT INTO ordersync.transition (from_status, to_status) VALUES ('paid', 'paid')$$,
	'23514', NULL, 'transition: from a status to itself is refused');
SELECT throws_ok($$INSERT INTO ordersync.transition (from_status, to_status, effect) VALUES ('shipped', 'cancelled', 'explode')$$,
	'23514', NULL, 'transition: unknown effect is refused');
SELECT throws_ok($$INSERT INTO ordersync.transition (from_status, to_status) VALUES ('paid', 'no_such_status')$$,
	'23503', NULL, 'transition: unknown status is refused (foreign key)');

-- an order inserted by hand, to exercise the order tables' constraints
INSERT INTO ordersync.orders (channel, external_id, lines, total)
	VALUES ('web', 'pgtap-o1', '[]', 1.00);
SELECT throws_ok($$INSERT INTO ordersync.orders (channel, external_id, lines, total) VALUES ('web', 'pgtap-o1', '[]', 2)$$,
	'23505', NULL, 'orders: a second (channel, external_id) is refused');
SELECT lives_ok($$INSERT INTO ordersync.orders (channel, external_id, lines, total) VALUES ('app', 'pgtap-o1', '[]', 2)$$,
	'orders: the same external_id on another channel is allowed');
SELECT throws_ok($$INSERT INTO ordersync.orders (channel, external_id, lines, total) VALUES ('web', '', '[]', 2)$$,
	'23514', NULL, 'orders: empty external_id is refused');
SELECT throws_ok($$INSERT INTO ordersync.orders (channel, external_id, lines, total) VALUES ('web', 'pgtap-o2', '[]', -0.01)$$,
	'23514', NULL, 'orders: negative total is refused');
SELECT throws_ok($$INSERT INTO ordersync.orders (channel, external_id, lines, total, customer) VALUES ('web', 'pgtap-o3', '[]', 1, '"ada"')$$,
	'23514', NULL, 'orders: customer that is not an object is refused');
SELECT throws_ok($$INSERT INTO ordersync.orders (channel, external_id, lines, total) VALUES ('nochannel', 'pgtap-o4', '[]', 1)$$,
	'23503', NULL, 'orders: unknown channel is refused (foreign key)');
SELECT throws_ok($$INSERT INTO ordersync.orders (id, channel, external_id, lines, total) VALUES (424242, 'web', 'pgtap-o5', '[]', 1)$$,
	'428C9', NULL, 'orders: id cannot be chosen by the caller');
SELECT throws_ok($$INSERT INTO ordersync.order_line (order_id, line_no, sku, qty, price)
	SELECT id, 1, 'PGTAP-SKU', 0, 1 FROM ordersync.orders WHERE external_id = 'pgtap-o1' AND channel = 'web'$$,
	'23514', NULL, 'order_line: qty 0 is refused');
SELECT throws_ok($$INSERT INTO ordersync.order_line (order_id, line_no, sku, qty, price)
	SELECT id, 1, 'PGTAP-SKU', 1, -1 FROM ordersync.orders WHERE external_id = 'pgtap-o1' AND channel = 'web'$$,
	'23514', NULL, 'order_line: negative price is refused');
INSERT INTO ordersync.order_line (order_id, line_no, sku, qty, price)
	SELECT id, 1, 'PGTAP-SKU', 1, 1 FROM ordersync.orders WHERE external_id = 'pgtap-o1' AND channel = 'web';
SELECT throws_ok($$INSERT INTO ordersync.reservation (order_id, line_no, sku, location, qty)
	SELECT id, 1, 'PGTAP-SKU', 'pgtap-wh', 0 FROM ordersync.orders WHERE external_id = 'pgtap-o1' AND channel = 'web'$$,
	'23514', NULL, 'reservation: qty 0 is refused');
SELECT throws_ok($$INSERT INTO ordersync.reservation (order_id, line_no, sku, location, qty, state)
	SELECT id, 1, 'PGTAP-SKU', 'pgtap-wh', 1, 'lost' FROM ordersync.orders WHERE external_id = 'pgtap-o1' AND channel = 'web'$$,
	'23514', NULL, 'reservation: unknown state is refused');
SELECT throws_ok($$INSERT INTO ordersync.reservation (order_id, line_no, sku, location, qty)
	SELECT id, 2, 'PGTAP-SKU', 'pgtap-wh', 1 FROM ordersync.orders WHERE external_id = 'pgtap-o1' AND channel = 'web'$$,
	'23503', NULL, 'reservation: a line that does not exist is refused (foreign key)');

-- ---------------------------------------------------------------------------
-- Triggers
-- ---------------------------------------------------------------------------
SELECT set_eq(
	$$SELECT tgrelid::regclass::text || ':' || tgname::text FROM pg_trigger t
	   JOIN pg_class c ON c.oid = t.tgrelid
	  WHERE c.relnamespace = 'ordersync'::regnamespace AND NOT t.tgisinternal$$,
	ARRAY['ordersync.orders:orders_status', 'ordersync.history:history_append_only',
	      'ordersync.history:history_no_truncate', 'ordersync.transition:transition_changed',
	      'ordersync.status:status_in_use', 'ordersync.history:history_chain'],
	'ordersync has exactly the six documented triggers');
SELECT trigger_is('ordersync', 'status', 'status_in_use', 'ordersync', 'status_in_use_trigger',
	'status_in_use calls ordersync.status_in_use_trigger()');
SELECT trigger_is('ordersync', 'orders', 'orders_status', 'ordersync', 'orders_status_trigger',
	'orders_status calls ordersync.orders_status_trigger()');
SELECT trigger_is('ordersync', 'history', 'history_append_only', 'ordersync', 'append_only_trigger',
	'history_append_only calls ordersync.append_only_trigger()');
SELECT trigger_is('ordersync', 'history', 'history_no_truncate', 'ordersync', 'append_only_trigger',
	'history_no_truncate calls ordersync.append_only_trigger()');
SELECT trigger_is('ordersync', 'transition', 'transition_changed', 'ordersync', 'transition_changed_trigger',
	'transition_changed calls ordersync.transition_changed_trigger()');
SELECT is(pg_get_triggerdef(oid),
	'CREATE TRIGGER orders_status BEFORE UPDATE OF status ON ordersync.orders FOR EACH ROW WHEN ((old.status IS DISTINCT FROM new.status)) EXECUTE FUNCTION ordersync.orders_status_trigger()',
	'orders_status fires BEFORE UPDATE OF status, per row, when the status changes')
	FROM pg_trigger WHERE tgrelid = 'ordersync.orders'::regclass AND tgname = 'orders_status';
SELECT is(pg_get_triggerdef(oid),
	'CREATE TRIGGER history_append_only BEFORE DELETE OR UPDATE ON ordersync.history FOR EACH ROW EXECUTE FUNCTION ordersync.append_only_trigger()',
	'history_append_only fires BEFORE UPDATE OR DELETE, per row')
	FROM pg_trigger WHERE tgrelid = 'ordersync.history'::regclass AND tgname = 'history_append_only';
SELECT is(pg_get_triggerdef(oid),
	'CREATE TRIGGER history_no_truncate BEFORE TRUNCATE ON ordersync.history FOR EACH STATEMENT EXECUTE FUNCTION ordersync.append_only_trigger()',
	'history_no_truncate fires BEFORE TRUNCATE')
	FROM pg_trigger WHERE tgrelid = 'ordersync.history'::regclass AND tgname = 'history_no_truncate';
SELECT is(pg_get_triggerdef(oid),
	'CREATE TRIGGER transition_changed AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON ordersync.transition FOR EACH STATEMENT EXECUTE FUNCTION ordersync.transition_changed_trigger()',
	'transition_changed fires AFTER INSERT, UPDATE, DELETE and TRUNCATE, per statement')
	FROM pg_trigger WHERE tgrelid = 'ordersync.transition'::regclass AND tgname = 'transition_changed';
SELECT is((SELECT count(*)::int FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
	WHERE c.relnamespace = 'ordersync'::regnamespace AND NOT t.tgisinternal AND t.tgenabled <> 'O'),
	0, 'every ordersync trigger is enabled (origin)');

-- ---------------------------------------------------------------------------
-- Indexes
-- ---------------------------------------------------------------------------
SELECT has_index('ordersync', 'orders', 'orders_expiry_idx', ARRAY['expires_at'], 'orders_expiry_idx on orders (expires_at)');
SELECT has_index('ordersync', 'reservation', 'reservation_held_idx', ARRAY['sku', 'location'], 'reservation_held_idx on reservation (sku, location)');
SELECT has_index('ordersync', 'history', 'history_order_idx', ARRAY['order_id'], 'history_order_idx on history (order_id)');
SELECT has_index('ordersync', 'history', 'history_sku_idx', ARRAY['sku'], 'history_sku_idx on history (sku)');
SELECT is((SELECT pg_get_expr(indpred, indrelid) FROM pg_index WHERE indexrelid = 'ordersync.reservation_held_idx'::regclass),
	'(state = ''held''::text)', 'reservation_held_idx only covers held reservations');
SELECT is((SELECT pg_get_expr(indpred, indrelid) FROM pg_index WHERE indexrelid = 'ordersync.orders_expiry_idx'::regclass),
	'(expires_at IS NOT NULL)', 'orders_expiry_idx only covers orders that can expire');

-- ---------------------------------------------------------------------------
-- Shipped reference data: statuses, the state machine, channels
-- ---------------------------------------------------------------------------
SELECT results_eq(
	$$SELECT name, open, builtin FROM ordersync.status ORDER BY name$$,
	$$VALUES ('cancelled', true, true), ('completed', false, true), ('delivered', true, true),
	         ('expired', false, true), ('fulfilling', true, true), ('paid', true, true),
	         ('pending', true, true), ('refunded', false, true), ('returned', true, true),
	         ('shipped', true, true)$$,
	'the ten builtin statuses, with completed, expired and refunded closed');
SELECT results_eq(
	$$SELECT from_status, to_status, effect, builtin FROM ordersync.transition
	   ORDER BY from_status, to_status$$,
	$$VALUES ('cancelled', 'refunded', 'none', true),
	         ('delivered', 'completed', 'none', true),
	         ('delivered', 'returned', 'restock', true),
	         ('fulfilling', 'cancelled', 'release', true),
	         ('fulfilling', 'shipped', 'consume', true),
	         ('paid', 'cancelled', 'release', true),
	         ('paid', 'fulfilling', 'none', true),
	         ('pending', 'cancelled', 'release', true),
	         ('pending', 'expired', 'release', true),
	         ('pending', 'paid', 'firm', true),
	         ('returned', 'refunded', 'none', true),
	         ('shipped', 'delivered', 'none', true)$$,
	'exactly the twelve shipped transitions, with their effects');
SELECT is_empty(
	$$SELECT s.name FROM ordersync.status s WHERE NOT s.open
	  AND EXISTS (SELECT 1 FROM ordersync.transition t WHERE t.from_status = s.name)$$,
	'closed statuses have no way out');
SELECT is_empty(
	$$SELECT s.name FROM ordersync.status s WHERE s.name <> 'pending'
	  AND NOT EXISTS (SELECT 1 FROM ordersync.transition t WHERE t.to_status = s.name)$$,
	'every status but pending can be reached');
SELECT results_eq(
	$$SELECT id, status_map FROM ordersync.channel ORDER BY id$$,
	$$VALUES ('app', '{}'::jsonb), ('web', '{}'::jsonb)$$,
	'channels web and app ship with empty status maps');

-- ---------------------------------------------------------------------------
-- pg_dump: every table's data is dumped (config tables)
-- ---------------------------------------------------------------------------
SELECT set_eq(
	$$SELECT unnest(extconfig)::regclass::text FROM pg_extension WHERE extname = 'ordersync'$$,
	ARRAY['ordersync.channel', 'ordersync.location', 'ordersync.sku', 'ordersync.stock',
	      'ordersync.status', 'ordersync.transition', 'ordersync.orders', 'ordersync.order_line',
	      'ordersync.reservation', 'ordersync.history', 'ordersync.orders_id_seq',
	      'ordersync.history_id_seq', 'ordersync.sink', 'ordersync.route', 'ordersync.dead_letter',
	      'ordersync.dead_letter_id_seq', 'ordersync.redelivery', 'ordersync.redelivery_id_seq',
	      'ordersync.rollup_hourly', 'ordersync.rollup_daily_sku', 'ordersync.rollup_state',
	      'ordersync.channel_inbound', 'ordersync.inbox', 'ordersync.inbox_version',
	      'ordersync.inbox_id_seq', 'ordersync.stockout_watch', 'ordersync.history_seal', 'ordersync.retention',
	      'ordersync.order_hold', 'ordersync.rollup_status_time', 'ordersync.rollup_funnel',
	      'ordersync.rollup_stock_level', 'ordersync.rollup_stockout', 'ordersync.order_stuck',
	      'ordersync.demand_refused', 'ordersync.history_chain_lock'],
	'every table and identity sequence is marked for pg_dump');

SELECT * FROM finish();
