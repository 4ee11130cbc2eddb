/*
 * delivery.c — the delivery core (see delivery.h): routing events to the
 * sinks, the transactions they belong to and the watermark, the sinks'
 * life, and the loop around them. The lanes, the window and the retries
 * are in delivery_lanes.c, dead letters in delivery_letters.c.
 *
 * Transactions with unfinished entries sit in a ring in commit order, each
 * with a count; done_end is the end of the last one such that it and every
 * one before it are finished. SINK_ORDERED sinks (files) keep no entries:
 * they report the LSN up to which they are durable, and the watermark is
 * the lower of done_end and what every such sink still owes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "delivery_lanes.h"
#include "log.h"
#include "metrics.h"

void
delivery_init(struct delivery *dl, const char *conninfo, uint64_t max_bytes,
			  const struct sink_policy *policy)
{
	memset(dl, 0, sizeof(*dl));
	dl->conninfo = conninfo;
	dl->policy = policy ? policy : sink_default_policy();
	dl->max_bytes = max_bytes;
	if (getrandom(&dl->rnd, sizeof(dl->rnd), 0) != sizeof(dl->rnd))
		dl->rnd = 0x9e3779b9u;
}

/* ---- the transaction ring ---------------------------------------------- */

static struct delivery_txn *
txn_at(struct delivery *dl, uint64_t seq)
{
	return &dl->ring[seq % dl->ring_cap];
}

static uint64_t
txn_push(struct delivery *dl, uint64_t end_lsn, bool closed)
{
	if (dl->next_seq - dl->head_seq == dl->ring_cap)
	{
		uint64_t	cap = dl->ring_cap ? dl->ring_cap * 2 : 1024;
		struct delivery_txn *ring = xmalloc(sizeof(*ring) * cap);

		/* positions depend on the capacity: move every entry */
		for (uint64_t s = dl->head_seq; s < dl->next_seq; s++)
			ring[s % cap] = *txn_at(dl, s);
		free(dl->ring);
		dl->ring = ring;
		dl->ring_cap = cap;
	}
	*txn_at(dl, dl->next_seq) = (struct delivery_txn) {end_lsn, 0, closed};
	return dl->next_seq++;
}

/* Pop finished transactions off the head; done_end follows. */
static void
txn_advance(struct delivery *dl)
{
	while (dl->head_seq < dl->next_seq)
	{
		struct delivery_txn *t = txn_at(dl, dl->head_seq);

		if (!t->closed || t->outstanding > 0)
			break;
		if (t->end_lsn > dl->done_end)
			dl->done_end = t->end_lsn;
		dl->head_seq++;
	}
}

void
delivery_txn_hold(struct delivery *dl, uint64_t seq)
{
	txn_at(dl, seq)->outstanding++;
}

void
delivery_txn_release(struct delivery *dl, uint64_t seq)
{
	txn_at(dl, seq)->outstanding--;
	txn_advance(dl);
}

/* The ring entry of the transaction being read, made on its first entry. */
static uint64_t
current_txn(struct delivery *dl, uint64_t end_lsn)
{
	if (!dl->txn_open)
	{
		txn_push(dl, end_lsn, false);
		dl->txn_open = true;
	}
	return dl->next_seq - 1;
}

/* ---- events in --------------------------------------------------------------- */

static bool
matches(const struct delivery_sink *ds, const char *type)
{
	for (int i = 0; i < ds->npatterns; i++)
	{
		const char *p = ds->patterns[i];
		size_t		n = strlen(p);

		if (strcmp(p, "*") == 0 || strcmp(p, type) == 0)
			return true;
		/* "order.*" is "order." and anything after it */
		if (n >= 2 && p[n - 1] == '*' && p[n - 2] == '.' && strncmp(p, type, n - 1) == 0)
			return true;
	}
	return false;
}

/*
 * What one event looks like for each sink: as built, or without personal
 * data, which is made once per event however many sinks want it.
 */
struct event_in
{
	const char *id;
	const char *type;
	const char *subject;
	const char *body;
	size_t		len;
	struct delivery_payload *plain;
	struct delivery_payload *filtered;
	bool		filter_tried;
};

/* The payload for ds; *unfiltered when the filter failed (then the whole event). */
static struct delivery_payload *
payload_for(struct event_in *in, const struct delivery_sink *ds, bool *unfiltered)
{
	*unfiltered = false;
	if (ds->sink->opt.drop_personal_data)
	{
		if (!in->filter_tried)
		{
			size_t		n;
			char	   *text = delivery_without_personal_data(in->body, in->len, &n);

			in->filter_tried = true;
			if (text)
			{
				in->filtered = delivery_payload_new(in->id, in->type, in->subject, text, n);
				in->filtered->refs = 1;	/* held by in until the event is routed */
				free(text);
			}
		}
		if (in->filtered)
			return in->filtered;
		*unfiltered = true;		/* the dead letter keeps the event as it was built */
	}
	if (in->plain == NULL)
	{
		in->plain = delivery_payload_new(in->id, in->type, in->subject, in->body, in->len);
		in->plain->refs = 1;
	}
	return in->plain;
}

/* An event straight to a SINK_ORDERED sink: no entry, no copy. */
static void
append(struct delivery *dl, struct delivery_sink *ds, struct event_in *in)
{
	struct sink_event ev = {.id = in->id,.type = in->type,.subject = in->subject,
	.body = in->body,.body_len = in->len};

	ds->sink->ops->submit(ds->sink, &ev);
	metrics_event(ds->metrics_id, in->type, in->len + 1);
	if (ds->host.n > 0)
		delivery_lanes_reports(dl, ds);
}

static void
route(struct delivery *dl, uint64_t end_lsn, struct event_in *in, const char *only_sink)
{
	for (int i = 0; i < dl->nsinks; i++)
	{
		struct delivery_sink *ds = dl->sinks[i];

		if (ds->retired)
			continue;
		if (only_sink ? !(ds->configured && strcmp(ds->sink->name, only_sink) == 0)
			: !matches(ds, in->type))
			continue;
		if (ds->ordered)
			append(dl, ds, in);
		else
		{
			bool		unfiltered;
			struct delivery_payload *p = payload_for(in, ds, &unfiltered);

			delivery_lanes_enqueue(dl, ds, p, current_txn(dl, end_lsn), unfiltered);
		}
	}
	if (in->plain)
		delivery_payload_put(in->plain);
	if (in->filtered)
		delivery_payload_put(in->filtered);
}

void
delivery_event(struct delivery *dl, uint64_t end_lsn, const char *id, const char *type,
			   const char *subject, const char *body, size_t len)
{
	struct event_in in = {.id = id,.type = type,.subject = subject,.body = body,.len = len};

	route(dl, end_lsn, &in, NULL);
}

void
delivery_redeliver(struct delivery *dl, uint64_t end_lsn, int64_t dead_letter_id,
				   const char *sink, json_object *event)
{
	json_object *v;
	const char *field[3] = {"id", "type", "subject"};
	const char *val[3] = {NULL, NULL, NULL};
	struct event_in in = {0};

	for (int k = 0; k < 3; k++)
		if (json_object_object_get_ex(event, field[k], &v) && json_object_is_type(v, json_type_string))
			val[k] = json_object_get_string(v);
	if (!json_object_is_type(event, json_type_object) || !val[0] || !val[1] || !val[2])
	{
		metrics_config_refused();
		log_error("cannot redeliver dead letter %lld: its event is not an object with string "
				  "\"id\", \"type\" and \"subject\"", (long long) dead_letter_id);
		return;
	}
	for (int i = 0; i < dl->nsinks; i++)
	{
		struct delivery_sink *ds = dl->sinks[i];

		if (ds->configured && !ds->retired && strcmp(ds->sink->name, sink) == 0)
		{
			in.id = val[0];
			in.type = strncmp(val[1], "ordersync.", 10) == 0 ? val[1] + 10 : val[1];
			in.subject = val[2];
			in.body = json_object_to_json_string_length(event, JSON_C_TO_STRING_PLAIN |
														JSON_C_TO_STRING_NOSLASHESCAPE, &in.len);
			log_info("redelivering dead letter %lld (event %s) to sink \"%s\"",
					 (long long) dead_letter_id, val[0], sink);
			route(dl, end_lsn, &in, sink);
			return;
		}
	}
	log_error("cannot redeliver dead letter %lld: this relay has no sink \"%s\"\n"
			  "HINT: add it with ordersync.add_sink() and call ordersync.redeliver(%lld) again",
			  (long long) dead_letter_id, sink, (long long) dead_letter_id);
}

/* ---- transactions and the watermark --------------------------------------- */

void
delivery_commit(struct delivery *dl, uint64_t end_lsn)
{
	for (int i = 0; i < dl->nsinks; i++)
	{
		struct delivery_sink *ds = dl->sinks[i];

		if (ds->ordered)
		{
			ds->sink->ops->commit(ds->sink, end_lsn);
			if (end_lsn > ds->committed_lsn)
				ds->committed_lsn = end_lsn;
		}
	}
	if (dl->txn_open)
	{
		txn_at(dl, dl->next_seq - 1)->closed = true;
		dl->txn_open = false;
	}
	else if (dl->head_seq == dl->next_seq)
	{
		/* nothing in flight: no entry needed */
		if (end_lsn > dl->done_end)
			dl->done_end = end_lsn;
		return;
	}
	else
		txn_push(dl, end_lsn, true);	/* keeps its place in line */
	txn_advance(dl);
}

void
delivery_abort(struct delivery *dl)
{
	for (int i = 0; i < dl->nsinks; i++)
	{
		struct delivery_sink *ds = dl->sinks[i];

		if (ds->ordered)
		{
			ds->sink->ops->abort(ds->sink);
			delivery_lanes_reports(dl, ds);
		}
	}
	if (dl->txn_open)
	{
		struct delivery_txn *t = txn_at(dl, dl->next_seq - 1);

		/* the server sends it again; its entries here only have to finish */
		t->end_lsn = 0;
		t->closed = true;
		dl->txn_open = false;
		txn_advance(dl);
	}
}

uint64_t
delivery_watermark(const struct delivery *dl)
{
	uint64_t	w = dl->done_end;

	/* a file that has synced everything committed to it holds nothing back */
	for (int i = 0; i < dl->nsinks; i++)
	{
		const struct delivery_sink *ds = dl->sinks[i];

		if (ds->ordered && ds->durable_lsn < ds->committed_lsn && ds->durable_lsn < w)
			w = ds->durable_lsn;
	}
	return w;
}

bool
delivery_idle(const struct delivery *dl)
{
	return dl->head_seq == dl->next_seq && !dl->txn_open;
}

bool
delivery_idle_advance(struct delivery *dl, uint64_t lsn)
{
	if (!delivery_idle(dl) || lsn <= dl->done_end)
		return false;
	for (int i = 0; i < dl->nsinks; i++)
		if (dl->sinks[i]->ordered && dl->sinks[i]->durable_lsn < dl->sinks[i]->committed_lsn)
			return false;
	dl->done_end = lsn;
	return true;
}

bool
delivery_backlogged(const struct delivery *dl)
{
	return dl->outstanding_bytes > dl->max_bytes ||
		dl->next_seq - dl->head_seq > (UINT64_C(1) << 20);
}

bool
delivery_has_remote_sinks(const struct delivery *dl)
{
	for (int i = 0; i < dl->nsinks; i++)
		if (!dl->sinks[i]->ordered)
			return true;
	return false;
}

const char *
delivery_fatal(const struct delivery *dl)
{
	return dl->fatal;
}

void
delivery_flush(struct delivery *dl)
{
	for (int i = 0; i < dl->nsinks; i++)
	{
		struct delivery_sink *ds = dl->sinks[i];

		if (ds->sink->ops && ds->sink->ops->flush)
		{
			ds->sink->ops->flush(ds->sink);
			if (ds->host.n > 0)
				delivery_lanes_reports(dl, ds);
		}
	}
}

/* Do the SINK_ORDERED sinks owe anything committed? */
static bool
ordered_behind(const struct delivery *dl)
{
	for (int i = 0; i < dl->nsinks; i++)
		if (dl->sinks[i]->ordered && dl->sinks[i]->durable_lsn < dl->sinks[i]->committed_lsn)
			return true;
	return false;
}

int
delivery_sync(struct delivery *dl)
{
	for (;;)
	{
		int			timeout = 1000;

		/* again each round: a sync that began before the last commit covers less */
		delivery_flush(dl);
		if (dl->fatal != NULL || !ordered_behind(dl))
			break;

		/* the file sinks alone: a remote sink's connect must not hold this up */
		pollset_reset(&dl->ps);
		for (int i = 0; i < dl->nsinks; i++)
			if (dl->sinks[i]->ordered)
				dl->sinks[i]->sink->ops->prepare(dl->sinks[i]->sink, &dl->ps, &timeout);
		(void) poll(dl->ps.fds, (nfds_t) dl->ps.n, timeout);
		for (int i = 0; i < dl->nsinks; i++)
		{
			struct delivery_sink *ds = dl->sinks[i];

			if (ds->ordered)
			{
				ds->sink->ops->poll(ds->sink, &dl->ps);
				delivery_lanes_reports(dl, ds);
			}
		}
	}
	return dl->fatal ? -1 : 0;
}

void
delivery_reopen(struct delivery *dl)
{
	for (int i = 0; i < dl->nsinks; i++)
	{
		struct delivery_sink *ds = dl->sinks[i];

		if (ds->sink->ops && ds->sink->ops->reopen)
		{
			ds->sink->ops->reopen(ds->sink);
			delivery_lanes_reports(dl, ds);
		}
	}
}

/* ---- the loop --------------------------------------------------------------- */

void
delivery_prepare(struct delivery *dl, struct pollset *ps, int *timeout_ms)
{
	int64_t		now = sink_now_ms();

	if (delivery_lanes_next_retry(dl) >= 0)
	{
		int64_t		left = delivery_lanes_next_retry(dl) - now;
		int			ms = left < 0 ? 0 : left > 3600000 ? 3600000 : (int) left;

		if (*timeout_ms < 0 || ms < *timeout_ms)
			*timeout_ms = ms;
	}
	for (int i = 0; i < dl->nsinks; i++)
	{
		struct delivery_sink *ds = dl->sinks[i];

		if (ds->sink->ops)
			ds->sink->ops->prepare(ds->sink, ps, timeout_ms);
		/* lanes that could go but the sink said busy: its poll may free it */
		if (!TAILQ_EMPTY(&ds->ready) && !ds->busy &&
			(ds->window == 0 || ds->inflight < ds->window))
			*timeout_ms = 0;
	}
}

void
delivery_poll(struct delivery *dl, const struct pollset *ps)
{
	/* lanes whose retry time came */
	delivery_lanes_expire(dl);
	for (int i = 0; i < dl->nsinks; i++)
	{
		struct delivery_sink *ds = dl->sinks[i];

		if (ds->sink->ops)
		{
			ds->busy = false;
			ds->sink->ops->poll(ds->sink, ps);
		}
		delivery_lanes_run(dl, ds);
		if (!ds->ordered)
			metrics_set_outstanding(ds->metrics_id, ds->outstanding);
	}
	delivery_reap(dl);
}

void
delivery_tick(struct delivery *dl)
{
	for (int i = 0; i < dl->nsinks; i++)
	{
		struct delivery_sink *ds = dl->sinks[i];

		if (ds->ordered)
		{
			ds->sink->ops->poll(ds->sink, NULL);
			if (ds->host.n > 0)
				delivery_lanes_reports(dl, ds);
		}
	}
}

void
delivery_pump(struct delivery *dl, int timeout_ms)
{
	pollset_reset(&dl->ps);
	delivery_prepare(dl, &dl->ps, &timeout_ms);
	(void) poll(dl->ps.fds, (nfds_t) dl->ps.n, timeout_ms);
	delivery_poll(dl, &dl->ps);
}

/* ---- sinks come and go ----------------------------------------------------- */

/* A sink's options, checked: 0, or -1 with err naming the sink. */
static int
check_options(struct sink *s, json_object *options, char *err, size_t errlen)
{
	if (s->ops->flags & SINK_LOCAL)
	{
		if (options == NULL)
			return 0;
		snprintf(err, errlen, "--sink-options is for webhook, Kafka and RabbitMQ sinks, not %s",
				 s->uri);
		return -1;
	}
	if (sink_parse_options(&s->opt, options, err, errlen) != 0)
	{
		char		tmp[512];

		snprintf(tmp, sizeof(tmp), "sink \"%s\": %s", s->name, err);
		snprintf(err, errlen, "%s", tmp);
		return -1;
	}
	s->opt.raw = json_object_get(options);
	/* sink_check names the sink itself */
	return sink_check(s, err, errlen);
}

struct delivery_sink *
delivery_open_sink(struct delivery *dl, const char *name, const char *uri, json_object *options,
				   bool trusted, bool keep_refused, char *err, size_t errlen)
{
	struct delivery_sink *ds = xcalloc(sizeof(*ds));
	struct sink *s = xcalloc(sizeof(*s));
	const struct sink_ops *ops = sink_kind_for(uri);

	ds->sink = s;
	sink_host_init(&ds->host);
	TAILQ_INIT(&ds->ready);
	s->name = xstrdup(name);
	s->uri = xstrdup(uri);
	s->trusted = trusted;
	s->policy = dl->policy;
	sink_parse_options(&s->opt, NULL, NULL, 0);
	if (ops == NULL || (!trusted && (ops->flags & SINK_LOCAL)))
	{
		char		shown[512];

		sink_redact_uri(uri, shown, sizeof(shown));
		snprintf(err, errlen, "sink \"%s\": unsupported uri \"%s\"; use http://, https://, "
				 "kafka://brokers/topic or amqp://user@host/vhost?exchange=NAME", name, shown);
	}
	else
	{
		s->ops = ops;
		if (check_options(s, options, err, errlen) == 0 &&
			ops->open(s, &ds->host, err, errlen) == 0)
		{
			s->host = &ds->host;
			ds->ordered = (ops->flags & SINK_ORDERED) != 0;
			ds->window = s->opt.max_in_flight > 0 ? s->opt.max_in_flight : ops->window;
			ds->metrics_id = ds->ordered ? metrics_add_sink(name) : metrics_register_lane_sink(name);
			return ds;
		}
	}
	s->ops = NULL;				/* nothing of the sink's own to close */
	json_object_put(s->opt.raw);
	sink_parse_options(&s->opt, NULL, NULL, 0);	/* the defaults: retries of the dead letters */
	if (!keep_refused)
	{
		free(s->name);
		free(s->uri);
		free(s);
		sink_host_free(&ds->host);
		free(ds);
		return NULL;
	}
	ds->refused = xstrdup(err);
	ds->metrics_id = metrics_register_lane_sink(name);
	return ds;
}

void
delivery_add_sink(struct delivery *dl, struct delivery_sink *ds, bool configured, json_object *config)
{
	if (dl->nsinks == dl->cap)
	{
		dl->cap = dl->cap ? dl->cap * 2 : 8;
		dl->sinks = xrealloc(dl->sinks, sizeof(*dl->sinks) * (size_t) dl->cap);
	}
	dl->sinks[dl->nsinks++] = ds;
	ds->configured = configured;
	ds->config = config ? json_object_get(config) : NULL;
}

void
delivery_add_pattern(struct delivery_sink *ds, const char *p)
{
	ds->patterns = xrealloc(ds->patterns, sizeof(char *) * (size_t) (ds->npatterns + 1));
	ds->patterns[ds->npatterns++] = xstrdup(p);
}

void
delivery_drop_patterns(struct delivery_sink *ds)
{
	for (int i = 0; i < ds->npatterns; i++)
		free(ds->patterns[i]);
	free(ds->patterns);
	ds->patterns = NULL;
	ds->npatterns = 0;
}

void
delivery_retire(struct delivery_sink *ds)
{
	delivery_drop_patterns(ds);
	ds->retired = true;
	if (ds->outstanding > 0)
		log_info("sink \"%s\" left the configuration; delivering the %llu events it still has",
				 ds->sink->name, (unsigned long long) ds->outstanding);
}

/* Close the sink and drop what it still has (unconfirmed: the stream brings it again). */
static void
close_sink(struct delivery *dl, struct delivery_sink *ds)
{
	struct sink *s = ds->sink;

	if (s->ops)
		s->ops->close(s);
	delivery_lanes_drop(dl, ds);
	delivery_drop_patterns(ds);
	json_object_put(ds->config);
	json_object_put(s->opt.raw);
	free(s->name);
	free(s->uri);
	free(s);
	sink_host_free(&ds->host);
	free(ds->refused);
	free(ds);
}

void
delivery_reap(struct delivery *dl)
{
	for (int i = 0; i < dl->nsinks;)
	{
		struct delivery_sink *ds = dl->sinks[i];

		if (ds->retired && ds->outstanding == 0)
		{
			log_info("closed sink \"%s\"", ds->sink->name);
			close_sink(dl, ds);
			dl->sinks[i] = dl->sinks[--dl->nsinks];
		}
		else
			i++;
	}
}

void
delivery_free(struct delivery *dl)
{
	for (int i = 0; i < dl->nsinks; i++)
		close_sink(dl, dl->sinks[i]);
	free(dl->sinks);
	delivery_lanes_free_pools(dl);
	json_object_put(dl->config);
	free(dl->ring);
	pollset_free(&dl->ps);
	PQfinish(dl->conn);
	free(dl->fatal);
	memset(dl, 0, sizeof(*dl));
}

