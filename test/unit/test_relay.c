/*
 * test_relay.c — the transaction state machine without a server: events in
 * order with per-transaction ordinals, nothing confirmed before sync, bad
 * input dead-lettered or stopping, inconsistent streams refused, idle
 * keepalives advancing only when nothing is pending, nothing committed
 * after --endpos handed to a sink.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "log.h"
#include "fixture.h"
#include "relay.h"
#include "ts.h"

#define MSG(type, subj) "{\"action\":\"M\",\"xid\":1,\"lsn\":\"0/10\",\"transactional\":true,\"prefix\":\"ordersync\",\"content\":\"{\\\"type\\\":\\\"" type "\\\",\\\"subject\\\":\\\"" subj "\\\",\\\"data\\\":{}}\"}"
#define ROW "{\"action\":\"I\",\"xid\":1,\"lsn\":\"0/10\",\"schema\":\"ordersync\",\"table\":\"orders\",\"columns\":[]}"
#define feed fixture_feed
#define count_lines fixture_count_lines

static int
setup_relay(bool raw, bool stop)
{
	struct relay_config cfg = {.source = "/t", .prefix = "ordersync",
	.raw_changes = raw, .stop_on_bad_input = stop};

	return fixture_open(&cfg);
}

static int
setup_default(void **state)
{
	(void) state;
	return setup_relay(false, false);
}

static int
setup_raw_stop(void **state)
{
	(void) state;
	return setup_relay(true, true);
}

/* --endpos=0/A00 */
static int
setup_endpos(void **state)
{
	struct relay_config cfg = {.source = "/t", .prefix = "ordersync", .endpos = 0xA00};

	(void) state;
	return fixture_open(&cfg);
}

static int
teardown(void **state)
{
	(void) state;
	return fixture_close();
}

static void
relay_orders_and_confirms_after_sync(void **state)
{
	(void) state;
	assert_int_equal(feed(B(5, "0/100", "0/130")), RELAY_OK);
	assert_int_equal(feed(MSG("order.created", "order/1")), RELAY_OK);
	assert_int_equal(feed(MSG("order.paid", "order/1")), RELAY_OK);
	assert_false(relay_needs_sync(&R));		/* nothing to confirm mid-transaction */
	assert_int_equal(feed(C(5, "0/100", "0/130")), RELAY_OK);
	assert_true(relay_needs_sync(&R));
	assert_true(R.received_end == 0x130);
	assert_true(R.durable_end == 0);		/* not before the fsync */
	assert_int_equal(relay_sync(&R), RELAY_OK);
	assert_true(R.durable_end == 0x130);
	assert_int_equal(count_lines(NULL), 2);
	assert_int_equal(count_lines("\"id\":\"0/100/1\""), 1);
	assert_int_equal(count_lines("\"id\":\"0/100/2\""), 1);
	assert_int_equal(count_lines("\"time\":\"2026-11-24T07:00:00.5Z\""), 2);
	assert_int_equal(count_lines("\"osxid\":\"5\""), 2);
}

static void
relay_dead_letters_bad_content(void **state)
{
	const char *bad = "{\"action\":\"M\",\"xid\":6,\"lsn\":\"0/150\",\"transactional\":true,"
		"\"prefix\":\"ordersync\",\"content\":\"not json\"}";

	(void) state;
	assert_int_equal(feed(B(6, "0/200", "0/230")), RELAY_OK);
	assert_int_equal(feed(MSG("order.created", "order/2")), RELAY_OK);
	assert_int_equal(relay_line(&R, 0x150, bad, strlen(bad)), RELAY_OK);
	assert_int_equal(feed("garbage"), RELAY_OK);
	assert_int_equal(feed(ROW), RELAY_OK);	/* rows were not requested: reported too */
	assert_int_equal(feed(C(6, "0/200", "0/230")), RELAY_OK);
	assert_int_equal(relay_sync(&R), RELAY_OK);
	assert_int_equal(count_lines("\"id\":\"0/200/4\",\"source\":\"/t\",\"type\":\"ordersync.relay.invalid\""), 1);
	/* reported in-stream, in order, with the LSN: never dropped */
	assert_int_equal(count_lines("\"id\":\"0/200/2\",\"source\":\"/t\",\"type\":\"ordersync.relay.invalid\""), 1);
	assert_int_equal(count_lines("\"lsn\":\"0/150\""), 1);
	assert_int_equal(count_lines("\"id\":\"0/200/3\""), 1);
	assert_int_equal(count_lines("not json"), 1);
}

static void
relay_refuses_inconsistent_stream(void **state)
{
	(void) state;
	assert_int_equal(feed(C(7, "0/300", "0/330")), RELAY_PROTOCOL_ERROR);
	assert_non_null(strstr(R.errmsg, "without its begin"));
	assert_int_equal(feed(B(7, "0/300", "0/330")), RELAY_OK);
	assert_int_equal(feed(B(8, "0/400", "0/430")), RELAY_PROTOCOL_ERROR);
	assert_int_equal(feed(C(9, "0/300", "0/330")), RELAY_PROTOCOL_ERROR);	/* wrong xid */
}

static void
relay_idle_advance_only_when_clean(void **state)
{
	(void) state;
	assert_true(relay_idle_advance(&R, 0x500));
	assert_true(R.durable_end == 0x500);
	assert_false(relay_idle_advance(&R, 0x400));	/* never backwards */
	assert_int_equal(feed(B(9, "0/600", "0/630")), RELAY_OK);
	assert_false(relay_idle_advance(&R, 0x700));	/* open transaction */
	assert_int_equal(feed(C(9, "0/600", "0/630")), RELAY_OK);
	assert_false(relay_idle_advance(&R, 0x700));	/* commit not yet durable */
	assert_int_equal(relay_sync(&R), RELAY_OK);
	assert_true(relay_idle_advance(&R, 0x700));
}

static void
relay_abort_cuts_open_transaction(void **state)
{
	int			before;

	(void) state;
	before = count_lines(NULL);
	assert_int_equal(feed(B(10, "0/800", "0/830")), RELAY_OK);
	for (int i = 0; i < 3000; i++)		/* > one write chunk: some already on disk */
		assert_int_equal(feed(MSG("order.paid", "order/3")), RELAY_OK);
	assert_int_equal(relay_abort_txn(&R), RELAY_OK);
	assert_int_equal(relay_sync(&R), RELAY_OK);
	assert_int_equal(count_lines(NULL), before);
	assert_false(R.in_txn);
}

static void
relay_stop_policy_and_raw_rows(void **state)
{
	(void) state;
	assert_int_equal(feed(B(11, "0/900", "0/930")), RELAY_OK);
	assert_int_equal(feed(ROW), RELAY_OK);
	assert_int_equal(feed(MSG("order.paid", "order/4")), RELAY_OK);
	assert_int_equal(feed(C(11, "0/900", "0/930")), RELAY_OK);
	assert_int_equal(relay_sync(&R), RELAY_OK);
	assert_int_equal(count_lines("\"id\":\"0/900/1\",\"source\":\"/t\",\"type\":\"ordersync.row.orders.insert\",\"subject\":\"table/ordersync.orders\""), 1);
	assert_int_equal(count_lines("\"id\":\"0/900/2\""), 1);

	assert_int_equal(feed(B(12, "0/A00", "0/A30")), RELAY_OK);
	assert_int_equal(feed("{\"action\":\"M\",\"xid\":12,\"transactional\":true,\"prefix\":\"ordersync\",\"content\":\"[]\"}"),
					 RELAY_BAD_INPUT);
	assert_non_null(strstr(R.errmsg, "LSN 0/10"));
	assert_non_null(strstr(R.errmsg, "commit LSN 0/A00"));
	assert_true(R.durable_end == 0x930);
}

/* A flush makes durable what was committed before it, in the background. */
static void
relay_confirms_what_the_flush_covered(void **state)
{
	bool		advanced = false;

	(void) state;
	assert_int_equal(feed(B(13, "0/B00", "0/B30")), RELAY_OK);
	assert_int_equal(feed(MSG("order.paid", "order/5")), RELAY_OK);
	assert_int_equal(feed(C(13, "0/B00", "0/B30")), RELAY_OK);
	assert_true(relay_needs_sync(&R));
	assert_int_equal(relay_flush(&R), RELAY_OK);
	assert_false(relay_needs_sync(&R));
	assert_int_equal(feed(B(14, "0/C00", "0/C30")), RELAY_OK);
	assert_int_equal(feed(C(14, "0/C00", "0/C30")), RELAY_OK);
	for (int i = 0; i < 500 && !advanced; i++)
	{
		delivery_pump(&R.dl, 10);
		assert_int_equal(relay_progress(&R, &advanced), RELAY_OK);
	}
	assert_true(advanced && R.durable_end == 0xB30);
	assert_int_equal(relay_sync(&R), RELAY_OK);
	assert_true(R.durable_end == 0xC30);
}

/*
 * --endpos: a transaction committed up to it is relayed whole; one
 * committed after it is not (the next run's), nor anything after that.
 */
static void
relay_stops_at_endpos(void **state)
{
	(void) state;
	assert_int_equal(feed(B(15, "0/A00", "0/A30")), RELAY_OK);	/* commit at endpos */
	assert_int_equal(feed(MSG("order.paid", "order/6")), RELAY_OK);
	assert_int_equal(feed(C(15, "0/A00", "0/A30")), RELAY_OK);
	assert_false(R.past_endpos);
	assert_int_equal(feed(B(16, "0/A40", "0/A70")), RELAY_OK);	/* commit after it */
	assert_true(R.past_endpos);
	assert_int_equal(feed(MSG("order.paid", "order/7")), RELAY_OK);
	assert_int_equal(feed(C(16, "0/A40", "0/A70")), RELAY_OK);
	assert_int_equal(feed(B(17, "0/B00", "0/B30")), RELAY_OK);
	assert_int_equal(feed(MSG("order.paid", "order/8")), RELAY_OK);
	assert_int_equal(feed(C(17, "0/B00", "0/B30")), RELAY_OK);
	assert_int_equal(relay_sync(&R), RELAY_OK);
	assert_true(R.received_end == 0xA30);
	assert_true(R.durable_end == 0xA30);	/* the next run starts after 0/A30 */
	assert_int_equal(count_lines(NULL), 1);
	assert_int_equal(count_lines("\"subject\":\"order/6\""), 1);
}

int
group_relay(void)
{
	const struct CMUnitTest tests[] = {
		/* a fresh relay and sink file per test */
		cmocka_unit_test_setup_teardown(relay_orders_and_confirms_after_sync, setup_default, teardown),
		cmocka_unit_test_setup_teardown(relay_dead_letters_bad_content, setup_default, teardown),
		cmocka_unit_test_setup_teardown(relay_refuses_inconsistent_stream, setup_default, teardown),
		cmocka_unit_test_setup_teardown(relay_idle_advance_only_when_clean, setup_default, teardown),
		cmocka_unit_test_setup_teardown(relay_abort_cuts_open_transaction, setup_default, teardown),
		cmocka_unit_test_setup_teardown(relay_stop_policy_and_raw_rows, setup_raw_stop, teardown),
		cmocka_unit_test_setup_teardown(relay_confirms_what_the_flush_covered, setup_default, teardown),
		cmocka_unit_test_setup_teardown(relay_stops_at_endpos, setup_endpos, teardown),
	};

	return cmocka_run_group_tests_name("relay", tests, NULL, NULL);
}
