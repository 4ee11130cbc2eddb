/*
 * test_deliver.c — the delivery accounting that decides what the relay may
 * confirm: a transaction counts only when every delivery of it and of
 * every earlier transaction is finished, whatever order sinks finish in;
 * routing by event-type pattern; a cut-off transaction never confirms;
 * a failure whose dead letter cannot be written stays unconfirmed;
 * backpressure; and configuration changes that keep, replace and retire
 * sinks without losing what they hold.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "deliver.h"

/* A sink that keeps what it gets, for the test to finish. */
struct fake
{
	struct delivery *got[64];
	int			n;
};

static void
fake_submit(struct dsink *s, struct delivery *d)
{
	struct fake *f = s->state;

	f->got[f->n++] = d;
}

static void
fake_prepare(struct dsink *s, struct pollset *ps, int *timeout_ms)
{
	(void) s;
	(void) ps;
	(void) timeout_ms;
}

static void
fake_work(struct dsink *s, const struct pollset *ps)
{
	(void) s;
	(void) ps;
}

static void
fake_close(struct dsink *s)
{
	free(s->state);
}

static const struct dsink_ops fake_ops = {
	.kind = "fake",.submit = fake_submit,.prepare = fake_prepare,
	.work = fake_work,.close = fake_close
};

/* A fake sink with routes, as the configuration would add it. */
static struct fake *
add_fake(struct deliver *dl, const char *name, const char *const *patterns, int n)
{
	struct dsink *s = calloc(1, sizeof(*s));
	struct dl_sink *e;

	s->ops = &fake_ops;
	s->name = strdup(name);
	s->uri = strdup("fake://");
	s->state = calloc(1, sizeof(struct fake));
	s->metrics_id = -1;
	dsink_parse_options(&s->opt, NULL, NULL, 0);
	dl->sinks = realloc(dl->sinks, sizeof(*dl->sinks) * (size_t) (dl->nsinks + 1));
	e = &dl->sinks[dl->nsinks++];
	memset(e, 0, sizeof(*e));
	e->sink = s;
	e->patterns = calloc((size_t) n, sizeof(char *));
	for (int i = 0; i < n; i++)
		e->patterns[i] = strdup(patterns[i]);
	e->npatterns = n;
	return s->state;
}

static void
event(struct deliver *dl, uint64_t end, const char *type)
{
	deliver_event(dl, end, 0, "0/1/1", type, "order/1", "{}", 2);
}

static void
deliver_confirms_only_whole_prefixes(void **state)
{
	struct deliver dl;
	static const char *const all[] = {"*"};
	struct fake *f;

	(void) state;
	deliver_init(&dl, "host=/nonexistent dbname=none connect_timeout=1", 1 << 20, NULL);
	f = add_fake(&dl, "a", all, 1);

	event(&dl, 100, "order.created");
	event(&dl, 100, "order.paid");
	deliver_commit(&dl, 100, 0);	/* T1: two deliveries */
	deliver_commit(&dl, 200, 0);	/* T2: none, but after T1 */
	event(&dl, 300, "order.shipped");
	deliver_commit(&dl, 300, 0);	/* T3: one */
	assert_int_equal(f->n, 3);
	assert_int_equal(dl.done_end, 0);
	assert_false(deliver_idle(&dl));

	dsink_accepted(f->got[2]);	/* T3 first: nothing may be confirmed yet */
	assert_int_equal(dl.done_end, 0);
	dsink_accepted(f->got[0]);
	assert_int_equal(dl.done_end, 0);
	dsink_accepted(f->got[1]);	/* T1 done: T2 and T3 follow at once */
	assert_int_equal(dl.done_end, 300);
	assert_true(deliver_idle(&dl));

	/* nothing in flight: a commit is done at once */
	deliver_commit(&dl, 400, 0);
	assert_int_equal(dl.done_end, 400);
	deliver_free(&dl);
}

/* The relay's lag is that of the last transaction the sinks finished. */
static void
deliver_done_carries_its_commit_time(void **state)
{
	struct deliver dl;
	static const char *const all[] = {"*"};
	struct fake *f;

	(void) state;
	deliver_init(&dl, "dbname=none", 1 << 20, NULL);
	f = add_fake(&dl, "a", all, 1);
	deliver_event(&dl, 100, 1111, "0/1/1", "order.paid", "order/1", "{}", 2);
	deliver_commit(&dl, 100, 1111);
	deliver_commit(&dl, 200, 2222);	/* nothing routed, waits behind the first */
	deliver_event(&dl, 300, 3333, "0/3/1", "order.paid", "order/1", "{}", 2);
	deliver_commit(&dl, 300, 3333);
	dsink_accepted(f->got[0]);
	assert_int_equal(dl.done_end, 200);
	assert_int_equal(dl.done_commit_usec, 2222);
	dsink_accepted(f->got[1]);
	assert_int_equal(dl.done_end, 300);
	assert_int_equal(dl.done_commit_usec, 3333);
	deliver_commit(&dl, 400, 4444);	/* idle: done at once */
	assert_int_equal(dl.done_commit_usec, 4444);
	deliver_free(&dl);
}

static void
deliver_routes_by_pattern(void **state)
{
	struct deliver dl;
	static const char *const orders[] = {"order.*"};
	static const char *const payment[] = {"order.paid", "inventory.low_stock"};
	static const char *const all[] = {"*"};
	struct fake *a,
			   *b,
			   *c;
	const char *types[] = {"order.created", "order.paid", "inventory.low_stock",
	"inventory.reserved", "orders.x", "order"};

	(void) state;
	deliver_init(&dl, "dbname=none", 1 << 20, NULL);
	a = add_fake(&dl, "warehouse", orders, 1);
	b = add_fake(&dl, "payment", payment, 2);
	c = add_fake(&dl, "lake", all, 1);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		event(&dl, 100, types[i]);
	deliver_commit(&dl, 100, 0);
	assert_int_equal(a->n, 2);	/* order.created, order.paid: not orders.x, not "order" */
	assert_string_equal(a->got[1]->type, "order.paid");
	assert_int_equal(b->n, 2);
	assert_string_equal(b->got[1]->type, "inventory.low_stock");
	assert_int_equal(c->n, 6);
	assert_int_equal(dl.outstanding, 10);
	for (int i = 0; i < a->n; i++)
		dsink_accepted(a->got[i]);
	for (int i = 0; i < b->n; i++)
		dsink_accepted(b->got[i]);
	assert_int_equal(dl.done_end, 0);	/* the lake still has them */
	for (int i = 0; i < c->n; i++)
		dsink_accepted(c->got[i]);
	assert_int_equal(dl.done_end, 100);
	assert_int_equal(dl.outstanding, 0);
	assert_int_equal(dl.outstanding_bytes, 0);
	deliver_free(&dl);
}

static void
deliver_cut_transaction_never_confirms(void **state)
{
	struct deliver dl;
	static const char *const all[] = {"*"};
	struct fake *f;

	(void) state;
	deliver_init(&dl, "dbname=none", 1 << 20, NULL);
	f = add_fake(&dl, "a", all, 1);
	event(&dl, 500, "order.paid");
	deliver_abort(&dl);			/* the stream broke inside it */
	event(&dl, 500, "order.paid");	/* sent again after the reconnect */
	deliver_commit(&dl, 500, 0);
	dsink_accepted(f->got[1]);
	assert_int_equal(dl.done_end, 0);	/* the cut copy is still out there */
	dsink_accepted(f->got[0]);
	assert_int_equal(dl.done_end, 500);
	deliver_free(&dl);
}

static void
deliver_failure_without_dead_letter_stays(void **state)
{
	struct deliver dl;
	static const char *const all[] = {"*"};
	struct fake *f;
	int64_t		at,
				now;

	(void) state;
	deliver_init(&dl, "host=/nonexistent-ordersync port=1 dbname=none connect_timeout=1", 1 << 20, NULL);
	f = add_fake(&dl, "a", all, 1);
	event(&dl, 100, "order.paid");
	deliver_commit(&dl, 100, 0);

	/* retryable: a time in the future, within the backoff cap */
	now = dsink_now_ms();
	at = dsink_failed(f->got[0], true, "HTTP 503");
	assert_true(at >= now && at <= now + f->got[0]->sink->opt.backoff_max_ms + 10);
	assert_int_equal(f->got[0]->attempts, 1);

	/* refused for good, but the dead letter cannot be written: kept, not given up */
	at = dsink_failed(f->got[0], false, "HTTP 400");
	assert_true(at != DSINK_GIVEN_UP);
	assert_int_equal(dl.done_end, 0);
	assert_int_equal(dl.outstanding, 1);
	dsink_accepted(f->got[0]);
	assert_int_equal(dl.done_end, 100);
	deliver_free(&dl);
}

static void
deliver_backpressure(void **state)
{
	struct deliver dl;
	static const char *const all[] = {"*"};
	struct fake *f;
	char		body[600];

	(void) state;
	memset(body, 'x', sizeof(body));
	deliver_init(&dl, "dbname=none", 1000, NULL);
	f = add_fake(&dl, "a", all, 1);
	deliver_event(&dl, 100, 0, "0/1/1", "order.paid", "order/1", body, 600);
	assert_false(deliver_backlogged(&dl));
	deliver_event(&dl, 100, 0, "0/1/2", "order.paid", "order/1", body, 600);
	assert_true(deliver_backlogged(&dl));
	dsink_accepted(f->got[0]);
	assert_false(deliver_backlogged(&dl));
	dsink_accepted(f->got[1]);
	deliver_free(&dl);
}

static json_object *
config(const char *text)
{
	json_object *o = json_tokener_parse(text);

	assert_non_null(o);
	return o;
}

static void
deliver_config_keeps_replaces_retires(void **state)
{
	struct deliver dl;
	json_object *c1 = config("{\"sinks\": [{\"name\": \"wh\", \"uri\": \"http://127.0.0.1:9/x\", \"options\": {}},"
							 " {\"name\": \"bad\", \"uri\": \"ftp://x/\", \"options\": {}}],"
							 " \"routes\": [{\"sink\": \"wh\", \"pattern\": \"order.*\"},"
							 " {\"sink\": \"bad\", \"pattern\": \"*\"}]}");
	json_object *c2 = config("{\"sinks\": [{\"name\": \"wh\", \"uri\": \"http://127.0.0.1:9/x\", \"options\": {}}],"
							 " \"routes\": [{\"sink\": \"wh\", \"pattern\": \"order.paid\"}]}");
	json_object *c3 = config("{\"sinks\": [{\"name\": \"wh\", \"uri\": \"http://127.0.0.1:9/y\", \"options\": {}}],"
							 " \"routes\": []}");
	struct dsink *wh;

	(void) state;
	deliver_init(&dl, "host=/nonexistent-ordersync dbname=none connect_timeout=1", 1 << 20, NULL);

	/* a sink that cannot be opened is still there, so its events are not lost */
	assert_int_equal(deliver_apply_config(&dl, c1, "test"), 1);
	assert_int_equal(dl.nsinks, 2);
	wh = dl.sinks[0].sink;
	assert_string_equal(wh->name, "wh");
	assert_string_equal(dl.sinks[0].patterns[0], "order.*");

	/* same sink, other routes: kept as it is */
	deliver_apply_config(&dl, c2, "test");
	assert_int_equal(dl.nsinks, 1);	/* "bad" held nothing: closed at once */
	assert_ptr_equal(dl.sinks[0].sink, wh);
	assert_int_equal(dl.sinks[0].npatterns, 1);
	assert_string_equal(dl.sinks[0].patterns[0], "order.paid");

	/* a changed URI: a new sink under the same name, the old one retired */
	deliver_apply_config(&dl, c3, "test");
	for (int i = 0; i < dl.nsinks; i++)
		assert_false(dl.sinks[i].sink == wh);
	assert_int_equal(dl.nsinks, 1);
	assert_int_equal(dl.sinks[0].npatterns, 0);

	json_object_put(c1);
	json_object_put(c2);
	json_object_put(c3);
	deliver_free(&dl);
}

int
group_deliver(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(deliver_confirms_only_whole_prefixes),
		cmocka_unit_test(deliver_done_carries_its_commit_time),
		cmocka_unit_test(deliver_routes_by_pattern),
		cmocka_unit_test(deliver_cut_transaction_never_confirms),
		cmocka_unit_test(deliver_failure_without_dead_letter_stays),
		cmocka_unit_test(deliver_backpressure),
		cmocka_unit_test(deliver_config_keeps_replaces_retires),
	};

	return cmocka_run_group_tests_name("deliver", tests, NULL, NULL);
}
