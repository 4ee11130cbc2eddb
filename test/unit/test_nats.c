/*
 * test_nats.c — what the NATS sink accepts at open (sink_nats.c): its URI
 * (one server, a subject prefix of plain tokens, no password, no
 * parameters) and the rules between its options. open never connects, so
 * nothing here touches the network.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "sink.h"
#include "sink_policy.h"

#define ERRLEN 1024

/* open a trusted nats sink: 0, or -1 with err */
static int
try_open(const char *uri, const char *opts, char *err)
{
	struct sink s = {0};
	struct sink_host h;
	json_object *raw = opts ? json_tokener_parse(opts) : NULL;
	int			rc;

	err[0] = '\0';
	sink_host_init(&h);
	s.name = (char *) "n";
	s.uri = (char *) uri;
	s.trusted = true;
	s.policy = sink_default_policy();
	assert_int_equal(sink_parse_options(&s.opt, raw, err, ERRLEN), 0);
	assert_ptr_equal(sink_kind_for(uri), &sink_nats_ops);
	rc = sink_nats_ops.open(&s, &h, err, ERRLEN);
	if (rc == 0)
		sink_nats_ops.close(&s);
	json_object_put(raw);
	sink_host_free(&h);
	return rc;
}

static void
refused(const char *uri, const char *opts, const char *want)
{
	char		err[ERRLEN];

	assert_int_equal(try_open(uri, opts, err), -1);
	if (strstr(err, want) == NULL)
		fail_msg("%s %s: got \"%s\", want \"%s\"", uri, opts ? opts : "", err, want);
}

static void
nats_good_uris(void **state)
{
	char		err[ERRLEN];

	(void) state;
	setenv("NATS_UNIT_PW", "pw", 1);
	assert_int_equal(try_open("nats://127.0.0.1:4222/ordersync", NULL, err), 0);
	assert_int_equal(try_open("nats://localhost/shop.events-1.v_2", NULL, err), 0);
	assert_int_equal(try_open("NATS://[::1]:4223/x", NULL, err), 0);
	assert_int_equal(try_open("nats://relay@h:4222/p", "{\"password_env\": \"NATS_UNIT_PW\"}", err), 0);
	assert_int_equal(try_open("nats://h/p", "{\"token_env\": \"NATS_UNIT_PW\", \"stream\": \"ORDERS\"}", err), 0);
	assert_int_equal(try_open("nats+tls://h/p", "{\"max_in_flight\": 10}", err), 0);
	assert_false(sink_nats_ops.claims("natsx://h/p"));
}

static void
nats_bad_uris(void **state)
{
	(void) state;
	refused("nats://h:4222", NULL, "names no subject prefix");
	refused("nats://h:4222/", NULL, "names no subject prefix");
	refused("nats://h/orders.*", NULL, "not a valid subject prefix");
	refused("nats://h/orders.>", NULL, "not a valid subject prefix");
	refused("nats://h/a..b", NULL, "not a valid subject prefix");
	refused("nats://h/.a", NULL, "not a valid subject prefix");
	refused("nats://h/a.", NULL, "not a valid subject prefix");
	refused("nats://h/a b", NULL, "not a valid subject prefix");
	refused("nats://h/a/b", NULL, "not a valid subject prefix");
	refused("nats://h/p?stream=X", NULL, "has parameters");
	refused("nats://h1,h2/p", NULL, "several servers");
	refused("nats://u:secret@h/p", NULL, "contains a password");
	refused("nats://@h/p", NULL, "empty user name");
	refused("nats://:4222/p", NULL, "names no host");
	refused("nats://h:0/p", NULL, "bad port");
	refused("nats://h:65536/p", NULL, "bad port");
	refused("nats://h:42x/p", NULL, "bad port");
	refused("nats://[::1/p", NULL, "unclosed");
}

static void
nats_bad_options(void **state)
{
	(void) state;
	setenv("NATS_UNIT_PW", "pw", 1);
	refused("nats://h/p", "{\"stream\": \"A.B\"}", "not a JetStream stream name");
	refused("nats://h/p", "{\"stream\": \"\"}", "non-empty string");
	refused("nats://h/p", "{\"ca_file\": \"/etc/hostname\"}", "use a nats+tls:// uri");
	refused("nats+tls://h/p", "{\"cert_file\": \"/etc/hostname\"}", "needs both cert_file and key_file");
	refused("nats://h/p", "{\"password_env\": \"NATS_UNIT_PW\"}", "a password needs a user");
	refused("nats://u@h/p", "{\"token_env\": \"NATS_UNIT_PW\"}", "a token authenticates without a user");
	refused("nats://u@h/p", "{\"password_env\": \"NATS_UNIT_PW\", \"token_env\": \"NATS_UNIT_PW\"}",
			"not both");
	refused("nats://u@h/p", "{\"password_env\": \"NATS_UNIT_UNSET\"}", "not set for ordersyncd");
	refused("nats://h/p", "{\"token\": \"x\"}", "secrets are never given in the options");
}

int
group_nats(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(nats_good_uris),
		cmocka_unit_test(nats_bad_uris),
		cmocka_unit_test(nats_bad_options),
	};

	return cmocka_run_group_tests_name("nats", tests, NULL, NULL);
}
