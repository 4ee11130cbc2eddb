/*
 * ordersync--0.3.0--0.4.0.sql — forecasts, and the NATS JetStream sink.
 *
 * Each part of this release has a section of its own below.
 */

-- complain if the script is sourced in psql rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ordersync UPDATE TO '0.4.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Forecasts (issue 13)
-- ---------------------------------------------------------------------------
-- Pure computation on its arguments: IMMUTABLE and PARALLEL SAFE, and
-- neither SECURITY DEFINER (it reads nothing it would need rights for) nor
-- STRICT (a NULL argument is refused with OS004).  See doc/forecast.md.
CREATE FUNCTION ordersync.forecast(history float8[], season integer, horizon integer,
								   level float8 DEFAULT 0.95)
	RETURNS TABLE (step integer, value float8, lower float8, upper float8)
	LANGUAGE c IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'ordersync_forecast';
COMMENT ON FUNCTION ordersync.forecast(float8[], integer, integer, float8) IS 'forecasts horizon steps after history (oldest first; season values per season, 0 for none) by exponential smoothing or the seasonal naive method, chosen automatically, with level prediction intervals';
REVOKE ALL ON FUNCTION ordersync.forecast(float8[], integer, integer, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ordersync.forecast(float8[], integer, integer, float8)
	TO ordersync_app, ordersync_admin;

-- ---------------------------------------------------------------------------
-- Rollups (issue 13, item 1)
-- ---------------------------------------------------------------------------
-- Orders, units and revenue per hour and channel, and stock movements per
-- day, SKU and location, kept from ordersync.history by refresh_rollups()
-- and, with ordersync preloaded, by the background worker every
-- ordersync.rollup_interval: never by the order path, where one counter row
-- per hour and channel would be a hot row in every flash sale.  Hours and
-- days are UTC, whatever the session's TimeZone.  The *_recount views count
-- the same figures from scratch: they are the definition, and the rollups
-- equal them once a refresh has run after the last write (the proof is at
-- the top of src/extension/rollup.c).
--
-- pg_dump: the rollups could be recounted from the history, but a restore
-- would then start with empty rollups and recount every history row.  They
-- are dumped instead, with their state, which holds history ids only (no
-- transaction ids) and so stays right in the restored cluster; pg_dump
-- reads them and the history in one snapshot.  The state row is created by
-- the first refresh, not here, so a restore does not meet a row of its own.
CREATE TABLE ordersync.rollup_hourly (
	hour		timestamptz NOT NULL,
	channel		text NOT NULL,
	orders		bigint NOT NULL,
	units		bigint NOT NULL,
	revenue		numeric NOT NULL,
	PRIMARY KEY (hour, channel)
);
COMMENT ON TABLE ordersync.rollup_hourly IS 'per UTC hour and channel: orders placed, their units and revenue (orders.total), as placed; see rollup_hourly_recount';

CREATE TABLE ordersync.rollup_daily_sku (
	day			date NOT NULL,
	sku			text NOT NULL,
	location	text NOT NULL,
	reserved	bigint NOT NULL,
	released	bigint NOT NULL,
	shipped		bigint NOT NULL,
	returned	bigint NOT NULL,
	units_sold	bigint NOT NULL GENERATED ALWAYS AS (shipped - returned) STORED,
	PRIMARY KEY (day, sku, location)
);
COMMENT ON TABLE ordersync.rollup_daily_sku IS 'per UTC day, SKU and location: units reserved, released (cancelled, expired), shipped and returned that day; see rollup_daily_sku_recount';
COMMENT ON COLUMN ordersync.rollup_daily_sku.units_sold IS 'units that left the warehouse for good that day: shipped - returned (negative on a day with more returns than shipments)';

CREATE TABLE ordersync.rollup_state (
	id			boolean PRIMARY KEY DEFAULT true CONSTRAINT rollup_state_one_row CHECK (id),
	-- every history id up to here has been looked at ...
	high_id		bigint NOT NULL DEFAULT 0,
	-- ... and these were not committed then: they are looked at again
	gaps		int8multirange NOT NULL DEFAULT '{}',
	-- once every transaction of fence_xacts has ended, no id up to
	-- fence_id can commit any more and those leave gaps
	fence_id	bigint NOT NULL DEFAULT 0,
	fence_xacts	bigint[] NOT NULL DEFAULT '{}',
	rows_processed bigint NOT NULL DEFAULT 0,
	refreshed_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE ordersync.rollup_state IS 'where the rollups stand in ordersync.history; written with the rollups, in the same transaction';

CREATE VIEW ordersync.rollup_hourly_recount AS
SELECT pg_catalog.date_trunc('hour', h.at, 'UTC') AS hour, o.channel,
	   pg_catalog.count(*) AS orders,
	   pg_catalog.sum(l.units)::bigint AS units,
	   pg_catalog.sum(o.total) AS revenue
  FROM ordersync.history h
  JOIN ordersync.orders o ON o.id = h.order_id
 CROSS JOIN LATERAL (SELECT coalesce(pg_catalog.sum(ol.qty), 0) AS units
					   FROM ordersync.order_line ol WHERE ol.order_id = o.id) l
 WHERE h.action = 'created'
 GROUP BY 1, 2;
COMMENT ON VIEW ordersync.rollup_hourly_recount IS 'rollup_hourly counted from scratch from every created history row: the definition (slow: reads the whole history)';

CREATE VIEW ordersync.rollup_daily_sku_recount AS
SELECT d.day, d.sku, d.location, d.reserved, d.released, d.shipped, d.returned,
	   d.shipped - d.returned AS units_sold
  FROM (SELECT (h.at AT TIME ZONE 'UTC')::date AS day, h.sku, h.location,
			   coalesce(pg_catalog.sum(h.qty) FILTER (WHERE h.action = 'reserve'), 0)::bigint AS reserved,
			   coalesce(pg_catalog.sum(h.qty) FILTER (WHERE h.action = 'release'), 0)::bigint AS released,
			   coalesce(pg_catalog.sum(h.qty) FILTER (WHERE h.action = 'consume'), 0)::bigint AS shipped,
			   coalesce(pg_catalog.sum(h.qty) FILTER (WHERE h.action = 'restock'), 0)::bigint AS returned
		  FROM ordersync.history h
		 WHERE h.action IN ('reserve', 'release', 'consume', 'restock')
		 GROUP BY 1, 2, 3) d;
COMMENT ON VIEW ordersync.rollup_daily_sku_recount IS 'rollup_daily_sku counted from scratch from every reserve, release, consume and restock history row: the definition (slow: reads the whole history)';

CREATE FUNCTION ordersync.refresh_rollups()
	RETURNS bigint
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_refresh_rollups';
COMMENT ON FUNCTION ordersync.refresh_rollups() IS 'adds the history rows committed since the last refresh to the rollups (the whole history the first time); waits for a refresh running elsewhere; returns how many rows it added';

REVOKE ALL ON ordersync.rollup_hourly, ordersync.rollup_daily_sku, ordersync.rollup_state,
	ordersync.rollup_hourly_recount, ordersync.rollup_daily_sku_recount FROM PUBLIC;
REVOKE ALL ON FUNCTION ordersync.refresh_rollups() FROM PUBLIC;
GRANT SELECT ON ordersync.rollup_hourly, ordersync.rollup_daily_sku, ordersync.rollup_state,
	ordersync.rollup_hourly_recount, ordersync.rollup_daily_sku_recount
	TO ordersync_app, ordersync_admin;
GRANT EXECUTE ON FUNCTION ordersync.refresh_rollups() TO ordersync_app, ordersync_admin;

SELECT pg_catalog.pg_extension_config_dump('ordersync.rollup_hourly', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.rollup_daily_sku', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.rollup_state', '');

-- ---------------------------------------------------------------------------
-- Inbound channels (issue 12)
-- ---------------------------------------------------------------------------
-- Channels push orders and status updates to ordersyncd --inbound, which
-- checks their signature and hands the raw payload to inbox_receive(): one
-- short transaction that writes one ordersync.inbox row (or nothing for a
-- repeat of the same channel and event id) before the sender gets its 2xx.
-- inbox_apply() (the relay, right after; and the background worker every
-- ordersync.inbox_interval) applies received rows, each in a subtransaction
-- of its own with its outcome written to the row: orders through
-- place_order(), status updates through the channel's status map and the
-- state machine, in version order per order.  One applier per order at a
-- time (an advisory lock per channel order: 1869838702 and
-- hashtext(channel || '/' || external_id)), so a version check and the
-- change it guards are never interleaved with another.  See doc/inbound.md.
--
-- Secrets are never stored: options name an environment variable or a file
-- of the relay's host, which ordersyncd checks against its
-- --secret-env-prefix and --secret-dir like the secrets of sinks.
CREATE TABLE ordersync.channel_inbound (
	channel		text PRIMARY KEY REFERENCES ordersync.channel ON DELETE CASCADE,
	signature	text NOT NULL
				CONSTRAINT channel_inbound_signature_known
				CHECK (signature IN ('standard-webhooks', 'shopify', 'woocommerce')),
	format		text NOT NULL
				CONSTRAINT channel_inbound_format_known
				CHECK (format IN ('ordersync', 'shopify', 'woocommerce')),
	-- as given to set_channel_inbound(), checked there: references, no secrets
	options		jsonb NOT NULL,
	updated_at	timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE ordersync.channel_inbound IS 'channels that push orders and status updates to ordersyncd --inbound: signature scheme, payload format and where the relay finds the secret';

/*
 * No foreign key to ordersync.channel: every receipt would key-share lock
 * the channel's one row, a hot row under a storm of webhooks.
 * inbox_receive() checks the channel instead.
 */
CREATE TABLE ordersync.inbox (
	id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	channel		text NOT NULL,
	-- webhook-id, X-Shopify-Webhook-Id or X-WC-Webhook-Delivery-ID
	event_id	text NOT NULL,
	kind		text NOT NULL CONSTRAINT inbox_kind_known CHECK (kind IN ('order', 'status')),
	received_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	payload		jsonb NOT NULL,
	-- received: waits to be applied; parked: the state machine cannot take
	-- it yet, tried again; applied, stale (older than the last applied
	-- version) and failed (error says why) are final
	state		text NOT NULL DEFAULT 'received'
				CONSTRAINT inbox_state_known
				CHECK (state IN ('received', 'applied', 'stale', 'parked', 'failed')),
	error		text,
	applied_at	timestamptz,
	-- taken from the request and the payload when it was received
	format		text NOT NULL,
	topic		text,
	external_id	text NOT NULL,
	-- status updates: an integer, or an RFC 3339 time as seconds since 1970
	version		numeric,
	order_id	bigint,
	attempts	integer NOT NULL DEFAULT 0,
	attempted_at timestamptz,
	CONSTRAINT inbox_channel_event_id_key UNIQUE (channel, event_id)
);
CREATE INDEX inbox_received_idx ON ordersync.inbox (id) WHERE state = 'received';
CREATE INDEX inbox_open_idx ON ordersync.inbox (channel, external_id, version)
	WHERE state IN ('received', 'parked');
CREATE INDEX inbox_parked_idx ON ordersync.inbox (attempted_at) WHERE state = 'parked';
CREATE INDEX inbox_received_at_idx ON ordersync.inbox (received_at);
COMMENT ON TABLE ordersync.inbox IS 'every order and status update a channel pushed, once per (channel, event_id), with what became of it; pruned after ordersync.inbox_retention';

CREATE TABLE ordersync.inbox_version (
	channel		text NOT NULL,
	external_id	text NOT NULL,
	version		numeric NOT NULL,
	PRIMARY KEY (channel, external_id)
);
COMMENT ON TABLE ordersync.inbox_version IS 'per channel order: the version of the last status update applied from the inbox or by reconcile(); older ones are stale';

-- A channel's version as a number: a non-negative integer as it is, an RFC
-- 3339 time as seconds since 1970 (UTC); NULL when it is neither.
CREATE FUNCTION ordersync.channel_version(v jsonb)
	RETURNS numeric
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $$
	SELECT CASE
		WHEN jsonb_typeof(v) = 'number' AND v::text ~ '^[0-9]{1,30}$' THEN v::text::numeric
		WHEN jsonb_typeof(v) = 'string'
			 AND (v #>> '{}') ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$'
			 AND substr(v #>> '{}', 6, 2) BETWEEN '01' AND '12'
			 AND substr(v #>> '{}', 9, 2) BETWEEN '01' AND '31'
			 AND substr(v #>> '{}', 12, 2) <= '23' AND substr(v #>> '{}', 15, 2) <= '59'
			 AND substr(v #>> '{}', 18, 2) <= '60'
			THEN extract(epoch FROM (v #>> '{}')::timestamptz)
	END
$$;
COMMENT ON FUNCTION ordersync.channel_version(jsonb) IS 'a status update''s version as a number (integer, or RFC 3339 time as Unix seconds); NULL when it is neither';

CREATE FUNCTION ordersync.set_channel_inbound(channel text, options jsonb)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	allowed constant text[] := ARRAY['signature', 'format', 'secret_env', 'secret_file', 'tolerance_seconds'];
	k text;
BEGIN
	IF channel IS NULL THEN
		RAISE EXCEPTION 'channel must not be null'
			USING ERRCODE = 'OS004',
				  DETAIL = 'set_channel_inbound() needs the channel whose webhooks ordersyncd receives.',
				  HINT = 'Call ordersync.set_channel_inbound(''shop'', ''{"signature": "shopify", "secret_env": "ORDERSYNC_SHOP_SECRET", "format": "shopify"}'').';
	END IF;
	IF NOT EXISTS (SELECT FROM ordersync.channel c WHERE c.id = channel) THEN
		RAISE EXCEPTION 'unknown channel "%"', channel
			USING ERRCODE = 'OS004',
				  DETAIL = format('ordersync.channel has no channel "%s".', channel),
				  HINT = 'Add it first with ordersync.add_channel().';
	END IF;
	IF options IS NULL THEN
		-- no more webhooks from this channel; its inbox rows stay
		DELETE FROM ordersync.channel_inbound ci WHERE ci.channel = set_channel_inbound.channel;
		RETURN;
	END IF;
	IF jsonb_typeof(options) <> 'object' THEN
		RAISE EXCEPTION 'inbound options must be a JSON object'
			USING ERRCODE = 'OS004',
				  DETAIL = format('set_channel_inbound() got a JSON %s.', jsonb_typeof(options)),
				  HINT = 'Pass {"signature": ..., "secret_env": ..., "format": ...}, or NULL to stop receiving.';
	END IF;
	FOR k IN SELECT jsonb_object_keys(options) LOOP
		IF k = 'secret' OR k LIKE '%password%' THEN
			RAISE EXCEPTION 'inbound options must not contain a secret'
				USING ERRCODE = 'OS004',
					  DETAIL = format('Channel "%s": option "%s" would store the secret in the database.', channel, k),
					  HINT = 'Export the secret to ordersyncd and name it: {"secret_env": "ORDERSYNC_SHOP_SECRET"} or {"secret_file": "/path/in/secret-dir"}.';
		END IF;
		IF NOT k = ANY (allowed) THEN
			RAISE EXCEPTION 'unknown inbound option "%"', k
				USING ERRCODE = 'OS004',
					  DETAIL = format('Channel "%s": the options are %s.', channel, array_to_string(allowed, ', ')),
					  HINT = 'Remove the option or fix its name.';
		END IF;
	END LOOP;
	IF jsonb_typeof(options->'signature') IS DISTINCT FROM 'string'
	   OR NOT (options->>'signature') = ANY (ARRAY['standard-webhooks', 'shopify', 'woocommerce']) THEN
		RAISE EXCEPTION 'inbound option "signature" must be standard-webhooks, shopify or woocommerce'
			USING ERRCODE = 'OS004',
				  DETAIL = format('Channel "%s" has signature %s.', channel, coalesce((options->'signature')::text, 'missing')),
				  HINT = 'standard-webhooks checks webhook-signature over id.timestamp.body; shopify checks X-Shopify-Hmac-Sha256 and woocommerce X-WC-Webhook-Signature over the body.';
	END IF;
	IF jsonb_typeof(options->'format') IS DISTINCT FROM 'string'
	   OR NOT (options->>'format') = ANY (ARRAY['ordersync', 'shopify', 'woocommerce']) THEN
		RAISE EXCEPTION 'inbound option "format" must be ordersync, shopify or woocommerce'
			USING ERRCODE = 'OS004',
				  DETAIL = format('Channel "%s" has format %s.', channel, coalesce((options->'format')::text, 'missing')),
				  HINT = 'ordersync is {"external_id", "lines", "customer"} and {"external_id", "status", "version"}; shopify and woocommerce are those platforms'' order webhooks.';
	END IF;
	IF (options ? 'secret_env') = (options ? 'secret_file') THEN
		RAISE EXCEPTION 'inbound options need exactly one of "secret_env" and "secret_file"'
			USING ERRCODE = 'OS004',
				  DETAIL = format('Channel "%s" has %s.', channel,
								  CASE WHEN options ? 'secret_env' THEN 'both' ELSE 'neither' END),
				  HINT = 'Name the environment variable (with ordersyncd''s --secret-env-prefix, default ORDERSYNC_) or the file (inside its --secret-dir) that holds the secret.';
	END IF;
	IF options ? 'secret_env' AND (jsonb_typeof(options->'secret_env') IS DISTINCT FROM 'string'
								   OR (options->>'secret_env') !~ '^[A-Za-z_][A-Za-z0-9_]{0,127}$') THEN
		RAISE EXCEPTION 'inbound option "secret_env" must name an environment variable'
			USING ERRCODE = 'OS004',
				  DETAIL = format('Channel "%s": %s is not a variable name.', channel, options->'secret_env'),
				  HINT = 'Use letters, digits and underscores, e.g. ORDERSYNC_SHOP_SECRET.';
	END IF;
	IF options ? 'secret_file' AND (jsonb_typeof(options->'secret_file') IS DISTINCT FROM 'string'
									OR (options->>'secret_file') !~ '^/'
									OR (options->>'secret_file') ~ '(^|/)\.\.(/|$)|[\x01-\x1f\x7f]'
									OR octet_length(options->>'secret_file') > 1024) THEN
		RAISE EXCEPTION 'inbound option "secret_file" must be an absolute path'
			USING ERRCODE = 'OS004',
				  DETAIL = format('Channel "%s": %s.', channel, options->'secret_file'),
				  HINT = 'Give the full path of a file inside ordersyncd''s --secret-dir, starting with "/", without "..".';
	END IF;
	IF options ? 'tolerance_seconds' AND (options->>'signature' <> 'standard-webhooks'
		OR jsonb_typeof(options->'tolerance_seconds') IS DISTINCT FROM 'number'
		OR (options->>'tolerance_seconds') !~ '^[0-9]{1,4}$'
		OR (options->>'tolerance_seconds')::integer NOT BETWEEN 1 AND 3600) THEN
		RAISE EXCEPTION 'inbound option "tolerance_seconds" must be a whole number of seconds from 1 to 3600, for standard-webhooks'
			USING ERRCODE = 'OS004',
				  DETAIL = format('Channel "%s" has %s with signature %s.', channel, options->'tolerance_seconds', options->'signature'),
				  HINT = 'Leave it out for the default, 300 seconds; shopify and woocommerce sign no timestamp.';
	END IF;
	INSERT INTO ordersync.channel_inbound AS ci (channel, signature, format, options)
	VALUES (channel, options->>'signature', options->>'format', options)
	ON CONFLICT ON CONSTRAINT channel_inbound_pkey DO UPDATE
		SET signature = EXCLUDED.signature, format = EXCLUDED.format,
			options = EXCLUDED.options, updated_at = pg_catalog.now();
END
$$;
COMMENT ON FUNCTION ordersync.set_channel_inbound(text, jsonb) IS 'lets a channel push orders and status updates to ordersyncd --inbound: {"signature": "standard-webhooks"|"shopify"|"woocommerce", "secret_env"|"secret_file": reference, "format": "ordersync"|"shopify"|"woocommerce"}; NULL stops it';

-- Called by ordersyncd (role ordersync_relay) after it checked the signature.
CREATE FUNCTION ordersync.inbox_receive(channel text, kind text, event_id text, payload jsonb,
										topic text DEFAULT NULL)
	RETURNS bigint
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_inbox_receive';
COMMENT ON FUNCTION ordersync.inbox_receive(text, text, text, jsonb, text) IS 'used by ordersyncd (role ordersync_relay): keeps a verified webhook in ordersync.inbox; returns its id, or NULL when the channel sent that event id before (nothing is written)';

CREATE FUNCTION ordersync.inbox_apply(max_orders integer DEFAULT 1, part integer DEFAULT 0,
									  parts integer DEFAULT 1,
									  OUT processed integer, OUT applied integer, OUT stale integer,
									  OUT parked integer, OUT failed integer)
	RETURNS record
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_inbox_apply';
COMMENT ON FUNCTION ordersync.inbox_apply(integer, integer, integer) IS 'applies the received inbox rows of up to max_orders orders (whole orders, in version order), and parked rows that are due, each row in a subtransaction, skipping orders another applier holds; part of parts splits the orders between appliers; returns what became of the rows; one order per call keeps stock locks as short as place_order()''s';

CREATE FUNCTION ordersync.prune_inbox()
	RETURNS bigint
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_prune_inbox';
COMMENT ON FUNCTION ordersync.prune_inbox() IS 'deletes inbox rows older than ordersync.inbox_retention that are applied, stale or failed (parked ones that old fail first); returns how many';

CREATE FUNCTION ordersync.reconcile(channel text, orders jsonb)
	RETURNS TABLE (external_id text, issue text, channel_status text, status text,
				   action text, detail text)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	map jsonb;
	e jsonb;
	n integer := 0;
	ext text;
	word text;
	mapped text;
	ver numeric;
	last_ver numeric;
	o record;
	msg text;
	st text;
BEGIN
	IF reconcile.channel IS NULL OR reconcile.orders IS NULL THEN
		RAISE EXCEPTION '% must not be null', CASE WHEN reconcile.channel IS NULL THEN 'channel' ELSE 'orders' END
			USING ERRCODE = 'OS004',
				  DETAIL = 'reconcile() needs the channel and its list of orders.',
				  HINT = 'Pass [{"external_id": "1001", "status": "PAID", "version": 3}, ...].';
	END IF;
	SELECT c.status_map INTO map FROM ordersync.channel c WHERE c.id = reconcile.channel;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown channel "%"', reconcile.channel
			USING ERRCODE = 'OS004',
				  DETAIL = format('ordersync.channel has no channel "%s".', reconcile.channel),
				  HINT = 'Pass the id of a channel in ordersync.channel.';
	END IF;
	IF jsonb_typeof(reconcile.orders) <> 'array' THEN
		RAISE EXCEPTION 'orders must be a JSON array'
			USING ERRCODE = 'OS004',
				  DETAIL = format('reconcile() got a JSON %s.', jsonb_typeof(reconcile.orders)),
				  HINT = 'Pass [{"external_id": "1001", "status": "PAID", "version": 3}, ...].';
	END IF;
	FOR e IN SELECT x FROM jsonb_array_elements(reconcile.orders) x LOOP
		n := n + 1;
		IF jsonb_typeof(e) <> 'object' OR jsonb_typeof(e->'external_id') IS DISTINCT FROM 'string'
		   OR jsonb_typeof(e->'status') IS DISTINCT FROM 'string'
		   OR (e ? 'version' AND jsonb_typeof(e->'version') <> 'null'
			   AND ordersync.channel_version(e->'version') IS NULL) THEN
			RAISE EXCEPTION 'invalid entry % of the orders list', n
				USING ERRCODE = 'OS004',
					  DETAIL = format('Entry %s is %s.', n, left(e::text, 200)),
					  HINT = 'Each entry is {"external_id": "1001", "status": "PAID", "version": <integer or RFC 3339 time>}.';
		END IF;
		ext := e->>'external_id';
		word := e->>'status';
		ver := ordersync.channel_version(e->'version');
		mapped := map->>word;
		-- the order's lock, as inbox_apply() takes it: a version check and its change are one step
		PERFORM pg_catalog.pg_advisory_xact_lock(1869838702, hashtext(reconcile.channel || '/' || ext));
		SELECT od.id, od.status INTO o FROM ordersync.orders od
		 WHERE od.channel = reconcile.channel AND od.external_id = ext;
		IF NOT FOUND THEN
			SELECT format('inbox row %s (event %s) is %s%s', i.id, i.event_id, i.state,
						  coalesce(': ' || i.error, ''))
			  INTO msg FROM ordersync.inbox i
			 WHERE i.channel = reconcile.channel AND i.external_id = ext AND i.kind = 'order'
			 ORDER BY i.id DESC LIMIT 1;
			RETURN QUERY SELECT ext, 'missing_here'::text, word, NULL::text, 'none'::text,
				coalesce(msg, 'no order webhook of it was received; place it with place_order()');
			CONTINUE;
		END IF;
		IF mapped IS NULL THEN
			RETURN QUERY SELECT ext, 'unmapped'::text, word, o.status::text, 'none'::text,
				format('the status map of channel "%s" has no key "%s"', reconcile.channel, word);
			CONTINUE;
		END IF;
		IF mapped = o.status THEN
			CONTINUE;
		END IF;
		SELECT v.version INTO last_ver FROM ordersync.inbox_version v
		 WHERE v.channel = reconcile.channel AND v.external_id = ext;
		IF ver IS NULL THEN
			RETURN QUERY SELECT ext, 'drifted'::text, word, o.status::text, 'none'::text,
				'the entry has no version: cannot tell which side is newer'::text;
		ELSIF last_ver IS NOT NULL AND ver <= last_ver THEN
			RETURN QUERY SELECT ext, 'drifted'::text, word, o.status::text, 'none'::text,
				format('ordersync applied version %s of this order, newer than %s', last_ver, ver);
		ELSE
			BEGIN
				PERFORM ordersync.set_status(o.id, mapped,
					format('reconcile: channel %s reports %s (version %s)', reconcile.channel, word, ver));
				INSERT INTO ordersync.inbox_version AS v (channel, external_id, version)
				VALUES (reconcile.channel, ext, ver)
				ON CONFLICT ON CONSTRAINT inbox_version_pkey DO UPDATE
					SET version = GREATEST(v.version, EXCLUDED.version);
				RETURN QUERY SELECT ext, 'drifted'::text, word, o.status::text, 'applied'::text,
					format('order %s moved from %s to %s', o.id, o.status, mapped);
			EXCEPTION WHEN SQLSTATE 'OS002' THEN
				GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, st = PG_EXCEPTION_HINT;
				RETURN QUERY SELECT ext, 'drifted'::text, word, o.status::text, 'none'::text,
					msg || coalesce(' (' || st || ')', '');
			END;
		END IF;
	END LOOP;

	RETURN QUERY
		SELECT od.external_id, 'missing_there'::text, NULL::text, od.status, 'none'::text,
			   format('order %s is not in the channel''s list', od.id)
		  FROM ordersync.orders od
		 WHERE od.channel = reconcile.channel
		   AND od.external_id NOT IN (SELECT x->>'external_id' FROM jsonb_array_elements(reconcile.orders) x
										WHERE x->>'external_id' IS NOT NULL)
		 ORDER BY od.id;
END
$$;
COMMENT ON FUNCTION ordersync.reconcile(text, jsonb) IS 'compares the channel''s own list of orders (external_id, status, version) with ordersync''s: reports orders missing on either side and statuses that drifted, and applies a drifted status when its version is newer than the last applied and the state machine takes it';

REVOKE ALL ON ordersync.channel_inbound, ordersync.inbox, ordersync.inbox_version FROM PUBLIC;
REVOKE ALL ON FUNCTION ordersync.channel_version(jsonb), ordersync.set_channel_inbound(text, jsonb),
	ordersync.inbox_receive(text, text, text, jsonb, text), ordersync.inbox_apply(integer, integer, integer),
	ordersync.prune_inbox(), ordersync.reconcile(text, jsonb) FROM PUBLIC;
GRANT SELECT ON ordersync.channel_inbound, ordersync.inbox, ordersync.inbox_version
	TO ordersync_app, ordersync_admin;
GRANT EXECUTE ON FUNCTION ordersync.reconcile(text, jsonb) TO ordersync_app, ordersync_admin;
GRANT EXECUTE ON FUNCTION ordersync.set_channel_inbound(text, jsonb),
	ordersync.inbox_apply(integer, integer, integer), ordersync.prune_inbox() TO ordersync_admin;
-- the relay: which channels it receives for, receiving, and applying what it received
GRANT SELECT ON ordersync.channel_inbound TO ordersync_relay;
GRANT EXECUTE ON FUNCTION ordersync.inbox_receive(text, text, text, jsonb, text),
	ordersync.inbox_apply(integer, integer, integer) TO ordersync_relay;

SELECT pg_catalog.pg_extension_config_dump('ordersync.channel_inbound', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.inbox', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.inbox_version', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('ordersync.inbox', 'id'), '');

-- ---------------------------------------------------------------------------
-- Sinks (issue 11)
-- ---------------------------------------------------------------------------
-- ---------------------------------------------------------------------------
-- NATS sinks (issue 11)
-- ---------------------------------------------------------------------------
-- nats://host:4222/<subject prefix> and nats+tls://... (src/relay/sink_nats.c):
-- the two sink checks of 0.3.0 again, unchanged but for the nats schemes,
-- their option keys (stream, password_env/_file, token_env/_file, ca_file,
-- cert_file, key_file) and their rules; ordersyncd applies the same lists.
-- CREATE OR REPLACE keeps the functions' owner and privileges.
CREATE OR REPLACE FUNCTION ordersync.check_sink_uri(name text, uri text)
	RETURNS text[]
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	bad_char constant text :=
		'[\x01-\x20\x7f-\x9f\u00a0\u061c\u1680\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u2069\u3000\ufeff]';
	secret_names constant text[] := ARRAY['token', 'access_token', 'secret', 'password', 'passwd',
		'pwd', 'key', 'apikey', 'api_key', 'api-key', 'auth', 'authorization', 'sig', 'signature',
		'credential', 'credentials', 'session'];
	scheme text := lower(substring(uri FROM '^([A-Za-z][A-Za-z0-9+.-]*):'));
	pos integer;
	authority text;
	part text;
	hname text;
	addr inet;
	v4 inet;
	hosts text[] := '{}';
	param text;
	pname text;
	hex text;
BEGIN
	pos := regexp_instr(uri, bad_char);
	IF pos > 0 THEN
		RAISE EXCEPTION 'sink uri must not contain control characters or spaces'
			USING ERRCODE = 'OS006',
				  DETAIL = format('Character %s of the uri of sink "%s" is U+%s.', pos, name,
								  lpad(upper(to_hex(ascii(substr(uri, pos, 1)))), 4, '0')),
				  HINT = 'Percent-encode spaces (%20) and remove control and invisible characters.';
	END IF;
	IF octet_length(uri) > 2048 THEN
		RAISE EXCEPTION 'sink uri is too long'
			USING ERRCODE = 'OS006',
				  DETAIL = format('The uri of sink "%s" has %s bytes; at most 2048 are allowed.', name, octet_length(uri)),
				  HINT = 'Shorten the uri; the relay follows sink changes only while they fit in a table row.';
	END IF;
	IF scheme IS NULL OR scheme NOT IN ('http', 'https', 'kafka', 'amqp', 'amqps', 'nats', 'nats+tls')
	   OR uri !~ '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]+' THEN
		RAISE EXCEPTION 'unsupported sink uri "%"', uri
			USING ERRCODE = 'OS006',
				  DETAIL = format('The scheme is %s; sinks in the database are http://host/..., https://host/..., kafka://brokers/topic, amqp://user@host/vhost?exchange=name or nats://host:4222/subject_prefix.',
								  coalesce(quote_literal(scheme), 'missing')),
				  HINT = 'File and stdout sinks are given on ordersyncd''s command line (--sink=file:/path).';
	END IF;
	IF scheme IN ('nats', 'nats+tls')
	   AND uri !~ '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#,]+/[A-Za-z0-9_-]{1,200}(\.[A-Za-z0-9_-]{1,200})*$' THEN
		RAISE EXCEPTION 'invalid nats sink uri "%"', uri
			USING ERRCODE = 'OS006',
				  DETAIL = format('Sink "%s": a nats sink names one server and a subject prefix: tokens of letters, digits, "_" and "-" separated by single dots, no wildcards * or >, no parameters; events go to <prefix>.<event type>.', name),
				  HINT = 'Write it as nats://host:4222/ordersync (nats+tls:// for TLS); settings go into the options.';
	END IF;
	IF uri ~ '^[A-Za-z][A-Za-z0-9+.-]*://[^/@]*:[^/@]*@' THEN
		RAISE EXCEPTION 'sink uri contains a password'
			USING ERRCODE = 'OS006',
				  DETAIL = format('Sink "%s": secrets are never stored in ordersync.sink.', name),
				  HINT = 'Remove the password from the uri and name where the relay reads it: options {"password_env": "VAR"} or {"password_file": "/path"}.';
	END IF;

	-- query parameters named like secrets, also percent-encoded (%74oken)
	FOREACH param IN ARRAY regexp_split_to_array(coalesce(substring(uri FROM '\?([^#]*)'), ''), '[&;]') LOOP
		pname := lower(split_part(param, '=', 1));
		WHILE pname ~ '%[0-9a-f]{2}' LOOP
			hex := substring(pname FROM '%([0-9a-f]{2})');
			pname := lower(replace(pname, '%' || hex,
								   CASE WHEN hex = '00' THEN '' ELSE chr(('x' || hex)::bit(8)::integer) END));
		END LOOP;
		IF pname = ANY (secret_names)
		   OR pname ~ '[_.-](token|secret|password|passwd|pwd|key|apikey|signature|credentials?)$' THEN
			RAISE EXCEPTION 'sink uri carries a secret in its query parameter "%"', split_part(param, '=', 1)
				USING ERRCODE = 'OS006',
					  DETAIL = format('Sink "%s": secrets are never stored in ordersync.sink, and a uri ends up in logs and metrics.', name),
					  HINT = 'Remove the parameter. Webhooks are authenticated by their signature header (option "secret_env" or "secret_file"), Kafka and RabbitMQ by "password_env" or "password_file".';
		END IF;
	END LOOP;

	-- the hosts: after the userinfo, before the port; kafka lists brokers
	authority := regexp_replace(substring(uri FROM '^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)'), '^.*@', '');
	FOREACH part IN ARRAY CASE WHEN scheme = 'kafka' THEN string_to_array(authority, ',')
							   ELSE ARRAY[authority] END LOOP
		addr := NULL;
		IF part ~ '^\[' THEN
			hname := substring(part FROM '^\[([^]]*)\](:[0-9]*)?$');
			BEGIN
				addr := hname::inet;
			EXCEPTION WHEN invalid_text_representation THEN
				hname := NULL;
			END;
			IF hname IS NULL OR family(addr) <> 6 OR masklen(addr) <> 128 THEN
				RAISE EXCEPTION 'invalid IPv6 address in the uri of sink "%"', name
					USING ERRCODE = 'OS006',
						  DETAIL = format('The host part is %s.', part),
						  HINT = 'Write IPv6 addresses in brackets without a zone: https://[2001:db8::1]:8443/hook.';
			END IF;
		ELSE
			hname := lower(split_part(part, ':', 1));
			IF hname ~ '%' THEN
				RAISE EXCEPTION 'sink host "%" is percent-encoded', hname
					USING ERRCODE = 'OS006',
						  DETAIL = format('Sink "%s": clients decode %%XX in host names, which would hide the address they connect to.', name),
						  HINT = 'Write the host name or address as it is (international names in their xn-- form).';
			END IF;
			IF hname = '' THEN
				RAISE EXCEPTION 'sink uri of "%" has no host', name
					USING ERRCODE = 'OS006',
						  DETAIL = format('The uri is %s.', uri),
						  HINT = 'Give a host name or address after "//".';
			END IF;
			-- anything inet_aton() would read as an address must be plain dotted decimal
			IF hname ~ '^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$' THEN
				IF hname !~ '^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$' THEN
					RAISE EXCEPTION 'sink host "%" is an IPv4 address in an ambiguous form', hname
						USING ERRCODE = 'OS006',
							  DETAIL = format('Sink "%s": resolvers read forms such as 2852039166, 0xa9.254.0.1 or 127.1 as addresses.', name),
							  HINT = 'Write IPv4 addresses as four decimal numbers without leading zeros, such as 192.0.2.10.';
				END IF;
				addr := hname::inet;
			END IF;
		END IF;
		IF addr IS NOT NULL THEN
			v4 := CASE WHEN addr <<= '::ffff:0.0.0.0/96'::inet
					   THEN '0.0.0.0'::inet + (addr - '::ffff:0.0.0.0'::inet) ELSE addr END;
			IF v4 <<= '169.254.0.0/16'::inet OR v4 <<= '0.0.0.0/8'::inet OR v4 <<= '224.0.0.0/4'::inet
			   OR v4 = '255.255.255.255'::inet OR v4 <<= 'fe80::/10'::inet OR v4 = '::'::inet
			   OR v4 <<= 'ff00::/8'::inet THEN
				RAISE EXCEPTION 'sink host % is a link-local, unspecified or multicast address', host(addr)
					USING ERRCODE = 'OS006',
						  DETAIL = format('Sink "%s": events must not go to 169.254.0.0/16 (cloud metadata services), 0.0.0.0/8, 224.0.0.0/4, 255.255.255.255, fe80::/10, :: or ff00::/8.', name),
						  HINT = 'Give the address or name of the system that receives the events.';
			END IF;
			hname := host(addr);
		END IF;
		hosts := hosts || hname;
	END LOOP;
	RETURN hosts;
END
$$;

CREATE OR REPLACE FUNCTION ordersync.check_sink_options(name text, scheme text, options jsonb, hosts text[])
	RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	allowed text[] := ARRAY['max_attempts', 'max_age_seconds', 'backoff_min_ms', 'backoff_max_ms',
							'timeout_ms', 'connect_timeout_ms', 'max_in_flight', 'drop_personal_data']
		|| CASE scheme
			WHEN 'kafka' THEN ARRAY['password_env', 'password_file', 'ca_file', 'cert_file', 'key_file', 'kafka']
			WHEN 'amqp' THEN ARRAY['password_env', 'password_file', 'ca_file', 'cert_file', 'key_file',
								   'verify_peer', 'declare_exchange', 'heartbeat_seconds']
			WHEN 'amqps' THEN ARRAY['password_env', 'password_file', 'ca_file', 'cert_file', 'key_file',
									'verify_peer', 'declare_exchange', 'heartbeat_seconds']
			WHEN 'nats' THEN ARRAY['stream', 'password_env', 'password_file', 'token_env', 'token_file',
								   'ca_file', 'cert_file', 'key_file']
			WHEN 'nats+tls' THEN ARRAY['stream', 'password_env', 'password_file', 'token_env', 'token_file',
									   'ca_file', 'cert_file', 'key_file']
			ELSE ARRAY['secret_env', 'secret_file', 'ca_file'] END;
	kafka_allowed constant text[] := ARRAY['client.id', 'linger.ms', 'queue.buffering.max.ms',
		'queue.buffering.max.messages', 'queue.buffering.max.kbytes', 'batch.num.messages',
		'batch.size', 'compression.type', 'compression.codec', 'compression.level',
		'message.max.bytes', 'request.timeout.ms', 'socket.timeout.ms', 'socket.keepalive.enable',
		'retry.backoff.ms', 'reconnect.backoff.ms', 'reconnect.backoff.max.ms',
		'metadata.max.age.ms', 'topic.metadata.refresh.interval.ms',
		'max.in.flight.requests.per.connection', 'broker.address.family', 'security.protocol',
		'sasl.mechanism', 'sasl.mechanisms', 'sasl.username', 'ssl.endpoint.identification.algorithm',
		'enable.ssl.certificate.verification', 'acks', 'enable.idempotence'];
	-- [min, max] of the integer options, as ordersyncd takes them
	ranges constant jsonb := '{"max_attempts": [1, 1000000], "max_age_seconds": [1, 2592000],
		"backoff_min_ms": [1, 3600000], "backoff_max_ms": [1, 3600000], "timeout_ms": [1, 3600000],
		"connect_timeout_ms": [1, 3600000], "max_in_flight": [1, 100000],
		"heartbeat_seconds": [0, 3600]}';
	bad_char constant text := '[\x01-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]';
	k text;
	v jsonb;
	p text;
	pv jsonb;
	s text;
	why text;
	kafka jsonb := coalesce(options -> 'kafka', '{}');
	all_local boolean := true;
	h text;
BEGIN
	IF jsonb_typeof(options) <> 'object' THEN
		RAISE EXCEPTION 'sink options must be a JSON object'
			USING ERRCODE = 'OS006',
				  DETAIL = format('Sink "%s" got options %s.', name, options),
				  HINT = 'Pass an object such as ''{"max_attempts": 5}''.';
	END IF;
	IF octet_length(options::text) > 4096 THEN
		RAISE EXCEPTION 'sink options are too large'
			USING ERRCODE = 'OS006',
				  DETAIL = format('The options of sink "%s" have %s bytes as JSON text; at most 4096 are allowed.',
								  name, octet_length(options::text)),
				  HINT = 'Give only the options the sink needs; the relay follows sink changes only while they fit in a table row.';
	END IF;

	FOR k, v IN SELECT e.key, e.value FROM jsonb_each(options) e LOOP
		IF k IN ('secret', 'password', 'token', 'api_key') THEN
			RAISE EXCEPTION 'sink option "%" would store a secret in the database', k
				USING ERRCODE = 'OS006',
					  DETAIL = format('Sink "%s": secrets are never stored in ordersync.sink.', name),
					  HINT = format('Use "%s_env" (an environment variable of ordersyncd) or "%s_file" (a file it reads) instead.',
									CASE WHEN k = 'password' THEN 'password'
										 WHEN k = 'token' AND scheme IN ('nats', 'nats+tls') THEN 'token' ELSE 'secret' END,
									CASE WHEN k = 'password' THEN 'password'
										 WHEN k = 'token' AND scheme IN ('nats', 'nats+tls') THEN 'token' ELSE 'secret' END);
		END IF;
		IF NOT k = ANY (allowed) THEN
			RAISE EXCEPTION 'unknown option "%" for %:// sinks', k, scheme
				USING ERRCODE = 'OS006',
					  DETAIL = format('Sink "%s" got options %s.', name, options),
					  HINT = format('A %s:// sink takes: %s.', scheme, array_to_string(allowed, ', '));
		END IF;

		IF ranges ? k THEN
			IF jsonb_typeof(v) <> 'number' OR v::text !~ '^-?[0-9]+$'
			   OR v::text::numeric NOT BETWEEN (ranges -> k ->> 0)::numeric AND (ranges -> k ->> 1)::numeric THEN
				RAISE EXCEPTION 'sink option "%" must be an integer from % to %', k, ranges -> k ->> 0, ranges -> k ->> 1
					USING ERRCODE = 'OS006',
						  DETAIL = format('Sink "%s" got %s: %s.', name, k, v),
						  HINT = format('Write it as a JSON number without quotes or decimals: {"%s": %s}.', k, ranges -> k ->> 1);
			END IF;
		ELSIF k IN ('drop_personal_data', 'verify_peer') THEN
			IF jsonb_typeof(v) <> 'boolean' THEN
				RAISE EXCEPTION 'sink option "%" must be true or false', k
					USING ERRCODE = 'OS006',
						  DETAIL = format('Sink "%s" got %s: %s.', name, k, v),
						  HINT = format('Write it as a JSON boolean without quotes: {"%s": true}.', k);
			END IF;
		ELSIF k = 'kafka' THEN
			IF jsonb_typeof(v) <> 'object' THEN
				RAISE EXCEPTION 'invalid "kafka" option of sink "%"', name
					USING ERRCODE = 'OS006',
						  DETAIL = format('It must be an object of librdkafka properties; got %s.', v),
						  HINT = 'Pass an object such as {"kafka": {"linger.ms": 20}}.';
			END IF;
		ELSIF jsonb_typeof(v) <> 'string' OR v = '""'::jsonb THEN
			RAISE EXCEPTION 'sink option "%" must be a non-empty string', k
				USING ERRCODE = 'OS006',
					  DETAIL = format('Sink "%s" got %s: %s.', name, k, v),
					  HINT = format('Write it as a JSON string: {"%s": "..."}.', k);
		ELSE
			s := v #>> '{}';
			IF k LIKE '%\_env' AND s !~ '^[A-Za-z_][A-Za-z0-9_]{0,127}$' THEN
				RAISE EXCEPTION 'sink option "%" is not an environment variable name', k
					USING ERRCODE = 'OS006',
						  DETAIL = format('Sink "%s" got %s: %s.', name, k, v),
						  HINT = 'Name a variable of ordersyncd''s environment: letters, digits and "_", not starting with a digit, at most 128 characters.';
			END IF;
			IF (k LIKE '%\_file') AND (s !~ '^/' OR ('/' || s || '/') LIKE '%/../%' OR s ~ bad_char) THEN
				RAISE EXCEPTION 'sink option "%" is not an absolute path', k
					USING ERRCODE = 'OS006',
						  DETAIL = format('Sink "%s" got %s: %s.', name, k, v),
						  HINT = 'Give the full path of a file on the relay''s host, starting with "/", without ".." and without control characters.';
			END IF;
			IF k = 'stream' AND s !~ '^[^\s.*>/\\]{1,255}$' THEN
				RAISE EXCEPTION 'sink option "stream" is not a JetStream stream name'
					USING ERRCODE = 'OS006',
						  DETAIL = format('Sink "%s" got stream: %s.', name, v),
						  HINT = 'Give the name of the stream that must store the events, such as "ORDERS": no spaces, dots, *, >, / or backslash.';
			END IF;
			IF k = 'declare_exchange' AND s NOT IN ('topic', 'direct', 'fanout', 'headers') THEN
				RAISE EXCEPTION 'sink option "declare_exchange" must be an exchange type'
					USING ERRCODE = 'OS006',
						  DETAIL = format('Sink "%s" got declare_exchange: %s.', name, v),
						  HINT = 'Use topic, direct, fanout or headers, or leave it out to use an existing exchange.';
			END IF;
		END IF;
	END LOOP;

	IF scheme = 'amqp' AND options ?| ARRAY['ca_file', 'cert_file', 'key_file', 'verify_peer'] THEN
		RAISE EXCEPTION 'sink options ca_file, cert_file, key_file and verify_peer need an amqps:// uri'
			USING ERRCODE = 'OS006',
				  DETAIL = format('Sink "%s" is amqp:// (no TLS) and got options %s.', name, options),
				  HINT = 'Use an amqps:// uri (port 5671 by default), or leave the TLS options out.';
	END IF;
	IF scheme = 'nats' AND options ?| ARRAY['ca_file', 'cert_file', 'key_file'] THEN
		RAISE EXCEPTION 'sink options ca_file, cert_file and key_file need a nats+tls:// uri'
			USING ERRCODE = 'OS006',
				  DETAIL = format('Sink "%s" is nats:// (no TLS) and got options %s.', name, options),
				  HINT = 'Use a nats+tls:// uri, or leave the TLS options out.';
	END IF;
	IF options ?| ARRAY['password_env', 'password_file'] AND options ?| ARRAY['token_env', 'token_file'] THEN
		RAISE EXCEPTION 'sink "%" has both a password and a token', name
			USING ERRCODE = 'OS006',
				  DETAIL = format('Sink "%s" got options %s.', name, options),
				  HINT = 'A NATS server takes a user (in the uri) with a password, or a token: give one of them.';
	END IF;
	IF (options ? 'cert_file') <> (options ? 'key_file') THEN
		RAISE EXCEPTION 'sink options cert_file and key_file go together'
			USING ERRCODE = 'OS006',
				  DETAIL = format('Sink "%s" got only %s.', name, CASE WHEN options ? 'cert_file' THEN 'cert_file' ELSE 'key_file' END),
				  HINT = 'Give both the client certificate and its key, or neither.';
	END IF;

	-- librdkafka properties: an allowlist, and values that keep the
	-- guarantees (acks=all, idempotence) and refuse command-running SASL
	FOR p, pv IN SELECT e.key, e.value FROM jsonb_each(kafka) e LOOP
		why := CASE
			WHEN NOT p = ANY (kafka_allowed) THEN CASE
				WHEN p ~ '(password|secret|\.key$|key\.pem|keystore|credential)' THEN
					'It would store a secret in the database: give the SASL password with "password_env" or "password_file".'
				WHEN p ~ '\.location$' THEN
					'It names a file: use the sink options "ca_file", "cert_file" and "key_file".'
				WHEN p IN ('bootstrap.servers', 'metadata.broker.list') THEN
					'The brokers come from the uri (kafka://host1:9092,host2:9092/topic).'
				WHEN p IN ('message.timeout.ms', 'delivery.timeout.ms') THEN
					'The sink enforces the option "timeout_ms" itself; librdkafka must not time records out.'
				WHEN p ~ '^(sasl\.kerberos\.|sasl\.oauthbearer\.|plugin\.|ssl\.engine\.|ssl_engine)' THEN
					'It runs commands or loads code on the relay''s host.'
				ELSE 'Only the listed properties can be set from the database.' END
			WHEN jsonb_typeof(pv) NOT IN ('string', 'number', 'boolean') THEN
				'Values are strings, numbers or booleans.'
			WHEN (pv #>> '{}') = '' OR (pv #>> '{}') ~ bad_char THEN
				'The value is empty or contains a control or invisible character.'
			WHEN p = 'security.protocol' AND lower(pv #>> '{}') NOT IN ('plaintext', 'ssl', 'sasl_plaintext', 'sasl_ssl') THEN
				'security.protocol is plaintext, ssl, sasl_plaintext or sasl_ssl.'
			WHEN p IN ('sasl.mechanism', 'sasl.mechanisms') AND (pv #>> '{}') NOT IN ('PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512') THEN
				'The SASL mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (GSSAPI runs a kinit command, OAUTHBEARER is not supported).'
			WHEN p = 'ssl.endpoint.identification.algorithm' AND lower(pv #>> '{}') NOT IN ('https', 'none') THEN
				'ssl.endpoint.identification.algorithm is https or none.'
			WHEN p = 'enable.ssl.certificate.verification' AND lower(pv #>> '{}') NOT IN ('true', 'false') THEN
				'enable.ssl.certificate.verification is true or false.'
			WHEN p = 'acks' AND lower(pv #>> '{}') NOT IN ('all', '-1') THEN
				'acks stays all (-1): an event counts as delivered only when every in-sync replica has it.'
			WHEN p = 'enable.idempotence' AND lower(pv #>> '{}') <> 'true' THEN
				'enable.idempotence stays true: without it retries can reorder or duplicate an order''s events.'
			END;
		IF why IS NOT NULL AND NOT p = ANY (kafka_allowed) THEN
			RAISE EXCEPTION 'librdkafka property "%" is not allowed in sink "%"', p, name
				USING ERRCODE = 'OS006',
					  DETAIL = format('Got "%s": %s. %s', p, pv, why),
					  HINT = 'Allowed properties: ' || array_to_string(kafka_allowed, ', ') || '.';
		ELSIF why IS NOT NULL THEN
			RAISE EXCEPTION 'librdkafka property "%" of sink "%" has a value that is not allowed', p, name
				USING ERRCODE = 'OS006',
					  DETAIL = format('Got "%s": %s. %s', p, pv, why),
					  HINT = format('Change the value of "%s" or leave the property out.', p);
		END IF;
	END LOOP;

	-- librdkafka's default mechanism is GSSAPI, which runs kinit: name one
	IF lower(kafka ->> 'security.protocol') LIKE 'sasl\_%' AND NOT kafka ?| ARRAY['sasl.mechanism', 'sasl.mechanisms'] THEN
		RAISE EXCEPTION 'sink "%" uses SASL without naming its mechanism', name
			USING ERRCODE = 'OS006',
				  DETAIL = format('security.protocol is %s; librdkafka''s default mechanism, GSSAPI, would run kinit with the relay host''s Kerberos credentials.', kafka ->> 'security.protocol'),
				  HINT = 'Add "sasl.mechanism": PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 to the "kafka" option.';
	END IF;

	-- Accepted, but ordersyncd refuses them unless --allow-insecure-sinks
	IF options -> 'verify_peer' = 'false'
	   OR lower(kafka ->> 'enable.ssl.certificate.verification') = 'false'
	   OR lower(kafka ->> 'ssl.endpoint.identification.algorithm') = 'none' THEN
		RAISE WARNING 'sink "%" does not verify the TLS certificate of its server', name
			USING ERRCODE = '01000',
				  DETAIL = 'Whoever can intercept the connection can read and change the events.',
				  HINT = 'ordersyncd refuses this sink unless it is started with --allow-insecure-sinks; give a private CA with "ca_file" instead.';
	END IF;
	FOREACH h IN ARRAY hosts LOOP
		all_local := all_local AND (h IN ('localhost', 'localhost.')
							OR (h ~ '^[0-9.]+$|:' AND (h::inet <<= '127.0.0.0/8'::inet OR h::inet = '::1'::inet)));
	END LOOP;
	IF NOT all_local AND (options -> 'drop_personal_data') IS DISTINCT FROM 'true'::jsonb
	   AND (scheme IN ('http', 'amqp', 'nats')
			OR (scheme = 'kafka' AND coalesce(lower(kafka ->> 'security.protocol'), 'plaintext') NOT IN ('ssl', 'sasl_ssl'))) THEN
		RAISE WARNING 'sink "%" sends events with personal data without TLS to %', name, array_to_string(hosts, ', ')
			USING ERRCODE = '01000',
				  DETAIL = 'Events carry customer data (names, addresses) in clear over the network.',
				  HINT = 'ordersyncd refuses this sink unless it is started with --allow-insecure-sinks; use https://, amqps://, nats+tls:// or the kafka property security.protocol ssl or sasl_ssl, or set the option "drop_personal_data": true.';
	END IF;
END
$$;
COMMENT ON FUNCTION ordersync.add_sink(text, text, jsonb) IS 'adds a system the relay delivers to (http(s)://, kafka://, amqp(s)://, nats(+tls)://); events reach it through routes';
