/*
 * test_delivery.c — the delivery core (delivery.c) with fake sinks: the
 * watermark counts a transaction only when every event of it and of every
 * earlier transaction is finished, whatever order sinks answer in; routing
 * by event-type pattern; per-subject lanes (one at a time for a lane depth
 * of 1, in order when pipelined); the in-flight window; the retry schedule
 * (backoff, Retry-After, retries before later events of the subject);
 * returned events that cost no attempt; dead letters that cannot be
 * written keep the event unconfirmed; a refused sink; a file sink holding
 * the watermark until its fsync; backpressure; and configuration changes
 * that keep, replace and retire sinks without losing what they hold.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"
#include "fake_sink.h"
#include "log.h"

/* nothing listens there: dead letters fail at once */
#define NO_DB "host=/nonexistent-ordersync port=1 dbname=none connect_timeout=1"

static const char *const all[] = {"*"};

static void
event(struct delivery *dl, uint64_t end, const char *id, const char *subject)
{
	delivery_event(dl, end, id, "order.paid", subject, "{}", 2);
}

static void
sleep_ms(int ms)
{
	struct timespec ts = {0, ms * 1000000L};

	nanosleep(&ts, NULL);
}

static void
delivery_confirms_only_whole_prefixes(void **state)
{
	struct delivery dl;
	struct fake *f;

	(void) state;
	delivery_init(&dl, NO_DB, 1 << 20, NULL);
	f = fake_add(&dl, "a", all, 1, 0, 0);

	event(&dl, 100, "0/64/1", "order/1");
	event(&dl, 100, "0/64/2", "order/2");
	delivery_commit(&dl, 100);	/* T1: two events */
	delivery_commit(&dl, 200);	/* T2: none, but after T1 */
	event(&dl, 300, "0/12C/1", "order/3");
	delivery_commit(&dl, 300);	/* T3: one */
	assert_int_equal(f->n, 3);
	assert_int_equal(delivery_watermark(&dl), 0);
	assert_false(delivery_idle(&dl));

	sink_host_accepted(f->host, f->got[2]);	/* T3 first: nothing may be confirmed yet */
	fake_settle(&dl);
	assert_int_equal(delivery_watermark(&dl), 0);
	sink_host_accepted(f->host, f->got[0]);
	fake_settle(&dl);
	assert_int_equal(delivery_watermark(&dl), 0);
	sink_host_accepted(f->host, f->got[1]);	/* T1 done: T2 and T3 follow at once */
	fake_settle(&dl);
	assert_int_equal(delivery_watermark(&dl), 300);
	assert_true(delivery_idle(&dl));

	/* nothing in flight: a commit is done at once */
	delivery_commit(&dl, 400);
	assert_int_equal(delivery_watermark(&dl), 400);
	delivery_free(&dl);
}

static void
delivery_routes_by_pattern(void **state)
{
	struct delivery dl;
	static const char *const orders[] = {"order.*"};
	static const char *const payment[] = {"order.paid", "inventory.low_stock"};
	struct fake *a,
			   *b,
			   *c;
	const char *types[] = {"order.created", "order.paid", "inventory.low_stock",
	"inventory.reserved", "orders.x", "order"};

	(void) state;
	delivery_init(&dl, NO_DB, 1 << 20, NULL);
	a = fake_add(&dl, "warehouse", orders, 1, 0, 0);
	b = fake_add(&dl, "payment", payment, 2, 0, 0);
	c = fake_add(&dl, "lake", all, 1, 0, 0);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		delivery_event(&dl, 100, "0/1/1", types[i], "order/1", "{}", 2);
	delivery_commit(&dl, 100);
	assert_int_equal(a->n, 2);	/* order.created, order.paid: not orders.x, not "order" */
	assert_string_equal(a->got[1]->type, "order.paid");
	assert_int_equal(b->n, 2);
	assert_string_equal(b->got[1]->type, "inventory.low_stock");
	assert_int_equal(c->n, 6);
	assert_int_equal(dl.outstanding, 10);
	for (int i = 0; i < a->n; i++)
		sink_host_accepted(a->host, a->got[i]);
	for (int i = 0; i < b->n; i++)
		sink_host_accepted(b->host, b->got[i]);
	fake_settle(&dl);
	assert_int_equal(delivery_watermark(&dl), 0);	/* the lake still has them */
	for (int i = 0; i < c->n; i++)
		sink_host_accepted(c->host, c->got[i]);
	fake_settle(&dl);
	assert_int_equal(delivery_watermark(&dl), 100);
	assert_int_equal(dl.outstanding, 0);
	assert_int_equal(dl.outstanding_bytes, 0);
	delivery_free(&dl);
}

/* Lane depth 1: one event of a subject at a time, in commit order. */
static void
delivery_lanes_one_at_a_time(void **state)
{
	struct delivery dl;
	struct fake *f;
	char		id[32];

	(void) state;
	delivery_init(&dl, NO_DB, 1 << 20, NULL);
	f = fake_add(&dl, "hook", all, 1, 1, 0);
	for (int i = 1; i <= 6; i++)
	{
		snprintf(id, sizeof(id), "0/64/%d", i);
		event(&dl, 100, id, i % 2 ? "order/odd" : "order/even");
	}
	delivery_commit(&dl, 100);
	/* the head of each subject only */
	assert_int_equal(f->n, 2);
	assert_string_equal(f->got[0]->id, "0/64/1");
	assert_string_equal(f->got[1]->id, "0/64/2");
	sink_host_accepted(f->host, f->got[1]);
	fake_settle(&dl);
	assert_int_equal(f->n, 3);
	assert_string_equal(f->got[2]->id, "0/64/4");	/* even's next, odd still waits */
	/* answer the rest in the order they went out: 0, 2, 3, ... */
	sink_host_accepted(f->host, f->got[0]);
	fake_settle(&dl);
	for (int k = 2; k < f->n && k < 6; k++)
	{
		sink_host_accepted(f->host, f->got[k]);
		fake_settle(&dl);
	}
	assert_int_equal(f->n, 6);
	assert_true(delivery_idle(&dl) || dl.outstanding == 0);
	/* each subject saw its own in order */
	{
		int			last_odd = 0,
					last_even = 0;

		for (int i = 0; i < f->n; i++)
		{
			int			n = atoi(strrchr(f->got[i]->id, '/') + 1);
			int		   *last = n % 2 ? &last_odd : &last_even;

			assert_true(n > *last);
			*last = n;
		}
	}
	delivery_free(&dl);
}

/* The window bounds what one sink holds; pipelined lanes keep order. */
static void
delivery_window_bounds_in_flight(void **state)
{
	struct delivery dl;
	struct fake *f;
	char		id[32];

	(void) state;
	delivery_init(&dl, NO_DB, 1 << 20, NULL);
	f = fake_add(&dl, "broker", all, 1, 0, 3);
	for (int i = 1; i <= 10; i++)
	{
		snprintf(id, sizeof(id), "0/64/%d", i);
		event(&dl, 100, id, "order/1");
	}
	delivery_commit(&dl, 100);
	assert_int_equal(f->n, 3);
	assert_int_equal(f->ds->inflight, 3);
	sink_host_accepted(f->host, f->got[0]);
	fake_settle(&dl);
	assert_int_equal(f->n, 4);
	assert_string_equal(f->got[3]->id, "0/64/4");
	/* a busy sink gets nothing until its next poll */
	f->busy = 1;
	sink_host_accepted(f->host, f->got[1]);
	fake_settle(&dl);
	assert_int_equal(f->n, 4);	/* it said busy: nothing more this round */
	fake_settle(&dl);
	assert_int_equal(f->n, 5);	/* its next poll: taken */
	delivery_free(&dl);
}

/*
 * A retryable failure: the event comes again after its backoff (not before
 * a Retry-After) and before anything later of its subject that the sink
 * does not hold yet; its attempts are counted. A returned event costs none.
 */
static void
delivery_retry_schedule_keeps_order(void **state)
{
	struct delivery dl;
	struct fake *f;
	char		id[32];
	struct sink_event *first;
	int			before;

	(void) state;
	log_threshold = LOG_ERROR;
	delivery_init(&dl, NO_DB, 1 << 20, NULL);
	f = fake_add(&dl, "broker", all, 1, 0, 2);
	for (int i = 1; i <= 4; i++)
	{
		snprintf(id, sizeof(id), "0/64/%d", i);
		event(&dl, 100, id, "order/1");
	}
	delivery_commit(&dl, 100);
	assert_int_equal(f->n, 2);
	first = f->got[0];
	sink_host_failed(f->host, first, true, sink_now_ms() + 400, "HTTP 503");
	fake_settle(&dl);
	/* the window has room, but event 3 must not overtake event 1's retry */
	assert_int_equal(f->n, 2);
	assert_int_equal(first->attempts, 1);
	sleep_ms(10);
	fake_settle(&dl);
	assert_int_equal(f->n, 2);	/* Retry-After not over */
	sleep_ms(450);
	fake_settle(&dl);
	assert_int_equal(f->n, 3);
	assert_string_equal(f->got[2]->id, "0/64/1");
	before = f->n;
	sink_host_returned(f->host, f->got[1]);	/* event 2 back: again, before 3 and 4 */
	sink_host_accepted(f->host, f->got[2]);
	fake_settle(&dl);
	assert_true(f->n > before);
	assert_string_equal(f->got[before]->id, "0/64/2");
	assert_int_equal(f->got[before]->attempts, 0);
	log_threshold = LOG_INFO;
	delivery_free(&dl);
}

/*
 * Refused for good, or out of attempts, but the dead letter cannot be
 * written (no database): the event stays unconfirmed and is tried again.
 */
static void
delivery_dead_letter_failure_keeps_event(void **state)
{
	struct delivery dl;
	struct fake *f;

	(void) state;
	log_threshold = (enum log_level) -1;
	delivery_init(&dl, NO_DB, 1 << 20, NULL);
	f = fake_add(&dl, "a", all, 1, 1, 0);
	f->ds->sink->opt.max_attempts = 2;
	f->ds->sink->opt.backoff_min_ms = f->ds->sink->opt.backoff_max_ms = 60000;
	event(&dl, 100, "0/64/1", "order/1");
	event(&dl, 100, "0/64/2", "order/1");
	delivery_commit(&dl, 100);
	sink_host_failed(f->host, f->got[0], false, 0, "HTTP 400");
	fake_settle(&dl);
	assert_int_equal(dl.outstanding, 2);
	assert_int_equal(delivery_watermark(&dl), 0);
	assert_int_equal(f->n, 1);	/* the subject waits behind it */
	/* a refused sink: everything waits for its dead letter, nothing is sent */
	sink_host_refused(f->host, "refused to connect to 169.254.169.254");
	fake_settle(&dl);
	sleep_ms(5);
	fake_settle(&dl);
	assert_int_equal(f->n, 1);
	assert_non_null(f->ds->refused);
	assert_int_equal(delivery_watermark(&dl), 0);
	assert_int_equal(dl.outstanding, 2);
	log_threshold = LOG_INFO;
	delivery_free(&dl);
}

/*
 * A sink that answers in any order, many transactions and subjects: the
 * watermark never passes a transaction with an unanswered event, and
 * reaches the end when all are answered.
 */
static void
delivery_watermark_never_passes_unaccepted(void **state)
{
	struct delivery dl;
	struct fake *f;
	char		id[32];
	uint64_t	end_of[400];
	bool		done[400] = {false};
	int			nev = 0;
	unsigned	rnd = 12345;

	(void) state;
	delivery_init(&dl, NO_DB, 1 << 20, NULL);
	f = fake_add(&dl, "shuffle", all, 1, 0, 0);
	for (int t = 1; t <= 100; t++)
	{
		for (int k = 0; k < t % 4; k++)
		{
			char		subject[16];

			snprintf(id, sizeof(id), "0/%X/%d", t * 16, k + 1);
			snprintf(subject, sizeof(subject), "order/%d", (t * 7 + k) % 9);
			event(&dl, (uint64_t) t * 16, id, subject);
			end_of[nev++] = (uint64_t) t * 16;
		}
		delivery_commit(&dl, (uint64_t) t * 16);
	}
	assert_int_equal(f->n, nev);
	for (int left = nev; left > 0; left--)
	{
		int			i;
		uint64_t	lowest = UINT64_MAX;

		do
		{
			rnd = rnd * 1103515245u + 12345u;
			i = (int) ((rnd >> 8) % (unsigned) nev);
		} while (done[i]);
		done[i] = true;
		sink_host_accepted(f->host, f->got[i]);
		fake_settle(&dl);
		for (int j = 0; j < nev; j++)
			if (!done[j] && end_of[j] < lowest)
				lowest = end_of[j];
		if (lowest != UINT64_MAX)
			assert_true(delivery_watermark(&dl) < lowest);
	}
	assert_int_equal(delivery_watermark(&dl), 100 * 16);
	delivery_free(&dl);
}

static void
delivery_cut_transaction_never_confirms(void **state)
{
	struct delivery dl;
	struct fake *f;

	(void) state;
	delivery_init(&dl, NO_DB, 1 << 20, NULL);
	f = fake_add(&dl, "a", all, 1, 0, 0);
	event(&dl, 500, "0/1F4/1", "order/1");
	delivery_abort(&dl);		/* the stream broke inside it */
	event(&dl, 500, "0/1F4/1", "order/1");	/* sent again after the reconnect */
	delivery_commit(&dl, 500);
	sink_host_accepted(f->host, f->got[1]);
	fake_settle(&dl);
	assert_int_equal(delivery_watermark(&dl), 0);	/* the cut copy is still out there */
	sink_host_accepted(f->host, f->got[0]);
	fake_settle(&dl);
	assert_int_equal(delivery_watermark(&dl), 500);
	delivery_free(&dl);
}

/* A file sink holds the watermark until its fsync reported. */
static void
delivery_file_sink_holds_until_durable(void **state)
{
	struct delivery dl;
	struct fake *f;
	char		dir[] = "/tmp/ordersyncd-unit-XXXXXX";
	char		spec[128],
				err[512],
				cmd[160];

	(void) state;
	assert_non_null(mkdtemp(dir));
	snprintf(spec, sizeof(spec), "file:%s/e.jsonl", dir);
	delivery_init(&dl, NO_DB, 1 << 20, NULL);
	assert_int_equal(delivery_add_cli_sink(&dl, spec, NULL, err, sizeof(err)), 0);
	f = fake_add(&dl, "a", all, 1, 0, 0);
	event(&dl, 100, "0/64/1", "order/1");
	delivery_commit(&dl, 100);
	sink_host_accepted(f->host, f->got[0]);
	fake_settle(&dl);
	assert_int_equal(delivery_watermark(&dl), 0);	/* written, not fsynced */
	assert_int_equal(delivery_sync(&dl), 0);
	assert_int_equal(delivery_watermark(&dl), 100);
	delivery_free(&dl);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void
delivery_backpressure(void **state)
{
	struct delivery dl;
	struct fake *f;
	char		body[600];

	(void) state;
	memset(body, 'x', sizeof(body));
	delivery_init(&dl, NO_DB, 1000, NULL);
	f = fake_add(&dl, "a", all, 1, 0, 0);
	delivery_event(&dl, 100, "0/1/1", "order.paid", "order/1", body, 600);
	assert_false(delivery_backlogged(&dl));
	delivery_event(&dl, 100, "0/1/2", "order.paid", "order/1", body, 600);
	assert_true(delivery_backlogged(&dl));
	sink_host_accepted(f->host, f->got[0]);
	fake_settle(&dl);
	assert_false(delivery_backlogged(&dl));
	sink_host_accepted(f->host, f->got[1]);
	fake_settle(&dl);
	delivery_free(&dl);
}

static json_object *
config(const char *text)
{
	json_object *o = json_tokener_parse(text);

	assert_non_null(o);
	return o;
}

static void
delivery_config_keeps_replaces_retires(void **state)
{
	struct delivery dl;
	json_object *c1 = config("{\"sinks\": [{\"name\": \"wh\", \"uri\": \"http://127.0.0.1:9/x\", \"options\": {}},"
							 " {\"name\": \"bad\", \"uri\": \"ftp://x/\", \"options\": {}}],"
							 " \"routes\": [{\"sink\": \"wh\", \"pattern\": \"order.*\"},"
							 " {\"sink\": \"bad\", \"pattern\": \"*\"}]}");
	json_object *c2 = config("{\"sinks\": [{\"name\": \"wh\", \"uri\": \"http://127.0.0.1:9/x\", \"options\": {}}],"
							 " \"routes\": [{\"sink\": \"wh\", \"pattern\": \"order.paid\"}]}");
	json_object *c3 = config("{\"sinks\": [{\"name\": \"wh\", \"uri\": \"http://127.0.0.1:9/y\", \"options\": {}}],"
							 " \"routes\": []}");
	json_object *c4 = config("{\"sinks\": [{\"name\": \"f\", \"uri\": \"file:/tmp/x\", \"options\": {}}],"
							 " \"routes\": []}");
	struct delivery_sink *wh;

	(void) state;
	log_threshold = (enum log_level) -1;
	delivery_init(&dl, NO_DB, 1 << 20, NULL);

	/* a sink that cannot be opened is still there, so its events are not lost */
	assert_int_equal(delivery_apply_config(&dl, c1, "test"), 1);
	assert_int_equal(dl.nsinks, 2);
	wh = dl.sinks[0];
	assert_string_equal(wh->sink->name, "wh");
	assert_string_equal(wh->patterns[0], "order.*");
	assert_non_null(strstr(dl.sinks[1]->refused, "unsupported uri"));

	/* same sink, other routes: kept as it is */
	delivery_apply_config(&dl, c2, "test");
	assert_int_equal(dl.nsinks, 1);	/* "bad" held nothing: closed at once */
	assert_ptr_equal(dl.sinks[0], wh);
	assert_int_equal(dl.sinks[0]->npatterns, 1);
	assert_string_equal(dl.sinks[0]->patterns[0], "order.paid");

	/* a changed URI: a new sink under the same name, the old one retired */
	delivery_apply_config(&dl, c3, "test");
	for (int i = 0; i < dl.nsinks; i++)
		assert_false(dl.sinks[i] == wh);
	assert_int_equal(dl.nsinks, 1);
	assert_int_equal(dl.sinks[0]->npatterns, 0);

	/* the database never gets a file sink */
	assert_int_equal(delivery_apply_config(&dl, c4, "test"), 1);
	assert_null(dl.sinks[0]->sink->ops);

	json_object_put(c1);
	json_object_put(c2);
	json_object_put(c3);
	json_object_put(c4);
	log_threshold = LOG_INFO;
	delivery_free(&dl);
}

int
group_delivery(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(delivery_confirms_only_whole_prefixes),
		cmocka_unit_test(delivery_routes_by_pattern),
		cmocka_unit_test(delivery_lanes_one_at_a_time),
		cmocka_unit_test(delivery_window_bounds_in_flight),
		cmocka_unit_test(delivery_retry_schedule_keeps_order),
		cmocka_unit_test(delivery_dead_letter_failure_keeps_event),
		cmocka_unit_test(delivery_watermark_never_passes_unaccepted),
		cmocka_unit_test(delivery_cut_transaction_never_confirms),
		cmocka_unit_test(delivery_file_sink_holds_until_durable),
		cmocka_unit_test(delivery_backpressure),
		cmocka_unit_test(delivery_config_keeps_replaces_retires),
	};

	return cmocka_run_group_tests_name("delivery", tests, NULL, NULL);
}
