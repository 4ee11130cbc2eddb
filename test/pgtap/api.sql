-- test/pgtap/api.sql — the SQL contract of ordersync's API: which functions
-- exist with which signatures, return types and security attributes; what
-- they return; and that each refusal carries its own SQLSTATE (OS001..OS005)
-- and changes nothing.  Runs as a superuser inside a transaction that run.sh
-- rolls back.

SELECT plan(296);

-- ---------------------------------------------------------------------------
-- The functions
-- ---------------------------------------------------------------------------
SELECT functions_are('ordersync', ARRAY['add_location', 'add_channel', 'receive_stock',
	'set_safety_stock', 'set_hot', 'set_low_stock', 'available', 'place_order', 'set_status',
	'set_channel_status', 'expire_reservations', 'orders_status_trigger', 'append_only_trigger',
	'transition_changed_trigger', 'status_in_use_trigger',
	'add_sink', 'drop_sink', 'add_route', 'drop_route', 'redeliver', 'relay_config',
	'record_dead_letter', 'require_sink', 'check_sink_uri', 'check_sink_options', 'forecast',
	'refresh_rollups', 'set_channel_inbound', 'inbox_receive', 'inbox_apply', 'prune_inbox',
	'reconcile', 'channel_version', 'inbox_receive_apply',
	'forecast_intermittent', 'forecast_orders', 'stock_outlook', 'check_stockouts', 'prepare_peak',
	'history_chain_trigger', 'verify_history', 'compliance_record', 'selected_orders', 'erase_orders',
	'forget_customer', 'customer_data', 'set_retention', 'legal_hold', 'release_legal_hold',
	'purge_orders', 'apply_retention', 'compliance_report',
	'set_sla', 'flag_stuck_orders', 'status_times', 'stockout_hours', 'flush_refusals', 'sell_through',
	'is_plain_text'],
	'ordersync has exactly the eleven order API functions, four trigger functions, ten for the relay''s sinks (no announce_relay_config since 0.3.0), forecast and refresh_rollups (0.4.0), six for inbound channels (0.4.0), five for the outlook, thirteen for compliance and six for analytics (0.5.0), the plain-text check of two CHECK constraints (0.6.0), receiving and applying in one transaction (0.8.0)');
SELECT is((SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'ordersync'::regnamespace), 59,
	'no API function is overloaded');
SELECT is(pg_get_function_arguments('ordersync.add_sink(text, text, jsonb)'::regprocedure),
	'name text, uri text, options jsonb DEFAULT ''{}''::jsonb', 'add_sink(name text, uri text, options jsonb DEFAULT ''{}'')');
SELECT is(pg_get_function_arguments('ordersync.add_route(text, text)'::regprocedure),
	'sink text, event_type_pattern text', 'add_route(sink text, event_type_pattern text)');
SELECT is(pg_get_function_arguments('ordersync.drop_route(text, text)'::regprocedure),
	'sink text, event_type_pattern text', 'drop_route(sink text, event_type_pattern text)');
SELECT is(pg_get_function_arguments('ordersync.drop_sink(text)'::regprocedure),
	'name text', 'drop_sink(name text)');
SELECT is(pg_get_function_arguments('ordersync.redeliver(bigint)'::regprocedure),
	'dead_letter_id bigint', 'redeliver(dead_letter_id bigint)');
SELECT is_empty($$SELECT oid::regprocedure FROM pg_proc WHERE pronamespace = 'ordersync'::regnamespace
	AND proname IN ('add_sink', 'drop_sink', 'add_route', 'drop_route', 'redeliver', 'relay_config',
					'record_dead_letter')
	AND NOT (prosecdef AND proconfig @> ARRAY['search_path=pg_catalog, pg_temp'])$$,
	'the sink functions are SECURITY DEFINER with a pinned search_path');

-- exact signatures: argument names, types and defaults
SELECT is(pg_get_function_arguments('ordersync.add_location(text, integer)'::regprocedure),
	'id text, priority integer DEFAULT 0', 'add_location(id text, priority integer DEFAULT 0)');
SELECT is(pg_get_function_arguments('ordersync.add_channel(text, jsonb)'::regprocedure),
	'id text, status_map jsonb DEFAULT ''{}''::jsonb', 'add_channel(id text, status_map jsonb DEFAULT ''{}'')');
SELECT is(pg_get_function_arguments('ordersync.receive_stock(text, text, bigint)'::regprocedure),
	'sku text, location text, qty bigint', 'receive_stock(sku text, location text, qty bigint)');
SELECT is(pg_get_function_arguments('ordersync.set_safety_stock(text, text, bigint)'::regprocedure),
	'sku text, location text, qty bigint', 'set_safety_stock(sku text, location text, qty bigint)');
SELECT is(pg_get_function_arguments('ordersync.available(text)'::regprocedure),
	'sku text', 'available(sku text)');
SELECT is(pg_get_function_arguments('ordersync.set_hot(text, integer)'::regprocedure),
	'sku text, buckets integer', 'set_hot(sku text, buckets integer)');
SELECT is(pg_get_function_arguments('ordersync.set_low_stock(text, bigint)'::regprocedure),
	'sku text, threshold bigint', 'set_low_stock(sku text, threshold bigint)');
SELECT is(pg_get_function_arguments('ordersync.place_order(text, text, jsonb, jsonb, boolean)'::regprocedure),
	'channel text, external_id text, lines jsonb, customer jsonb DEFAULT NULL::jsonb, allow_split boolean DEFAULT false',
	'place_order(channel text, external_id text, lines jsonb, customer jsonb DEFAULT NULL, allow_split boolean DEFAULT false)');
SELECT is(pg_get_function_arguments('ordersync.set_status(bigint, text, text)'::regprocedure),
	'order_id bigint, status text, reason text DEFAULT NULL::text',
	'set_status(order_id bigint, status text, reason text DEFAULT NULL)');
SELECT is(pg_get_function_arguments('ordersync.set_channel_status(text, text, text, text)'::regprocedure),
	'channel text, external_id text, channel_status text, reason text DEFAULT NULL::text',
	'set_channel_status(channel text, external_id text, channel_status text, reason text DEFAULT NULL)');
SELECT is(pg_get_function_arguments('ordersync.expire_reservations()'::regprocedure),
	'', 'expire_reservations() takes no arguments');

-- return types
SELECT function_returns('ordersync', 'add_location', ARRAY['text', 'integer'], 'void', 'add_location returns void');
SELECT function_returns('ordersync', 'add_channel', ARRAY['text', 'jsonb'], 'void', 'add_channel returns void');
SELECT function_returns('ordersync', 'receive_stock', ARRAY['text', 'text', 'bigint'], 'bigint', 'receive_stock returns bigint');
SELECT function_returns('ordersync', 'set_safety_stock', ARRAY['text', 'text', 'bigint'], 'void', 'set_safety_stock returns void');
SELECT function_returns('ordersync', 'available', ARRAY['text'], 'bigint', 'available returns bigint');
SELECT function_returns('ordersync', 'set_hot', ARRAY['text', 'integer'], 'void', 'set_hot returns void');
SELECT function_returns('ordersync', 'set_low_stock', ARRAY['text', 'bigint'], 'void', 'set_low_stock returns void');
SELECT function_returns('ordersync', 'place_order', ARRAY['text', 'text', 'jsonb', 'jsonb', 'boolean'], 'bigint', 'place_order returns bigint');
SELECT function_returns('ordersync', 'set_status', ARRAY['bigint', 'text', 'text'], 'void', 'set_status returns void');
SELECT function_returns('ordersync', 'set_channel_status', ARRAY['text', 'text', 'text', 'text'], 'bigint', 'set_channel_status returns bigint');
SELECT function_returns('ordersync', 'expire_reservations', ARRAY[]::name[], 'integer', 'expire_reservations returns integer');

-- SECURITY DEFINER, with search_path pinned
SELECT set_eq(
	$$SELECT proname::text FROM pg_proc WHERE pronamespace = 'ordersync'::regnamespace AND prosecdef$$,
	ARRAY['add_location', 'add_channel', 'receive_stock', 'set_safety_stock', 'set_hot',
	      'set_low_stock', 'available', 'place_order', 'set_status', 'set_channel_status',
	      'expire_reservations', 'orders_status_trigger', 'add_sink', 'drop_sink', 'add_route',
	      'drop_route', 'redeliver', 'relay_config', 'record_dead_letter', 'refresh_rollups',
	      'set_channel_inbound', 'inbox_receive', 'inbox_apply', 'prune_inbox', 'reconcile',
	      'inbox_receive_apply', 'check_stockouts', 'prepare_peak',
	      'verify_history', 'compliance_record', 'forget_customer', 'customer_data', 'set_retention',
	      'legal_hold', 'release_legal_hold', 'apply_retention', 'compliance_report',
	      'set_sla', 'flag_stuck_orders', 'status_times', 'stockout_hours', 'flush_refusals', 'sell_through'],
	'the API functions, the sink functions and the status trigger are SECURITY DEFINER');
SELECT is_empty(
	$$SELECT p.oid::regprocedure FROM pg_proc p
	   WHERE p.pronamespace = 'ordersync'::regnamespace AND p.prosecdef
	     AND coalesce(p.proconfig, '{}') @> ARRAY['search_path=pg_catalog, pg_temp'] IS NOT TRUE$$,
	'every SECURITY DEFINER function pins search_path = pg_catalog, pg_temp');
SELECT is((SELECT proconfig FROM pg_proc WHERE oid = 'ordersync.add_location(text, integer)'::regprocedure),
	ARRAY['search_path=pg_catalog, pg_temp'], 'add_location: proconfig pins search_path');
SELECT is((SELECT proconfig FROM pg_proc WHERE oid = 'ordersync.add_channel(text, jsonb)'::regprocedure),
	ARRAY['search_path=pg_catalog, pg_temp'], 'add_channel: proconfig pins search_path');
SELECT is((SELECT proconfig FROM pg_proc WHERE oid = 'ordersync.receive_stock(text, text, bigint)'::regprocedure),
	ARRAY['search_path=pg_catalog, pg_temp'], 'receive_stock: proconfig pins search_path');
SELECT is((SELECT proconfig FROM pg_proc WHERE oid = 'ordersync.set_safety_stock(text, text, bigint)'::regprocedure),
	ARRAY['search_path=pg_catalog, pg_temp'], 'set_safety_stock: proconfig pins search_path');
SELECT is((SELECT proconfig FROM pg_proc WHERE oid = 'ordersync.available(text)'::regprocedure),
	ARRAY['search_path=pg_catalog, pg_temp'], 'available: proconfig pins search_path');
SELECT is((SELECT proconfig FROM pg_proc WHERE oid = 'ordersync.set_hot(text, integer)'::regprocedure),
	ARRAY['search_path=pg_catalog, pg_temp'], 'set_hot: proconfig pins search_path');
SELECT is((SELECT proconfig FROM pg_proc WHERE oid = 'ordersync.set_low_stock(text, bigint)'::regprocedure),
	ARRAY['search_path=pg_catalog, pg_temp'], 'set_low_stock: proconfig pins search_path');
SELECT is((SELECT proconfig FROM pg_proc WHERE oid = 'ordersync.place_order(text, text, jsonb, jsonb, boolean)'::regprocedure),
	ARRAY['search_path=pg_catalog, pg_temp'], 'place_order: proconfig pins search_path');
SELECT is((SELECT proconfig FROM pg_proc WHERE oid = 'ordersync.set_status(bigint, text, text)'::regprocedure),
	ARRAY['search_path=pg_catalog, pg_temp'], 'set_status: proconfig pins search_path');
SELECT is((SELECT proconfig FROM pg_proc WHERE oid = 'ordersync.set_channel_status(text, text, text, text)'::regprocedure),
	ARRAY['search_path=pg_catalog, pg_temp'], 'set_channel_status: proconfig pins search_path');
SELECT is((SELECT proconfig FROM pg_proc WHERE oid = 'ordersync.expire_reservations()'::regprocedure),
	ARRAY['search_path=pg_catalog, pg_temp'], 'expire_reservations: proconfig pins search_path');
SELECT is((SELECT proconfig FROM pg_proc WHERE oid = 'ordersync.orders_status_trigger()'::regprocedure),
	ARRAY['search_path=pg_catalog, pg_temp'], 'orders_status_trigger: proconfig pins search_path');
SELECT is_empty(
	$$SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
	   WHERE p.pronamespace = 'ordersync'::regnamespace AND p.prosecdef AND NOT r.rolsuper$$,
	'SECURITY DEFINER functions are owned by the (superuser) extension owner');

SELECT is_empty(
	$$SELECT oid::regprocedure FROM pg_proc WHERE pronamespace = 'ordersync'::regnamespace
	   AND prolang <> (SELECT oid FROM pg_language WHERE lanname = 'c')
	   AND proname NOT IN ('add_sink', 'drop_sink', 'add_route', 'drop_route', 'redeliver',
						   'relay_config', 'record_dead_letter', 'require_sink', 'check_sink_uri',
						   'check_sink_options', 'set_channel_inbound', 'reconcile', 'channel_version',
						   'selected_orders', 'erase_orders', 'forget_customer', 'customer_data',
						   'set_retention', 'legal_hold', 'release_legal_hold', 'purge_orders',
						   'apply_retention', 'compliance_report',
						   'set_sla', 'status_times', 'stockout_hours', 'sell_through')$$,
	'every ordersync function but the sink and inbound configuration, reconcile() (rare, administrative), the compliance functions (SQL over a few rows each), set_sla() and the analytics readers (one SQL query over the rollups each) is written in C');
SELECT volatility_is('ordersync', 'available', ARRAY['text'], 'stable', 'available is STABLE');
SELECT is_strict('ordersync', 'available', ARRAY['text'], 'available is STRICT');
SELECT is_empty(
	$$SELECT oid::regprocedure FROM pg_proc WHERE pronamespace = 'ordersync'::regnamespace
	   AND proname NOT IN ('available', 'relay_config', 'forecast', 'channel_version', 'forecast_intermittent',
						   'forecast_orders', 'stock_outlook', 'selected_orders',
						   'customer_data', 'verify_history', 'compliance_report',
						   'status_times', 'stockout_hours', 'sell_through', 'is_plain_text')
	     AND (provolatile <> 'v' OR proisstrict)$$,
	'every other function is VOLATILE and not STRICT (NULL arguments get OS004)');

-- receiving and applying in one transaction (0.8.0): as inbox_receive() takes it
SELECT is(pg_get_function_arguments('ordersync.inbox_receive_apply(text, text, text, jsonb, text)'::regprocedure),
	'channel text, kind text, event_id text, payload jsonb, topic text DEFAULT NULL::text, OUT inbox_id bigint, OUT state text',
	'inbox_receive_apply(channel, kind, event_id, payload, topic DEFAULT NULL, OUT inbox_id bigint, OUT state text)');
SELECT is(pg_get_function_arguments('ordersync.inbox_receive(text, text, text, jsonb, text)'::regprocedure),
	'channel text, kind text, event_id text, payload jsonb, topic text DEFAULT NULL::text',
	'inbox_receive(channel, kind, event_id, payload, topic DEFAULT NULL) is unchanged');

-- the outlook (0.5.0): signatures, and each refusal with its own SQLSTATE
SELECT is(pg_get_function_arguments('ordersync.forecast_orders(interval, integer, text)'::regprocedure),
	'bucket interval DEFAULT ''01:00:00''::interval, horizon integer DEFAULT 48, channel text DEFAULT NULL::text',
	'forecast_orders(bucket interval DEFAULT ''1 hour'', horizon int DEFAULT 48, channel text DEFAULT NULL)');
SELECT is(pg_get_function_arguments('ordersync.stock_outlook(interval, float8)'::regprocedure),
	'lead_time interval DEFAULT ''7 days''::interval, service_level double precision DEFAULT 0.95',
	'stock_outlook(lead_time interval DEFAULT ''7 days'', service_level float8 DEFAULT 0.95)');
SELECT is(pg_get_function_result('ordersync.stock_outlook(interval, float8)'::regprocedure),
	'TABLE(sku text, location text, on_hand bigint, available bigint, daily_demand double precision, method text, days_of_cover double precision, projected_stockout date, safety_stock bigint, reorder_point bigint, suggested_reorder bigint)',
	'stock_outlook returns the figures per SKU and location');
SELECT is(pg_get_function_arguments('ordersync.forecast_intermittent(float8[], text)'::regprocedure),
	'history double precision[], method text DEFAULT ''auto''::text',
	'forecast_intermittent(history float8[], method text DEFAULT ''auto'')');
SELECT function_returns('ordersync', 'check_stockouts', ARRAY[]::name[], 'integer', 'check_stockouts returns integer');
SELECT throws_ok($$SELECT * FROM ordersync.forecast_orders('5 hours')$$, 'OS010', NULL,
	'a bucket that does not divide a day is refused with OS010');
SELECT throws_ok($$SELECT * FROM ordersync.forecast_orders('1 hour', 0)$$, 'OS011', NULL,
	'a horizon out of range is refused with OS011');
SELECT throws_ok($$SELECT * FROM ordersync.forecast_intermittent('{1,-1}')$$, 'OS013', NULL,
	'a negative demand is refused with OS013');
SELECT throws_ok($$SELECT * FROM ordersync.forecast_intermittent('{1,0}', 'ses')$$, 'OS014', NULL,
	'an unknown intermittent method is refused with OS014');
SELECT throws_ok($$SELECT * FROM ordersync.stock_outlook('1 month')$$, 'OS015', NULL,
	'a lead time in months is refused with OS015');
SELECT throws_ok($$SELECT * FROM ordersync.stock_outlook('7 days', 1)$$, 'OS016', NULL,
	'a service level of 1 is refused with OS016');

-- analytics (0.5.0): the readers are STABLE, the writers VOLATILE
SELECT is(pg_get_function_arguments('ordersync.set_sla(text, interval)'::regprocedure),
	'status text, sla interval', 'set_sla(status text, sla interval)');
SELECT is(pg_get_function_arguments('ordersync.status_times(timestamptz, timestamptz)'::regprocedure),
	'since timestamp with time zone DEFAULT (now() - ''7 days''::interval), until timestamp with time zone DEFAULT now()',
	'status_times(since timestamptz DEFAULT now() - 7 days, until timestamptz DEFAULT now())');
SELECT is(pg_get_function_result('ordersync.status_times(timestamptz, timestamptz)'::regprocedure),
	'TABLE(from_status text, to_status text, location text, channel text, transitions bigint, p50 interval, p95 interval, p99 interval, mean interval)',
	'status_times returns p50, p95, p99 and the mean per transition, location and channel');
SELECT is(pg_get_function_arguments('ordersync.stockout_hours(timestamptz, timestamptz)'::regprocedure),
	'since timestamp with time zone DEFAULT (now() - ''7 days''::interval), until timestamp with time zone DEFAULT now()',
	'stockout_hours(since timestamptz DEFAULT now() - 7 days, until timestamptz DEFAULT now())');
SELECT is(pg_get_function_arguments('ordersync.sell_through(integer)'::regprocedure),
	'days integer DEFAULT 30', 'sell_through(days integer DEFAULT 30)');
SELECT is(pg_get_function_result('ordersync.flag_stuck_orders()'::regprocedure), 'bigint', 'flag_stuck_orders() returns bigint');
SELECT volatility_is('ordersync', 'status_times', ARRAY['timestamp with time zone', 'timestamp with time zone'], 'stable', 'status_times is STABLE');
SELECT volatility_is('ordersync', 'stockout_hours', ARRAY['timestamp with time zone', 'timestamp with time zone'], 'stable', 'stockout_hours is STABLE');
SELECT volatility_is('ordersync', 'sell_through', ARRAY['integer'], 'stable', 'sell_through is STABLE');

-- forecast(): pure computation on its arguments
SELECT is(pg_get_function_arguments('ordersync.forecast(float8[], integer, integer, float8)'::regprocedure),
	'history double precision[], season integer, horizon integer, level double precision DEFAULT 0.95',
	'forecast(history float8[], season int, horizon int, level float8 DEFAULT 0.95)');
SELECT is(pg_get_function_result('ordersync.forecast(float8[], integer, integer, float8)'::regprocedure),
	'TABLE(step integer, value double precision, lower double precision, upper double precision)',
	'forecast returns TABLE(step int, value float8, lower float8, upper float8)');
SELECT volatility_is('ordersync', 'forecast', ARRAY['double precision[]', 'integer', 'integer', 'double precision'],
	'immutable', 'forecast is IMMUTABLE');
SELECT isnt_strict('ordersync', 'forecast', ARRAY['double precision[]', 'integer', 'integer', 'double precision'],
	'forecast is not STRICT (NULL arguments get OS004)');
SELECT is((SELECT proparallel FROM pg_proc WHERE oid = 'ordersync.forecast(float8[], integer, integer, float8)'::regprocedure),
	's', 'forecast is PARALLEL SAFE');
SELECT is((SELECT prosecdef FROM pg_proc WHERE oid = 'ordersync.forecast(float8[], integer, integer, float8)'::regprocedure),
	false, 'forecast is not SECURITY DEFINER: it reads nothing');
SELECT ok(has_function_privilege('ordersync_app', 'ordersync.forecast(float8[], integer, integer, float8)', 'EXECUTE')
	AND has_function_privilege('ordersync_admin', 'ordersync.forecast(float8[], integer, integer, float8)', 'EXECUTE')
	AND NOT has_function_privilege('public', 'ordersync.forecast(float8[], integer, integer, float8)', 'EXECUTE'),
	'ordersync_app and ordersync_admin may EXECUTE forecast, PUBLIC may not');
SELECT is((SELECT count(*)::int FROM ordersync.forecast('{1,2,3,4,5,6}', 0, 4)), 4,
	'forecast returns one row per step');
SELECT throws_ok($$SELECT * FROM ordersync.forecast('{1,NULL,3,4,5}', 0, 4)$$, 'OS004', NULL,
	'forecast with a NULL in the history: OS004');

-- compliance (0.5.0): signatures, and who may call what
SELECT is(pg_get_function_arguments('ordersync.forget_customer(jsonb, text, boolean)'::regprocedure),
	'selector jsonb, reason text, force boolean DEFAULT false',
	'forget_customer(selector jsonb, reason text, force boolean DEFAULT false)');
SELECT function_returns('ordersync', 'forget_customer', ARRAY['jsonb', 'text', 'boolean'], 'integer', 'forget_customer returns integer');
SELECT function_returns('ordersync', 'customer_data', ARRAY['jsonb'], 'jsonb', 'customer_data(selector jsonb) returns jsonb');
SELECT is(pg_get_function_result('ordersync.verify_history()'::regprocedure),
	'TABLE(history_id bigint, problem text)', 'verify_history() returns TABLE(history_id bigint, problem text)');
SELECT is(pg_get_function_arguments('ordersync.set_retention(text, interval, interval, boolean)'::regprocedure),
	'market text, personal_data interval, order_records interval, personal_data_to_sinks boolean DEFAULT true',
	'set_retention(market text, personal_data interval, order_records interval, personal_data_to_sinks boolean DEFAULT true)');
SELECT is(pg_get_function_arguments('ordersync.legal_hold(bigint, text)'::regprocedure),
	'order_id bigint, reason text', 'legal_hold(order_id bigint, reason text)');
SELECT is(pg_get_function_result('ordersync.compliance_report()'::regprocedure),
	'TABLE(problem text, subject text, detail text)', 'compliance_report() returns TABLE(problem text, subject text, detail text)');
SELECT ok(has_function_privilege('ordersync_app', 'ordersync.forget_customer(jsonb, text, boolean)', 'EXECUTE')
	AND has_function_privilege('ordersync_app', 'ordersync.customer_data(jsonb)', 'EXECUTE'),
	'ordersync_app may erase and export through forget_customer and customer_data');
SELECT is_empty($$SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'ordersync'::regnamespace
	AND p.proname IN ('verify_history', 'set_retention', 'legal_hold', 'release_legal_hold',
					  'apply_retention', 'compliance_report', 'compliance_record', 'selected_orders',
					  'erase_orders', 'purge_orders')
	AND has_function_privilege('ordersync_app', p.oid, 'EXECUTE')$$,
	'ordersync_app may not run the admin and internal compliance functions');
SELECT is_empty($$SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'ordersync'::regnamespace
	AND p.proname IN ('compliance_record', 'selected_orders', 'erase_orders', 'purge_orders')
	AND (has_function_privilege('ordersync_admin', p.oid, 'EXECUTE')
		 OR has_function_privilege('ordersync_relay', p.oid, 'EXECUTE'))$$,
	'nobody may call the internal compliance functions (compliance_record writes history and events)');
SELECT throws_ok($$SELECT ordersync.forget_customer('{"customer": {}}', 'x')$$, 'OS031', NULL,
	'forget_customer with a selector that names no field: OS031');
SELECT throws_ok($$SELECT ordersync.legal_hold(NULL, 'x')$$, 'OS033', NULL, 'legal_hold of no order: OS033');
SELECT throws_ok($$SELECT ordersync.set_retention('EU', NULL, NULL)$$, 'OS034', NULL, 'set_retention of an invalid market: OS034');

-- ---------------------------------------------------------------------------
-- What the functions do and return
-- ---------------------------------------------------------------------------
CREATE FUNCTION pg_temp.snapshot() RETURNS text LANGUAGE sql AS $$
	SELECT format('orders=%s order_line=%s reservation=%s history=%s stock=%s sku=%s location=%s channel=%s'
	              ' on_hand=%s reserved=%s safety=%s statuses=[%s] held=%s',
		(SELECT count(*) FROM ordersync.orders),
		(SELECT count(*) FROM ordersync.order_line),
		(SELECT count(*) FROM ordersync.reservation),
		(SELECT count(*) FROM ordersync.history),
		(SELECT count(*) FROM ordersync.stock),
		(SELECT count(*) FROM ordersync.sku),
		(SELECT count(*) FROM ordersync.location),
		(SELECT count(*) FROM ordersync.channel),
		(SELECT sum(on_hand) FROM ordersync.stock),
		(SELECT sum(reserved) FROM ordersync.stock),
		(SELECT sum(safety) FROM ordersync.stock),
		(SELECT string_agg(id || ':' || status, ',' ORDER BY id) FROM ordersync.orders),
		(SELECT count(*) FROM ordersync.reservation WHERE state = 'held'))
$$;

SELECT lives_ok($$SELECT ordersync.add_location('api-wh1', 10)$$, 'add_location(id, priority) works');
SELECT lives_ok($$SELECT ordersync.add_location('api-wh2')$$, 'add_location(id) works with the default priority');
SELECT is((SELECT priority FROM ordersync.location WHERE id = 'api-wh2'), 0, 'add_location: default priority is 0');
SELECT lives_ok($$SELECT ordersync.add_location('api-wh2', 5)$$, 'add_location on an existing id works');
SELECT is((SELECT priority FROM ordersync.location WHERE id = 'api-wh2'), 5, 'add_location on an existing id sets its priority');

SELECT is(ordersync.receive_stock('API-1', 'api-wh1', 10), 10::bigint, 'receive_stock returns the new on-hand quantity');
SELECT is(ordersync.receive_stock('API-1', 'api-wh1', 5), 15::bigint, 'receive_stock adds to what is on hand');
SELECT is(ordersync.receive_stock('API-1', 'api-wh2', 3), 3::bigint, 'receive_stock counts per location');
SELECT ok(EXISTS (SELECT 1 FROM ordersync.sku WHERE sku = 'API-1'), 'receive_stock creates the SKU');
SELECT is(ordersync.available('API-1'), 18::bigint, 'available sums over locations');
SELECT lives_ok($$SELECT ordersync.set_safety_stock('API-1', 'api-wh2', 2)$$, 'set_safety_stock works');
SELECT is(ordersync.available('API-1'), 16::bigint, 'available subtracts safety stock');
SELECT lives_ok($$SELECT ordersync.set_safety_stock('API-1', 'api-wh2', 50)$$, 'safety stock may exceed on hand');
SELECT is(ordersync.available('API-1'), 15::bigint, 'a location whose safety exceeds what is free counts as 0, not negative');
SELECT lives_ok($$SELECT ordersync.set_safety_stock('API-1', 'api-wh2', 0)$$, 'safety stock can be set back to 0');
SELECT is(ordersync.available(NULL), NULL::bigint, 'available(NULL) is NULL (STRICT)');
SELECT is(ordersync.receive_stock('API-2', 'api-wh1', 4), 4::bigint, 'receive_stock of a second SKU');

SELECT ordersync.place_order('web', 'api-o1', '[{"sku": "API-1", "qty": 4, "price": "9.9"}]') AS o1 \gset
SELECT ok(:o1 > 0, 'place_order returns the new order id');
SELECT results_eq(
	format($$SELECT channel, external_id, status, total, customer, lines FROM ordersync.orders WHERE id = %s$$, :o1),
	$$VALUES ('web', 'api-o1', 'pending', 39.60::numeric(14,2), NULL::jsonb,
	          '[{"line_no": 1, "sku": "API-1", "qty": 4, "price": "9.90"}]'::jsonb)$$,
	'place_order stores the order pending, with normalized lines, the total and no customer');
SELECT ok((SELECT expires_at > created_at FROM ordersync.orders WHERE id = :o1),
	'a pending order has an expiry in the future');
SELECT is(ordersync.available('API-1'), 14::bigint, 'place_order reserves the units');
SELECT is(ordersync.place_order('web', 'api-o1', '[{"sku": "API-1", "qty": 4, "price": "9.90"}]'), :o1::bigint,
	'placing the same order again returns the first order id');
SELECT is(ordersync.available('API-1'), 14::bigint, 'placing the same order again reserves nothing more');

SELECT ordersync.place_order('web', 'api-o2', '[{"sku": "API-2", "qty": 1, "price": 2}, {"sku": "API-1", "qty": 1, "price": "0"}]',
	'{"name": "Ada"}') AS o2 \gset
SELECT is((SELECT customer FROM ordersync.orders WHERE id = :o2), '{"name": "Ada"}'::jsonb, 'place_order stores the customer');
SELECT is((SELECT count(*)::int FROM ordersync.order_line WHERE order_id = :o2), 2, 'place_order stores one order_line per line');

SELECT lives_ok(format($$SELECT ordersync.set_status(%s, 'paid', 'card ok')$$, :o1), 'set_status(id, status, reason) works');
SELECT results_eq(format($$SELECT status, expires_at FROM ordersync.orders WHERE id = %s$$, :o1),
	$$VALUES ('paid', NULL::timestamptz)$$, 'set_status moved the order to paid and the reservation stopped expiring');
SELECT pg_temp.snapshot() AS before \gset
SELECT lives_ok(format($$SELECT ordersync.set_status(%s, 'paid')$$, :o1), 'set_status to the current status is allowed');
SELECT is(pg_temp.snapshot(), :'before', 'set_status to the current status changes nothing');

SELECT lives_ok($$SELECT ordersync.add_channel('api-shop')$$, 'add_channel(id) works with the default status map');
SELECT is((SELECT status_map FROM ordersync.channel WHERE id = 'api-shop'), '{}'::jsonb, 'add_channel: default status map is {}');
SELECT lives_ok($$SELECT ordersync.add_channel('api-shop', '{"PAID": "paid", "CANCELED": "cancelled"}')$$,
	'add_channel on an existing id works');
SELECT is((SELECT status_map FROM ordersync.channel WHERE id = 'api-shop'), '{"PAID": "paid", "CANCELED": "cancelled"}'::jsonb,
	'add_channel on an existing id replaces its status map');
SELECT ordersync.place_order('api-shop', 'S-1', '[{"sku": "API-2", "qty": 1, "price": "1.00"}]') AS o3 \gset
SELECT is(ordersync.set_channel_status('api-shop', 'S-1', 'PAID', 'webhook'), :o3::bigint,
	'set_channel_status returns the order id');
SELECT is((SELECT status FROM ordersync.orders WHERE id = :o3), 'paid', 'set_channel_status translated PAID to paid');

SELECT is(ordersync.expire_reservations(), 0, 'expire_reservations returns 0 when nothing is due');
UPDATE ordersync.orders SET expires_at = now() - interval '1 second' WHERE id = :o2;
SELECT is(ordersync.expire_reservations(), 1, 'expire_reservations returns how many orders it expired');
SELECT is((SELECT status FROM ordersync.orders WHERE id = :o2), 'expired', 'the due order is expired');
SELECT is(ordersync.available('API-2'), 3::bigint, 'expiry released the reservation');

-- the whole order ships from one location unless it may be split
SELECT is(ordersync.receive_stock('API-S', 'api-wh1', 2), 2::bigint, 'receive_stock of a SKU at the high-priority location');
SELECT is(ordersync.receive_stock('API-S', 'api-wh2', 3), 3::bigint, 'and at the lower-priority one');
SELECT throws_ok($$SELECT ordersync.place_order('web', 'api-s1', '[{"sku": "API-S", "qty": 4, "price": "1"}]')$$,
	'OS001', 'no single location has the whole order', 'OS001: no single location has the whole order');
SELECT ok(ordersync.place_order('web', 'api-s1', '[{"sku": "API-S", "qty": 4, "price": "1"}]', allow_split => true) > 0,
	'with allow_split => true the order is placed');
SELECT results_eq(
	$$SELECT r.location, sum(r.qty)::bigint FROM ordersync.reservation r JOIN ordersync.orders o ON o.id = r.order_id
	   WHERE o.external_id = 'api-s1' GROUP BY r.location ORDER BY r.location$$,
	$$VALUES ('api-wh1', 2::bigint), ('api-wh2', 2::bigint)$$,
	'a split order takes what the higher-priority location has first');
SELECT ordersync.place_order('web', 'api-s2', '[{"sku": "API-S", "qty": 1, "price": "1"}]') AS s2 \gset
SELECT results_eq(format($$SELECT location, qty FROM ordersync.reservation WHERE order_id = %s$$, :s2),
	$$VALUES ('api-wh2', 1::bigint)$$, 'an unsplit order ships from the location that has all of it');
SELECT is(ordersync.available('API-S'), 0::bigint, 'API-S is sold out');

-- hot SKUs: stock split into buckets, the figures unchanged
SELECT is(ordersync.receive_stock('API-H', 'api-wh1', 10), 10::bigint, 'receive_stock of a SKU to make hot');
SELECT lives_ok($$SELECT ordersync.set_hot('API-H', 4)$$, 'set_hot(sku, buckets) works');
SELECT is((SELECT buckets FROM ordersync.sku WHERE sku = 'API-H'), 4, 'set_hot records the bucket count');
SELECT results_eq($$SELECT count(*)::int, sum(on_hand)::bigint, sum(reserved)::bigint FROM ordersync.stock WHERE sku = 'API-H'$$,
	$$VALUES (4, 10::bigint, 0::bigint)$$, 'set_hot splits the stock at the location into 4 rows, same total');
SELECT is(ordersync.available('API-H'), 10::bigint, 'available is unchanged by set_hot');
SELECT is(ordersync.receive_stock('API-H', 'api-wh1', 6), 16::bigint, 'receive_stock of a hot SKU returns the location''s total');
SELECT ordersync.place_order('web', 'api-h1', '[{"sku": "API-H", "qty": 7, "price": "1"}]') AS h1 \gset
SELECT is((SELECT sum(qty)::bigint FROM ordersync.reservation WHERE order_id = :h1), 7::bigint, 'an order of a hot SKU reserves its units');
SELECT is(ordersync.available('API-H'), 9::bigint, 'available of a hot SKU counts every bucket');
SELECT lives_ok($$SELECT ordersync.set_hot('API-H', 1)$$, 'set_hot(sku, 1) makes the SKU plain again');
SELECT results_eq($$SELECT count(*)::int, sum(on_hand)::bigint, sum(reserved)::bigint FROM ordersync.stock WHERE sku = 'API-H'$$,
	$$VALUES (1, 16::bigint, 7::bigint)$$, 'the buckets are merged back into one row, reservations included');
SELECT results_eq(format($$SELECT bucket, qty FROM ordersync.reservation WHERE order_id = %s$$, :h1),
	$$VALUES (0, 7::bigint)$$, 'the order''s reservations are merged into bucket 0');
SELECT lives_ok($$SELECT ordersync.set_low_stock('API-H', 3)$$, 'set_low_stock(sku, threshold) works');
SELECT is((SELECT low_stock_threshold FROM ordersync.sku WHERE sku = 'API-H'), 3::bigint, 'set_low_stock records the threshold');
SELECT lives_ok($$SELECT ordersync.set_low_stock('API-H', NULL)$$, 'set_low_stock(sku, NULL) works');
SELECT is((SELECT low_stock_threshold FROM ordersync.sku WHERE sku = 'API-H'), NULL::bigint, 'set_low_stock(sku, NULL) turns the threshold off');
SELECT is((SELECT hot_source FROM ordersync.sku WHERE sku = 'API-H'), 'operator',
	'set_hot records the operator''s choice (1 bucket too), which auto-hot never overrides');

-- settings
SELECT is(current_setting('ordersync.reservation_ttl'), '15min', 'ordersync.reservation_ttl defaults to 15 minutes');
SELECT is(current_setting('ordersync.actor'), '', 'ordersync.actor defaults to empty (the role)');
SELECT is(current_setting('ordersync.max_customer_bytes'), '16384', 'ordersync.max_customer_bytes defaults to 16384');
SELECT is(current_setting('ordersync.max_customer_depth'), '8', 'ordersync.max_customer_depth defaults to 8');
SELECT set_eq($$SELECT name::text || '=' || context FROM pg_settings WHERE name LIKE 'ordersync.max_customer%'$$,
	ARRAY['ordersync.max_customer_bytes=superuser', 'ordersync.max_customer_depth=superuser'],
	'the customer limits can be changed by superusers only (an application cannot raise its own)');
SELECT is(current_setting('ordersync.auto_hot'), 'on', 'ordersync.auto_hot defaults to on');
SELECT is(current_setting('ordersync.auto_hot_wait'), '1ms', 'ordersync.auto_hot_wait defaults to 1ms');
SELECT is(current_setting('ordersync.auto_hot_queue'), '4', 'ordersync.auto_hot_queue defaults to 4 buyers');
SELECT is(current_setting('ordersync.auto_hot_cooldown'), '1min', 'ordersync.auto_hot_cooldown defaults to 1 minute');
SELECT is(current_setting('ordersync.auto_hot_max_buckets'), '256', 'ordersync.auto_hot_max_buckets defaults to 256');
SELECT set_eq($$SELECT name::text || '=' || context FROM pg_settings WHERE name LIKE 'ordersync.auto_hot%'$$,
	ARRAY['ordersync.auto_hot=sighup', 'ordersync.auto_hot_wait=sighup', 'ordersync.auto_hot_queue=sighup',
	      'ordersync.auto_hot_cooldown=sighup', 'ordersync.auto_hot_max_buckets=sighup'],
	'the auto-hot settings are server-wide (postgresql.conf, reload)');
SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'ordersync'), '0.8.0', 'CREATE EXTENSION installs 0.8.0');

-- ---------------------------------------------------------------------------
-- Refusals: each with its SQLSTATE, none changes anything
-- ---------------------------------------------------------------------------
SELECT ordersync.place_order('web', 'api-o4', '[{"sku": "API-1", "qty": 2, "price": "1"}]') AS o4 \gset
SELECT pg_temp.snapshot() AS before \gset

-- OS001 insufficient stock
SELECT throws_ok($$SELECT ordersync.place_order('web', 'api-x1', '[{"sku": "API-1", "qty": 100, "price": "1"}]')$$,
	'OS001', 'insufficient stock for SKU "API-1"', 'OS001: place_order beyond available stock');
SELECT is(pg_temp.snapshot(), :'before', 'OS001: nothing changed');
SELECT throws_ok(format($$SELECT ordersync.place_order('web', 'api-x2', '[{"sku": "API-1", "qty": %s, "price": "1"}]')$$,
	ordersync.available('API-1') + 1),
	'OS001', NULL, 'OS001: place_order of available + 1 units');
SELECT is(pg_temp.snapshot(), :'before', 'OS001 (available + 1): nothing changed');
SELECT throws_ok($$SELECT ordersync.place_order('web', 'api-x3', '[{"sku": "API-1", "qty": 1, "price": "1"}, {"sku": "API-2", "qty": 99, "price": "1"}]')$$,
	'OS001', 'insufficient stock for SKU "API-2"', 'OS001: a multi-line order with one short line');
SELECT is(pg_temp.snapshot(), :'before', 'OS001 (multi-line): no line was reserved');
SELECT throws_ok($$SELECT ordersync.place_order('web', 'api-x4', '[{"sku": "API-1", "qty": 10, "price": "1"}, {"sku": "API-1", "qty": 10, "price": "1"}]')$$,
	'OS001', NULL, 'OS001: two lines of one SKU are added up');
SELECT is(pg_temp.snapshot(), :'before', 'OS001 (same SKU twice): nothing changed');

-- the error says what went wrong and what to do
CREATE FUNCTION pg_temp.error_of(q text) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
	st text; msg text; det text; hnt text;
BEGIN
	EXECUTE q;
	RETURN NULL;
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
	RETURN ARRAY[st, msg, det, hnt];
END $$;
SELECT is((pg_temp.error_of($$SELECT ordersync.place_order('web', 'api-x1', '[{"sku": "API-1", "qty": 100, "price": "1"}]')$$))[3],
	format('SKU "API-1": requested 100, available %s.', ordersync.available('API-1')),
	'OS001: the detail names the SKU, the requested and the available quantity');
SELECT is(pg_temp.error_of(format($$SELECT ordersync.set_status(%s, 'shipped')$$, :o4)),
	ARRAY['OS002', 'illegal status transition from "pending" to "shipped"',
	      format('Order %s is "pending"; ordersync.transition has no transition (pending, shipped).', :o4),
	      'From "pending" the order may move to: cancelled, expired, paid.'],
	'OS002: the hint lists the allowed next statuses');
SELECT is((pg_temp.error_of(format($$SELECT ordersync.set_status(%s, 'paid')$$, :o2)))[4],
	'"expired" is a final status: the order cannot change any more.',
	'OS002: the hint says when a status is final');
SELECT is(pg_temp.snapshot(), :'before', 'reading the errors changed nothing');

-- quantities that overflow bigint when added up must not slip through.
-- pg_temp.outcome() runs a call and undoes it whatever happens, so a failure
-- here does not spill into the checks below: it returns the SQLSTATE of the
-- error, or what the call changed.
CREATE FUNCTION pg_temp.outcome(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RAISE EXCEPTION USING ERRCODE = 'PT999', MESSAGE = 'succeeded; afterwards ' || pg_temp.snapshot();
EXCEPTION WHEN OTHERS THEN
	RETURN CASE WHEN SQLSTATE = 'PT999' THEN SQLERRM ELSE SQLSTATE END;
END $$;
SELECT matches(pg_temp.outcome($$SELECT ordersync.place_order('web', 'api-ovf',
	'[{"sku": "API-1", "qty": 9223372036854775807, "price": "0"}, {"sku": "API-1", "qty": 9223372036854775807, "price": "0"}]')$$),
	'^OS00[14]$',
	'OS001/OS004: two lines of one SKU whose quantities add up beyond bigint are refused (not half reserved)');
SELECT is(pg_temp.snapshot(), :'before', 'nothing changed');

-- OS002 illegal transition
SELECT throws_ok(format($$SELECT ordersync.set_status(%s, 'shipped')$$, :o4),
	'OS002', 'illegal status transition from "pending" to "shipped"', 'OS002: set_status pending -> shipped');
SELECT is(pg_temp.snapshot(), :'before', 'OS002 (set_status): nothing changed');
SELECT throws_ok(format($$UPDATE ordersync.orders SET status = 'delivered' WHERE id = %s$$, :o4),
	'OS002', 'illegal status transition from "pending" to "delivered"', 'OS002: plain UPDATE pending -> delivered');
SELECT is(pg_temp.snapshot(), :'before', 'OS002 (UPDATE): nothing changed');
SELECT throws_ok(format($$SELECT ordersync.set_status(%s, 'no_such_status')$$, :o4),
	'OS002', NULL, 'OS002: set_status to a status that does not exist');
SELECT is(pg_temp.snapshot(), :'before', 'OS002 (unknown status): nothing changed');
SELECT throws_ok(format($$SELECT ordersync.set_status(%s, 'pending')$$, :o2),
	'OS002', NULL, 'OS002: expired is final');
SELECT is(pg_temp.snapshot(), :'before', 'OS002 (final status): nothing changed');
SELECT throws_ok(format($$UPDATE ordersync.orders SET status = 'completed' WHERE id IN (%s, %s)$$, :o1, :o4),
	'OS002', NULL, 'OS002: a multi-row UPDATE with one illegal change');
SELECT is(pg_temp.snapshot(), :'before', 'OS002 (multi-row UPDATE): no row changed');

-- OS003 re-import conflict
SELECT throws_ok($$SELECT ordersync.place_order('web', 'api-o1', '[{"sku": "API-1", "qty": 5, "price": "9.90"}]')$$,
	'OS003', 'order "api-o1" from channel "web" was already imported with different content',
	'OS003: same (channel, external_id), different lines');
SELECT is(pg_temp.snapshot(), :'before', 'OS003 (lines): nothing changed');
SELECT throws_ok($$SELECT ordersync.place_order('web', 'api-o1', '[{"sku": "API-1", "qty": 4, "price": "9.90"}]', '{"name": "Bob"}')$$,
	'OS003', NULL, 'OS003: same (channel, external_id), different customer');
SELECT is(pg_temp.snapshot(), :'before', 'OS003 (customer): nothing changed');

-- OS004 invalid input
SELECT throws_ok($$SELECT ordersync.place_order('web', 'api-x5', '[{"sku": "NO-SUCH-SKU", "qty": 1, "price": "1"}]')$$,
	'OS004', 'unknown SKU "NO-SUCH-SKU"', 'OS004: place_order of an unknown SKU');
SELECT is(pg_temp.snapshot(), :'before', 'OS004 (unknown SKU): nothing changed');
SELECT throws_ok($$SELECT ordersync.place_order('nochannel', 'api-x6', '[{"sku": "API-1", "qty": 1, "price": "1"}]')$$,
	'OS004', 'unknown channel "nochannel"', 'OS004: place_order on an unknown channel');
SELECT is(pg_temp.snapshot(), :'before', 'OS004 (unknown channel): nothing changed');
SELECT throws_ok($$SELECT ordersync.place_order('web', 'api-x7', '{"sku": "API-1"}')$$,
	'OS004', 'order lines must be a JSON array', 'OS004: lines that are not an array');
SELECT throws_ok($$SELECT ordersync.place_order('web', 'api-x8', '[]')$$,
	'OS004', NULL, 'OS004: an order without lines');
SELECT throws_ok($$SELECT ordersync.place_order('web', 'api-x9', '[{"sku": "API-1", "qty": 0, "price": "1"}]')$$,
	'OS004', 'invalid order line 1', 'OS004: qty 0');
SELECT throws_ok($$SELECT ordersync.place_order('web', 'api-x10', '[{"sku": "API-1", "qty": 1.5, "price": "1"}]')$$,
	'OS004', NULL, 'OS004: fractional qty');
SELECT throws_ok($$SELECT ordersync.place_order('web', 'api-x11', '[{"sku": "API-1", "qty": 1, "price": "1.999"}]')$$,
	'OS004', NULL, 'OS004: price with three decimals');
SELECT throws_ok($$SELECT ordersync.place_order('web', 'api-x12', '[{"sku": "API-1", "qty": 1, "price": "-1"}]')$$,
	'OS004', NULL, 'OS004: negative price');
SELECT throws_ok($$SELECT ordersync.place_order('web', 'api-x13', '[{"sku": "API-1", "qty": 1, "price": "1", "colour": "red"}]')$$,
	'OS004', NULL, 'OS004: a line with an unknown key');
SELECT throws_ok($$SELECT ordersync.place_order('web', 'api-x14', '[{"sku": "API-1", "qty": 1}]')$$,
	'OS004', NULL, 'OS004: a line without price');
SELECT throws_ok($$SELECT ordersync.place_order(NULL, 'api-x15', '[{"sku": "API-1", "qty": 1, "price": "1"}]')$$,
	'OS004', 'channel must not be null', 'OS004: NULL channel');
SELECT throws_ok($$SELECT ordersync.place_order('web', '', '[{"sku": "API-1", "qty": 1, "price": "1"}]')$$,
	'OS004', NULL, 'OS004: empty external_id');
SELECT throws_ok($$SELECT ordersync.place_order('web', 'api-x16', NULL)$$,
	'OS004', 'lines must not be null', 'OS004: NULL lines');
SELECT throws_ok($$SELECT ordersync.place_order('web', 'api-x17', '[{"sku": "API-1", "qty": 1, "price": "1"}]', '[1]')$$,
	'OS004', 'customer must be a JSON object', 'OS004: customer that is an array');
SELECT is(pg_temp.snapshot(), :'before', 'OS004 (bad order input): nothing changed');
SELECT throws_ok($$SELECT ordersync.set_status(-1, 'paid')$$,
	'OS004', 'order -1 does not exist', 'OS004: set_status of an order that does not exist');
SELECT throws_ok(format($$SELECT ordersync.set_status(%s, NULL)$$, :o4),
	'OS004', 'status must not be null', 'OS004: set_status to NULL');
SELECT throws_ok(format($$UPDATE ordersync.orders SET status = NULL WHERE id = %s$$, :o4),
	'OS004', 'status must not be null', 'OS004: plain UPDATE of status to NULL');
SELECT throws_ok($$SELECT ordersync.set_channel_status('nochannel', 'S-1', 'PAID')$$,
	'OS004', 'unknown channel "nochannel"', 'OS004: set_channel_status on an unknown channel');
SELECT throws_ok($$SELECT ordersync.set_channel_status('api-shop', 'S-1', 'LOST')$$,
	'OS004', 'channel "api-shop" has no mapping for its status "LOST"', 'OS004: set_channel_status with an unmapped status');
SELECT throws_ok($$SELECT ordersync.set_channel_status('api-shop', 'S-404', 'PAID')$$,
	'OS004', 'order "S-404" of channel "api-shop" does not exist', 'OS004: set_channel_status of an unknown order');
SELECT is(pg_temp.snapshot(), :'before', 'OS004 (bad status input): nothing changed');
SELECT throws_ok($$SELECT ordersync.receive_stock('API-1', 'nowhere', 1)$$,
	'OS004', 'unknown location "nowhere"', 'OS004: receive_stock at an unknown location');
SELECT throws_ok($$SELECT ordersync.receive_stock('API-1', 'api-wh1', 0)$$,
	'OS004', 'qty must be at least 1', 'OS004: receive_stock of 0 units');
SELECT throws_ok($$SELECT ordersync.receive_stock('API-1', 'api-wh1', -5)$$,
	'OS004', NULL, 'OS004: receive_stock of negative units');
SELECT throws_ok($$SELECT ordersync.receive_stock('', 'api-wh1', 1)$$,
	'OS004', 'sku must not be empty', 'OS004: receive_stock of an empty SKU');
SELECT throws_ok($$SELECT ordersync.receive_stock(repeat('s', 101), 'api-wh1', 1)$$,
	'OS004', 'SKU is too long', 'OS004: receive_stock of a SKU over 100 characters');
SELECT throws_ok($$SELECT ordersync.receive_stock('API-1', 'api-wh1', NULL)$$,
	'OS004', 'qty must not be null', 'OS004: receive_stock of NULL units');
SELECT throws_ok($$SELECT ordersync.set_safety_stock('API-1', 'api-wh1', -1)$$,
	'OS004', 'qty must be at least 0', 'OS004: negative safety stock');
SELECT throws_ok($$SELECT ordersync.set_safety_stock('API-2', 'api-wh2', 1)$$,
	'OS004', 'no stock of SKU "API-2" at location "api-wh2"', 'OS004: safety stock where there is no stock row');
SELECT throws_ok($$SELECT ordersync.available('NO-SUCH-SKU')$$,
	'OS004', 'unknown SKU "NO-SUCH-SKU"', 'OS004: available of an unknown SKU');
SELECT is(pg_temp.snapshot(), :'before', 'OS004 (bad stock input): nothing changed');
SELECT throws_ok($$SELECT ordersync.add_location('bad id!')$$,
	'OS004', 'invalid location id "bad id!"', 'OS004: add_location with an invalid id');
SELECT throws_ok($$SELECT ordersync.add_location('api-wh3', NULL)$$,
	'OS004', 'priority must not be null', 'OS004: add_location with NULL priority');
SELECT throws_ok($$SELECT ordersync.add_channel('Bad Channel')$$,
	'OS004', 'invalid channel id "Bad Channel"', 'OS004: add_channel with an invalid id');
SELECT throws_ok($$SELECT ordersync.add_channel('api-shop2', '{"PAID": "paidd"}')$$,
	'OS004', 'status map of channel "api-shop2" names an unknown status', 'OS004: add_channel mapping to an unknown status');
SELECT throws_ok($$SELECT ordersync.add_channel('api-shop2', '["paid"]')$$,
	'OS004', 'status_map must be a JSON object', 'OS004: add_channel with a status map that is not an object');
SELECT throws_ok($$SELECT ordersync.add_channel('api-shop2', NULL)$$,
	'OS004', 'status_map must not be null', 'OS004: add_channel with a NULL status map');
SELECT throws_ok($$SELECT ordersync.set_hot('API-H', 0)$$,
	'OS004', 'buckets must be between 1 and 1024', 'OS004: set_hot with 0 buckets');
SELECT throws_ok($$SELECT ordersync.set_hot('API-H', 1025)$$,
	'OS004', 'buckets must be between 1 and 1024', 'OS004: set_hot with 1025 buckets');
SELECT throws_ok($$SELECT ordersync.set_hot('API-H', NULL)$$,
	'OS004', NULL, 'OS004: set_hot with NULL buckets');
SELECT throws_ok($$SELECT ordersync.set_hot('NO-SUCH-SKU', 4)$$,
	'OS004', 'unknown SKU "NO-SUCH-SKU"', 'OS004: set_hot of an unknown SKU');
SELECT throws_ok($$SELECT ordersync.set_low_stock('API-H', -1)$$,
	'OS004', 'threshold must not be negative', 'OS004: negative low-stock threshold');
SELECT throws_ok($$SELECT ordersync.set_low_stock('NO-SUCH-SKU', 1)$$,
	'OS004', 'unknown SKU "NO-SUCH-SKU"', 'OS004: set_low_stock of an unknown SKU');
SELECT throws_ok($$SELECT ordersync.set_low_stock(NULL, 1)$$,
	'OS004', 'sku must not be null', 'OS004: set_low_stock of a NULL SKU');
SELECT is(pg_temp.snapshot(), :'before', 'OS004 (bad reference data): nothing changed');

-- OS005 append-only history (as the superuser: nobody else may even try)
SELECT throws_ok($$UPDATE ordersync.history SET reason = 'rewritten'$$,
	'OS005', 'history is append-only', 'OS005: UPDATE of history');
SELECT throws_ok($$DELETE FROM ordersync.history$$,
	'OS005', 'history is append-only', 'OS005: DELETE from history');
SELECT throws_ok($$TRUNCATE ordersync.history$$,
	'OS005', 'history is append-only', 'OS005: TRUNCATE of history');
SELECT is(pg_temp.snapshot(), :'before', 'OS005: history is intact');

-- a failed call leaves no state behind: the next change works normally and
-- does not inherit the failed call's reason
SELECT throws_ok(format($$SELECT ordersync.set_status(%s, 'shipped', 'failed reason')$$, :o4),
	'OS002', NULL, 'OS002: set_status with a reason');
UPDATE ordersync.orders SET status = 'cancelled' WHERE id = :o4;
SELECT results_eq(
	format($$SELECT action, from_status, to_status, reason FROM ordersync.history
	          WHERE order_id = %s AND action = 'status'$$, :o4),
	$$VALUES ('status', 'pending', 'cancelled', NULL::text)$$,
	'a plain UPDATE after a failed set_status records no reason');
SELECT is(ordersync.available('API-1'), 14::bigint, 'the cancelled order released its units');

-- the state machine is data: a new transition works at once, a deleted one
-- is refused at once (same transaction, same backend)
INSERT INTO ordersync.status (name) VALUES ('on_hold');
INSERT INTO ordersync.transition (from_status, to_status) VALUES ('paid', 'on_hold'), ('on_hold', 'paid');
SELECT lives_ok(format($$SELECT ordersync.set_status(%s, 'on_hold')$$, :o1), 'a transition added by the operator is allowed at once');
SELECT lives_ok(format($$SELECT ordersync.set_status(%s, 'paid')$$, :o1), 'and back');
DELETE FROM ordersync.transition WHERE from_status = 'paid' AND to_status = 'on_hold';
SELECT throws_ok(format($$SELECT ordersync.set_status(%s, 'on_hold')$$, :o1),
	'OS002', NULL, 'a transition deleted by the operator is refused at once');

-- a state machine change rolled back with its savepoint is gone from the
-- cache as well
SELECT throws_ok(format($q$DO $do$
	BEGIN
		INSERT INTO ordersync.status (name) VALUES ('api_tmp');
		INSERT INTO ordersync.transition (from_status, to_status) VALUES ('paid', 'api_tmp');
		PERFORM ordersync.set_status(%s, 'api_tmp');
		RAISE EXCEPTION 'undo' USING ERRCODE = 'P0001';
	END $do$$q$, :o1), 'P0001', 'undo', 'a transition used inside a subtransaction that rolls back');
SELECT throws_ok(format($$SELECT ordersync.set_status(%s, 'api_tmp')$$, :o1),
	'OS002', NULL, 'after the rollback the transition is refused again');
SELECT is((SELECT status FROM ordersync.orders WHERE id = :o1), 'paid', 'and the order is still paid');

-- the limits of the tables are the limits of the API: SKUs of up to 100
-- characters and external ids of up to 200 characters, not bytes
SELECT lives_ok($$SELECT ordersync.receive_stock(repeat('é', 60), 'api-wh1', 1)$$,
	'receive_stock accepts a SKU of 60 two-byte characters (the table allows 100 characters)');
INSERT INTO ordersync.sku (sku) VALUES (repeat('ü', 60)) ON CONFLICT DO NOTHING;
INSERT INTO ordersync.stock (sku, location, on_hand) VALUES (repeat('ü', 60), 'api-wh1', 1);
SELECT lives_ok(format($$SELECT ordersync.place_order('web', 'api-mb', '[{"sku": "%s", "qty": 1, "price": "1"}]')$$, repeat('ü', 60)),
	'place_order accepts a line whose SKU has 60 two-byte characters (the table allows 100 characters)');
SELECT lives_ok($$SELECT ordersync.place_order('web', repeat('é', 150), '[{"sku": "API-2", "qty": 1, "price": "1"}]')$$,
	'place_order accepts an external_id of 150 two-byte characters (the table allows 200 characters)');

-- the full lifecycle along the shipped graph, with the stock effects
SELECT lives_ok(format($$SELECT ordersync.set_status(%s, 'fulfilling')$$, :o1), 'paid -> fulfilling');
SELECT lives_ok(format($$SELECT ordersync.set_status(%s, 'shipped')$$, :o1), 'fulfilling -> shipped');
SELECT results_eq($$SELECT sum(on_hand)::bigint, sum(reserved)::bigint FROM ordersync.stock WHERE sku = 'API-1'$$,
	$$VALUES (14::bigint, 0::bigint)$$, 'shipping consumed the 4 reserved units from on hand');
SELECT lives_ok(format($$SELECT ordersync.set_status(%s, 'delivered')$$, :o1), 'shipped -> delivered');
SELECT lives_ok(format($$SELECT ordersync.set_status(%s, 'returned')$$, :o1), 'delivered -> returned');
SELECT is((SELECT sum(on_hand)::bigint FROM ordersync.stock WHERE sku = 'API-1'), 18::bigint, 'the return restocked the 4 units');
SELECT lives_ok(format($$SELECT ordersync.set_status(%s, 'refunded')$$, :o1), 'returned -> refunded');
SELECT is(ordersync.available('API-1'), 18::bigint, 'after the whole lifecycle all units are available again');

-- safety stock of a hot SKU is honoured over the location, not per bucket:
-- available = on_hand - reserved - safety whatever the buckets hold
SELECT is(ordersync.receive_stock('API-HS', 'api-wh1', 10), 10::bigint, 'receive 10 units of a SKU');
SELECT lives_ok($$SELECT ordersync.set_hot('API-HS', 2)$$, 'make it hot with 2 buckets');
SELECT ok(ordersync.place_order('web', 'api-hs1', '[{"sku": "API-HS", "qty": 5, "price": "1"}]') > 0, 'sell 5 of them');
SELECT lives_ok($$SELECT ordersync.set_safety_stock('API-HS', 'api-wh1', 4)$$, 'keep 4 as safety stock');
SELECT is(ordersync.available('API-HS'), 1::bigint, 'a hot SKU: available = 10 on hand - 5 reserved - 4 safety = 1');
SELECT is(pg_temp.outcome($$SELECT ordersync.place_order('web', 'api-hs2', '[{"sku": "API-HS", "qty": 3, "price": "1"}]')$$),
	'OS001', 'a hot SKU: an order of 3 when 1 is available is refused (safety stock is not sold)');

-- the relay's sinks
SELECT is(pg_temp.outcome($$SELECT ordersync.add_sink('h', 'https://h.example.com/', '{"token": "x"}')$$),
	'OS006', 'add_sink refuses a secret in the options (OS006)');
SELECT is(pg_temp.outcome($$SELECT ordersync.add_route('nosuch', '*')$$),
	'OS007', 'add_route to an unknown sink: OS007');
SELECT is(pg_temp.outcome($$SELECT ordersync.redeliver(0)$$),
	'OS008', 'redeliver of an unknown dead letter: OS008');
SELECT is(pg_temp.outcome($$SELECT ordersync.add_sink('h', 'https://h.example.com/', '{"password_env": "P"}')$$),
	'OS006', 'add_sink refuses an option its scheme does not take (OS006)');
SELECT is(pg_temp.outcome($$SELECT ordersync.add_sink('k', 'kafka://k1/t', '{"kafka": {"sasl.kerberos.kinit.cmd": "sh"}}')$$),
	'OS006', 'add_sink refuses a librdkafka property outside the allowlist (OS006)');
SELECT is(pg_temp.outcome($$SELECT ordersync.add_sink('h', 'http://169.254.169.254/', '{}')$$),
	'OS006', 'add_sink refuses a link-local host (OS006)');
-- 0.6.0: webhooks take idle_timeout_ms, within the relay's range; others do not
SELECT lives_ok($$SELECT ordersync.add_sink('idle-hook', 'https://hooks.example.com/idle', '{"idle_timeout_ms": 2500}')$$,
	'add_sink of a webhook with idle_timeout_ms');
SELECT is((SELECT options->>'idle_timeout_ms' FROM ordersync.sink WHERE name = 'idle-hook'), '2500',
	'the webhook keeps its idle_timeout_ms');
SELECT is(pg_temp.outcome($$SELECT ordersync.add_sink('h', 'https://h.example.com/', '{"idle_timeout_ms": 0}')$$),
	'OS006', 'add_sink refuses idle_timeout_ms 0 (OS006)');
SELECT is(pg_temp.outcome($$SELECT ordersync.add_sink('k', 'kafka://k1/t', '{"idle_timeout_ms": 1000}')$$),
	'OS006', 'add_sink refuses idle_timeout_ms for a Kafka sink (OS006)');
SELECT is(ARRAY[ordersync.is_plain_text('A-1 b'), ordersync.is_plain_text(' A'), ordersync.is_plain_text(E'A\u00a0'),
		ordersync.is_plain_text(E'A\u200bB'), ordersync.is_plain_text(E'A\tB'), ordersync.is_plain_text(E'A\u202eB')],
	ARRAY[true, false, false, false, false, false],
	'is_plain_text (the CHECK constraints on SKUs and external ids) refuses what the API refuses');
SELECT is(pg_temp.outcome($$SELECT ordersync.record_dead_letter('h', '{"id": 1}', 'x', 1)$$),
	'OS006', 'record_dead_letter refuses an event without string id, type and subject (OS006)');

-- redeliver writes a row the relay reads from the stream, and no message
SELECT lives_ok($$SELECT ordersync.add_sink('api-hook', 'https://hooks.example.com/orders', '{"secret_env": "API_HOOK_SECRET"}')$$,
	'add_sink of a webhook with a secret reference');
SELECT ordersync.record_dead_letter('api-hook', '{"id": "0/16B3D28/3", "type": "ordersync.order.paid", "subject": "order/1"}',
	'HTTP 500', 25) AS dl \gset
SELECT is(ordersync.redeliver(:dl), '0/16B3D28/3', 'redeliver returns the event id');
SELECT results_eq(format($$SELECT dead_letter_id, sink, event->>'id', requested_by FROM ordersync.redelivery WHERE dead_letter_id = %s$$, :dl),
	format($$VALUES (%s::bigint, 'api-hook', '0/16B3D28/3', %L)$$, :dl, session_user),
	'redeliver inserts one ordersync.redelivery row: the dead letter, its sink and event, who asked');

-- 0.3.0: stock figures past the largest bigint, hidden characters, big customers
SELECT is(ordersync.receive_stock('API-MAX', 'api-wh1', 9223372036854775807), 9223372036854775807::bigint,
	'receive_stock up to the largest bigint');
SELECT is(pg_temp.outcome($$SELECT ordersync.receive_stock('API-MAX', 'api-wh1', 1)$$),
	'OS004', 'receive_stock past the largest bigint: OS004 (not 23514)');
SELECT is(ordersync.receive_stock('API-MAX', 'api-wh2', 9223372036854775807), 9223372036854775807::bigint,
	'the same at a second location');
SELECT is(pg_temp.outcome($$SELECT ordersync.available('API-MAX')$$),
	'OS004', 'available() of more than a bigint over two locations: OS004 (not 22003)');
SELECT is(pg_temp.outcome($$SELECT ordersync.place_order('web', 'api-max', '[{"sku": "API-MAX", "qty": 9223372036854775807, "price": "0"}, {"sku": "API-MAX", "qty": 1, "price": "0"}]')$$),
	'OS004', 'place_order with lines of one SKU adding up past the largest bigint: OS004');
SELECT is(pg_temp.outcome($$SELECT ordersync.receive_stock(E'API\u200B1', 'api-wh1', 1)$$),
	'OS004', 'receive_stock of a SKU with a zero-width space: OS004');
SELECT is(pg_temp.outcome($$SELECT ordersync.place_order('web', E'api\tx', '[{"sku": "API-1", "qty": 1, "price": "1"}]')$$),
	'OS004', 'place_order with a control character in the external id: OS004');
SELECT is(pg_temp.outcome(format($$SELECT ordersync.place_order('web', 'api-big-customer', '[{"sku": "API-1", "qty": 1, "price": "1"}]', %L)$$,
	jsonb_build_object('note', repeat('x', 20000)))),
	'OS004', 'place_order with a customer over ordersync.max_customer_bytes: OS004');

SELECT * FROM finish();
