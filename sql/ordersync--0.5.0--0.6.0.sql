/*
 * ordersync--0.5.0--0.6.0.sql — cheaper checks on every order, and the
 * webhook sink's idle connection limit.
 */

-- complain if the script is sourced in psql rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ordersync UPDATE TO '0.6.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Plain-text identifiers, tested in C.  The two regular expressions of each
-- CHECK constraint (0.3.0) were parsed again and run for every order (4% of
-- its instructions); ordersync.is_plain_text() tests the same characters as
-- the API functions do (src/extension/args.c).  The constraints keep their
-- names, and are validated again only where the old ones were.
-- ---------------------------------------------------------------------------
CREATE FUNCTION ordersync.is_plain_text(text) RETURNS boolean
	LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'ordersync_is_plain_text';
-- a CHECK constraint's function runs as whoever writes the row: the roles
-- that may update orders.status directly need it, PUBLIC does not
REVOKE EXECUTE ON FUNCTION ordersync.is_plain_text(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ordersync.is_plain_text(text) TO ordersync_app, ordersync_admin;
COMMENT ON FUNCTION ordersync.is_plain_text(text) IS 'true unless the text has control or invisible formatting characters, or spaces around it';

DO $plain$
DECLARE
	c record;
BEGIN
	FOR c IN SELECT format('ordersync.%I', cl.relname) AS rel, con.conname, con.convalidated,
					CASE con.conname WHEN 'sku_plain_text' THEN 'sku' ELSE 'external_id' END AS col
			   FROM pg_catalog.pg_constraint con
			   JOIN pg_catalog.pg_class cl ON cl.oid = con.conrelid
			  WHERE con.conname IN ('sku_plain_text', 'orders_external_id_plain_text')
				AND con.connamespace = 'ordersync'::regnamespace
	LOOP
		EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I, ADD CONSTRAINT %I CHECK (ordersync.is_plain_text(%I)) NOT VALID',
					   c.rel, c.conname, c.conname, c.col);
		IF c.convalidated THEN
			EXECUTE format('ALTER TABLE %s VALIDATE CONSTRAINT %I', c.rel, c.conname);
		END IF;
	END LOOP;
END
$plain$;

-- ---------------------------------------------------------------------------
-- Sink checks: webhooks take idle_timeout_ms (ordersyncd closes a kept-alive
-- connection idle that long instead of reusing it).  As in 0.4.0 otherwise.
-- ---------------------------------------------------------------------------
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
			ELSE ARRAY['secret_env', 'secret_file', 'ca_file', 'idle_timeout_ms'] END;
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
		"heartbeat_seconds": [0, 3600], "idle_timeout_ms": [1, 3600000]}';
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
