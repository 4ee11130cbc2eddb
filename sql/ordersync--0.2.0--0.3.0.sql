/*
 * ordersync--0.2.0--0.3.0.sql — the relay trusts only what ordersync wrote.
 *
 * ordersyncd acts on what it reads from the stream (a warehouse ships
 * because of an order.paid event), and in 0.2.0 a message's prefix was all
 * that made it "ours": any login role could call pg_logical_emit_message()
 * and forge domain events, relay.config messages (sinks that send every
 * order to a server of the attacker's choice) or relay.redeliver messages.
 * This release closes that:
 *
 * - EXECUTE on both pg_logical_emit_message() signatures is revoked from
 *   PUBLIC.  ordersync's C code calls LogLogicalMessage() directly and is
 *   not affected; superusers still can.  This is a change to a pg_catalog
 *   function: it applies to the whole database, to every schema and user in
 *   it, and DROP EXTENSION does not undo it (GRANT EXECUTE ON FUNCTION
 *   pg_catalog.pg_logical_emit_message(boolean, text, text),
 *   pg_catalog.pg_logical_emit_message(boolean, text, bytea) TO PUBLIC
 *   does, if something else in the database needs it).
 * - No relay.config or relay.redeliver messages any more.  The relay reads
 *   the committed row changes of ordersync.sink, ordersync.route and the new
 *   ordersync.redelivery from the stream; only the owner writes those
 *   tables, through add_sink(), drop_sink(), add_route(), drop_route() and
 *   redeliver().  announce_relay_config() is gone.  CHECK constraints keep
 *   sink rows small enough that they are never stored out of line (a TOASTed
 *   value the relay could not read from the stream).
 * - The relay gets its own role, ordersync_relay, with exactly what it
 *   needs: it reads sinks, routes and (for --snapshot) orders, and writes
 *   dead letters.  ordersync_admin can no longer write dead letters (an
 *   admin could forge one and redeliver a forged event).
 * - Sink options are an allowlist per sink type, the same lists ordersyncd
 *   applies: nothing stored in the database can make the relay run a
 *   command, load a library, read an arbitrary file or weaken TLS.  Options
 *   that weaken TLS, and sinks that send customer data in clear, are
 *   accepted with a WARNING: ordersyncd refuses them unless started with
 *   --allow-insecure-sinks.  URIs may not carry secrets in query parameters,
 *   control characters or spaces, or point at link-local, unspecified or
 *   multicast addresses.
 * - Identifiers (SKUs, external ids) may not contain control or invisible
 *   formatting characters nor begin or end with a space; the C functions
 *   refuse them with OS004, and CHECK constraints are the backstop.  They
 *   are added NOT VALID so that existing rows do not block the upgrade, and
 *   validated here only on empty tables: on a table with rows, run
 *   ALTER TABLE ... VALIDATE CONSTRAINT later (it does not block writers).
 *
 * The C library changes with it (it serves every version): stock figures
 * are overflow-checked (OS004 instead of 22003, 23514 or undefined
 * behaviour), and place_order() limits the customer object
 * (ordersync.max_customer_bytes, ordersync.max_customer_depth).
 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ordersync UPDATE TO '0.3.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Nobody but a superuser and ordersync's C code writes logical messages.
-- Database-wide, and not undone by DROP EXTENSION (see above).
-- ---------------------------------------------------------------------------
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_logical_emit_message(boolean, text, text),
	pg_catalog.pg_logical_emit_message(boolean, text, bytea) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- The relay's role: cluster-wide, created only when missing and never
-- dropped by DROP EXTENSION, like ordersync_app and ordersync_admin.
--   CREATE ROLE ordersyncd LOGIN REPLICATION IN ROLE ordersync_relay;
-- ---------------------------------------------------------------------------
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'ordersync_relay') THEN
		CREATE ROLE ordersync_relay NOLOGIN;
	END IF;
END
$roles$;

-- ---------------------------------------------------------------------------
-- Redelivery requests, read by the relay as row changes
-- ---------------------------------------------------------------------------
CREATE TABLE ordersync.redelivery (
	id bigserial PRIMARY KEY,
	dead_letter_id bigint NOT NULL,
	sink text NOT NULL,
	event jsonb NOT NULL,
	requested_at timestamptz NOT NULL DEFAULT now(),
	requested_by text NOT NULL DEFAULT current_user
);
COMMENT ON TABLE ordersync.redelivery IS 'dead letters to send again, written by ordersync.redeliver(); ordersyncd reads the inserts from the stream';

REVOKE ALL ON ordersync.redelivery FROM PUBLIC;
GRANT SELECT ON ordersync.redelivery TO ordersync_admin;
SELECT pg_catalog.pg_extension_config_dump('ordersync.redelivery', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('ordersync.redelivery', 'id'), '');

-- ---------------------------------------------------------------------------
-- Sinks and routes are read by the relay as row changes: no message, and
-- rows small enough never to be TOASTed out of line (uri and options are
-- kept in the row, compressed at most: 2048 + 4096 bytes fit in a page).
-- ---------------------------------------------------------------------------
DROP FUNCTION ordersync.announce_relay_config();

ALTER TABLE ordersync.sink
	ADD CONSTRAINT sink_uri_size CHECK (pg_catalog.octet_length(uri) <= 2048) NOT VALID,
	ADD CONSTRAINT sink_options_size CHECK (pg_catalog.octet_length(options::text) <= 4096) NOT VALID,
	ALTER COLUMN uri SET STORAGE MAIN,
	ALTER COLUMN options SET STORAGE MAIN;

-- ---------------------------------------------------------------------------
-- Identifiers: no control characters (C0, DEL, C1), no line separators or
-- invisible formatting characters (zero-width, bidirectional, BOM), no
-- spaces around.  src/extension/args.c refuses the same with OS004 first.
-- ---------------------------------------------------------------------------
ALTER TABLE ordersync.sku
	ADD CONSTRAINT sku_plain_text CHECK (
		sku !~ '[\x01-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]'
		AND sku !~ '^[ \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]|[ \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]$')
	NOT VALID;
ALTER TABLE ordersync.orders
	ADD CONSTRAINT orders_external_id_plain_text CHECK (
		external_id !~ '[\x01-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]'
		AND external_id !~ '^[ \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]|[ \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]$')
	NOT VALID;

-- Validated now where that is cheap: the sinks (a few rows; a sink too large
-- is reported, not fatal), and tables with no rows yet (a new installation).
DO $validate$
DECLARE
	c record;
	empty boolean;
BEGIN
	FOR c IN SELECT format('ordersync.%I', cl.relname) AS rel, con.conname
			   FROM pg_catalog.pg_constraint con
			   JOIN pg_catalog.pg_class cl ON cl.oid = con.conrelid
			  WHERE con.conname IN ('sink_uri_size', 'sink_options_size', 'sku_plain_text',
									'orders_external_id_plain_text')
				AND con.connamespace = 'ordersync'::regnamespace AND NOT con.convalidated
	LOOP
		EXECUTE format('SELECT NOT EXISTS (SELECT FROM %s)', c.rel) INTO empty;
		IF empty OR c.rel = 'ordersync.sink' THEN
			BEGIN
				EXECUTE format('ALTER TABLE %s VALIDATE CONSTRAINT %I', c.rel, c.conname);
			EXCEPTION WHEN check_violation THEN
				RAISE WARNING 'existing rows of % violate %, which stays NOT VALID', c.rel, c.conname
					USING DETAIL = 'ordersyncd cannot follow changes of sinks whose uri or options are stored out of line.',
						  HINT = 'Drop those sinks and add them again with shorter values, then run ALTER TABLE ordersync.sink VALIDATE CONSTRAINT ' || c.conname || '.';
			END;
		END IF;
	END LOOP;
END
$validate$;

-- ---------------------------------------------------------------------------
-- Sink checks.  ordersyncd applies the same lists (src/relay/); keep them
-- identical.  Both helpers raise OS006 and are called by add_sink() only.
-- ---------------------------------------------------------------------------

-- The uri's characters, size, scheme and hosts; returns the hosts it names
-- (IP literals in canonical form, names in lower case).
CREATE FUNCTION ordersync.check_sink_uri(name text, uri text)
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

-- The options of a sink of that scheme: allowlist, types, values; and the
-- WARNING for sinks ordersyncd refuses without --allow-insecure-sinks.
CREATE FUNCTION ordersync.check_sink_options(name text, scheme text, options jsonb, hosts text[])
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
									CASE k WHEN 'password' THEN 'password' ELSE 'secret' END,
									CASE k WHEN 'password' THEN 'password' ELSE 'secret' END);
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
	   AND (scheme IN ('http', 'amqp')
			OR (scheme = 'kafka' AND coalesce(lower(kafka ->> 'security.protocol'), 'plaintext') NOT IN ('ssl', 'sasl_ssl'))) THEN
		RAISE WARNING 'sink "%" sends events with personal data without TLS to %', name, array_to_string(hosts, ', ')
			USING ERRCODE = '01000',
				  DETAIL = 'Events carry customer data (names, addresses) in clear over the network.',
				  HINT = 'ordersyncd refuses this sink unless it is started with --allow-insecure-sinks; use https://, amqps:// or the kafka property security.protocol ssl or sasl_ssl, or set the option "drop_personal_data": true.';
	END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- The sink functions: table writes only, no message
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION ordersync.add_sink(name text, uri text, options jsonb DEFAULT '{}')
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	hosts text[];
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
	hosts := ordersync.check_sink_uri(name, uri);
	PERFORM ordersync.check_sink_options(name, lower(substring(uri FROM '^([A-Za-z][A-Za-z0-9+.-]*):')),
										 options, hosts);
	IF EXISTS (SELECT FROM ordersync.sink s WHERE s.name = add_sink.name) THEN
		RAISE EXCEPTION 'sink "%" already exists', name
			USING ERRCODE = 'OS006',
				  DETAIL = format('It delivers to %s.', (SELECT s.uri FROM ordersync.sink s WHERE s.name = add_sink.name)),
				  HINT = 'Drop it first with ordersync.drop_sink(), or choose another name.';
	END IF;
	INSERT INTO ordersync.sink (name, uri, options) VALUES (add_sink.name, add_sink.uri, add_sink.options);
END
$$;
COMMENT ON FUNCTION ordersync.add_sink(text, text, jsonb) IS 'adds a system the relay delivers to (http(s)://, kafka://, amqp(s)://); events reach it through routes';

CREATE OR REPLACE FUNCTION ordersync.drop_sink(name text)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	PERFORM ordersync.require_sink(name, 'List them with SELECT * FROM ordersync.sink.');
	DELETE FROM ordersync.sink s WHERE s.name = drop_sink.name;
END
$$;

CREATE OR REPLACE FUNCTION ordersync.add_route(sink text, event_type_pattern text)
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
	RETURN FOUND;
END
$$;

CREATE OR REPLACE FUNCTION ordersync.drop_route(sink text, event_type_pattern text)
	RETURNS boolean
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	PERFORM ordersync.require_sink(sink, 'List them with SELECT * FROM ordersync.sink.');
	DELETE FROM ordersync.route r WHERE r.sink = drop_route.sink AND r.pattern = event_type_pattern;
	RETURN FOUND;
END
$$;

-- Called by ordersyncd (role ordersync_relay) when it gives an event up.
CREATE OR REPLACE FUNCTION ordersync.record_dead_letter(sink text, event jsonb, error text, attempts integer)
	RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	dl_id bigint;
BEGIN
	IF sink IS NULL OR attempts IS NULL OR event IS NULL OR jsonb_typeof(event) <> 'object'
	   OR jsonb_typeof(event -> 'id') IS DISTINCT FROM 'string'
	   OR jsonb_typeof(event -> 'type') IS DISTINCT FROM 'string'
	   OR jsonb_typeof(event -> 'subject') IS DISTINCT FROM 'string' THEN
		RAISE EXCEPTION 'invalid dead letter for sink "%"', coalesce(sink, 'NULL')
			USING ERRCODE = 'OS006',
				  DETAIL = format('A dead letter keeps a CloudEvent, a JSON object with string "id", "type" and "subject", and the attempts made; got event %s, attempts %s.',
								  left(coalesce(event::text, 'NULL'), 200), coalesce(attempts::text, 'NULL')),
				  HINT = 'ordersyncd passes the event it gave up on; check that the relay and the extension are of the same release.';
	END IF;
	INSERT INTO ordersync.dead_letter (sink, event_id, type, subject, event, error, attempts)
	VALUES (record_dead_letter.sink, record_dead_letter.event ->> 'id', record_dead_letter.event ->> 'type',
			record_dead_letter.event ->> 'subject', record_dead_letter.event,
			left(coalesce(record_dead_letter.error, ''), 500), record_dead_letter.attempts)
	RETURNING id INTO dl_id;
	RETURN dl_id;
END
$$;
COMMENT ON FUNCTION ordersync.record_dead_letter(text, jsonb, text, integer) IS 'used by ordersyncd (role ordersync_relay): keeps an event a sink did not take, with the first 500 characters of the error';

CREATE OR REPLACE FUNCTION ordersync.redeliver(dead_letter_id bigint)
	RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	dl ordersync.dead_letter;
BEGIN
	SELECT * INTO dl FROM ordersync.dead_letter d WHERE d.id = redeliver.dead_letter_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown dead letter %', coalesce(redeliver.dead_letter_id::text, 'NULL')
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
	-- session_user: who asked, not the owner this function runs as
	INSERT INTO ordersync.redelivery (dead_letter_id, sink, event, requested_by)
	VALUES (dl.id, dl.sink, dl.event, session_user);
	UPDATE ordersync.dead_letter d SET redelivered_at = now(), redeliveries = d.redeliveries + 1
	 WHERE d.id = dl.id;
	RETURN dl.event_id;
END
$$;
COMMENT ON FUNCTION ordersync.redeliver(bigint) IS 'sends a dead-lettered event to its sink again (a row in ordersync.redelivery, which the relay reads from the stream); returns its event id';

-- ---------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------
REVOKE ALL ON FUNCTION ordersync.check_sink_uri(text, text),
	ordersync.check_sink_options(text, text, jsonb, text[]) FROM PUBLIC;

-- The relay reads sinks and routes (and orders for --snapshot) and writes
-- dead letters; the admin reads dead letters and redeliveries but can no
-- longer write a dead letter.
GRANT USAGE ON SCHEMA ordersync TO ordersync_relay;
GRANT SELECT ON ordersync.sink, ordersync.route, ordersync.orders TO ordersync_relay;
GRANT EXECUTE ON FUNCTION ordersync.relay_config(),
	ordersync.record_dead_letter(text, jsonb, text, integer) TO ordersync_relay;
REVOKE EXECUTE ON FUNCTION ordersync.record_dead_letter(text, jsonb, text, integer) FROM ordersync_admin;

-- ---------------------------------------------------------------------------
-- Auto-hot (issue 10): who chose a SKU's buckets.  set_hot() marks the SKU
-- 'operator', and the background worker never changes such a SKU; the
-- worker marks the SKUs it splits 'auto' and merges them back when quiet.
-- SKUs already split were split by an operator.
-- ---------------------------------------------------------------------------
ALTER TABLE ordersync.sku
	ADD COLUMN hot_source text CONSTRAINT sku_hot_source CHECK (hot_source IN ('operator', 'auto'));
COMMENT ON COLUMN ordersync.sku.hot_source IS
	'who set the bucket count: operator (set_hot, never changed by auto-hot), auto (the worker, merged back when quiet), or NULL (never set)';
UPDATE ordersync.sku SET hot_source = 'operator' WHERE buckets > 1;
