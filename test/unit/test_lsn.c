/*
 * test_lsn.c — LSN text <-> integer, including the strictness that makes a
 * broken LSN in the stream an error instead of a silent zero.
 */
#include <string.h>

#include "unit.h"
#include "lsn.h"

static void
lsn_roundtrip(void **state)
{
	const uint64_t values[] = {0, 1, 0x16B3748, UINT64_C(0x100000000),
		UINT64_C(0xFFFFFFFFFFFFFFFF), UINT64_C(0xABCDEF0012345678)};
	char		buf[LSN_TEXT_MAX];

	(void) state;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
	{
		uint64_t	back = 0;

		lsn_format(values[i], buf);
		assert_int_equal(lsn_parse(buf, &back), 0);
		assert_true(back == values[i]);
	}
}

static void
lsn_format_like_server(void **state)
{
	char		buf[LSN_TEXT_MAX];

	(void) state;
	assert_string_equal(lsn_format(0, buf), "0/0");
	assert_string_equal(lsn_format(0x16B3748, buf), "0/16B3748");
	assert_string_equal(lsn_format(UINT64_C(0x1000000AB), buf), "1/AB");
	assert_string_equal(lsn_format(UINT64_MAX, buf), "FFFFFFFF/FFFFFFFF");
}

static void
lsn_parse_accepts_lower_case(void **state)
{
	uint64_t	v = 0;

	(void) state;
	assert_int_equal(lsn_parse("a/b", &v), 0);
	assert_true(v == UINT64_C(0xA0000000B));
}

static void
lsn_parse_rejects_garbage(void **state)
{
	const char *bad[] = {"", "/", "0/", "/0", "0", "0/0/0", "g/0", "0/x",
		"123456789/0", "0/123456789", " 0/1", "0/1 ", "-1/0", "0/+1"};
	uint64_t	v;

	(void) state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(lsn_parse(bad[i], &v), -1);
	assert_int_equal(lsn_parse(NULL, &v), -1);
}

static void
lsn_parse_n_respects_length(void **state)
{
	uint64_t	v = 0;

	(void) state;
	assert_int_equal(lsn_parse_n("1/2garbage", 3, &v), 0);
	assert_true(v == UINT64_C(0x100000002));
	assert_int_equal(lsn_parse_n("1/2", 2, &v), -1);
}

int
group_lsn(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lsn_roundtrip),
		cmocka_unit_test(lsn_format_like_server),
		cmocka_unit_test(lsn_parse_accepts_lower_case),
		cmocka_unit_test(lsn_parse_rejects_garbage),
		cmocka_unit_test(lsn_parse_n_respects_length),
	};

	return cmocka_run_group_tests_name("lsn", tests, NULL, NULL);
}
