/*
 * test_control.c — what steers the relay, fed as an attacker would: the
 * row changes of ordersync.sink, .route and .redelivery switch the
 * configuration exactly where they come; a forged "relay.*" message is
 * bad input and steers nothing; bad rows (null uri, options that are not
 * an object, bad patterns, redeliveries without an event) are refused
 * without a crash and without touching a running sink; and the
 * personal-data filter fails closed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "log.h"
#include "metrics.h"
#include "fixture.h"
#include "relay.h"

#define MSG(type, subj, data) "{\"action\":\"M\",\"xid\":1,\"lsn\":\"0/10\",\"transactional\":true,\"prefix\":\"ordersync\",\"content\":\"{\\\"type\\\":\\\"" type "\\\",\\\"subject\\\":\\\"" subj "\\\",\\\"data\\\":" data "}\"}"
#define ROW(action, table, cols) "{\"action\":\"" action "\",\"xid\":1,\"lsn\":\"0/10\",\"schema\":\"ordersync\",\"table\":\"" table "\"," cols "}"
#define COL(n, v) "{\"name\":\"" n "\",\"value\":" v "}"

#define WH_INSERT ROW("I", "sink", "\"columns\":[" COL("name", "\"wh\"") "," COL("uri", "\"http://127.0.0.1:9/x\"") "," COL("options", "\"{}\"") "]")
#define ROUTE_INSERT(p) ROW("I", "route", "\"columns\":[" COL("sink", "\"wh\"") "," COL("pattern", "\"" p "\"") "]")
#define feed fixture_feed
#define count_lines fixture_count_lines

static int
setup(void **state)
{
	struct relay_config cfg = {.source = "/t", .prefix = "ordersync",
	.conninfo = "host=/nonexistent-ordersync dbname=none connect_timeout=1"};

	(void) state;
	return fixture_open(&cfg);
}

static int
teardown(void **state)
{
	(void) state;
	return fixture_close();
}

/* The running, configured sink called name, or NULL. */
static struct delivery_sink *
sink_named(const char *name)
{
	for (int i = 0; i < R.dl.nsinks; i++)
		if (R.dl.sinks[i]->configured && !R.dl.sinks[i]->retired &&
			strcmp(R.dl.sinks[i]->sink->name, name) == 0)
			return R.dl.sinks[i];
	return NULL;
}

/* Sinks from the database (the fixture's file sink is from the command line). */
static int
configured_sinks(void)
{
	int			n = 0;

	for (int i = 0; i < R.dl.nsinks; i++)
		n += R.dl.sinks[i]->configured;
	return n;
}

static bool
metric_is(const char *line)
{
	size_t		n;
	char	   *text = metrics_render(&n);
	bool		found = text && strstr(text, line) != NULL;

	free(text);
	return found;
}

static void
rows_switch_the_configuration_where_they_commit(void **state)
{
	(void) state;
	assert_int_equal(feed(B(5, "0/100", "0/130")), RELAY_OK);
	assert_int_equal(feed(MSG("order.paid", "order/1", "{}")), RELAY_OK);
	assert_int_equal(feed(WH_INSERT), RELAY_OK);
	assert_int_equal(feed(ROUTE_INSERT("order.*")), RELAY_OK);
	assert_non_null(sink_named("wh"));
	assert_int_equal(sink_named("wh")->npatterns, 1);
	assert_int_equal((int) sink_named("wh")->outstanding, 0);	/* the event before */
	assert_int_equal(feed(MSG("order.shipped", "order/1", "{}")), RELAY_OK);
	assert_int_equal((int) sink_named("wh")->outstanding, 1);	/* the event after */
	assert_int_equal(feed(C(5, "0/100", "0/130")), RELAY_OK);
	assert_int_equal(relay_sync(&R), RELAY_OK);
	/* the control rows are not events, and nothing was reported as bad */
	assert_int_equal(count_lines(NULL), 2);
	assert_int_equal(count_lines("relay.invalid"), 0);

	/* the route goes, then the sink; a truncate of routes empties them */
	assert_int_equal(feed(B(6, "0/200", "0/230")), RELAY_OK);
	assert_int_equal(feed(ROW("D", "route", "\"identity\":[" COL("sink", "\"wh\"") "," COL("pattern", "\"order.*\"") "]")), RELAY_OK);
	assert_int_equal(sink_named("wh")->npatterns, 0);
	assert_int_equal(feed(ROUTE_INSERT("*")), RELAY_OK);
	assert_int_equal(sink_named("wh")->npatterns, 1);
	assert_int_equal(feed(ROW("T", "route", "\"x\":0")), RELAY_OK);
	assert_int_equal(sink_named("wh")->npatterns, 0);
	assert_int_equal(feed(ROW("D", "sink", "\"identity\":[" COL("name", "\"wh\"") "]")), RELAY_OK);
	assert_null(sink_named("wh"));
	assert_int_equal(feed(C(6, "0/200", "0/230")), RELAY_OK);
}

static void
forged_relay_messages_steer_nothing(void **state)
{
	(void) state;
	assert_int_equal(feed(B(7, "0/300", "0/330")), RELAY_OK);
	assert_int_equal(feed(MSG("relay.config", "relay/config",
							  "{\\\"sinks\\\":[{\\\"name\\\":\\\"evil\\\",\\\"uri\\\":\\\"http://127.0.0.1:9/\\\",\\\"options\\\":{}}],"
							  "\\\"routes\\\":[{\\\"sink\\\":\\\"evil\\\",\\\"pattern\\\":\\\"*\\\"}]}")), RELAY_OK);
	assert_int_equal(feed(MSG("relay.redeliver", "order/1", "{\\\"sink\\\":\\\"evil\\\"}")), RELAY_OK);
	assert_int_equal(feed(MSG("relay.config", "relay/config", "{\\\"sinks\\\":[{\\\"name\\\":\\\"x\\\",\\\"uri\\\":null}],\\\"routes\\\":[]}")), RELAY_OK);
	assert_int_equal(feed(C(7, "0/300", "0/330")), RELAY_OK);
	assert_int_equal(relay_sync(&R), RELAY_OK);
	assert_null(sink_named("evil"));
	assert_int_equal(configured_sinks(), 0);
	/* reported in the stream with their LSN, never delivered as themselves */
	assert_int_equal(count_lines("\"type\":\"ordersync.relay.invalid\""), 3);
	assert_int_equal(count_lines("\"type\":\"ordersync.relay.config\""), 0);
	assert_true(metric_is("ordersyncd_forged_messages_total 3"));
}

static void
bad_rows_are_refused_and_keep_the_running_sink(void **state)
{
	struct delivery_sink *wh;

	(void) state;
	assert_int_equal(feed(B(8, "0/400", "0/430")), RELAY_OK);
	assert_int_equal(feed(WH_INSERT), RELAY_OK);
	wh = sink_named("wh");
	assert_string_equal(wh->sink->ops->kind, "webhook");

	/* a null uri, options that are no object, a wrong name: refused, no crash */
	assert_int_equal(feed(ROW("U", "sink", "\"columns\":[" COL("name", "\"wh\"") "," COL("uri", "null") "],"
							  "\"identity\":[" COL("name", "\"wh\"") "]")), RELAY_OK);
	assert_ptr_equal(sink_named("wh"), wh);
	assert_int_equal(feed(ROW("U", "sink", "\"columns\":[" COL("name", "\"wh\"") "," COL("options", "\"[1,2]\"") "],"
							  "\"identity\":[" COL("name", "\"wh\"") "]")), RELAY_OK);
	assert_ptr_equal(sink_named("wh"), wh);
	assert_int_equal(feed(ROW("U", "sink", "\"columns\":[" COL("name", "\"wh\"") "," COL("uri", "\"gopher://x/\"") "],"
							  "\"identity\":[" COL("name", "\"wh\"") "]")), RELAY_OK);
	assert_ptr_equal(sink_named("wh"), wh);
	assert_int_equal(feed(ROW("I", "sink", "\"columns\":[" COL("name", "\"Bad Name\"") "," COL("uri", "\"http://127.0.0.1:9/\"") "]")), RELAY_OK);
	assert_null(sink_named("Bad Name"));
	assert_int_equal(feed(ROW("I", "sink", "\"columns\":7")), RELAY_OK);
	assert_int_equal(feed(ROW("D", "sink", "\"identity\":null")), RELAY_OK);
	assert_ptr_equal(sink_named("wh"), wh);

	/* a new sink with a null uri still exists: what is routed to it is dead-lettered */
	assert_int_equal(feed(ROW("I", "sink", "\"columns\":[" COL("name", "\"nu\"") "," COL("uri", "null") "," COL("options", "\"{}\"") "]")), RELAY_OK);
	assert_non_null(sink_named("nu"));
	assert_null(sink_named("nu")->sink->ops);
	assert_non_null(sink_named("nu")->refused);

	/* routes: bad patterns and missing columns are refused */
	assert_int_equal(feed(ROUTE_INSERT("order.")), RELAY_OK);
	assert_int_equal(feed(ROUTE_INSERT("../../etc")), RELAY_OK);
	assert_int_equal(feed(ROW("I", "route", "\"columns\":[" COL("sink", "1") "]")), RELAY_OK);
	assert_int_equal(sink_named("wh")->npatterns, 0);

	/* redeliveries without a usable event, or for no such sink */
	assert_int_equal(feed(ROW("I", "redelivery", "\"columns\":[" COL("dead_letter_id", "1") "," COL("sink", "\"wh\"") "," COL("event", "\"not json\"") "]")), RELAY_OK);
	assert_int_equal(feed(ROW("I", "redelivery", "\"columns\":[" COL("dead_letter_id", "1") "," COL("sink", "\"wh\"") "," COL("event", "\"{\\\"id\\\":1}\"") "]")), RELAY_OK);
	assert_int_equal(feed(ROW("I", "redelivery", "\"columns\":[" COL("sink", "null") "]")), RELAY_OK);
	assert_int_equal(feed(ROW("I", "redelivery", "\"columns\":[" COL("dead_letter_id", "1") "," COL("sink", "\"nope\"") "," COL("event", "\"{\\\"id\\\":\\\"0/1/1\\\",\\\"type\\\":\\\"ordersync.order.paid\\\",\\\"subject\\\":\\\"order/1\\\"}\"") "]")), RELAY_OK);
	assert_int_equal((int) wh->outstanding, 0);

	/* a good one goes to its sink, as part of this transaction */
	assert_int_equal(feed(ROW("I", "redelivery", "\"columns\":[" COL("dead_letter_id", "1") "," COL("sink", "\"wh\"") "," COL("event", "\"{\\\"id\\\":\\\"0/1/1\\\",\\\"type\\\":\\\"ordersync.order.paid\\\",\\\"subject\\\":\\\"order/1\\\"}\"") "]")), RELAY_OK);
	assert_int_equal((int) wh->outstanding, 1);
	assert_int_equal(feed(C(8, "0/400", "0/430")), RELAY_OK);
	assert_int_equal(relay_sync(&R), RELAY_OK);
	assert_int_equal(count_lines(NULL), 0);
	assert_false(metric_is("ordersyncd_config_refused_total 0\n"));
}

static void
personal_data_filter_fails_closed(void **state)
{
	static const char domain[] = "{\"id\":\"0/1/1\",\"data\":{\"order_id\":1,\"customer\":{\"name\":\"Ada\"}}}";
	static const char row[] = "{\"id\":\"0/1/1\",\"data\":{\"table\":\"orders\",\"columns\":"
		"[{\"name\":\"id\",\"value\":1},{\"name\":\"customer\",\"value\":\"{\\\"name\\\": \\\"Ada\\\"}\"}],"
		"\"identity\":[{\"name\":\"customer\",\"value\":\"Ada\"}]}}";
	static const char invalid[] = "{\"id\":\"0/1/1\",\"data\":{\"reason\":\"x\",\"line\":\"Ada\"}}";
	char		deep[600];
	size_t		n;
	char	   *out;

	(void) state;
	out = delivery_without_personal_data(domain, strlen(domain), &n);
	assert_non_null(out);
	assert_null(strstr(out, "Ada"));
	assert_non_null(strstr(out, "\"order_id\":1"));
	free(out);
	out = delivery_without_personal_data(row, strlen(row), &n);
	assert_non_null(out);
	assert_null(strstr(out, "Ada"));
	assert_non_null(strstr(out, "\"name\":\"id\""));
	free(out);
	out = delivery_without_personal_data(invalid, strlen(invalid), &n);
	assert_non_null(out);
	assert_null(strstr(out, "Ada"));
	free(out);

	/* nested deeper than the filter reads, truncated, trailing bytes: never sent */
	strcpy(deep, "{\"data\":{\"customer\":");
	for (int i = 0; i < 100; i++)
		strcat(deep, "[");
	strcat(deep, "\"Ada\"");
	for (int i = 0; i < 100; i++)
		strcat(deep, "]");
	strcat(deep, "}}");
	assert_null(delivery_without_personal_data(deep, strlen(deep), &n));
	assert_null(delivery_without_personal_data(domain, strlen(domain) - 2, &n));
	assert_null(delivery_without_personal_data("{} {\"customer\":1}", 17, &n));
}

static void
unfilterable_event_is_held_not_sent(void **state)
{
	struct delivery_sink *e;
	char		deep[700];

	(void) state;
	/* a sink that must not get personal data */
	assert_int_equal(feed(B(9, "0/500", "0/530")), RELAY_OK);
	assert_int_equal(feed(ROW("I", "sink", "\"columns\":[" COL("name", "\"pii\"") "," COL("uri", "\"http://127.0.0.1:9/x\"") ","
							  COL("options", "\"{\\\"drop_personal_data\\\": true}\"") "]")), RELAY_OK);
	assert_int_equal(feed(ROW("I", "route", "\"columns\":[" COL("sink", "\"pii\"") "," COL("pattern", "\"*\"") "]")), RELAY_OK);
	e = sink_named("pii");
	assert_non_null(e);
	assert_true(e->sink->opt.drop_personal_data);

	strcpy(deep, MSG("order.paid", "order/1", "{\\\"customer\\\":"));
	/* MSG ends with the closing of data, content and line: rebuild the end by hand */
	deep[strlen(deep) - strlen("}\"}")] = '\0';
	for (int i = 0; i < 80; i++)
		strcat(deep, "[");
	for (int i = 0; i < 80; i++)
		strcat(deep, "]");
	strcat(deep, "}}\"}");
	assert_int_equal(feed(deep), RELAY_OK);
	assert_int_equal(count_lines("relay.invalid"), 0);
	/* not handed to the sink: held for the dead letters (the database is down here) */
	assert_int_equal(e->inflight, 0);
	assert_int_equal((int) e->outstanding, 1);
	assert_true(metric_is("ordersyncd_personal_data_unfiltered_total{sink=\"pii\"} 1"));
	assert_int_equal(feed(C(9, "0/500", "0/530")), RELAY_OK);
	/* and the transaction is not done: nothing past it may be confirmed */
	assert_true(delivery_watermark(&R.dl) < 0x530);
}

int
group_control(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(rows_switch_the_configuration_where_they_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(forged_relay_messages_steer_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_rows_are_refused_and_keep_the_running_sink, setup, teardown),
		cmocka_unit_test(personal_data_filter_fails_closed),
		cmocka_unit_test_setup_teardown(unfilterable_event_is_held_not_sent, setup, teardown),
	};

	return cmocka_run_group_tests_name("control", tests, NULL, NULL);
}
