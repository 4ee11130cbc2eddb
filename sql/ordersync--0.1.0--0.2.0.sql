/*
 * ordersync--0.1.0--0.2.0.sql — where the relay delivers events.
 *
 * Sinks (webhooks, Kafka, RabbitMQ) and the routes that send event types to
 * them are data here, so that changing them is a transaction like any
 * other: every change emits the whole new configuration as a transactional
 * logical message of type relay.config, and ordersyncd switches to it at
 * exactly that point of the stream, in order with the events around it.
 *
 * Events a sink refused for good are kept in dead_letter (written by the
 * relay through record_dead_letter); redeliver() sends one again through
 * the stream.  Secrets never live here: options name an environment
 * variable or a file the relay reads (secret_env/secret_file,
 * password_env/password_file).
 *
 * Errors: OS006 invalid sink configuration, OS007 unknown sink, OS008
 * unknown dead letter.
 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ordersync UPDATE TO '0.2.0'" to load this file. \quit

CREATE TABLE ordersync.sink (
	name text PRIMARY KEY CONSTRAINT sink_name_format CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
	uri text NOT NULL,
	options jsonb NOT NULL DEFAULT '{}' CONSTRAINT sink_options_object CHECK (jsonb_typeof(options) = 'object'),
	created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ordersync.sink IS 'systems the relay delivers events to; change with add_sink/drop_sink';

CREATE TABLE ordersync.route (
	sink text NOT NULL REFERENCES ordersync.sink (name) ON DELETE CASCADE,
	pattern text NOT NULL CONSTRAINT route_pattern_format CHECK (pattern ~ '^(\*|[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?)$'),
	PRIMARY KEY (sink, pattern)
);
COMMENT ON TABLE ordersync.route IS 'which event types go to which sink: exact (order.paid), prefix (order.*) or * for all';

CREATE TABLE ordersync.dead_letter (
	id bigserial PRIMARY KEY,
	sink text NOT NULL,
	event_id text NOT NULL,
	type text NOT NULL,
	subject text NOT NULL,
	event jsonb NOT NULL,
	error text NOT NULL,
	attempts integer NOT NULL,
	failed_at timestamptz NOT NULL DEFAULT now(),
	redelivered_at timestamptz,
	redeliveries integer NOT NULL DEFAULT 0
);
CREATE INDEX dead_letter_sink_failed ON ordersync.dead_letter (sink, failed_at);
COMMENT ON TABLE ordersync.dead_letter IS 'events a sink refused for good or that ran out of attempts; ordersync.redeliver(id) sends one again';

-- The configuration the relay works with, as one document.
CREATE FUNCTION ordersync.relay_config()
	RETURNS jsonb
	LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
	SELECT jsonb_build_object(
		'sinks', coalesce((SELECT jsonb_agg(jsonb_build_object('name', s.name, 'uri', s.uri,
															   'options', s.options) ORDER BY s.name)
						   FROM ordersync.sink s), '[]'),
		'routes', coalesce((SELECT jsonb_agg(jsonb_build_object('sink', r.sink, 'pattern', r.pattern)
											 ORDER BY r.sink, r.pattern)
							FROM ordersync.route r), '[]'))
$$;
COMMENT ON FUNCTION ordersync.relay_config() IS 'sinks and routes as ordersyncd reads them';

-- Every change tells the relay, in the stream, at the point it commits.
CREATE FUNCTION ordersync.announce_relay_config()
	RETURNS void
	LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
	SELECT FROM pg_catalog.pg_logical_emit_message(true, 'ordersync',
		pg_catalog.jsonb_build_object('type', 'relay.config', 'subject', 'relay/config',
									  'data', ordersync.relay_config())::text)
$$;

-- OS007, naming the sinks there are, unless the sink exists.
CREATE FUNCTION ordersync.require_sink(name text, hint text)
	RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF NOT EXISTS (SELECT FROM ordersync.sink s WHERE s.name = require_sink.name) THEN
		RAISE EXCEPTION 'unknown sink "%"', name
			USING ERRCODE = 'OS007',
				  DETAIL = format('The sinks are: %s.', coalesce((SELECT string_agg(s.name, ', ' ORDER BY s.name) FROM ordersync.sink s), 'none')),
				  HINT = hint;
	END IF;
END
$$;

CREATE FUNCTION ordersync.add_sink(name text, uri text, options jsonb DEFAULT '{}')
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	scheme text := lower(substring(uri FROM '^([A-Za-z][A-Za-z0-9+.-]*):'));
	known text[] := ARRAY['max_attempts', 'max_age_seconds', 'backoff_min_ms', 'backoff_max_ms',
						  'timeout_ms', 'connect_timeout_ms', 'max_in_flight', 'drop_personal_data',
						  'secret_env', 'secret_file', 'password_env', 'password_file', 'ca_file',
						  'cert_file', 'key_file', 'verify_peer', 'kafka', 'declare_exchange',
						  'heartbeat_seconds'];
	k text;
BEGIN
	IF name IS NULL OR uri IS NULL OR options IS NULL THEN
		RAISE EXCEPTION 'sink name, uri and options must not be null'
			USING ERRCODE = 'OS006',
				  DETAIL = format('name %s, uri %s, options %s', coalesce(quote_literal(name), 'NULL'),
								  coalesce(quote_literal(uri), 'NULL'), coalesce(options::text, 'NULL')),
				  HINT = 'Pass options as ''{}'' when the sink needs none.';
	END IF;
	IF name !~ '^[a-z0-9][a-z0-9_.-]{0,62}$' THEN
		RAISE EXCEPTION 'invalid sink name "%"', name
			USING ERRCODE = 'OS006',
				  DETAIL = 'A sink name has 1 to 63 characters: lower-case letters, digits, "_", "." and "-", starting with a letter or digit.',
				  HINT = 'Choose a name such as "warehouse" or "payment-webhook".';
	END IF;
	IF scheme IS NULL OR scheme NOT IN ('http', 'https', 'kafka', 'amqp', 'amqps')
	   OR uri !~ '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]+' THEN
		RAISE EXCEPTION 'unsupported sink uri "%"', uri
			USING ERRCODE = 'OS006',
				  DETAIL = format('The scheme is %s; sinks in the database are http://host/..., https://host/..., kafka://brokers/topic or amqp://user@host/vhost?exchange=name.',
								  coalesce(quote_literal(scheme), 'missing')),
				  HINT = 'File and stdout sinks are given on ordersyncd''s command line (--sink=file:/path).';
	END IF;
	IF uri ~ '^[A-Za-z][A-Za-z0-9+.-]*://[^/@]*:[^/@]*@' THEN
		RAISE EXCEPTION 'sink uri contains a password'
			USING ERRCODE = 'OS006',
				  DETAIL = format('Sink "%s": secrets are never stored in ordersync.sink.', name),
				  HINT = 'Remove the password from the uri and name where the relay reads it: options {"password_env": "VAR"} or {"password_file": "/path"}.';
	END IF;
	IF jsonb_typeof(options) <> 'object' THEN
		RAISE EXCEPTION 'sink options must be a JSON object'
			USING ERRCODE = 'OS006',
				  DETAIL = format('Sink "%s" got options %s.', name, options),
				  HINT = 'Pass an object such as ''{"max_attempts": 5}''.';
	END IF;
	FOR k IN SELECT jsonb_object_keys(options) LOOP
		IF k IN ('secret', 'password', 'token', 'api_key') THEN
			RAISE EXCEPTION 'sink option "%" would store a secret in the database', k
				USING ERRCODE = 'OS006',
					  DETAIL = format('Sink "%s": secrets are never stored in ordersync.sink.', name),
					  HINT = format('Use "%s_env" (an environment variable of ordersyncd) or "%s_file" (a file it reads) instead.',
									CASE k WHEN 'password' THEN 'password' ELSE 'secret' END,
									CASE k WHEN 'password' THEN 'password' ELSE 'secret' END);
		END IF;
		IF NOT k = ANY (known) THEN
			RAISE EXCEPTION 'unknown sink option "%"', k
				USING ERRCODE = 'OS006',
					  DETAIL = format('Sink "%s" got options %s.', name, options),
					  HINT = 'Known options: ' || array_to_string(known, ', ') || '.';
		END IF;
	END LOOP;
	IF options ? 'kafka' AND (jsonb_typeof(options -> 'kafka') <> 'object' OR EXISTS (
			SELECT FROM jsonb_object_keys(options -> 'kafka') AS p
			WHERE p ~ '(password|secret|\.key$|key\.pem|keystore)')) THEN
		RAISE EXCEPTION 'invalid "kafka" option of sink "%"', name
			USING ERRCODE = 'OS006',
				  DETAIL = format('It must be an object of librdkafka properties without secrets; got %s.', options -> 'kafka'),
				  HINT = 'Give the SASL password with "password_env" or "password_file"; keys and certificates as files.';
	END IF;
	-- what the sink sets itself, or would break its promises (order, durability)
	IF options ? 'kafka' AND (EXISTS (
			SELECT FROM jsonb_object_keys(options -> 'kafka') AS p
			WHERE p IN ('bootstrap.servers', 'log.queue', 'transactional.id', 'enable.gapless.guarantee',
						'message.timeout.ms', 'delivery.timeout.ms'))
		 OR options -> 'kafka' ->> 'enable.idempotence' IN ('false', '0')
		 OR coalesce(options -> 'kafka' ->> 'acks', 'all') NOT IN ('all', '-1')) THEN
		RAISE EXCEPTION 'the "kafka" option of sink "%" overrides a setting ordersync relies on', name
			USING ERRCODE = 'OS006',
				  DETAIL = format('Got %s. The sink sets bootstrap.servers from the uri, acks=all and enable.idempotence=true for durability and order, and enforces timeout_ms itself.', options -> 'kafka'),
				  HINT = 'Remove those properties; use the uri for brokers and "timeout_ms" for the delivery timeout.';
	END IF;
	IF EXISTS (SELECT FROM ordersync.sink s WHERE s.name = add_sink.name) THEN
		RAISE EXCEPTION 'sink "%" already exists', name
			USING ERRCODE = 'OS006',
				  DETAIL = format('It delivers to %s.', (SELECT s.uri FROM ordersync.sink s WHERE s.name = add_sink.name)),
				  HINT = 'Drop it first with ordersync.drop_sink(), or choose another name.';
	END IF;
	INSERT INTO ordersync.sink (name, uri, options) VALUES (add_sink.name, add_sink.uri, add_sink.options);
	PERFORM ordersync.announce_relay_config();
END
$$;
COMMENT ON FUNCTION ordersync.add_sink(text, text, jsonb) IS 'adds a system the relay delivers to (http(s)://, kafka://, amqp://); events reach it through routes';

CREATE FUNCTION ordersync.drop_sink(name text)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	PERFORM ordersync.require_sink(name, 'List them with SELECT * FROM ordersync.sink.');
	DELETE FROM ordersync.sink s WHERE s.name = drop_sink.name;
	PERFORM ordersync.announce_relay_config();
END
$$;
COMMENT ON FUNCTION ordersync.drop_sink(text) IS 'removes a sink and its routes; events already handed to it are still delivered';

CREATE FUNCTION ordersync.add_route(sink text, event_type_pattern text)
	RETURNS boolean
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	PERFORM ordersync.require_sink(sink, 'Add it first with ordersync.add_sink(name, uri, options).');
	IF event_type_pattern IS NULL OR event_type_pattern !~ '^(\*|[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?)$' THEN
		RAISE EXCEPTION 'invalid event type pattern "%"', event_type_pattern
			USING ERRCODE = 'OS006',
				  DETAIL = 'A pattern is an event type (order.paid), a prefix ending in .* (order.*, inventory.*), or * for every event.',
				  HINT = 'Event types are listed in doc/events.md.';
	END IF;
	INSERT INTO ordersync.route (sink, pattern) VALUES (add_route.sink, event_type_pattern)
		ON CONFLICT DO NOTHING;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM ordersync.announce_relay_config();
	RETURN true;
END
$$;
COMMENT ON FUNCTION ordersync.add_route(text, text) IS 'sends events whose type matches the pattern to the sink; false if the route existed';

CREATE FUNCTION ordersync.drop_route(sink text, event_type_pattern text)
	RETURNS boolean
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	PERFORM ordersync.require_sink(sink, 'List them with SELECT * FROM ordersync.sink.');
	DELETE FROM ordersync.route r WHERE r.sink = drop_route.sink AND r.pattern = event_type_pattern;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM ordersync.announce_relay_config();
	RETURN true;
END
$$;
COMMENT ON FUNCTION ordersync.drop_route(text, text) IS 'stops sending matching events to the sink; false if there was no such route';

-- Called by ordersyncd when it gives an event up.
CREATE FUNCTION ordersync.record_dead_letter(sink text, event jsonb, error text, attempts integer)
	RETURNS bigint
	LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
	INSERT INTO ordersync.dead_letter (sink, event_id, type, subject, event, error, attempts)
	VALUES (sink, event ->> 'id', coalesce(event ->> 'type', ''), coalesce(event ->> 'subject', ''),
			event, error, attempts)
	RETURNING id
$$;
COMMENT ON FUNCTION ordersync.record_dead_letter(text, jsonb, text, integer) IS 'used by ordersyncd: keeps an event a sink did not take';

CREATE FUNCTION ordersync.redeliver(dead_letter_id bigint)
	RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	dl ordersync.dead_letter;
BEGIN
	SELECT * INTO dl FROM ordersync.dead_letter d WHERE d.id = dead_letter_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown dead letter %', coalesce(dead_letter_id::text, 'NULL')
			USING ERRCODE = 'OS008',
				  DETAIL = format('ordersync.dead_letter has %s rows.', (SELECT count(*) FROM ordersync.dead_letter)),
				  HINT = 'List them with SELECT id, sink, event_id, error FROM ordersync.dead_letter ORDER BY id.';
	END IF;
	IF NOT EXISTS (SELECT FROM ordersync.sink s WHERE s.name = dl.sink) THEN
		RAISE EXCEPTION 'dead letter % belongs to sink "%", which no longer exists', dl.id, dl.sink
			USING ERRCODE = 'OS007',
				  DETAIL = format('Event %s (%s) failed with: %s', dl.event_id, dl.type, dl.error),
				  HINT = 'Add the sink again with ordersync.add_sink() and redeliver.';
	END IF;
	PERFORM pg_catalog.pg_logical_emit_message(true, 'ordersync',
		pg_catalog.jsonb_build_object('type', 'relay.redeliver', 'subject', dl.subject,
									  'data', pg_catalog.jsonb_build_object(
										  'dead_letter_id', dl.id, 'sink', dl.sink, 'event', dl.event))::text);
	UPDATE ordersync.dead_letter d SET redelivered_at = now(), redeliveries = d.redeliveries + 1
	 WHERE d.id = dl.id;
	RETURN dl.event_id;
END
$$;
COMMENT ON FUNCTION ordersync.redeliver(bigint) IS 'sends a dead-lettered event to its sink again, through the stream; returns its event id';

REVOKE ALL ON ordersync.sink, ordersync.route, ordersync.dead_letter FROM PUBLIC;
REVOKE ALL ON FUNCTION ordersync.relay_config(), ordersync.announce_relay_config(),
	ordersync.require_sink(text, text),
	ordersync.add_sink(text, text, jsonb), ordersync.drop_sink(text),
	ordersync.add_route(text, text), ordersync.drop_route(text, text),
	ordersync.record_dead_letter(text, jsonb, text, integer), ordersync.redeliver(bigint) FROM PUBLIC;
GRANT SELECT ON ordersync.sink, ordersync.route, ordersync.dead_letter TO ordersync_admin;
GRANT EXECUTE ON FUNCTION ordersync.relay_config(),
	ordersync.add_sink(text, text, jsonb), ordersync.drop_sink(text),
	ordersync.add_route(text, text), ordersync.drop_route(text, text),
	ordersync.record_dead_letter(text, jsonb, text, integer), ordersync.redeliver(bigint) TO ordersync_admin;

SELECT pg_catalog.pg_extension_config_dump('ordersync.sink', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.route', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.dead_letter', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('ordersync.dead_letter', 'id'), '');

-- Hot SKUs: buyers update a few stock rows all the time. With room on every
-- page, updates stay HOT (no index entries) and the rows of one SKU spread
-- over several pages instead of sharing one (less buffer contention).
-- Existing rows move with VACUUM FULL ordersync.stock.
ALTER TABLE ordersync.stock SET (fillfactor = 10);
