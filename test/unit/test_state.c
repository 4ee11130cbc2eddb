/*
 * test_state.c — the relay's --state-file (stream_failover.h): what is
 * written is read back exactly, a missing file is "nothing seen yet", and
 * anything else that does not parse is refused rather than guessed at; and
 * the metrics that say which relay of a pair is active.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "metrics.h"
#include "stream_failover.h"

static char dir[64];
static char path[128];

static int
setup(void **state)
{
	(void) state;
	snprintf(dir, sizeof(dir), "/tmp/ordersyncd-unit-state.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/relay.state", dir);
	return 0;
}

static int
teardown(void **state)
{
	char		tmp[160];

	(void) state;
	unlink(path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	rmdir(dir);
	return 0;
}

static void
write_file(const char *text)
{
	FILE	   *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
state_roundtrip(void **state)
{
	struct failover_state in = {.known = true, .slot = "orders", .system_id = "7713997577149297016",
	.timeline = 3, .confirmed = UINT64_C(0x1000000AB), .confirmed_at = 1764519000};
	struct failover_state out;
	char		err[512];

	(void) state;
	assert_int_equal(failover_save(path, &in, err, sizeof(err)), 0);
	assert_int_equal(failover_load(path, &out, err, sizeof(err)), 0);
	assert_true(out.known);
	assert_string_equal(out.slot, "orders");
	assert_string_equal(out.system_id, "7713997577149297016");
	assert_int_equal(out.timeline, 3);
	assert_true(out.confirmed == UINT64_C(0x1000000AB));
	assert_true(out.confirmed_at == 1764519000);
}

static void
state_missing_is_nothing_seen(void **state)
{
	struct failover_state out;
	char		err[512];

	(void) state;
	unlink(path);
	assert_int_equal(failover_load(path, &out, err, sizeof(err)), 0);
	assert_false(out.known);
}

static void
state_refuses_what_does_not_parse(void **state)
{
	static const char *const bad[] = {
		"garbage\n",
		"slot orders\nsystem_id 1\ntimeline 1\nconfirmed_lsn 0/XYZ\nconfirmed_at 1\n",
		"slot orders\nsystem_id 1\ntimeline 0\nconfirmed_lsn 0/1\nconfirmed_at 1\n",
		"slot orders\nsystem_id 1\ntimeline 99999999999\nconfirmed_lsn 0/1\nconfirmed_at 1\n",
		"slot orders\nsystem_id -1\ntimeline 1\nconfirmed_lsn 0/1\nconfirmed_at 1\n",
		"slot orders extra\nsystem_id 1\ntimeline 1\nconfirmed_lsn 0/1\nconfirmed_at 1\n",
		"slot orders\nsystem_id 1\ntimeline 1\nconfirmed_lsn 0/1\n",	/* incomplete */
		"slot orders\nsystem_id 1\ntimeline 1\nconfirmed_lsn 0/1\nconfirmed_at 1\nshell rm\n",
		"slot aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	};
	struct failover_state out;
	char		err[512];

	(void) state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		write_file(bad[i]);
		err[0] = '\0';
		assert_int_equal(failover_load(path, &out, err, sizeof(err)), -1);
		assert_false(out.known);
		assert_non_null(strstr(err, path));
	}
}

static void
metrics_say_active_or_standby(void **state)
{
	size_t		len;
	char	   *text;

	(void) state;
	metrics_set_connected(false);
	metrics_set_standby(4711);
	text = metrics_render(&len);
	assert_non_null(strstr(text, "\nordersyncd_active 0\n"));
	assert_non_null(strstr(text, "\nordersyncd_standby 1\n"));
	free(text);
	metrics_set_standby(0);
	metrics_set_connected(true);
	text = metrics_render(&len);
	assert_non_null(strstr(text, "\nordersyncd_active 1\n"));
	assert_non_null(strstr(text, "\nordersyncd_standby 0\n"));
	free(text);
	metrics_set_connected(false);
}

static void
metrics_count_delivery_sinks_per_type(void **state)
{
	int			id = metrics_register_lane_sink("unit-hook");
	size_t		len;
	char	   *text;

	(void) state;
	metrics_delivered_event(id, "order.paid", 10);
	metrics_delivered_event(id, "order.paid", 10);
	text = metrics_render(&len);
	assert_non_null(strstr(text, "ordersyncd_events_total{sink=\"unit-hook\",type=\"ordersync.order.paid\"} 2\n"));
	assert_non_null(strstr(text, "ordersyncd_bytes_total{sink=\"unit-hook\",type=\"ordersync.order.paid\"} 20\n"));
	free(text);
}

int
group_state(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(state_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(state_missing_is_nothing_seen, setup, teardown),
		cmocka_unit_test_setup_teardown(state_refuses_what_does_not_parse, setup, teardown),
		cmocka_unit_test(metrics_say_active_or_standby),
		cmocka_unit_test(metrics_count_delivery_sinks_per_type),
	};

	return cmocka_run_group_tests_name("state", tests, NULL, NULL);
}
