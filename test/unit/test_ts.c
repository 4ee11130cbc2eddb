/*
 * test_ts.c — wal2json commit timestamps become RFC 3339 UTC whatever the
 * server's TimeZone was.
 */
#include <string.h>

#include "unit.h"
#include "ts.h"

static void
check(const char *in, const char *out, int64_t usec)
{
	char		buf[TS_TEXT_MAX];
	int64_t		u = 0;

	assert_int_equal(ts_to_rfc3339(in, strlen(in), buf, &u), 0);
	assert_string_equal(buf, out);
	assert_true(u == usec);
}

static void
ts_utc(void **state)
{
	(void) state;
	check("2026-11-24 07:07:52.63149+00", "2026-11-24T07:07:52.63149Z", INT64_C(1795504072631490));
	check("1970-01-01 00:00:00+00", "1970-01-01T00:00:00Z", 0);
}

static void
ts_offsets(void **state)
{
	(void) state;
	check("2026-11-24 12:37:52.5+05:30", "2026-11-24T07:07:52.5Z", INT64_C(1795504072500000));
	check("2026-11-23 23:07:52-08", "2026-11-24T07:07:52Z", INT64_C(1795504072000000));
	/* crossing a year and a leap day */
	check("2024-03-01 00:30:00+01", "2024-02-29T23:30:00Z", INT64_C(1709249400000000));
	check("2027-01-01 00:00:00.000001+00:00:30", "2026-12-31T23:59:30.000001Z",
		  INT64_C(1798761570000001));
}

static void
ts_rejects_garbage(void **state)
{
	const char *bad[] = {"", "2026-11-24", "2026-11-24 07:07:52", "2026-13-01 00:00:00+00",
		"2026-02-30 00:00:00+00", "2026-11-24 25:00:00+00", "2026-11-24T07:07:52+00",
		"2026-11-24 07:07:52.+00", "2026-11-24 07:07:52.1234567+00", "2026-11-24 07:07:52+0",
		"2026-11-24 07:07:52+00 ", "infinity", "2026-11-24 07:07:52+00:61"};
	char		buf[TS_TEXT_MAX];

	(void) state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ts_to_rfc3339(bad[i], strlen(bad[i]), buf, NULL), -1);
	assert_int_equal(ts_to_rfc3339(NULL, 0, buf, NULL), -1);
}

static void
ts_format_usec_roundtrip(void **state)
{
	char		buf[TS_TEXT_MAX];

	(void) state;
	ts_format_usec(INT64_C(1795504072631490), buf);
	assert_string_equal(buf, "2026-11-24T07:07:52.631490Z");
	ts_format_usec(0, buf);
	assert_string_equal(buf, "1970-01-01T00:00:00.000000Z");
}

int
group_ts(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ts_utc),
		cmocka_unit_test(ts_offsets),
		cmocka_unit_test(ts_rejects_garbage),
		cmocka_unit_test(ts_format_usec_roundtrip),
	};

	return cmocka_run_group_tests_name("ts", tests, NULL, NULL);
}
