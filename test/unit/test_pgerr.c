/*
 * test_pgerr.c — server errors map to the advice the issue asks for, and to
 * retry-or-stop correctly.
 */
#include <string.h>

#include "unit.h"
#include "pgerr.h"

static void
pgerr_output_plugin_not_allowed(void **state)
{
	struct pgerr_advice a = pgerr_classify("42501",
										   "ERROR:  library \"wal2json\" may not be used as an output plugin");

	(void) state;
	assert_false(a.transient);
	assert_non_null(strstr(a.hint,
						   "ALTER SYSTEM SET output_plugin_libraries = pgoutput, test_decoding, wal2json"));
	assert_non_null(strstr(a.hint, "restart"));
}

static void
pgerr_wal2json_missing(void **state)
{
	struct pgerr_advice a = pgerr_classify("58P01",
										   "could not access file \"wal2json\": No such file or directory");

	(void) state;
	assert_false(a.transient);
	assert_non_null(strstr(a.hint, "postgresql-15-wal2json"));
}

static void
pgerr_wal_level(void **state)
{
	struct pgerr_advice a = pgerr_classify("55000", "logical decoding requires wal_level >= logical");

	(void) state;
	assert_false(a.transient);
	assert_non_null(strstr(a.hint, "ALTER SYSTEM SET wal_level = logical"));
}

static void
pgerr_slot_in_use_is_retried(void **state)
{
	struct pgerr_advice a = pgerr_classify("55006",
										   "replication slot \"s\" is active for PID 4242");

	(void) state;
	assert_true(a.transient);
	assert_non_null(strstr(a.hint, "another process"));
}

static void
pgerr_permission(void **state)
{
	struct pgerr_advice a = pgerr_classify("42501",
										   "permission denied to start WAL sender\nDETAIL: Only roles with the REPLICATION attribute may start a WAL sender process.");

	(void) state;
	assert_false(a.transient);
	assert_non_null(strstr(a.hint, "REPLICATION"));
}

static void
pgerr_server_down_is_retried(void **state)
{
	(void) state;
	assert_true(pgerr_classify(NULL, "connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: "
							   "No such file or directory").transient);
	assert_true(pgerr_classify("57P01", "terminating connection due to administrator command").transient);
	assert_true(pgerr_classify("57P03", "the database system is starting up").transient);
	assert_false(pgerr_classify("28P01", "password authentication failed for user \"x\"").transient);
	assert_false(pgerr_classify("42704", "replication slot \"nope\" does not exist").transient);
}

int
group_pgerr(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pgerr_output_plugin_not_allowed),
		cmocka_unit_test(pgerr_wal2json_missing),
		cmocka_unit_test(pgerr_wal_level),
		cmocka_unit_test(pgerr_slot_in_use_is_retried),
		cmocka_unit_test(pgerr_permission),
		cmocka_unit_test(pgerr_server_down_is_retried),
	};

	return cmocka_run_group_tests_name("pgerr", tests, NULL, NULL);
}
