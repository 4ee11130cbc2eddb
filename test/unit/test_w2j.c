/*
 * test_w2j.c — parsing wal2json format-version 2 lines: the good shapes the
 * relay relies on, and every malformed shape reported with a reason.
 */
#include <string.h>

#include "unit.h"
#include "w2j.h"

static struct w2j_parser P;

static int
setup(void **state)
{
	(void) state;
	return w2j_parser_init(&P);
}

static int
teardown(void **state)
{
	(void) state;
	w2j_parser_free(&P);
	return 0;
}

static int
parse(const char *line, struct w2j_rec *rec, char *err)
{
	return w2j_parse(&P, line, strlen(line), rec, err, 256);
}

static void
w2j_begin(void **state)
{
	struct w2j_rec r;
	char		err[256];

	(void) state;
	assert_int_equal(parse("{\"action\":\"B\",\"xid\":727,\"timestamp\":\"2026-11-24 07:07:52.635716+00\","
						   "\"lsn\":\"0/153DCD8\",\"nextlsn\":\"0/153DD08\"}", &r, err), 0);
	assert_int_equal(r.action, 'B');
	assert_true(r.has_xid && r.xid == 727);
	assert_true(r.has_lsn && r.lsn == 0x153DCD8);
	assert_true(r.has_nextlsn && r.nextlsn == 0x153DD08);
	assert_string_equal(r.timestamp, "2026-11-24 07:07:52.635716+00");
	w2j_rec_free(&r);
}

static void
w2j_message(void **state)
{
	struct w2j_rec r;
	char		err[256];

	(void) state;
	assert_int_equal(parse("{\"action\":\"M\",\"xid\":727,\"timestamp\":\"2026-11-24 07:07:52.635716+00\","
						   "\"lsn\":\"0/153DB78\",\"transactional\":true,\"prefix\":\"ordersync\","
						   "\"content\":\"{\\\"type\\\":\\\"order.paid\\\"}\"}", &r, err), 0);
	assert_int_equal(r.action, 'M');
	assert_true(r.transactional);
	assert_string_equal(r.prefix, "ordersync");
	assert_string_equal(r.content, "{\"type\":\"order.paid\"}");
	assert_int_equal(r.content_len, strlen("{\"type\":\"order.paid\"}"));
	w2j_rec_free(&r);
}

static void
w2j_message_with_nul_in_content(void **state)
{
	struct w2j_rec r;
	char		err[256];

	(void) state;
	/* content_len is authoritative: an escaped NUL must not shorten it silently */
	assert_int_equal(parse("{\"action\":\"M\",\"transactional\":false,\"prefix\":\"p\","
						   "\"content\":\"a\\u0000b\"}", &r, err), 0);
	assert_int_equal(r.content_len, 3);
	w2j_rec_free(&r);
}

/*
 * What simdjson refuses goes to yajl and reads as before: bytes that are not
 * UTF-8 in a bytea message's content, an integer beyond 64 bits. A key
 * given twice counts with its last value on both paths.
 */
static void
w2j_simdjson_refusals_fall_back(void **state)
{
	struct w2j_rec r;
	char		err[256];
	struct w2j_scan scan;
	const char *latin1 = "{\"action\":\"M\",\"xid\":9,\"transactional\":true,\"prefix\":\"p\","
		"\"content\":\"caf\xe9\"}";
	const char *twice = "{\"action\":\"C\",\"action\":\"M\",\"xid\":1,\"xid\":2,\"transactional\":false,"
		"\"prefix\":\"p\",\"content\":\"a\",\"content\":\"bc\"}";

	(void) state;
	memset(&scan, 0, sizeof(scan));
	buf_init(&scan.store);
	assert_false(w2j_simd_scan(P.simd, latin1, strlen(latin1), &scan));
	assert_int_equal(parse(latin1, &r, err), 0);
	assert_int_equal(r.content_len, 4);
	assert_memory_equal(r.content, "caf\xe9", 4);
	w2j_rec_free(&r);

	assert_int_equal(parse("{\"action\":\"B\",\"xid\":123456789012345678901234,\"timestamp\":\"t\","
						   "\"lsn\":\"0/1\",\"nextlsn\":\"0/2\"}", &r, err), -1);
	assert_string_equal(err, "field \"xid\" is not a transaction id");

	assert_true(w2j_simd_scan(P.simd, twice, strlen(twice), &scan));
	assert_int_equal(parse(twice, &r, err), 0);
	assert_int_equal(r.action, 'M');
	assert_true(r.xid == 2);
	assert_string_equal(r.content, "bc");
	w2j_rec_free(&r);
	buf_free(&scan.store);
}

static void
w2j_insert(void **state)
{
	struct w2j_rec r;
	char		err[256];

	(void) state;
	assert_int_equal(parse("{\"action\":\"I\",\"xid\":727,\"lsn\":\"0/153DB78\",\"schema\":\"ordersync\","
						   "\"table\":\"t\",\"columns\":[{\"name\":\"id\",\"value\":1}]}", &r, err), 0);
	assert_int_equal(r.action, 'I');
	assert_string_equal(r.schema, "ordersync");
	assert_string_equal(r.table, "t");
	w2j_rec_free(&r);
}

static void
w2j_rejects(void **state)
{
	const char *bad[] = {
		"",
		"not json",
		"{\"action\":\"B\"",			/* truncated */
		"[1,2]",
		"null",
		"{\"action\":\"X\"}",
		"{\"action\":\"BB\"}",
		"{\"action\":1}",
		"{}",
		"{\"action\":\"B\",\"xid\":1,\"timestamp\":\"t\",\"lsn\":\"0/1\"}",	/* no nextlsn */
		"{\"action\":\"B\",\"xid\":\"1\",\"timestamp\":\"t\",\"lsn\":\"0/1\",\"nextlsn\":\"0/2\"}",
		"{\"action\":\"B\",\"xid\":-1,\"timestamp\":\"t\",\"lsn\":\"0/1\",\"nextlsn\":\"0/2\"}",
		"{\"action\":\"C\",\"xid\":1,\"timestamp\":\"t\",\"lsn\":\"zz\",\"nextlsn\":\"0/2\"}",
		"{\"action\":\"M\",\"prefix\":\"p\",\"content\":\"c\"}",		/* no transactional */
		"{\"action\":\"M\",\"transactional\":true,\"content\":\"c\"}",
		"{\"action\":\"M\",\"transactional\":true,\"prefix\":\"p\",\"content\":5}",
		"{\"action\":\"I\",\"table\":\"t\"}",
		"{\"action\":\"D\",\"schema\":\"s\"}",
		"{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\"} trailing",
		"{\"action\":\"I\",\"schema\":\"s\",\"table\":\"t\"}{}",
		"{\"action\":\"I\",\"timestamp\":7,\"schema\":\"s\",\"table\":\"t\"}",
	};

	(void) state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		struct w2j_rec r;
		char		err[256] = "";

		if (parse(bad[i], &r, err) != -1)
			fail_msg("accepted bad line %zu: %s", i, bad[i]);
		assert_true(err[0] != '\0');	/* always a reason */
		assert_null(r.root);
	}
}

static void
w2j_not_nul_terminated(void **state)
{
	const char	line[] = "{\"action\":\"T\",\"schema\":\"s\",\"table\":\"t\"}XXXX";
	struct w2j_rec r;
	char		err[256];

	(void) state;
	assert_int_equal(w2j_parse(&P, line, strlen(line) - 4, &r, err, sizeof(err)), 0);
	assert_int_equal(r.action, 'T');
	w2j_rec_free(&r);
}

int
group_w2j(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(w2j_begin),
		cmocka_unit_test(w2j_message),
		cmocka_unit_test(w2j_message_with_nul_in_content),
		cmocka_unit_test(w2j_simdjson_refusals_fall_back),
		cmocka_unit_test(w2j_insert),
		cmocka_unit_test(w2j_rejects),
		cmocka_unit_test(w2j_not_nul_terminated),
	};

	return cmocka_run_group_tests_name("w2j", tests, setup, teardown);
}
