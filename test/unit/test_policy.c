/*
 * test_policy.c — what a delivery sink may be configured to do
 * (sink_policy.c): every rule a sink from the database is held to, each
 * refused and each allowed case, the trusted command-line path, the
 * redaction of URIs, the CIDR parser and matcher, and the connect-time
 * hooks of the three sinks against a local listener (they must refuse a
 * denied address before any connection reaches it).
 *
 * Nothing here connects anywhere but 127.0.0.1 / ::1, and only in the
 * connect-hook tests; the other hosts named are never resolved.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "delivery.h"
#include "sink_policy.h"

#define ERRLEN 2048

/* A secret directory with the files and links the tests name. */
static char dir[PATH_MAX];
static char outside[PATH_MAX + 16];	/* a sibling directory: outside --secret-dir */
static struct sink_policy db;	/* the relay's defaults, with --secret-dir */
static struct sink_policy nodir;	/* the defaults: no --secret-dir */
static struct sink_policy insecure;	/* --allow-insecure-sinks */
static struct sink_policy open_net;	/* --deny-networks= */
static bool last_loopback_only;

static void
write_file(const char *path, const char *text)
{
	FILE	   *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int
setup(void **state)
{
	char		tmpl[] = "/tmp/ordersync-policy-XXXXXX";
	char		path[PATH_MAX + 64];
	const struct sink_policy *def = sink_default_policy();

	(void) state;
	if (mkdtemp(tmpl) == NULL || realpath(tmpl, dir) == NULL)
		return -1;
	snprintf(outside, sizeof(outside), "%s-outside", dir);
	if (mkdir(outside, 0700) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/mq.password", dir);
	write_file(path, "s3cret\n");
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	write_file(path, "-----BEGIN CERTIFICATE-----\n");
	snprintf(path, sizeof(path), "%s/sub", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/escape", dir);
	if (symlink("/etc/passwd", path) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/inside", dir);
	if (symlink("mq.password", path) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/other.password", outside);
	write_file(path, "not for the database\n");

	db = *def;
	db.secret_dir = dir;
	nodir = *def;
	insecure = db;
	insecure.allow_insecure = true;
	open_net = db;
	open_net.deny = NULL;
	open_net.ndeny = 0;
	return 0;
}

static int
teardown(void **state)
{
	char		cmd[2 * PATH_MAX + 32];

	(void) state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, outside);
	return system(cmd) == 0 ? 0 : -1;
}

/* sink_parse_options + sink_check of a sink; err gets the message. */
static int
check(const char *uri, const char *opts, bool trusted, const struct sink_policy *p, char *err)
{
	struct sink s;
	json_object *o = opts ? json_tokener_parse(opts) : NULL;
	int			rc;

	if (opts)
		assert_non_null(o);
	memset(&s, 0, sizeof(s));
	s.name = (char *) "t";
	s.uri = (char *) uri;
	s.trusted = trusted;
	s.policy = p;
	err[0] = '\0';
	rc = sink_parse_options(&s.opt, o, err, ERRLEN);
	if (rc == 0)
		rc = sink_check(&s, err, ERRLEN);
	last_loopback_only = s.loopback_only;
	json_object_put(o);
	return rc;
}

static void
refused(const char *uri, const char *opts, bool trusted, const struct sink_policy *p,
		const char *needle)
{
	char		err[ERRLEN];

	if (check(uri, opts, trusted, p, err) == 0)
		fail_msg("accepted, should be refused: %s %s", uri, opts ? opts : "");
	if (strstr(err, needle) == NULL)
		fail_msg("refused %s %s with \"%s\", want it to say \"%s\"", uri, opts ? opts : "",
				 err, needle);
}

static void
allowed(const char *uri, const char *opts, bool trusted, const struct sink_policy *p)
{
	char		err[ERRLEN];

	if (check(uri, opts, trusted, p, err) != 0)
		fail_msg("refused, should be accepted: %s %s: %s", uri, opts ? opts : "", err);
}

#define DB(uri, opts, needle) refused(uri, opts, false, &db, needle)
#define DB_OK(uri, opts) allowed(uri, opts, false, &db)

/* ---- option keys and types --------------------------------------------- */

static void
policy_unknown_keys_and_wrong_types(void **state)
{
	(void) state;
	/* unknown keys, naming the allowed ones; for the command line too */
	DB("https://h.example/x", "{\"password\":\"x\"}", "unknown option \"password\" for webhook sinks");
	DB("https://h.example/x", "{\"password\":\"x\"}", "secret_env, secret_file, ca_file");
	refused("https://h.example/x", "{\"verify_peer\":false}", true, &db,
			"unknown option \"verify_peer\" for webhook sinks");
	DB("kafka://127.0.0.1:9092/t", "{\"declare_exchange\":\"topic\"}", "unknown option");
	DB("amqps://u@h.example/%2f?exchange=x", "{\"kafka\":{}}", "unknown option \"kafka\" for amqp sinks");
	/* wrong types, null included, never a crash */
	DB("https://h.example/x", "{\"secret_env\":null}", "must be a non-empty string");
	DB("https://h.example/x", "{\"secret_env\":5}", "must be a non-empty string");
	DB("https://h.example/x", "{\"secret_file\":\"\"}", "must be a non-empty string");
	DB("https://h.example/x", "{\"ca_file\":\"/a\\nb\"}", "without control characters");
	DB("https://h.example/x", "{\"ca_file\":\"/a\\u0000b\"}", "must be a non-empty string");
	DB("https://h.example/x", "{\"max_attempts\":null}", "must be an integer");
	DB("https://h.example/x", "{\"drop_personal_data\":\"yes\"}", "true or false");
	DB("amqps://u@h.example/%2f?exchange=x", "{\"verify_peer\":\"no\"}", "true or false");
	DB("amqps://u@h.example/%2f?exchange=x", "{\"heartbeat_seconds\":\"x\"}", "must be an integer");
	DB("kafka://127.0.0.1:9092/t", "{\"kafka\":\"linger.ms=5\"}", "must be an object");
	DB("kafka://127.0.0.1:9092/t", "{\"kafka\":null}", "must be an object");
	DB("kafka://127.0.0.1:9092/t", "{\"kafka\":{\"linger.ms\":null}}", "string, number or boolean");
	DB("kafka://127.0.0.1:9092/t", "{\"kafka\":{\"linger.ms\":[1]}}", "string, number or boolean");
	refused("kafka://127.0.0.1:9092/t", "{\"kafka\":{\"x.y\":{}}}", true, &db,
			"string, number or boolean");
	refused("https://h.example/x", "{\"secret_env\":null}", true, &db, "non-empty string");
	refused("https://h.example/x", "[1]", false, &db, "must be a JSON object");
}

/* ---- librdkafka properties ---------------------------------------------- */

static void
policy_kafka_properties(void **state)
{
	const char *k = "kafka://127.0.0.1:9092/orders";
	char		opts[PATH_MAX + 512];

	(void) state;
	/* commands, libraries, files, secrets, what the sink owns */
	DB(k, "{\"kafka\":{\"sasl.kerberos.kinit.cmd\":\"touch /tmp/x\"}}",
	   "kafka property \"sasl.kerberos.kinit.cmd\" is not allowed");
	DB(k, "{\"kafka\":{\"plugin.library.paths\":\"/tmp/evil.so\"}}",
	   "\"plugin.library.paths\" is not allowed");
	DB(k, "{\"kafka\":{\"ssl.engine.location\":\"/tmp/e.so\"}}", "not allowed");
	DB(k, "{\"kafka\":{\"ssl.providers\":\"legacy\"}}", "not allowed");
	DB(k, "{\"kafka\":{\"ssl.key.location\":\"/etc/ssl/private/k.pem\"}}", "not allowed");
	DB(k, "{\"kafka\":{\"sasl.password\":\"x\"}}", "not allowed");
	DB(k, "{\"kafka\":{\"bootstrap.servers\":\"h:1\"}}", "not allowed");
	DB(k, "{\"kafka\":{\"message.timeout.ms\":1}}", "not allowed");
	DB(k, "{\"kafka\":{\"debug\":\"all\"}}", "allowed: client.id linger.ms");
	/* values */
	DB(k, "{\"kafka\":{\"security.protocol\":\"sasl_ssl\",\"sasl.mechanisms\":\"GSSAPI\"}}",
	   "may set it to PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 only");
	DB(k, "{\"kafka\":{\"security.protocol\":\"sasl_ssl\",\"sasl.mechanism\":\"OAUTHBEARER\"}}",
	   "\"sasl.mechanism\" is \"OAUTHBEARER\"");
	DB(k, "{\"kafka\":{\"security.protocol\":\"sasl_ssl\",\"sasl.mechanism\":\"plain\"}}",
	   "PLAIN, SCRAM");
	DB(k, "{\"kafka\":{\"security.protocol\":\"SASL_SSL\"}}", "needs \"sasl.mechanism\"");
	DB(k, "{\"kafka\":{\"security.protocol\":\"https\"}}", "plaintext, ssl, sasl_plaintext, sasl_ssl");
	DB(k, "{\"kafka\":{\"acks\":1}}", "\"acks\" is \"1\"");
	DB(k, "{\"kafka\":{\"enable.idempotence\":false}}", "may set it to true only");
	DB(k, "{\"kafka\":{\"client.id\":\"\"}}", "empty value");
	/* TLS is the command line's to weaken */
	DB(k, "{\"kafka\":{\"security.protocol\":\"ssl\",\"enable.ssl.certificate.verification\":false}}",
	   "turns off a TLS check");
	DB(k, "{\"kafka\":{\"security.protocol\":\"ssl\",\"enable.ssl.certificate.verification\":\"false\"}}",
	   "--allow-insecure-sinks");
	DB(k, "{\"kafka\":{\"security.protocol\":\"ssl\",\"enable.ssl.certificate.verification\":\"0\"}}",
	   "true, false only");
	DB(k, "{\"kafka\":{\"security.protocol\":\"ssl\",\"ssl.endpoint.identification.algorithm\":\"none\"}}",
	   "turns off a TLS check");
	allowed(k, "{\"kafka\":{\"security.protocol\":\"ssl\",\"enable.ssl.certificate.verification\":false,"
			"\"ssl.endpoint.identification.algorithm\":\"NONE\"}}", false, &insecure);

	/* what a sink from the database may set */
	DB_OK(k, "{\"kafka\":{\"linger.ms\":20,\"compression.type\":\"zstd\",\"batch.size\":100000,"
		  "\"client.id\":\"shop\",\"acks\":\"all\",\"enable.idempotence\":true,"
		  "\"socket.keepalive.enable\":true,\"broker.address.family\":\"v4\"},\"timeout_ms\":3000}");
	DB_OK(k, "{\"kafka\":{\"acks\":-1}}");
	snprintf(opts, sizeof(opts), "{\"kafka\":{\"security.protocol\":\"sasl_ssl\","
			 "\"sasl.mechanisms\":\"SCRAM-SHA-512\",\"sasl.username\":\"relay\","
			 "\"enable.ssl.certificate.verification\":true,"
			 "\"ssl.endpoint.identification.algorithm\":\"https\"},"
			 "\"password_env\":\"ORDERSYNC_KAFKA_PW\",\"ca_file\":\"%s/ca.pem\"}", dir);
	DB_OK("kafka://h1.example:9093,h2.example:9093/orders", opts);

	/* the command line may pass what it likes (the sink still guards its own) */
	allowed(k, "{\"kafka\":{\"sasl.kerberos.kinit.cmd\":\"kinit -k\",\"sasl.mechanisms\":\"GSSAPI\","
			"\"security.protocol\":\"sasl_plaintext\",\"debug\":\"broker\"}}", true, &db);
}

/* ---- secret references -------------------------------------------------- */

static void
policy_secret_references(void **state)
{
	char		opts[PATH_MAX * 5];
	const char *mq = "amqps://relay@mq.example/%2f?exchange=orders";

	(void) state;
	/* variables: only with the prefix, and not the bare prefix */
	DB(mq, "{\"password_env\":\"PGPASSWORD\"}",
	   "may only name variables that start with \"ORDERSYNC_\" (--secret-env-prefix)");
	DB("https://h.example/x", "{\"secret_env\":\"AWS_SECRET_ACCESS_KEY\"}", "ORDERSYNC_");
	DB("https://h.example/x", "{\"secret_env\":\"ORDERSYNC_\"}", "ORDERSYNC_");
	DB("https://h.example/x", "{\"secret_env\":\"ordersync_x\"}", "ORDERSYNC_");
	DB_OK("https://h.example/x", "{\"secret_env\":\"ORDERSYNC_WMS_SECRET\"}");

	/* files: none at all without --secret-dir */
	refused(mq, "{\"password_file\":\"/etc/ordersync/mq.password\"}", false, &nodir,
			"runs without --secret-dir, so sinks from the database may not name files; "
			"start it with --secret-dir=DIR");
	refused("https://h.example/x", "{\"ca_file\":\"/etc/ssl/certs/ca-certificates.crt\"}", false,
			&nodir, "--secret-dir");
	/* files outside the directory, however they get there */
	DB(mq, "{\"password_file\":\"/etc/passwd\"}", "must name an existing regular file inside --secret-dir");
	snprintf(opts, sizeof(opts), "{\"password_file\":\"%s/../%s/other.password\"}", dir,
			 strrchr(outside, '/') + 1);
	DB(mq, opts, "inside --secret-dir");
	snprintf(opts, sizeof(opts), "{\"password_file\":\"%s/escape\"}", dir);
	DB(mq, opts, "links that lead outside it are refused");
	/* absolute paths without "..", as add_sink() wants them */
	snprintf(opts, sizeof(opts), "{\"password_file\":\"%s/sub/../mq.password\"}", dir);
	DB(mq, opts, "without \"..\"");
	DB(mq, "{\"password_file\":\"mq.password\"}", "by its absolute path");
	DB(mq, "{\"password_env\":\"ORDERSYNC_A-B\"}", "ORDERSYNC_");
	/* a client certificate is a pair, from anywhere */
	snprintf(opts, sizeof(opts), "{\"cert_file\":\"%s/ca.pem\"}", dir);
	DB(mq, opts, "needs both cert_file and key_file");
	refused(mq, "{\"key_file\":\"/etc/k.pem\"}", true, &db, "needs both cert_file and key_file");
	snprintf(opts, sizeof(opts), "{\"key_file\":\"%s/sub\",\"cert_file\":\"%s/ca.pem\"}", dir, dir);
	DB(mq, opts, "regular file");
	snprintf(opts, sizeof(opts), "{\"ca_file\":\"%s/missing.pem\"}", dir);
	DB(mq, opts, "existing regular file");
	/* the message says the same whether the file exists or not */
	DB(mq, "{\"password_file\":\"/nonexistent/x\"}", "must name an existing regular file inside");
	/* inside, also through a link that stays inside */
	snprintf(opts, sizeof(opts), "{\"password_file\":\"%s/mq.password\",\"ca_file\":\"%s/ca.pem\","
			 "\"cert_file\":\"%s/ca.pem\",\"key_file\":\"%s/inside\"}", dir, dir, dir, dir);
	DB_OK(mq, opts);

	/* the command line names what it likes */
	allowed(mq, "{\"password_env\":\"RMQ_PASSWORD\",\"ca_file\":\"/etc/ssl/certs/x.pem\"}", true, &nodir);
}

/* A file that passed the check and is later replaced by a link is not read. */
static void
policy_secret_read_checks_again(void **state)
{
	struct sink s;
	char		err[ERRLEN];
	char		opts[PATH_MAX + 64],
				path[PATH_MAX + 32];
	char	   *pw;
	json_object *o;

	(void) state;
	snprintf(path, sizeof(path), "%s/rotating", dir);
	write_file(path, "first\n");
	snprintf(opts, sizeof(opts), "{\"password_file\":\"%s\"}", path);
	o = json_tokener_parse(opts);
	memset(&s, 0, sizeof(s));
	s.name = (char *) "t";
	s.uri = (char *) "amqps://u@mq.example/%2f?exchange=x";
	s.policy = &db;
	assert_int_equal(sink_parse_options(&s.opt, o, err, sizeof(err)), 0);
	assert_int_equal(sink_check(&s, err, sizeof(err)), 0);
	pw = sink_secret(&s, "password", err, sizeof(err));
	assert_non_null(pw);
	assert_string_equal(pw, "first");
	free(pw);
	unlink(path);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	assert_null(sink_secret(&s, "password", err, sizeof(err)));
	assert_non_null(strstr(err, "inside --secret-dir"));
	unlink(path);
	json_object_put(o);

	/* variables: read through the same check */
	setenv("ORDERSYNC_TEST_PW", "from env", 1);
	setenv("TEST_NOT_SHARED", "must not be read", 1);
	o = json_tokener_parse("{\"password_env\":\"ORDERSYNC_TEST_PW\"}");
	s.opt.raw = o;
	pw = sink_secret(&s, "password", err, sizeof(err));
	assert_non_null(pw);
	assert_string_equal(pw, "from env");
	free(pw);
	json_object_put(o);
	o = json_tokener_parse("{\"password_env\":\"TEST_NOT_SHARED\"}");
	s.opt.raw = o;
	assert_null(sink_secret(&s, "password", err, sizeof(err)));
	assert_null(strstr(err, "must not be read"));
	s.trusted = true;			/* the command line may */
	pw = sink_secret(&s, "password", err, sizeof(err));
	assert_non_null(pw);
	free(pw);
	json_object_put(o);
}

/* ---- TLS and clear text ------------------------------------------------- */

static void
policy_tls_and_clear_text(void **state)
{
	(void) state;
	DB("amqps://u@mq.example/%2f?exchange=x", "{\"verify_peer\":false}",
	   "verify_peer false turns off the broker's certificate check");
	allowed("amqps://u@mq.example/%2f?exchange=x", "{\"verify_peer\":false}", false, &insecure);
	allowed("amqps://u@mq.example/%2f?exchange=x", "{\"verify_peer\":false}", true, &db);
	DB_OK("amqps://u@mq.example/%2f?exchange=x", "{\"verify_peer\":true}");

	/* personal data in clear text to another machine */
	DB("http://10.1.2.3/hook", NULL, "unencrypted to another machine");
	DB("http://hooks.example.com/hook", "{\"drop_personal_data\":false}", "--allow-insecure-sinks");
	DB("amqp://u@mq.example/%2f?exchange=x", NULL, "amqps://");
	DB("kafka://k1.example:9092/orders", NULL, "unencrypted");
	DB("kafka://k1.example:9092/orders", "{\"kafka\":{\"security.protocol\":\"sasl_plaintext\","
	   "\"sasl.mechanism\":\"SCRAM-SHA-256\"}}", "unencrypted");
	DB("kafka://127.0.0.1:9092,k2.example:9092/orders", NULL, "unencrypted");
	/* allowed: TLS, no personal data, this machine (held to it at connect time) */
	DB_OK("https://hooks.example.com/hook", NULL);
	assert_false(last_loopback_only);
	DB_OK("http://hooks.example.com/hook", "{\"drop_personal_data\":true}");
	assert_false(last_loopback_only);
	DB_OK("kafka://k1.example:9092/orders", "{\"kafka\":{\"security.protocol\":\"ssl\"}}");
	DB_OK("http://127.0.0.1:8080/hook", NULL);
	assert_true(last_loopback_only);
	DB_OK("http://localhost/hook", NULL);
	assert_true(last_loopback_only);
	DB_OK("http://[::1]:8080/hook", NULL);
	DB_OK("amqp://u@127.0.0.1:5672/%2f?exchange=x", NULL);
	DB_OK("kafka://127.0.0.1:9092,localhost:9093/orders", NULL);
	assert_true(last_loopback_only);
	/* --allow-insecure-sinks: anywhere, not held to loopback */
	allowed("http://10.1.2.3/hook", NULL, false, &insecure);
	allowed("http://127.0.0.1/hook", NULL, false, &insecure);
	assert_false(last_loopback_only);
	/* the command line: a warning only */
	allowed("http://10.1.2.3/hook", NULL, true, &db);
	assert_false(last_loopback_only);
}

/* ---- the URI ------------------------------------------------------------ */

static void
policy_uri(void **state)
{
	char		err[ERRLEN];

	(void) state;
	DB("https://hooks.example.com/x?token=abc123", NULL,
	   "has a query parameter \"token\", which looks like a secret");
	assert_int_equal(check("https://hooks.example.com/x?a=1&Api_Key=abc123", NULL, false, &db, err), -1);
	assert_null(strstr(err, "abc123"));	/* never quoted */
	assert_non_null(strstr(err, "api_key"));
	DB("https://hooks.example.com/x?to%6Ben=abc", NULL, "\"token\"");
	DB("https://hooks.example.com/x?sig=abc", NULL, "\"sig\"");
	DB("https://hooks.example.com/x?x=1;session=abc", NULL, "\"session\"");
	DB("https://u:pw@hooks.example.com/x", NULL, "contains a password");
	DB("amqps://u:pw@mq.example/%2f?exchange=x", NULL, "contains a password");
	DB("kafka://u:pw@127.0.0.1:9092/t", NULL, "contains a password");
	DB("https://hooks.example.com/x?client_secret=abc", NULL, "\"client_secret\"");
	DB("https://hooks.example.com/x?X-Api.Key=abc", NULL, "\"x-api.key\"");
	DB("https://hooks.example.com/x?%2574oken=abc", NULL, "\"token\"");
	DB("https://hooks.example.com/a b", NULL, "whitespace, a control character");
	DB("https://hooks.example.com/a\tb", NULL, "control character");
	DB("https://hooks.example.com/a\x7f", NULL, "control character");
	DB("https://hooks.example.com/a\xe2\x80\x8b" "b", NULL, "invisible");	/* zero-width space */
	DB("https://hooks.example.com/a\xc2\xa0", NULL, "invisible");	/* no-break space */
	DB("https://hooks.example.com/a\xff", NULL, "invisible");	/* not UTF-8 */
	DB_OK("https://hooks.example.com/caf\xc3\xa9", NULL);
	/* hosts that hide where they go */
	DB("https://%31%36%39.254.169.254/x", NULL, "host is %-encoded");
	DB("amqps://u@[fe80::1%25eth0]:5671/%2f?exchange=x", NULL, "IPv6 zone");
	DB("https://2852039166/x", NULL, "IPv4 address in an ambiguous form");
	DB("https://0xa9.0xfe.0xa9.0xfe/x", NULL, "ambiguous form");
	DB("https://127.1/x", NULL, "ambiguous form");
	DB("https://192.168.001.1/x", NULL, "ambiguous form");
	DB("https://192.168.0.256/x", NULL, "ambiguous form");
	DB("https://192.168.0.1./x", NULL, "ambiguous form");
	DB("kafka://127.0.0.1:9092,:9093/t", NULL, "has no host");
	DB("https:///x", NULL, "has no host");
	DB_OK("https://123.example.com/x", NULL);
	DB_OK("https://1a.example/x", NULL);
	DB_OK("https://hooks.example.com/x?exchange=1&keyboard=2&tokens=3&monkey=4", NULL);
	DB_OK("https://relay@hooks.example.com/x", NULL);
	/* the command line keeps its own way (the URI is redacted wherever shown) */
	allowed("https://hooks.example.com/x?token=abc", NULL, true, &db);
}

static void
policy_redaction(void **state)
{
	char		out[256];
	char		tiny[12];

	(void) state;
	sink_redact_uri("https://user:pw@h.example:8443/x/y?token=abc&exchange=e&flag#frag", out, sizeof(out));
	assert_string_equal(out, "https://h.example:8443/x/y?token=***&exchange=e&***");
	sink_redact_uri("amqp://ordersync@127.0.0.1:5672/%2f?exchange=orders", out, sizeof(out));
	assert_string_equal(out, "amqp://127.0.0.1:5672/%2f?exchange=orders");
	sink_redact_uri("kafka://relay@b1:9092,b2:9092/orders", out, sizeof(out));
	assert_string_equal(out, "kafka://b1:9092,b2:9092/orders");
	sink_redact_uri("https://h/x?a=1&b=&exchange=", out, sizeof(out));
	assert_string_equal(out, "https://h/x?a=***&b=***&exchange=");
	sink_redact_uri("https://h/x\n?q=\x01", out, sizeof(out));
	assert_string_equal(out, "https://h/x??q=***");
	sink_redact_uri("https://h/", out, sizeof(out));
	assert_string_equal(out, "https://h/");
	sink_redact_uri("https://a@b@h/x", out, sizeof(out));
	assert_string_equal(out, "https://h/x");
	sink_redact_uri("https://h.example/x?token=abcdef", tiny, sizeof(tiny));
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
	assert_null(strstr(tiny, "abc"));
}

/* ---- networks ------------------------------------------------------------ */

static void
sa_of(const char *text, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(text, ':'))
	{
		((struct sockaddr_in6 *) ss)->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, text, &((struct sockaddr_in6 *) ss)->sin6_addr), 1);
	}
	else
	{
		((struct sockaddr_in *) ss)->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, text, &((struct sockaddr_in *) ss)->sin_addr), 1);
	}
}

static bool
in(const char *mask, const char *addr)
{
	struct netmask m;
	struct sockaddr_storage ss;
	char		err[256];

	if (netmask_parse(mask, &m, err, sizeof(err)) != 0)
		fail_msg("%s: %s", mask, err);
	sa_of(addr, &ss);
	return netmask_contains(&m, (struct sockaddr *) &ss);
}

static void
policy_cidr(void **state)
{
	struct netmask m;
	struct netmask *list;
	int			n;
	char		err[256],
				text[64];

	(void) state;
	assert_true(in("169.254.0.0/16", "169.254.169.254"));
	assert_false(in("169.254.0.0/16", "169.253.255.255"));
	assert_true(in("10.1.2.3/8", "10.200.0.1"));	/* host bits ignored */
	assert_true(in("192.0.2.1", "192.0.2.1"));
	assert_false(in("192.0.2.1", "192.0.2.2"));
	assert_true(in("0.0.0.0/0", "8.8.8.8"));
	assert_true(in("100.100.100.200/32", "100.100.100.200"));
	assert_true(in("172.16.0.0/12", "172.31.255.255"));
	assert_false(in("172.16.0.0/12", "172.32.0.0"));
	assert_true(in("fe80::/10", "fe80::1"));
	assert_true(in("fe80::/10", "febf::1"));
	assert_false(in("fe80::/10", "fec0::1"));
	assert_true(in("fd00:ec2::254/128", "fd00:ec2::254"));
	assert_true(in("::/128", "::"));
	assert_false(in("::/128", "::1"));
	assert_true(in("ff00::/8", "ff02::1"));
	/* v4-mapped IPv6 goes where its IPv4 address goes */
	assert_true(in("169.254.0.0/16", "::ffff:169.254.169.254"));
	assert_true(in("127.0.0.0/8", "::ffff:127.0.0.1"));
	assert_true(in("::ffff:169.254.0.0/112", "169.254.1.1"));
	assert_true(in("::ffff:169.254.0.0/112", "::ffff:169.254.1.1"));
	assert_false(in("169.254.0.0/16", "fe80::a9fe:a9fe"));
	assert_false(in("::/0", "10.0.0.1"));	/* IPv6 masks hold IPv6 only */

	/* not networks */
	assert_int_equal(netmask_parse("10.0.0.0/33", &m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "169.254.0.0/16"));
	assert_int_equal(netmask_parse("fe80::/129", &m, err, sizeof(err)), -1);
	assert_int_equal(netmask_parse("10.0.0.0/", &m, err, sizeof(err)), -1);
	assert_int_equal(netmask_parse("10.0.0.0/-1", &m, err, sizeof(err)), -1);
	assert_int_equal(netmask_parse("10.0.0.0/8x", &m, err, sizeof(err)), -1);
	assert_int_equal(netmask_parse("10.1", &m, err, sizeof(err)), -1);	/* strict: no 10.0.0.1 */
	assert_int_equal(netmask_parse("localhost", &m, err, sizeof(err)), -1);
	assert_int_equal(netmask_parse("", &m, err, sizeof(err)), -1);

	/* lists */
	assert_int_equal(netmask_parse_list(" 10.0.0.0/8 , fd00::/8,,192.0.2.1 ", &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	netmask_format(&list[1], text, sizeof(text));
	assert_string_equal(text, "fd00::/8");
	netmask_format(&list[2], text, sizeof(text));
	assert_string_equal(text, "192.0.2.1/32");
	free(list);
	assert_int_equal(netmask_parse_list("", &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	assert_null(list);
	assert_int_equal(netmask_parse_list("10.0.0.0/8,nope", &list, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "\"nope\""));
	assert_int_equal(n, 0);
}

/* The default deny list: metadata, link-local, unspecified, multicast. */
static void
policy_default_deny_list(void **state)
{
	static const char *const denied[] = {
		"169.254.169.254", "169.254.170.2", "100.100.100.200", "0.0.0.0", "224.0.0.1",
		"239.255.255.250", "255.255.255.255", "fd00:ec2::254", "fe80::1", "::", "ff02::1",
		"::ffff:169.254.169.254", NULL
	};
	static const char *const fine[] = {
		"127.0.0.1", "::1", "10.0.0.1", "192.168.1.1", "8.8.8.8", "2001:db8::1",
		"100.100.100.201", "fd00::1", NULL
	};
	const struct sink_policy *p = sink_default_policy();
	struct sockaddr_storage ss;

	(void) state;
	assert_string_equal(p->secret_env_prefix, "ORDERSYNC_");
	assert_null(p->secret_dir);
	assert_false(p->allow_insecure);
	for (int i = 0; denied[i]; i++)
	{
		sa_of(denied[i], &ss);
		if (sink_denied(p, (struct sockaddr *) &ss) == NULL)
			fail_msg("%s is not denied by default", denied[i]);
	}
	for (int i = 0; fine[i]; i++)
	{
		sa_of(fine[i], &ss);
		if (sink_denied(p, (struct sockaddr *) &ss) != NULL)
			fail_msg("%s is denied by default", fine[i]);
	}
}

/* Literal addresses in a denied network: refused before any connection. */
static void
policy_static_networks(void **state)
{
	(void) state;
	DB("https://169.254.169.254/latest/meta-data", NULL,
	   "host 169.254.169.254 is in 169.254.0.0/16, a network ordersyncd never connects to");
	DB("https://[::ffff:169.254.169.254]/x", NULL, "169.254.0.0/16");
	DB("https://[fd00:ec2::254]/x", NULL, "fd00:ec2::254/128");
	DB("http://100.100.100.200/x", "{\"drop_personal_data\":true}", "100.100.100.200/32");
	/* the command line may write addresses as it likes; they are still the same address */
	refused("https://2852039166/x", NULL, true, &db, "169.254.0.0/16");
	refused("https://0xa9.0xfe.0xa9.0xfe/x", NULL, true, &db, "169.254.0.0/16");
	refused("https://%31%36%39.254.169.254/x", NULL, true, &db, "169.254.0.0/16");
	refused("amqps://u@[fe80::1%25eth0]:5671/%2f?exchange=x", NULL, true, &db, "fe80::/10");
	DB("kafka://k1.example:9093,169.254.1.1:9093/t", "{\"kafka\":{\"security.protocol\":\"ssl\"}}",
	   "169.254.0.0/16");
	/* the operator's list binds the command line too */
	refused("https://169.254.169.254/x", NULL, true, &db, "--deny-networks");
	/* --deny-networks= (empty): nothing denied */
	allowed("https://169.254.169.254/x", NULL, false, &open_net);
	DB_OK("https://10.0.0.1/x", NULL);
}

/* The connect-time check the sinks' hooks call. */
static void
policy_check_peer(void **state)
{
	struct sink s;
	struct sockaddr_storage ss;
	char		why[1024];

	(void) state;
	memset(&s, 0, sizeof(s));
	s.name = (char *) "wms";
	s.policy = &db;
	sa_of("169.254.169.254", &ss);
	assert_int_equal(sink_check_peer(&s, (struct sockaddr *) &ss, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "sink \"wms\": refused to connect to 169.254.169.254: it is in "
						   "169.254.0.0/16"));
	assert_non_null(strstr(why, "--deny-networks"));
	sa_of("::ffff:169.254.169.254", &ss);
	assert_int_equal(sink_check_peer(&s, (struct sockaddr *) &ss, why, sizeof(why)), -1);
	sa_of("10.0.0.1", &ss);
	assert_int_equal(sink_check_peer(&s, (struct sockaddr *) &ss, why, sizeof(why)), 0);
	/* admitted for clear text on this machine: held to it */
	s.loopback_only = true;
	assert_int_equal(sink_check_peer(&s, (struct sockaddr *) &ss, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "personal data in clear text"));
	sa_of("127.0.0.2", &ss);
	assert_int_equal(sink_check_peer(&s, (struct sockaddr *) &ss, why, sizeof(why)), 0);
	sa_of("::1", &ss);
	assert_int_equal(sink_check_peer(&s, (struct sockaddr *) &ss, why, sizeof(why)), 0);
	/* a sink without a policy gets the default one */
	s.policy = NULL;
	sa_of("fd00:ec2::254", &ss);
	assert_int_equal(sink_check_peer(&s, (struct sockaddr *) &ss, why, sizeof(why)), -1);
}

/* ---- the connect hooks of the sinks, against a local listener ----------- */

/* A listening socket on 127.0.0.1, non-blocking; its port in *port. */
static int
listener(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t	len = sizeof(a);
	int			fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/*
 * Open a command-line sink for uri under policy, hand it one event and run
 * the delivery loop for ms: did anything connect to lfd? The dead letters
 * cannot be written (no database), so a refused event is tried again and
 * again meanwhile: every attempt must be refused.
 */
static bool
connected_while_delivering(const struct sink_policy *p, const char *uri, const char *opts,
						   int lfd, int ms)
{
	struct delivery dl;
	char		err[ERRLEN];
	bool		got = false;
	int64_t		end;

	delivery_init(&dl, "host=/nonexistent-ordersync port=1 dbname=none connect_timeout=1", 1 << 20, p);
	if (delivery_add_cli_sink(&dl, uri, opts, err, sizeof(err)) != 0)
		fail_msg("%s: %s", uri, err);
	delivery_event(&dl, 100, "0/1/1", "order.paid", "order/1", "{\"data\":{}}", 11);
	delivery_commit(&dl, 100);
	end = sink_now_ms() + ms;
	while (sink_now_ms() < end && !got)
	{
		int			c;

		delivery_pump(&dl, 20);
		if ((c = accept(lfd, NULL, NULL)) >= 0)
		{
			got = true;
			close(c);
		}
	}
	delivery_free(&dl);
	return got;
}

static void
policy_connect_hooks(void **state)
{
	static const char *const kinds[] = {"http://localhost:%d/hook", "kafka://localhost:%d/orders",
	"amqp://guest@localhost:%d/%%2f?exchange=orders"};
	struct sink_policy deny_local = db;
	char		err[256],
				uri[128];
	int			port,
				lfd = listener(&port);

	(void) state;
	/* "localhost" is a name: nothing refuses it before connecting, the hooks must */
	assert_int_equal(netmask_parse_list("127.0.0.0/8,::1/128", &deny_local.deny, &deny_local.ndeny,
										err, sizeof(err)), 0);
	for (int i = 0; i < 3; i++)
	{
		snprintf(uri, sizeof(uri), kinds[i], port);
		if (connected_while_delivering(&deny_local, uri, "{\"connect_timeout_ms\":1000,"
									   "\"timeout_ms\":1000,\"backoff_min_ms\":50}", lfd, 1500))
			fail_msg("%s connected to a denied address", uri);
		/* the same sink without the deny list does reach the listener */
		if (!connected_while_delivering(&open_net, uri, "{\"connect_timeout_ms\":1000,"
										"\"timeout_ms\":1000,\"backoff_min_ms\":50}", lfd, 5000))
			fail_msg("%s never connected, so the refusal above proves nothing", uri);
	}
	free(deny_local.deny);
	close(lfd);
}

int
group_policy(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(policy_unknown_keys_and_wrong_types),
		cmocka_unit_test(policy_kafka_properties),
		cmocka_unit_test(policy_secret_references),
		cmocka_unit_test(policy_secret_read_checks_again),
		cmocka_unit_test(policy_tls_and_clear_text),
		cmocka_unit_test(policy_uri),
		cmocka_unit_test(policy_redaction),
		cmocka_unit_test(policy_cidr),
		cmocka_unit_test(policy_default_deny_list),
		cmocka_unit_test(policy_static_networks),
		cmocka_unit_test(policy_check_peer),
		cmocka_unit_test(policy_connect_hooks),
	};

	return cmocka_run_group_tests_name("policy", tests, setup, teardown);
}
