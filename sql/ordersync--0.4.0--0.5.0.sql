/*
 * ordersync--0.4.0--0.5.0.sql — stock outlook and analytics, compliance, and
 * operations.
 *
 * Each part of this release has a section of its own below.
 */

-- complain if the script is sourced in psql rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ordersync UPDATE TO '0.5.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Outlook: forecasts on the shop's own data, stock-out predictions, hot SKUs
-- before the peak (issue 13, items 3 and 4)
-- ---------------------------------------------------------------------------
-- See doc/forecast.md ("Order volume", "Intermittent demand", "Stock
-- outlook", "Ready before the peak") and doc/events.md.  The computing
-- functions read the rollups as they are: without the background worker,
-- run refresh_rollups() first.

-- Croston, SBA and TSB on a demand history: pure computation, like forecast().
CREATE FUNCTION ordersync.forecast_intermittent(history float8[], method text DEFAULT 'auto')
	RETURNS TABLE (method text, value float8, alpha float8, beta float8, mse float8)
	LANGUAGE c IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'ordersync_forecast_intermittent';
COMMENT ON FUNCTION ordersync.forecast_intermittent(float8[], text) IS 'forecasts intermittent demand per period from history (oldest first, units per period, 0 for none) by Croston, SBA or TSB (method, or auto: the smallest in-sample error), with the parameters fitted over a fixed grid; one row';

-- Orders per bucket from ordersync.rollup_hourly; reads tables, so STABLE.
CREATE FUNCTION ordersync.forecast_orders(bucket interval DEFAULT '1 hour', horizon integer DEFAULT 48,
										  channel text DEFAULT NULL)
	RETURNS TABLE (bucket_start timestamptz, value float8, lower float8, upper float8)
	LANGUAGE c STABLE
	AS 'MODULE_PATHNAME', 'ordersync_forecast_orders';
COMMENT ON FUNCTION ordersync.forecast_orders(interval, integer, text) IS 'forecasts the orders of the next horizon buckets (the current one first) of one channel, or all with NULL, from rollup_hourly, with 95% intervals';

CREATE FUNCTION ordersync.stock_outlook(lead_time interval DEFAULT '7 days', service_level float8 DEFAULT 0.95)
	RETURNS TABLE (sku text, location text, on_hand bigint, available bigint, daily_demand float8,
				   method text, days_of_cover float8, projected_stockout date, safety_stock bigint,
				   reorder_point bigint, suggested_reorder bigint)
	LANGUAGE c STABLE
	AS 'MODULE_PATHNAME', 'ordersync_stock_outlook';
COMMENT ON FUNCTION ordersync.stock_outlook(interval, float8) IS 'per SKU and location: stock, forecast demand per day (rollup_daily_sku, intermittent methods), days of cover, projected stock-out date, and the safety stock, reorder point and reorder quantity for lead_time at service_level';

-- The crossing state of inventory.stockout_predicted: a pair is here while
-- its projected stock-out lies within ordersync.outlook_lead_time.  Dumped,
-- so a restore does not announce the same stock-outs again.
CREATE TABLE ordersync.stockout_watch (
	sku			text NOT NULL,
	location	text NOT NULL,
	projected_stockout date,
	days_of_cover float8 NOT NULL,
	entered_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (sku, location)
);
COMMENT ON TABLE ordersync.stockout_watch IS 'SKUs and locations whose projected stock-out lies within ordersync.outlook_lead_time, as of the last check, with the projection when they entered; written by check_stockouts() and the background worker';

CREATE FUNCTION ordersync.check_stockouts()
	RETURNS integer
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_check_stockouts';
COMMENT ON FUNCTION ordersync.check_stockouts() IS 'emits inventory.stockout_predicted for each SKU and location whose projected stock-out came within ordersync.outlook_lead_time since the last check (once per crossing); returns how many';

-- Peak preparation marks the SKUs it splits 'forecast'.
ALTER TABLE ordersync.sku DROP CONSTRAINT sku_hot_source,
	ADD CONSTRAINT sku_hot_source CHECK (hot_source IN ('operator', 'auto', 'forecast'));
COMMENT ON COLUMN ordersync.sku.hot_source IS
	'who set the bucket count: operator (set_hot, never changed automatically), auto (the worker''s auto-hot, merged back when quiet), forecast (prepare_peak, merged back when the forecast falls), or NULL (never set)';

CREATE FUNCTION ordersync.prepare_peak()
	RETURNS TABLE (sku text, buckets integer, previous_buckets integer, units_per_hour float8)
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_prepare_peak';
COMMENT ON FUNCTION ordersync.prepare_peak() IS 'splits SKUs forecast to sell ordersync.peak_units_per_hour or more in the next hour into ordersync.peak_buckets buckets, and merges back those it split once below half that; never a SKU set by the operator or auto-hot; returns the changes';

REVOKE ALL ON FUNCTION ordersync.forecast_intermittent(float8[], text), ordersync.forecast_orders(interval, integer, text),
	ordersync.stock_outlook(interval, float8), ordersync.check_stockouts(), ordersync.prepare_peak() FROM PUBLIC;
REVOKE ALL ON ordersync.stockout_watch FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ordersync.forecast_intermittent(float8[], text), ordersync.forecast_orders(interval, integer, text),
	ordersync.stock_outlook(interval, float8), ordersync.check_stockouts()
	TO ordersync_app, ordersync_admin;
GRANT EXECUTE ON FUNCTION ordersync.prepare_peak() TO ordersync_admin;
GRANT SELECT ON ordersync.stockout_watch TO ordersync_app, ordersync_admin;

SELECT pg_catalog.pg_extension_config_dump('ordersync.stockout_watch', '');

-- ---------------------------------------------------------------------------
-- Compliance (issue 15)
-- ---------------------------------------------------------------------------
-- Erasure that keeps the audit trail, tamper-evident history, retention by
-- market, legal holds, a compliance report and the export for a data
-- subject.  See doc/compliance.md.
--
-- History holds no customer data: its rows reference the order, whose
-- customer object lives only in ordersync.orders (and, as received or
-- delivered, in inbox payloads and dead letters).  Erasure therefore
-- changes those and appends to history; it never rewrites history, and the
-- hash chain below covers every history row as written.
--
-- Errors: OS030 orders still open, OS031 invalid selector, OS032 legal
-- hold, OS033 unknown order, OS034 invalid market, OS035 reason required,
-- OS036 invalid retention period, OS037 no legal hold, OS038 malformed
-- history chain.

-- Hash chain: set by a C trigger on insert (src/extension/history_chain.c),
-- per order, per SKU for rows without an order, and one chain for the
-- rest; never one chain for all (a row every buyer would wait for).
ALTER TABLE ordersync.history
	ADD COLUMN prev_id bigint,
	ADD COLUMN hash bytea;
COMMENT ON COLUMN ordersync.history.prev_id IS 'the previous row of this row''s chain (same order; or same SKU, or neither, for rows without an order); NULL at the start of a chain';
COMMENT ON COLUMN ordersync.history.hash IS 'SHA-256 of the row (every other column) and of the previous row''s hash: see ordersync.verify_history()';

-- (the head of an order's chain is found through history_order_idx)
-- the chain heads of rows without an order; admin writes only, small
CREATE INDEX history_sku_chain_idx ON ordersync.history (sku, id) WHERE order_id IS NULL;

-- Rows written before 0.5.0 have no hash.  From sealed_from on, every row
-- must have one; the chains start at the first row with a hash.
CREATE TABLE ordersync.history_seal (
	one			boolean PRIMARY KEY DEFAULT true CONSTRAINT history_seal_one_row CHECK (one),
	sealed_from	bigint NOT NULL
);
COMMENT ON TABLE ordersync.history_seal IS 'the first history id that must carry a hash (rows before it were written by releases before 0.5.0)';
INSERT INTO ordersync.history_seal (sealed_from)
	SELECT coalesce(max(h.id), 0) + 1 FROM ordersync.history h;

CREATE FUNCTION ordersync.history_chain_trigger() RETURNS trigger
	LANGUAGE c AS 'MODULE_PATHNAME', 'ordersync_history_chain_trigger';
COMMENT ON FUNCTION ordersync.history_chain_trigger() IS 'sets prev_id and hash of every new history row';
CREATE TRIGGER history_chain
	BEFORE INSERT ON ordersync.history
	FOR EACH ROW EXECUTE FUNCTION ordersync.history_chain_trigger();

CREATE FUNCTION ordersync.verify_history()
	RETURNS TABLE (history_id bigint, problem text)
	LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_verify_history';
COMMENT ON FUNCTION ordersync.verify_history() IS 'recomputes the hash chains of ordersync.history: no row when they are intact, else each row that does not fit and why';

-- Markets: a channel sells into one; retention rules are per market.
ALTER TABLE ordersync.channel
	ADD COLUMN market text
		CONSTRAINT channel_market_format CHECK (market ~ '^[a-z0-9][a-z0-9_-]{0,31}$');
COMMENT ON COLUMN ordersync.channel.market IS 'the market this channel sells into (e.g. eu, cn, us-ca): its retention rules apply to the channel''s orders';

ALTER TABLE ordersync.orders ADD COLUMN erased_at timestamptz;
COMMENT ON COLUMN ordersync.orders.erased_at IS 'when the customer''s personal data was erased (forget_customer or retention); NULL while it is kept';

CREATE TABLE ordersync.retention (
	market		text PRIMARY KEY
				CONSTRAINT retention_market_format CHECK (market ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
	-- how long after an order closed its customer data is kept; NULL: no limit
	personal_data interval CONSTRAINT retention_personal_data_nonnegative
				CHECK (personal_data >= interval '0'),
	-- how long after an order closed its record is kept; NULL: forever
	order_records interval CONSTRAINT retention_order_records_nonnegative
				CHECK (order_records >= interval '0'),
	-- false: no sink may receive this market's personal data (drop_personal_data)
	personal_data_to_sinks boolean NOT NULL DEFAULT true,
	updated_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_by	text NOT NULL
);
COMMENT ON TABLE ordersync.retention IS 'per market: how long personal data and order records are kept after an order closes; set with set_retention()';

CREATE TABLE ordersync.order_hold (
	order_id	bigint PRIMARY KEY REFERENCES ordersync.orders,
	reason		text NOT NULL,
	held_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	held_by		text NOT NULL
);
COMMENT ON TABLE ordersync.order_hold IS 'orders under legal hold: neither erased nor removed until released; set with legal_hold()';

-- history row and event of one compliance action (compliance.c); only the
-- functions below call it
CREATE FUNCTION ordersync.compliance_record(action text, order_id bigint, reason text,
											event_type text, event_data jsonb)
	RETURNS void
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_compliance_record';
COMMENT ON FUNCTION ordersync.compliance_record(text, bigint, text, text, jsonb) IS 'internal: the history row and event of one compliance action on an order; executable by nobody but the extension''s own functions';

-- The orders a selector names: {"orders": [17, 18]} or
-- {"customer": {"email": "ada@example.com"}} (orders whose customer object
-- has that key with exactly that string).  Nothing broader: no empty
-- selector, no pattern, no non-string value.
CREATE FUNCTION ordersync.selected_orders(selector jsonb)
	RETURNS bigint[]
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	example constant text := 'Pass {"orders": [17, 18]} or {"customer": {"email": "ada@example.com"}}.';
	ids bigint[];
	missing bigint[];
	k text;
	v jsonb;
BEGIN
	IF selector IS NULL OR jsonb_typeof(selector) <> 'object'
	   OR (SELECT count(*) FROM jsonb_object_keys(selector)) <> 1
	   OR NOT (selector ? 'orders' OR selector ? 'customer') THEN
		RAISE EXCEPTION 'invalid selector'
			USING ERRCODE = 'OS031',
				  DETAIL = format('A selector is an object with exactly one key, "orders" or "customer"; got %s.',
								  left(coalesce(selector::text, 'NULL'), 200)),
				  HINT = example;
	END IF;
	IF selector ? 'orders' THEN
		v := selector -> 'orders';
		IF jsonb_typeof(v) <> 'array' OR jsonb_array_length(v) = 0 OR jsonb_array_length(v) > 10000
		   OR EXISTS (SELECT FROM jsonb_array_elements(v) e
					   WHERE jsonb_typeof(e) <> 'number' OR e::text !~ '^[1-9][0-9]{0,17}$') THEN
			RAISE EXCEPTION 'invalid selector: "orders" must list order ids'
				USING ERRCODE = 'OS031',
					  DETAIL = format('"orders" must be an array of 1 to 10000 positive integer order ids; got %s.',
									  left(v::text, 200)),
					  HINT = example;
		END IF;
		SELECT array_agg(DISTINCT e::text::bigint ORDER BY e::text::bigint) INTO ids
		  FROM jsonb_array_elements(v) e;
		SELECT array_agg(i ORDER BY i) INTO missing
		  FROM unnest(ids) i WHERE NOT EXISTS (SELECT FROM ordersync.orders o WHERE o.id = i);
		IF missing IS NOT NULL THEN
			RAISE EXCEPTION 'unknown order %', missing[1]
				USING ERRCODE = 'OS033',
					  DETAIL = format('ordersync.orders has no order %s.', array_to_string(missing[1:20], ', ')),
					  HINT = 'Name existing orders only; nothing was changed.';
		END IF;
		RETURN ids;
	END IF;
	v := selector -> 'customer';
	IF jsonb_typeof(v) <> 'object' OR (SELECT count(*) FROM jsonb_object_keys(v)) <> 1 THEN
		RAISE EXCEPTION 'invalid selector: "customer" must name one field'
			USING ERRCODE = 'OS031',
				  DETAIL = format('"customer" must be an object with exactly one key and a string value; got %s.',
								  left(v::text, 200)),
				  HINT = example;
	END IF;
	SELECT key, value INTO k, v FROM jsonb_each(v);
	IF k = '' OR jsonb_typeof(v) <> 'string' OR v #>> '{}' = '' THEN
		RAISE EXCEPTION 'invalid selector: the customer field must be a non-empty string'
			USING ERRCODE = 'OS031',
				  DETAIL = format('"customer" must map a non-empty key to a non-empty string; got {%s: %s}.',
								  to_jsonb(k)::text, left(v::text, 200)),
				  HINT = example;
	END IF;
	SELECT array_agg(o.id ORDER BY o.id) INTO ids
	  FROM ordersync.orders o
	 WHERE jsonb_typeof(o.customer -> k) = 'string' AND o.customer ->> k = v #>> '{}';
	RETURN coalesce(ids, '{}');
END
$$;
COMMENT ON FUNCTION ordersync.selected_orders(jsonb) IS 'internal: the order ids a forget_customer/customer_data selector names; refuses anything broader than one customer field or a list of ids';

-- Erases the personal data of orders locked by the caller: the customer
-- object, inbox payloads and the customer in dead letters and redelivery
-- requests, each table in one statement for the whole set (inbox and dead
-- letters have no index by order: one scan per batch, not per order).  A
-- history row and a customer.forgotten event per order.
CREATE FUNCTION ordersync.erase_orders(order_ids bigint[], erased_by text, reason text)
	RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	subjects text[] := ARRAY(SELECT 'order/' || i FROM unnest(order_ids) i);
	o record;
BEGIN
	UPDATE ordersync.orders x SET customer = NULL, erased_at = now() WHERE x.id = ANY (order_ids);
	-- updates waiting in the inbox can no longer be applied from an erased payload
	UPDATE ordersync.inbox i
	   SET payload = jsonb_build_object('erased', erase_orders.erased_by),
		   state = CASE WHEN i.state IN ('received', 'parked') THEN 'failed' ELSE i.state END,
		   error = CASE WHEN i.state IN ('received', 'parked')
						THEN 'not applied: the order''s personal data was erased' ELSE i.error END
	 WHERE i.order_id = ANY (order_ids)
		OR (i.channel, i.external_id) IN (SELECT x.channel, x.external_id FROM ordersync.orders x
										   WHERE x.id = ANY (order_ids));
	UPDATE ordersync.redelivery r SET event = r.event #- '{data,customer}'
	 WHERE r.event #> '{data,customer}' IS NOT NULL
	   AND r.dead_letter_id IN (SELECT d.id FROM ordersync.dead_letter d WHERE d.subject = ANY (subjects));
	UPDATE ordersync.dead_letter d SET event = d.event #- '{data,customer}'
	 WHERE d.subject = ANY (subjects) AND d.event #> '{data,customer}' IS NOT NULL;
	FOR o IN SELECT x.id, x.channel, x.external_id FROM ordersync.orders x
			  WHERE x.id = ANY (order_ids) ORDER BY x.id LOOP
		PERFORM ordersync.compliance_record(
			CASE erase_orders.erased_by WHEN 'request' THEN 'forgotten' ELSE 'personal_data_expired' END,
			o.id, erase_orders.reason, 'customer.forgotten',
			jsonb_build_object('order_id', o.id, 'channel', o.channel, 'external_id', o.external_id,
							   'erased_by', erase_orders.erased_by));
	END LOOP;
END
$$;
COMMENT ON FUNCTION ordersync.erase_orders(bigint[], text, text) IS 'internal: erases locked orders'' personal data, with a history row and a customer.forgotten event each';

CREATE FUNCTION ordersync.forget_customer(selector jsonb, reason text, force boolean DEFAULT false)
	RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	ids bigint[];
	blocked bigint[];
BEGIN
	IF force IS NULL OR (force AND (reason IS NULL OR btrim(reason) = '')) THEN
		RAISE EXCEPTION 'forcing an erasure needs a reason'
			USING ERRCODE = 'OS035',
				  DETAIL = 'forget_customer() was called with force => ' || coalesce(force::text, 'NULL') || ' and no reason.',
				  HINT = 'Say why the open orders must be erased now, e.g. reason => ''GDPR request 2024-117, order cancelled by phone''.';
	END IF;
	ids := ordersync.selected_orders(selector);
	-- one order at a time in id order, as every other writer of orders locks them
	PERFORM FROM ordersync.orders o WHERE o.id = ANY (ids) ORDER BY o.id FOR NO KEY UPDATE;

	SELECT array_agg(h.order_id ORDER BY h.order_id) INTO blocked
	  FROM ordersync.order_hold h WHERE h.order_id = ANY (ids);
	IF blocked IS NOT NULL THEN
		RAISE EXCEPTION 'order % is under legal hold', blocked[1]
			USING ERRCODE = 'OS032',
				  DETAIL = format('Orders under legal hold: %s. Nothing was erased.', array_to_string(blocked[1:20], ', ')),
				  HINT = 'A legal hold outranks erasure: release it with ordersync.release_legal_hold() when the hold ends.';
	END IF;
	SELECT array_agg(o.id ORDER BY o.id) INTO blocked
	  FROM ordersync.orders o JOIN ordersync.status s ON s.name = o.status
	 WHERE o.id = ANY (ids) AND s.open AND o.erased_at IS NULL;
	IF blocked IS NOT NULL AND NOT force THEN
		RAISE EXCEPTION 'order % is still open', blocked[1]
			USING ERRCODE = 'OS030',
				  DETAIL = format('Open orders: %s. Their shipping and payment still need the customer''s data. Nothing was erased.',
								  array_to_string(blocked[1:20], ', ')),
				  HINT = 'Erase after they close, or pass force => true with a reason.';
	END IF;

	ids := ARRAY(SELECT o.id FROM ordersync.orders o WHERE o.id = ANY (ids) AND o.erased_at IS NULL ORDER BY o.id);
	IF cardinality(ids) > 0 THEN
		PERFORM ordersync.erase_orders(ids, 'request', reason);
	END IF;
	RETURN cardinality(ids);
END
$$;
COMMENT ON FUNCTION ordersync.forget_customer(jsonb, text, boolean) IS 'erases the personal data of the orders a selector names (right to erasure), with a history row and a customer.forgotten event each; open orders only with force and a reason; returns how many orders were erased';

CREATE FUNCTION ordersync.customer_data(selector jsonb)
	RETURNS jsonb
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	ids bigint[] := ordersync.selected_orders(selector);
	subjects text[] := ARRAY(SELECT 'order/' || i FROM unnest(ids) i);
BEGIN
	RETURN jsonb_build_object(
		'selector', selector,
		'generated_at', now(),
		'orders', coalesce((
			SELECT jsonb_agg(jsonb_build_object(
				'order_id', o.id, 'channel', o.channel, 'external_id', o.external_id,
				'status', o.status, 'customer', o.customer, 'lines', o.lines, 'total', o.total::text,
				'created_at', o.created_at, 'updated_at', o.updated_at, 'erased_at', o.erased_at,
				'market', c.market) ORDER BY o.id)
			  FROM ordersync.orders o JOIN ordersync.channel c ON c.id = o.channel
			 WHERE o.id = ANY (ids)), '[]'),
		-- who acted (actor, role) is staff data, not the customer's
		'history', coalesce((
			SELECT jsonb_agg(jsonb_build_object(
				'id', h.id, 'at', h.at, 'action', h.action, 'order_id', h.order_id,
				'from_status', h.from_status, 'to_status', h.to_status, 'sku', h.sku,
				'location', h.location, 'qty', h.qty, 'reason', h.reason) ORDER BY h.id)
			  FROM ordersync.history h WHERE h.order_id = ANY (ids)), '[]'),
		'inbox', coalesce((
			SELECT jsonb_agg(jsonb_build_object(
				'id', i.id, 'channel', i.channel, 'kind', i.kind, 'received_at', i.received_at,
				'state', i.state, 'payload', i.payload) ORDER BY i.id)
			  FROM ordersync.inbox i
			 WHERE i.order_id = ANY (ids)
				OR EXISTS (SELECT FROM ordersync.orders o WHERE o.id = ANY (ids)
							AND o.channel = i.channel AND o.external_id = i.external_id)), '[]'),
		'dead_letters', coalesce((
			SELECT jsonb_agg(jsonb_build_object(
				'id', d.id, 'sink', d.sink, 'type', d.type, 'failed_at', d.failed_at,
				'event', d.event) ORDER BY d.id)
			  FROM ordersync.dead_letter d WHERE d.subject = ANY (subjects)), '[]'),
		'legal_holds', coalesce((
			SELECT jsonb_agg(jsonb_build_object('order_id', h.order_id, 'reason', h.reason,
												'held_at', h.held_at) ORDER BY h.order_id)
			  FROM ordersync.order_hold h WHERE h.order_id = ANY (ids)), '[]'));
END
$$;
COMMENT ON FUNCTION ordersync.customer_data(jsonb) IS 'everything ordersync holds about the orders a selector names (orders, history, inbox payloads, dead letters, legal holds) as one JSON document: for access requests';

CREATE FUNCTION ordersync.set_retention(market text, personal_data interval, order_records interval,
										personal_data_to_sinks boolean DEFAULT true)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF market IS NULL OR market !~ '^[a-z0-9][a-z0-9_-]{0,31}$' THEN
		RAISE EXCEPTION 'invalid market %', coalesce(quote_literal(market), 'NULL')
			USING ERRCODE = 'OS034',
				  DETAIL = 'A market is 1 to 32 lower-case letters, digits, "_" or "-", starting with a letter or digit.',
				  HINT = 'Name markets like eu, cn or us-ca, and set the same name in ordersync.channel.market.';
	END IF;
	IF personal_data < interval '0' OR order_records < interval '0'
	   OR (personal_data IS NOT NULL AND order_records IS NOT NULL AND order_records < personal_data) THEN
		RAISE EXCEPTION 'invalid retention periods for market %', market
			USING ERRCODE = 'OS036',
				  DETAIL = format('personal_data %s, order_records %s: periods must not be negative, and personal data cannot outlive the order record.',
								  coalesce(personal_data::text, 'NULL'), coalesce(order_records::text, 'NULL')),
				  HINT = 'Pass NULL for no limit, e.g. set_retention(''eu'', ''30 days'', ''10 years'').';
	END IF;
	IF personal_data_to_sinks IS NULL THEN
		personal_data_to_sinks := true;
	END IF;
	INSERT INTO ordersync.retention AS r (market, personal_data, order_records, personal_data_to_sinks, updated_by)
	VALUES (set_retention.market, set_retention.personal_data, set_retention.order_records,
			set_retention.personal_data_to_sinks, session_user)
	ON CONFLICT ON CONSTRAINT retention_pkey DO UPDATE
	   SET personal_data = excluded.personal_data, order_records = excluded.order_records,
		   personal_data_to_sinks = excluded.personal_data_to_sinks,
		   updated_at = now(), updated_by = excluded.updated_by;
END
$$;
COMMENT ON FUNCTION ordersync.set_retention(text, interval, interval, boolean) IS 'sets how long after an order closes a market keeps its personal data and its record (NULL: no limit), and whether sinks may receive its personal data';

CREATE FUNCTION ordersync.legal_hold(order_id bigint, reason text)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF reason IS NULL OR btrim(reason) = '' THEN
		RAISE EXCEPTION 'a legal hold needs a reason'
			USING ERRCODE = 'OS035',
				  DETAIL = format('legal_hold(%s) was called without a reason.', coalesce(order_id::text, 'NULL')),
				  HINT = 'Name the case, e.g. reason => ''tax audit 2025, case 4411''.';
	END IF;
	PERFORM FROM ordersync.orders o WHERE o.id = legal_hold.order_id FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown order %', coalesce(order_id::text, 'NULL')
			USING ERRCODE = 'OS033',
				  DETAIL = format('ordersync.orders has no order %s.', coalesce(order_id::text, 'NULL')),
				  HINT = 'Name an existing order.';
	END IF;
	IF EXISTS (SELECT FROM ordersync.order_hold h WHERE h.order_id = legal_hold.order_id
				AND h.reason = legal_hold.reason) THEN
		RETURN;					-- the same hold again: nothing happens
	END IF;
	INSERT INTO ordersync.order_hold AS h (order_id, reason, held_by)
	VALUES (legal_hold.order_id, legal_hold.reason, session_user)
	ON CONFLICT ON CONSTRAINT order_hold_pkey DO UPDATE
	   SET reason = excluded.reason, held_at = now(), held_by = excluded.held_by;
	PERFORM ordersync.compliance_record('legal_hold', legal_hold.order_id, legal_hold.reason,
		'order.legal_hold', jsonb_build_object('order_id', legal_hold.order_id, 'held', true,
											   'reason', legal_hold.reason));
END
$$;
COMMENT ON FUNCTION ordersync.legal_hold(bigint, text) IS 'puts an order under legal hold: neither erased nor removed until released; a history row and an order.legal_hold event';

CREATE FUNCTION ordersync.release_legal_hold(order_id bigint, reason text)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF reason IS NULL OR btrim(reason) = '' THEN
		RAISE EXCEPTION 'releasing a legal hold needs a reason'
			USING ERRCODE = 'OS035',
				  DETAIL = format('release_legal_hold(%s) was called without a reason.', coalesce(order_id::text, 'NULL')),
				  HINT = 'Say why the hold ends, e.g. reason => ''audit closed''.';
	END IF;
	PERFORM FROM ordersync.orders o WHERE o.id = release_legal_hold.order_id FOR NO KEY UPDATE;
	DELETE FROM ordersync.order_hold h WHERE h.order_id = release_legal_hold.order_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'order % is not under legal hold', coalesce(order_id::text, 'NULL')
			USING ERRCODE = 'OS037',
				  DETAIL = 'ordersync.order_hold has no hold for this order.',
				  HINT = 'See ordersync.order_hold for the orders under hold.';
	END IF;
	PERFORM ordersync.compliance_record('legal_hold_released', release_legal_hold.order_id,
		release_legal_hold.reason, 'order.legal_hold',
		jsonb_build_object('order_id', release_legal_hold.order_id, 'held', false,
						   'reason', release_legal_hold.reason));
END
$$;
COMMENT ON FUNCTION ordersync.release_legal_hold(bigint, text) IS 'ends an order''s legal hold; a history row and an order.legal_hold event';

-- Removes locked, closed orders' records: lines, reservations, inbox
-- rows, dead letters and the order rows, each table in one statement.
-- Their history stays (it holds no personal data), ending with a "purged"
-- row each.
CREATE FUNCTION ordersync.purge_orders(order_ids bigint[], reason text)
	RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	subjects text[] := ARRAY(SELECT 'order/' || i FROM unnest(order_ids) i);
	keep bigint[];
	ids bigint[];
	channels text[];
	external_ids text[];
BEGIN
	keep := ARRAY(SELECT x.id FROM ordersync.orders x
				   WHERE x.id = ANY (order_ids) AND x.erased_at IS NULL AND x.customer IS NOT NULL ORDER BY x.id);
	IF cardinality(keep) > 0 THEN
		PERFORM ordersync.erase_orders(keep, 'retention', reason);
	END IF;
	SELECT array_agg(x.id ORDER BY x.id), array_agg(x.channel ORDER BY x.id), array_agg(x.external_id ORDER BY x.id)
	  INTO ids, channels, external_ids
	  FROM ordersync.orders x WHERE x.id = ANY (order_ids);
	DELETE FROM ordersync.reservation r WHERE r.order_id = ANY (order_ids);
	DELETE FROM ordersync.order_line l WHERE l.order_id = ANY (order_ids);
	DELETE FROM ordersync.inbox i
	 WHERE i.order_id = ANY (order_ids)
		OR (i.channel, i.external_id) IN (SELECT x.channel, x.external_id FROM ordersync.orders x
										   WHERE x.id = ANY (order_ids));
	DELETE FROM ordersync.inbox_version v
	 WHERE (v.channel, v.external_id) IN (SELECT x.channel, x.external_id FROM ordersync.orders x
										   WHERE x.id = ANY (order_ids));
	DELETE FROM ordersync.dead_letter d WHERE d.subject = ANY (subjects);
	DELETE FROM ordersync.order_stuck s WHERE s.order_id = ANY (order_ids);
	DELETE FROM ordersync.orders x WHERE x.id = ANY (order_ids);
	FOR i IN 1 .. coalesce(cardinality(ids), 0) LOOP
		PERFORM ordersync.compliance_record('purged', ids[i], purge_orders.reason, 'order.purged',
			jsonb_build_object('order_id', ids[i], 'channel', channels[i], 'external_id', external_ids[i]));
	END LOOP;
END
$$;
COMMENT ON FUNCTION ordersync.purge_orders(bigint[], text) IS 'internal: removes locked orders'' records after their retention period, with a history row and an order.purged event each';

-- One batch of the retention rules: closed orders, not under legal hold,
-- whose time has come; orders locked right now by anyone are skipped
-- (SKIP LOCKED) and taken by a later batch.
CREATE FUNCTION ordersync.apply_retention(batch_size integer DEFAULT 100)
	RETURNS integer
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	ids bigint[];
	g record;
	n integer := 0;
BEGIN
	IF batch_size IS NULL OR batch_size < 1 OR batch_size > 10000 THEN
		RAISE EXCEPTION 'batch_size must be between 1 and 10000'
			USING ERRCODE = 'OS036',
				  DETAIL = format('apply_retention() was called with batch_size %s.', coalesce(batch_size::text, 'NULL')),
				  HINT = 'Small batches keep row locks short; the default is 100.';
	END IF;
	-- a batch of closed orders whose personal data is due, locked; then per
	-- market (the reason names its rule) one erasure of them all
	ids := ARRAY(
		SELECT x.id
		  FROM ordersync.orders x
		  JOIN ordersync.channel c ON c.id = x.channel
		  JOIN ordersync.retention r ON r.market = c.market
		  JOIN ordersync.status s ON s.name = x.status
		 WHERE r.personal_data IS NOT NULL AND x.customer IS NOT NULL AND x.erased_at IS NULL
		   AND NOT s.open AND x.updated_at < now() - r.personal_data
		   AND NOT EXISTS (SELECT FROM ordersync.order_hold h WHERE h.order_id = x.id)
		 ORDER BY x.id LIMIT batch_size
		   FOR NO KEY UPDATE OF x SKIP LOCKED);
	FOR g IN
		SELECT r.market, r.personal_data AS period, array_agg(x.id ORDER BY x.id) AS ids
		  FROM ordersync.orders x
		  JOIN ordersync.channel c ON c.id = x.channel
		  JOIN ordersync.retention r ON r.market = c.market
		 WHERE x.id = ANY (ids)
		 GROUP BY r.market, r.personal_data ORDER BY r.market
	LOOP
		PERFORM ordersync.erase_orders(g.ids,
			'retention', format('retention: market %s keeps personal data %s after an order closes', g.market, g.period));
	END LOOP;
	n := cardinality(ids);
	IF n >= batch_size THEN
		RETURN n;
	END IF;
	-- then closed orders whose record is due
	ids := ARRAY(
		SELECT x.id
		  FROM ordersync.orders x
		  JOIN ordersync.channel c ON c.id = x.channel
		  JOIN ordersync.retention r ON r.market = c.market
		  JOIN ordersync.status s ON s.name = x.status
		 WHERE r.order_records IS NOT NULL
		   AND NOT s.open AND x.updated_at < now() - r.order_records
		   AND NOT EXISTS (SELECT FROM ordersync.order_hold h WHERE h.order_id = x.id)
		 ORDER BY x.id LIMIT batch_size - n
		   FOR UPDATE OF x SKIP LOCKED);
	FOR g IN
		SELECT r.market, r.order_records AS period, array_agg(x.id ORDER BY x.id) AS ids
		  FROM ordersync.orders x
		  JOIN ordersync.channel c ON c.id = x.channel
		  JOIN ordersync.retention r ON r.market = c.market
		 WHERE x.id = ANY (ids)
		 GROUP BY r.market, r.order_records ORDER BY r.market
	LOOP
		PERFORM ordersync.purge_orders(g.ids,
			format('retention: market %s keeps order records %s after an order closes', g.market, g.period));
	END LOOP;
	n := n + cardinality(ids);
	RETURN n;
END
$$;
COMMENT ON FUNCTION ordersync.apply_retention(integer) IS 'one batch of the markets'' retention rules (the worker runs it every ordersync.retention_interval): erases personal data, then removes order records whose time has come; skips open, held and locked orders; returns how many orders it handled';

CREATE FUNCTION ordersync.compliance_report()
	RETURNS TABLE (problem text, subject text, detail text)
	LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
	-- personal data the worker should already have erased
	SELECT 'personal_data_past_retention', 'market/' || r.market,
		   format('%s closed order(s) not under legal hold keep personal data longer than %s; the oldest is order %s',
				  count(*), r.personal_data, min(x.id))
	  FROM ordersync.orders x
	  JOIN ordersync.channel c ON c.id = x.channel
	  JOIN ordersync.retention r ON r.market = c.market
	  JOIN ordersync.status s ON s.name = x.status
	 WHERE r.personal_data IS NOT NULL AND x.customer IS NOT NULL AND NOT s.open
	   AND x.updated_at < now() - r.personal_data
	   AND NOT EXISTS (SELECT FROM ordersync.order_hold h WHERE h.order_id = x.id)
	 GROUP BY r.market, r.personal_data
	UNION ALL
	SELECT 'order_records_past_retention', 'market/' || r.market,
		   format('%s closed order(s) not under legal hold are kept longer than %s; the oldest is order %s',
				  count(*), r.order_records, min(x.id))
	  FROM ordersync.orders x
	  JOIN ordersync.channel c ON c.id = x.channel
	  JOIN ordersync.retention r ON r.market = c.market
	  JOIN ordersync.status s ON s.name = x.status
	 WHERE r.order_records IS NOT NULL AND NOT s.open AND x.updated_at < now() - r.order_records
	   AND NOT EXISTS (SELECT FROM ordersync.order_hold h WHERE h.order_id = x.id)
	 GROUP BY r.market, r.order_records
	UNION ALL
	SELECT 'orders_without_market', 'channel/' || c.id,
		   format('%s order(s) from a channel without a market: no retention rule applies to them', count(*))
	  FROM ordersync.channel c JOIN ordersync.orders x ON x.channel = c.id
	 WHERE c.market IS NULL
	 GROUP BY c.id
	UNION ALL
	SELECT 'market_without_retention', 'channel/' || c.id,
		   format('market %s has no retention rule (ordersync.set_retention)', c.market)
	  FROM ordersync.channel c
	 WHERE c.market IS NOT NULL AND NOT EXISTS (SELECT FROM ordersync.retention r WHERE r.market = c.market)
	UNION ALL
	-- the same rule ordersyncd enforces (doc/sinks.md): clear text only to this machine
	SELECT 'personal_data_in_clear_text', 'sink/' || k.name,
		   format('%s sends order events with personal data unencrypted to %s; set "drop_personal_data": true or use TLS',
				  k.name, split_part(k.uri, '?', 1))
	  FROM ordersync.sink k
	 WHERE coalesce(k.options ->> 'drop_personal_data', 'false') <> 'true'
	   AND (k.uri ~* '^(http|amqp|nats)://'
			OR (k.uri ~* '^kafka://' AND coalesce(k.options -> 'kafka' ->> 'security.protocol', 'plaintext')
										NOT IN ('ssl', 'sasl_ssl')))
	   AND substring(k.uri FROM '^[A-Za-z]+://(?:[^@/]*@)?([^/?#]*)')
		   !~* '^((localhost|127(\.[0-9]{1,3}){3}|\[::1\])(:[0-9]+)?)(,(localhost|127(\.[0-9]{1,3}){3}|\[::1\])(:[0-9]+)?)*$'
	UNION ALL
	SELECT 'personal_data_to_sinks_forbidden', 'sink/' || k.name,
		   format('market(s) %s forbid sending personal data to sinks; %s has no "drop_personal_data": true',
				  (SELECT string_agg(r.market, ', ' ORDER BY r.market) FROM ordersync.retention r
				    WHERE NOT r.personal_data_to_sinks), k.name)
	  FROM ordersync.sink k
	 WHERE coalesce(k.options ->> 'drop_personal_data', 'false') <> 'true'
	   AND EXISTS (SELECT FROM ordersync.retention r WHERE NOT r.personal_data_to_sinks)
	UNION ALL
	SELECT 'history_chain', 'history/' || v.history_id, v.problem
	  FROM ordersync.verify_history() v
$$;
COMMENT ON FUNCTION ordersync.compliance_report() IS 'what breaks the configured rules now: personal data or order records past retention, orders without a market, markets without rules, sinks receiving personal data in clear text or against a market''s rule, breaks in the history chain; no row when all is well';

REVOKE ALL ON ordersync.history_seal, ordersync.retention, ordersync.order_hold FROM PUBLIC;
REVOKE ALL ON FUNCTION ordersync.history_chain_trigger(), ordersync.verify_history(),
	ordersync.compliance_record(text, bigint, text, text, jsonb), ordersync.selected_orders(jsonb),
	ordersync.erase_orders(bigint[], text, text), ordersync.forget_customer(jsonb, text, boolean),
	ordersync.customer_data(jsonb), ordersync.set_retention(text, interval, interval, boolean),
	ordersync.legal_hold(bigint, text), ordersync.release_legal_hold(bigint, text),
	ordersync.purge_orders(bigint[], text), ordersync.apply_retention(integer),
	ordersync.compliance_report() FROM PUBLIC;
GRANT SELECT ON ordersync.history_seal, ordersync.retention, ordersync.order_hold
	TO ordersync_app, ordersync_admin;
GRANT EXECUTE ON FUNCTION ordersync.forget_customer(jsonb, text, boolean),
	ordersync.customer_data(jsonb)
	TO ordersync_app, ordersync_admin;
GRANT EXECUTE ON FUNCTION ordersync.verify_history(), ordersync.set_retention(text, interval, interval, boolean),
	ordersync.legal_hold(bigint, text), ordersync.release_legal_hold(bigint, text),
	ordersync.apply_retention(integer), ordersync.compliance_report()
	TO ordersync_admin;

SELECT pg_catalog.pg_extension_config_dump('ordersync.history_seal', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.retention', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.order_hold', '');

-- ---------------------------------------------------------------------------
-- Analytics: where orders wait (issue 13, item 5)
-- ---------------------------------------------------------------------------
-- Bottlenecks answered from what the rollups keep (src/extension/rollup.c
-- adds every history row to them once, with the same watermark): time in
-- each status, the funnel per creation day and channel, stock-out spans.
-- A view over 10M history rows would read them all for every question;
-- these read a few thousand rows.  Orders stuck past their status's SLA
-- (order.stuck, once per order and status) and the demand turned away
-- (OS001 refusals, counted in shared memory, never by a write in the
-- refused transaction) are kept by the background worker, or by
-- flag_stuck_orders() and flush_refusals() for those who do not preload.
-- See doc/analytics.md.

-- the status's service level: an order in it longer is stuck
ALTER TABLE ordersync.status ADD COLUMN sla interval
	CONSTRAINT status_sla_positive CHECK (sla > interval '0');
COMMENT ON COLUMN ordersync.status.sla IS 'an order in this status for longer is stuck: flagged once with order.stuck (NULL: never); set with set_sla()';

-- Time in a status, as a histogram per UTC day of leaving it, transition,
-- location and channel: bin b holds the durations d (milliseconds) with
-- 2^(b/8) <= d < 2^((b+1)/8) (bin 0 also holds d < 1 ms).  A quantile
-- read from it is the exact percentile_disc's bin, shown as the bin's
-- geometric middle: within 4.5% of it.
CREATE TABLE ordersync.rollup_status_time (
	day			date NOT NULL,
	from_status	text NOT NULL,
	to_status	text NOT NULL,
	-- the order's first location (by name) with a reservation; '' for none
	location	text NOT NULL,
	channel		text NOT NULL,
	bin			integer NOT NULL,
	transitions	bigint NOT NULL,
	total_ms	bigint NOT NULL,
	PRIMARY KEY (day, from_status, to_status, location, channel, bin)
);
COMMENT ON TABLE ordersync.rollup_status_time IS 'per UTC day of the transition, from and to status, location and channel: a histogram of the time spent in from_status (bin b: 2^(b/8) to 2^((b+1)/8) milliseconds); see rollup_status_time_recount and status_times()';

-- the funnel, by the order's creation day (a cohort): how many of the
-- orders created that day reached each status so far
CREATE TABLE ordersync.rollup_funnel (
	day			date NOT NULL,
	channel		text NOT NULL,
	created		bigint NOT NULL,
	paid		bigint NOT NULL,
	shipped		bigint NOT NULL,
	delivered	bigint NOT NULL,
	cancelled	bigint NOT NULL,
	expired		bigint NOT NULL,
	PRIMARY KEY (day, channel)
);
COMMENT ON TABLE ordersync.rollup_funnel IS 'per UTC day of creation and channel: orders created, and how many of them entered paid, shipped, delivered, cancelled and expired since; see rollup_funnel_recount and the funnel view';

-- Stock per SKU and location as the history tells it (on_hand - reserved,
-- and the safety stock), and the spans when nothing was available to sell
-- (on_hand - reserved - safety <= 0), opened and closed by the refresh.
CREATE TABLE ordersync.rollup_stock_level (
	sku			text NOT NULL,
	location	text NOT NULL,
	unreserved	bigint NOT NULL,
	safety		bigint NOT NULL,
	PRIMARY KEY (sku, location)
);
COMMENT ON TABLE ordersync.rollup_stock_level IS 'per SKU and location: on_hand - reserved and the safety stock after the history rows the rollups have counted';

CREATE TABLE ordersync.rollup_stockout (
	sku			text NOT NULL,
	location	text NOT NULL,
	-- the history row that took the last available unit, and its time
	started_id	bigint NOT NULL,
	started_at	timestamptz NOT NULL,
	-- the one that brought one back; NULL while still out of stock
	ended_at	timestamptz,
	PRIMARY KEY (sku, location, started_id)
);
COMMENT ON TABLE ordersync.rollup_stockout IS 'spans when a SKU had nothing available to sell at a location (on_hand - reserved - safety <= 0), from the history; see stockout_hours()';

CREATE VIEW ordersync.rollup_status_time_recount AS
SELECT (h.at AT TIME ZONE 'UTC')::date AS day, h.from_status, h.to_status,
	   coalesce(p.location, '') AS location, o.channel,
	   CASE WHEN p.ms < 1 THEN 0
			ELSE pg_catalog.floor(8 * pg_catalog.ln(p.ms::float8) / pg_catalog.ln(2::float8))::integer END AS bin,
	   pg_catalog.count(*) AS transitions, pg_catalog.sum(p.ms)::bigint AS total_ms
  FROM ordersync.history h
  JOIN ordersync.orders o ON o.id = h.order_id
 CROSS JOIN LATERAL (
	SELECT pg_catalog.min(e.location) FILTER (WHERE e.action = 'reserve') AS location,
		   pg_catalog.round(extract(epoch FROM h.at - (pg_catalog.array_agg(e.at ORDER BY e.id DESC)
				FILTER (WHERE e.action IN ('created', 'status')))[1]) * 1000)::bigint AS ms
	  FROM ordersync.history e
	 WHERE e.order_id = h.order_id AND e.id < h.id) p
 WHERE h.action = 'status' AND p.ms IS NOT NULL
 GROUP BY 1, 2, 3, 4, 5, 6;
COMMENT ON VIEW ordersync.rollup_status_time_recount IS 'rollup_status_time counted from scratch from every status history row: the definition (slow: reads the whole history)';

CREATE VIEW ordersync.rollup_funnel_recount AS
SELECT (o.created_at AT TIME ZONE 'UTC')::date AS day, o.channel,
	   pg_catalog.count(*) FILTER (WHERE h.action = 'created') AS created,
	   pg_catalog.count(*) FILTER (WHERE h.to_status = 'paid' AND h.action = 'status') AS paid,
	   pg_catalog.count(*) FILTER (WHERE h.to_status = 'shipped' AND h.action = 'status') AS shipped,
	   pg_catalog.count(*) FILTER (WHERE h.to_status = 'delivered' AND h.action = 'status') AS delivered,
	   pg_catalog.count(*) FILTER (WHERE h.to_status = 'cancelled' AND h.action = 'status') AS cancelled,
	   pg_catalog.count(*) FILTER (WHERE h.to_status = 'expired' AND h.action = 'status') AS expired
  FROM ordersync.history h
  JOIN ordersync.orders o ON o.id = h.order_id
 WHERE h.action = 'created'
	OR (h.action = 'status' AND h.to_status IN ('paid', 'shipped', 'delivered', 'cancelled', 'expired'))
 GROUP BY 1, 2;
COMMENT ON VIEW ordersync.rollup_funnel_recount IS 'rollup_funnel counted from scratch from the history: the definition (slow: reads the whole history)';

CREATE VIEW ordersync.rollup_stockout_recount AS
WITH mv AS (
	SELECT h.id, h.at, h.action, h.sku, h.location, h.qty,
		   CASE WHEN h.action IN ('receive', 'release', 'restock') THEN h.qty
				WHEN h.action = 'reserve' THEN -h.qty ELSE 0 END AS d
	  FROM ordersync.history h
	 WHERE h.action IN ('receive', 'reserve', 'release', 'consume', 'restock', 'safety')
	   AND h.sku IS NOT NULL AND h.location IS NOT NULL
), run AS (
	SELECT m.*, pg_catalog.sum(m.d) OVER w AS u,
		   pg_catalog.count(*) FILTER (WHERE m.action = 'safety') OVER w AS sg
	  FROM mv m WINDOW w AS (PARTITION BY m.sku, m.location ORDER BY m.id)
), lvl AS (
	SELECT r.*, CASE WHEN r.sg = 0 THEN 0 ELSE pg_catalog.max(r.qty)
				FILTER (WHERE r.action = 'safety') OVER (PARTITION BY r.sku, r.location, r.sg) END AS s
	  FROM run r
), flip AS (
	SELECT v.sku, v.location, v.id, v.at, v.u - v.s > 0 AS avail,
		   coalesce(pg_catalog.lag(v.u - v.s > 0) OVER w, false) AS before
	  FROM lvl v WINDOW w AS (PARTITION BY v.sku, v.location ORDER BY v.id)
), edge AS (
	SELECT f.*, pg_catalog.lead(f.at) OVER w AS next_at
	  FROM flip f WHERE f.avail <> f.before
	WINDOW w AS (PARTITION BY f.sku, f.location ORDER BY f.id)
)
SELECT e.sku, e.location, e.id AS started_id, e.at AS started_at, e.next_at AS ended_at
  FROM edge e WHERE NOT e.avail;
COMMENT ON VIEW ordersync.rollup_stockout_recount IS 'rollup_stockout counted from scratch from every stock movement in history, in id order: the definition (slow: reads the whole history; equal to the rollup when the movements of a SKU at a location commit in id order, as they do unless the SKU is bucketed)';

CREATE VIEW ordersync.funnel AS
SELECT f.day, f.channel, f.created, f.paid, f.shipped, f.delivered, f.cancelled, f.expired,
	   pg_catalog.round(f.paid::numeric / nullif(f.created, 0), 4) AS paid_rate,
	   pg_catalog.round(f.shipped::numeric / nullif(f.paid, 0), 4) AS shipped_rate,
	   pg_catalog.round(f.delivered::numeric / nullif(f.shipped, 0), 4) AS delivered_rate,
	   pg_catalog.round(f.cancelled::numeric / nullif(f.created, 0), 4) AS cancellation_rate,
	   pg_catalog.round(f.expired::numeric / nullif(f.created, 0), 4) AS expiry_rate
  FROM ordersync.rollup_funnel f;
COMMENT ON VIEW ordersync.funnel IS 'created -> paid -> shipped -> delivered per UTC day of creation and channel, with the step rates and the cancellation and expiry rates of the day''s orders; as of the last rollup refresh';

-- set_sla(status, sla): an order in status for longer than sla is stuck
CREATE FUNCTION ordersync.set_sla(status text, sla interval)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF sla IS NOT NULL AND sla <= interval '0' THEN
		RAISE EXCEPTION 'an SLA must be a positive interval'
			USING ERRCODE = 'OS021', DETAIL = format('set_sla(%L, %L) was called.', status, sla),
				  HINT = 'Pass a positive interval such as ''2 hours'', or NULL for no SLA.';
	END IF;
	UPDATE ordersync.status s SET sla = set_sla.sla WHERE s.name = set_sla.status;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown status "%"', status
			USING ERRCODE = 'OS020',
				  DETAIL = format('ordersync.status has no status %L.', status),
				  HINT = 'Pass one of the names in ordersync.status.';
	END IF;
END
$$;
COMMENT ON FUNCTION ordersync.set_sla(text, interval) IS 'sets how long an order may stay in a status before it is stuck (NULL: never); refuses an unknown status (OS020) or an SLA that is not positive (OS021)';

CREATE VIEW ordersync.stuck_orders AS
SELECT o.id AS order_id, o.channel, o.external_id, o.status, o.updated_at AS since, s.sla,
	   pg_catalog.now() - o.updated_at - s.sla AS overdue
  FROM ordersync.orders o
  JOIN ordersync.status s ON s.name = o.status
 WHERE s.sla IS NOT NULL AND o.updated_at < pg_catalog.now() - s.sla;
COMMENT ON VIEW ordersync.stuck_orders IS 'orders in their status for longer than its SLA (since: the last change of the order, its status change)';

CREATE TABLE ordersync.order_stuck (
	order_id	bigint NOT NULL,
	status		text NOT NULL,
	since		timestamptz NOT NULL,
	flagged_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (order_id, status)
);
COMMENT ON TABLE ordersync.order_stuck IS 'orders flagged stuck, once per order and status: the event order.stuck was written with the row';

CREATE FUNCTION ordersync.flag_stuck_orders()
	RETURNS bigint
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_flag_stuck_orders';
COMMENT ON FUNCTION ordersync.flag_stuck_orders() IS 'flags the orders stuck past their status''s SLA that were not flagged in that status yet, each with one order.stuck event; returns how many (the background worker does it every ordersync.stuck_interval)';

-- status_times(since, until): time in status per transition, location and
-- channel over the UTC days from since's to until's, from the histograms
CREATE FUNCTION ordersync.status_times(since timestamptz DEFAULT pg_catalog.now() - interval '7 days',
									   until timestamptz DEFAULT pg_catalog.now())
	RETURNS TABLE (from_status text, to_status text, location text, channel text, transitions bigint,
				   p50 interval, p95 interval, p99 interval, mean interval)
	LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
	WITH b AS (
		SELECT t.from_status, t.to_status, t.location, t.channel, t.bin,
			   sum(t.transitions) AS n, sum(t.total_ms) AS ms
		  FROM ordersync.rollup_status_time t
		 WHERE t.day BETWEEN (since AT TIME ZONE 'UTC')::date AND (until AT TIME ZONE 'UTC')::date
		 GROUP BY 1, 2, 3, 4, 5
	), c AS (
		SELECT b.*, sum(b.n) OVER w AS cum, sum(b.n) OVER (PARTITION BY b.from_status, b.to_status, b.location, b.channel) AS tot
		  FROM b WINDOW w AS (PARTITION BY b.from_status, b.to_status, b.location, b.channel ORDER BY b.bin)
	)
	SELECT c.from_status, c.to_status, c.location, c.channel, max(c.tot)::bigint,
		   make_interval(secs => power(2::float8, (min(c.bin) FILTER (WHERE c.cum >= 0.50 * c.tot) + 0.5) / 8) / 1000),
		   make_interval(secs => power(2::float8, (min(c.bin) FILTER (WHERE c.cum >= 0.95 * c.tot) + 0.5) / 8) / 1000),
		   make_interval(secs => power(2::float8, (min(c.bin) FILTER (WHERE c.cum >= 0.99 * c.tot) + 0.5) / 8) / 1000),
		   make_interval(secs => (sum(c.ms) / max(c.tot)) / 1000)
	  FROM c
	 GROUP BY 1, 2, 3, 4
	 ORDER BY 1, 2, 3, 4
$$;
COMMENT ON FUNCTION ordersync.status_times(timestamptz, timestamptz) IS 'time spent in from_status before to_status per location and channel, over the UTC days from since''s to until''s: p50, p95, p99 (within 4.5%) and the exact mean; as of the last rollup refresh';

-- stockout_hours(since, until): hours without anything available to sell
CREATE FUNCTION ordersync.stockout_hours(since timestamptz DEFAULT pg_catalog.now() - interval '7 days',
										 until timestamptz DEFAULT pg_catalog.now())
	RETURNS TABLE (sku text, location text, stockouts bigint, hours float8, out_now boolean)
	LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
	SELECT s.sku, s.location, count(*),
		   sum(extract(epoch FROM least(coalesce(s.ended_at, 'infinity'), until, now())
								  - greatest(s.started_at, since)))::float8 / 3600,
		   bool_or(s.ended_at IS NULL)
	  FROM ordersync.rollup_stockout s
	 WHERE s.started_at < least(until, now()) AND coalesce(s.ended_at, 'infinity') > since
	 GROUP BY 1, 2
	 ORDER BY 4 DESC, 1, 2
$$;
COMMENT ON FUNCTION ordersync.stockout_hours(timestamptz, timestamptz) IS 'per SKU and location: the stock-outs that overlap [since, until) and the hours of it inside, and whether it is out of stock now; as of the last rollup refresh';

-- demand turned away: OS001 refusals per UTC day (of the flush) and SKU
CREATE TABLE ordersync.demand_refused (
	day			date NOT NULL,
	-- the SKU the refusal named; '' for the refusals of SKUs the shared
	-- counters had no room for (ordersync.refusal_skus)
	sku			text NOT NULL,
	refusals	bigint NOT NULL,
	units		bigint NOT NULL,
	PRIMARY KEY (day, sku)
);
COMMENT ON TABLE ordersync.demand_refused IS 'OS001 refusals (insufficient stock) per UTC day they were flushed and SKU, and the units they asked for; counted in shared memory, flushed by the worker or flush_refusals()';

CREATE FUNCTION ordersync.flush_refusals()
	RETURNS bigint
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_flush_refusals';
COMMENT ON FUNCTION ordersync.flush_refusals() IS 'adds the OS001 refusals counted in shared memory since the last flush to demand_refused; returns how many refusals it added (always 0 unless ordersync is in shared_preload_libraries)';

-- sell_through(days): per SKU, what sold against what was there to sell
CREATE FUNCTION ordersync.sell_through(days integer DEFAULT 30)
	RETURNS TABLE (sku text, units_sold numeric, on_hand numeric, sell_through numeric,
				   refusals numeric, units_refused numeric)
	LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
	WITH sold AS (
		SELECT r.sku, sum(r.units_sold) AS n FROM ordersync.rollup_daily_sku r
		 WHERE r.day > (now() AT TIME ZONE 'UTC')::date - days GROUP BY 1
	), here AS (
		SELECT st.sku, sum(st.on_hand) AS n FROM ordersync.stock st GROUP BY 1
	), refused AS (
		SELECT d.sku, sum(d.refusals) AS r, sum(d.units) AS u FROM ordersync.demand_refused d
		 WHERE d.day > (now() AT TIME ZONE 'UTC')::date - days GROUP BY 1
	)
	-- sums as numeric: a SKU's stock over its locations may pass bigint
	SELECT k.sku, coalesce(sold.n, 0), coalesce(here.n, 0),
		   round(coalesce(sold.n, 0) / nullif(coalesce(sold.n, 0) + coalesce(here.n, 0), 0), 4),
		   coalesce(refused.r, 0), coalesce(refused.u, 0)
	  FROM ordersync.sku k
	  LEFT JOIN sold ON sold.sku = k.sku
	  LEFT JOIN here ON here.sku = k.sku
	  LEFT JOIN refused ON refused.sku = k.sku
	 ORDER BY 1
$$;
COMMENT ON FUNCTION ordersync.sell_through(integer) IS 'per SKU over the last days UTC days: units sold (shipped - returned), on hand now, sell-through = sold / (sold + on hand), and the OS001 refusals and units turned away';

-- The refresh is one statement over a batch of 50,000 history rows whose
-- estimated cost (the gaps are guessed large) makes JIT compile it every
-- time: seconds of compilation for a statement that runs in a fraction of
-- that.  The worker turns JIT off for its step too (rollup.c).
ALTER FUNCTION ordersync.refresh_rollups() SET jit = off;

-- The new rollups are counted from the whole history, like the first
-- ones were: an upgrade from 0.4.0 starts every rollup again from id 0, so
-- the next refresh (the worker's, or refresh_rollups()) recounts all of
-- them, in batches, exactly once.
TRUNCATE ordersync.rollup_hourly, ordersync.rollup_daily_sku;
DELETE FROM ordersync.rollup_state;

REVOKE ALL ON ordersync.rollup_status_time, ordersync.rollup_funnel, ordersync.rollup_stock_level,
	ordersync.rollup_stockout, ordersync.rollup_status_time_recount, ordersync.rollup_funnel_recount,
	ordersync.rollup_stockout_recount,
	ordersync.funnel, ordersync.stuck_orders, ordersync.order_stuck, ordersync.demand_refused FROM PUBLIC;
GRANT SELECT ON ordersync.rollup_status_time, ordersync.rollup_funnel, ordersync.rollup_stock_level,
	ordersync.rollup_stockout, ordersync.rollup_status_time_recount, ordersync.rollup_funnel_recount,
	ordersync.rollup_stockout_recount,
	ordersync.funnel, ordersync.stuck_orders, ordersync.order_stuck, ordersync.demand_refused
	TO ordersync_app, ordersync_admin;
REVOKE ALL ON FUNCTION ordersync.set_sla(text, interval), ordersync.flag_stuck_orders(),
	ordersync.status_times(timestamptz, timestamptz), ordersync.stockout_hours(timestamptz, timestamptz),
	ordersync.flush_refusals(), ordersync.sell_through(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ordersync.set_sla(text, interval) TO ordersync_admin;
GRANT EXECUTE ON FUNCTION ordersync.flag_stuck_orders(), ordersync.flush_refusals(),
	ordersync.status_times(timestamptz, timestamptz), ordersync.stockout_hours(timestamptz, timestamptz),
	ordersync.sell_through(integer) TO ordersync_app, ordersync_admin;

SELECT pg_catalog.pg_extension_config_dump('ordersync.rollup_status_time', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.rollup_funnel', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.rollup_stock_level', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.rollup_stockout', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.order_stuck', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.demand_refused', '');
