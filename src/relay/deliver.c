/*
 * deliver.c — routing events to the delivery sinks, retries, dead letters,
 * and the per-transaction accounting that decides what may be confirmed
 * (see deliver.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "backoff.h"
#include "deliver.h"
#include "log.h"
#include "metrics.h"
#include "w2j.h"

/* dsink_accepted/dsink_failed reach the relay's one instance through this. */
static struct deliver *the_deliver;

void
deliver_init(struct deliver *dl, const char *conninfo, uint64_t max_bytes,
			 const struct dsink_policy *policy)
{
	memset(dl, 0, sizeof(*dl));
	dl->conninfo = conninfo;
	dl->policy = policy ? policy : dsink_default_policy();
	dl->max_bytes = max_bytes;
	if (getrandom(&dl->rnd, sizeof(dl->rnd), 0) != sizeof(dl->rnd))
		dl->rnd = 0x9e3779b9u;
	the_deliver = dl;
}

/* ---- the transaction ring --------------------------------------------- */

static struct dl_txn *
txn_at(struct deliver *dl, uint64_t seq)
{
	return &dl->ring[seq % dl->ring_cap];
}

static uint64_t
txn_push(struct deliver *dl, uint64_t end_lsn, int64_t commit_usec, bool closed)
{
	if (dl->next_seq - dl->head_seq == dl->ring_cap)
	{
		uint64_t	cap = dl->ring_cap ? dl->ring_cap * 2 : 1024;
		struct dl_txn *ring = ds_xmalloc(sizeof(*ring) * cap);

		/* positions depend on the capacity: move every entry */
		for (uint64_t s = dl->head_seq; s < dl->next_seq; s++)
			ring[s % cap] = *txn_at(dl, s);
		free(dl->ring);
		dl->ring = ring;
		dl->ring_cap = cap;
	}
	*txn_at(dl, dl->next_seq) = (struct dl_txn) {end_lsn, commit_usec, 0, closed};
	return dl->next_seq++;
}

/* Pop finished transactions off the head; done_end follows. */
static void
txn_advance(struct deliver *dl)
{
	while (dl->head_seq < dl->next_seq)
	{
		struct dl_txn *t = txn_at(dl, dl->head_seq);

		if (!t->closed || t->outstanding > 0)
			break;
		if (t->end_lsn > dl->done_end)
		{
			dl->done_end = t->end_lsn;
			dl->done_commit_usec = t->commit_usec;
		}
		dl->head_seq++;
	}
}

/* The ring entry of the transaction being read, made on its first delivery. */
static uint64_t
current_txn(struct deliver *dl, uint64_t end_lsn, int64_t commit_usec)
{
	if (!dl->txn_open)
	{
		txn_push(dl, end_lsn, commit_usec, false);
		dl->txn_open = true;
	}
	return dl->next_seq - 1;
}

void
deliver_commit(struct deliver *dl, uint64_t end_lsn, int64_t commit_usec)
{
	if (dl->txn_open)
	{
		txn_at(dl, dl->next_seq - 1)->closed = true;
		dl->txn_open = false;
	}
	else if (dl->head_seq == dl->next_seq)
	{
		/* nothing in flight: no entry needed */
		if (end_lsn > dl->done_end)
		{
			dl->done_end = end_lsn;
			dl->done_commit_usec = commit_usec;
		}
		return;
	}
	else
		txn_push(dl, end_lsn, commit_usec, true);	/* keeps its place in line */
	txn_advance(dl);
}

void
deliver_abort(struct deliver *dl)
{
	if (dl->txn_open)
	{
		struct dl_txn *t = txn_at(dl, dl->next_seq - 1);

		/* the server sends it again; its deliveries here only have to finish */
		t->end_lsn = 0;
		t->closed = true;
		dl->txn_open = false;
		txn_advance(dl);
	}
}

bool
deliver_idle(const struct deliver *dl)
{
	return dl->head_seq == dl->next_seq && !dl->txn_open;
}

bool
deliver_backlogged(const struct deliver *dl)
{
	return dl->outstanding_bytes > dl->max_bytes ||
		dl->next_seq - dl->head_seq > (UINT64_C(1) << 20);
}

bool
deliver_has_sinks(const struct deliver *dl)
{
	return dl->nsinks > 0;
}

/* ---- deliveries -------------------------------------------------------- */

static void
finish(struct delivery *d)
{
	struct deliver *dl = the_deliver;
	struct dsink *s = d->sink;

	txn_at(dl, d->txn_seq)->outstanding--;
	s->outstanding--;
	s->outstanding_bytes -= d->body_len;
	dl->outstanding--;
	dl->outstanding_bytes -= d->body_len;
	free(d);
	txn_advance(dl);
}

void
dsink_accepted(struct delivery *d)
{
	struct dsink *s = d->sink;

	metrics_delivery(s->metrics_id, DELIVERY_ACCEPTED, d->body_len);
	if (s->failing)
	{
		log_info("sink \"%s\" accepts events again", s->name);
		s->failing = false;
	}
	finish(d);
}

static bool
dead_letter_conn(struct deliver *dl)
{
	const char *keys[] = {"dbname", "fallback_application_name", "connect_timeout", NULL};
	const char *vals[] = {dl->conninfo, "ordersyncd-dead-letters", "10", NULL};

	if (dl->conn && PQstatus(dl->conn) == CONNECTION_OK)
		return true;
	PQfinish(dl->conn);
	dl->conn = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(dl->conn) == CONNECTION_OK)
		return true;
	log_error("cannot connect to write dead letters: %s", PQerrorMessage(dl->conn));
	return false;
}

/* Keep the event in ordersync.dead_letter. 0 when committed. */
static int
record_dead_letter(struct deliver *dl, struct delivery *d, const char *why)
{
	char		attempts[16];
	char	   *body;
	const char *params[4];
	PGresult   *res;
	int			rc = -1;

	if (!dead_letter_conn(dl))
		return -1;
	body = ds_xmalloc(d->body_len + 1);
	memcpy(body, d->body, d->body_len);
	body[d->body_len] = '\0';
	snprintf(attempts, sizeof(attempts), "%d", d->attempts);
	params[0] = d->sink->name;
	params[1] = body;
	params[2] = why;
	params[3] = attempts;
	res = PQexecParams(dl->conn, "SELECT ordersync.record_dead_letter($1, $2::jsonb, $3, $4::int)",
					   4, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
	{
		log_warning("sink \"%s\" did not take event %s (%s, %s) after %d attempt%s: %s; kept as "
					"dead letter %s (SELECT ordersync.redeliver(%s) sends it again)",
					d->sink->name, d->id, d->type, d->subject, d->attempts,
					d->attempts == 1 ? "" : "s", why, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 0));
		rc = 0;
	}
	else
		log_error("could not write event %s to ordersync.dead_letter: %s"
				  "HINT: the relay's user needs the ordersync_relay role and the extension "
				  "ordersync 0.3.0 (ALTER EXTENSION ordersync UPDATE); the event stays "
				  "unconfirmed and is tried again", d->id, PQresultErrorMessage(res));
	PQclear(res);
	free(body);
	return rc;
}

int64_t
dsink_failed(struct delivery *d, bool retryable, const char *why)
{
	struct deliver *dl = the_deliver;
	struct dsink *s = d->sink;
	int64_t		now = dsink_now_ms();
	struct backoff b;

	d->attempts++;
	if (d->first_failure_ms == 0)
		d->first_failure_ms = now;
	if (!retryable || d->attempts >= s->opt.max_attempts ||
		now - d->first_failure_ms >= s->opt.max_age_ms)
	{
		if (record_dead_letter(dl, d, why) == 0)
		{
			metrics_delivery(s->metrics_id, DELIVERY_DEAD, d->body_len);
			finish(d);
			return DSINK_GIVEN_UP;
		}
		/* not kept anywhere yet: it must stay with the sink */
	}
	else if (!s->failing)
	{
		log_warning("sink \"%s\": %s; retrying with backoff (event %s, %s; up to %d attempts "
					"or %d s, then it goes to ordersync.dead_letter)", s->name, why, d->id,
					d->subject, s->opt.max_attempts, s->opt.max_age_ms / 1000);
		s->failing = true;
	}
	else
		log_debug("sink \"%s\": attempt %d of event %s failed: %s", s->name, d->attempts, d->id, why);
	metrics_delivery(s->metrics_id, DELIVERY_RETRY, 0);

	backoff_init(&b, (uint32_t) s->opt.backoff_min_ms, (uint32_t) s->opt.backoff_max_ms);
	b.attempt = (uint32_t) (d->attempts > 31 ? 31 : d->attempts - 1);
	dl->rnd = dl->rnd * 1664525u + 1013904223u;
	return now + backoff_next(&b, dl->rnd);
}

/*
 * Personal data, for the sinks with drop_personal_data: the "customer"
 * member of an event's data (domain events, snapshots, redeliveries), the
 * "customer" column of a raw row change (columns and identity), and the
 * raw line of a relay.invalid event (it may be anything). The filter fails
 * closed: an event it cannot read is never sent unfiltered.
 */
#define PERSONAL_DATA_KEY "customer"

static void
drop_personal_columns(json_object *data, const char *key)
{
	json_object *cols;

	if (!json_object_object_get_ex(data, key, &cols) || !json_object_is_type(cols, json_type_array))
		return;
	for (size_t i = json_object_array_length(cols); i-- > 0;)
	{
		json_object *n;

		if (json_object_object_get_ex(json_object_array_get_idx(cols, i), "name", &n) &&
			json_object_is_type(n, json_type_string) &&
			strcmp(json_object_get_string(n), PERSONAL_DATA_KEY) == 0)
			json_object_array_del_idx(cols, i, 1);
	}
}

json_object *
deliver_parse_json(const char *text, size_t len, int max_depth)
{
	json_tokener *tok = json_tokener_new_ex(max_depth);
	json_object *o = NULL;
	char		err[160];

	if (tok == NULL)
		return NULL;
	o = w2j_parse_json(tok, text, len, err, sizeof(err));
	json_tokener_free(tok);
	return o;
}

char *
deliver_without_personal_data(const char *body, size_t len, size_t *outlen)
{
	json_object *ev = deliver_parse_json(body, len, DELIVER_EVENT_MAX_DEPTH);
	json_object *data;
	char	   *out = NULL;

	if (ev && json_object_is_type(ev, json_type_object))
	{
		size_t		n;
		const char *txt;

		if (json_object_object_get_ex(ev, "data", &data) && json_object_is_type(data, json_type_object))
		{
			json_object_object_del(data, PERSONAL_DATA_KEY);
			drop_personal_columns(data, "columns");
			drop_personal_columns(data, "identity");
			json_object_object_del(data, "line");
			json_object_object_del(data, "line_hex");
		}
		else if (json_object_object_get_ex(ev, "data", &data))
			json_object_object_del(ev, "data");	/* not an object: nothing to sort out */
		txt = json_object_to_json_string_length(ev, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
		if (txt)
		{
			out = ds_xmalloc(n + 1);
			memcpy(out, txt, n + 1);
			*outlen = n;
		}
	}
	json_object_put(ev);
	return out;
}

/*
 * What one event looks like for each sink: as built, or without personal
 * data, which is made once per event however many sinks want it.
 */
struct event_bodies
{
	const char *body;
	size_t		len;
	char	   *filtered;		/* made on first need; NULL: the filter failed */
	size_t		filtered_len;
	bool		tried;
};

/* NULL when the sink must not get personal data and the filter failed. */
static const char *
body_for(struct event_bodies *b, const struct dsink *s, size_t *len)
{
	if (s->opt.drop_personal_data)
	{
		if (!b->tried)
		{
			b->filtered = deliver_without_personal_data(b->body, b->len, &b->filtered_len);
			b->tried = true;
		}
		*len = b->filtered_len;
		return b->filtered;
	}
	*len = b->len;
	return b->body;
}

/*
 * An event the personal-data filter could not read goes to the dead letters
 * (the database has its data anyway), never to the sink; held in
 * dl->unfiltered while the dead letter cannot be written.
 */
static const char unfiltered_why[] =
	"the personal-data filter (drop_personal_data) could not process this event, so it was "
	"not sent; it is kept here whole";

void
deliver_give_up(struct dl_held *h, struct delivery *d, const char *why)
{
	if (dsink_failed(d, false, why) != DSINK_GIVEN_UP)
	{
		d->next = h->head;
		h->head = d;
	}
}

void
deliver_held_prepare(const struct dl_held *h, int *timeout_ms)
{
	if (h->head && *timeout_ms > 1000)
		*timeout_ms = 1000;
}

void
deliver_held_work(struct dl_held *h, const char *why)
{
	struct delivery *d = h->head;
	int64_t		now = dsink_now_ms();

	if (d == NULL || now < h->retry_at)
		return;
	h->head = NULL;
	h->retry_at = now + 1000;
	while (d)
	{
		struct delivery *next = d->next;

		deliver_give_up(h, d, why);
		d = next;
	}
}

void
deliver_held_free(struct dl_held *h)
{
	while (h->head)
	{
		struct delivery *next = h->head->next;

		free(h->head);
		h->head = next;
	}
}

/* Hand one event to one sink, as part of the current transaction. */
static void
submit(struct deliver *dl, struct dsink *s, uint64_t seq, const char *id, const char *type,
	   const char *subject, struct event_bodies *bodies)
{
	size_t		len;
	const char *body = body_for(bodies, s, &len);
	bool		unfiltered = body == NULL;
	size_t		lid = strlen(id) + 1,
				ltype = strlen(type) + 1,
				lsub = strlen(subject) + 1;
	struct delivery *d;
	char	   *p;

	if (unfiltered)
	{
		/* the dead letter keeps the event as it was built */
		body = bodies->body;
		len = bodies->len;
	}
	d = ds_xmalloc(sizeof(*d) + lid + ltype + lsub + len + 1);
	memset(d, 0, sizeof(*d));
	p = (char *) (d + 1);
	d->id = memcpy(p, id, lid);
	p += lid;
	d->type = memcpy(p, type, ltype);
	p += ltype;
	d->subject = memcpy(p, subject, lsub);
	p += lsub;
	memcpy(p, body, len);
	p[len] = '\0';
	d->body = p;
	d->body_len = len;
	d->sink = s;
	d->txn_seq = seq;

	txn_at(dl, seq)->outstanding++;
	s->outstanding++;
	s->outstanding_bytes += len;
	dl->outstanding++;
	dl->outstanding_bytes += len;
	if (unfiltered)
	{
		metrics_delivery(s->metrics_id, DELIVERY_UNFILTERED, 0);
		deliver_give_up(&dl->unfiltered, d, unfiltered_why);
	}
	else
		s->ops->submit(s, d);
}

static bool
matches(const struct dl_sink *e, const char *type)
{
	for (int i = 0; i < e->npatterns; i++)
	{
		const char *p = e->patterns[i];
		size_t		n = strlen(p);

		if (strcmp(p, "*") == 0 || strcmp(p, type) == 0)
			return true;
		/* "order.*" is "order." and anything after it */
		if (n >= 2 && p[n - 1] == '*' && p[n - 2] == '.' && strncmp(p, type, n - 1) == 0)
			return true;
	}
	return false;
}

void
deliver_event(struct deliver *dl, uint64_t end_lsn, int64_t commit_usec, const char *id,
			  const char *type, const char *subject, const char *body, size_t len)
{
	struct event_bodies bodies = {.body = body,.len = len};

	for (int i = 0; i < dl->nsinks; i++)
	{
		struct dl_sink *e = &dl->sinks[i];

		if (!e->sink->retired && matches(e, type))
			submit(dl, e->sink, current_txn(dl, end_lsn, commit_usec), id, type, subject, &bodies);
	}
	free(bodies.filtered);
}

void
deliver_redeliver(struct deliver *dl, uint64_t end_lsn, int64_t commit_usec,
				  int64_t dead_letter_id, const char *sink, json_object *event)
{
	json_object *v;
	const char *field[3] = {"id", "type", "subject"};
	const char *val[3] = {NULL, NULL, NULL};
	const char *type;

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
	type = strncmp(val[1], "ordersync.", 10) == 0 ? val[1] + 10 : val[1];
	for (int i = 0; i < dl->nsinks; i++)
	{
		struct dl_sink *e = &dl->sinks[i];

		if (e->configured && !e->sink->retired && strcmp(e->sink->name, sink) == 0)
		{
			struct event_bodies bodies = {0};

			bodies.body = json_object_to_json_string_length(event, JSON_C_TO_STRING_PLAIN |
															JSON_C_TO_STRING_NOSLASHESCAPE,
															&bodies.len);
			log_info("redelivering dead letter %lld (event %s) to sink \"%s\"",
					 (long long) dead_letter_id, val[0], sink);
			submit(dl, e->sink, current_txn(dl, end_lsn, commit_usec), val[0], type, val[2], &bodies);
			free(bodies.filtered);
			return;
		}
	}
	log_error("cannot redeliver dead letter %lld: this relay has no sink \"%s\"\n"
			  "HINT: add it with ordersync.add_sink() and call ordersync.redeliver(%lld) again",
			  (long long) dead_letter_id, sink, (long long) dead_letter_id);
}

/* ---- the loop ---------------------------------------------------------- */

void
deliver_prepare(struct deliver *dl, struct pollset *ps, int *timeout_ms)
{
	deliver_held_prepare(&dl->unfiltered, timeout_ms);
	for (int i = 0; i < dl->nsinks; i++)
		dl->sinks[i].sink->ops->prepare(dl->sinks[i].sink, ps, timeout_ms);
}

void
deliver_work(struct deliver *dl, const struct pollset *ps)
{
	for (int i = 0; i < dl->nsinks; i++)
		dl->sinks[i].sink->ops->work(dl->sinks[i].sink, ps);
	deliver_held_work(&dl->unfiltered, unfiltered_why);
	for (int i = 0; i < dl->nsinks; i++)
		metrics_set_outstanding(dl->sinks[i].sink->metrics_id, dl->sinks[i].sink->outstanding);
	deliver_reap(dl);
}

void
deliver_pump(struct deliver *dl, int timeout_ms)
{
	if (dl->nsinks == 0)
		return;
	pollset_reset(&dl->ps);
	deliver_prepare(dl, &dl->ps, &timeout_ms);
	(void) poll(dl->ps.fds, (nfds_t) dl->ps.n, timeout_ms);
	deliver_work(dl, &dl->ps);
}

void
deliver_free(struct deliver *dl)
{
	for (int i = 0; i < dl->nsinks; i++)
	{
		deliver_close_sink(dl->sinks[i].sink);
		deliver_free_entry(&dl->sinks[i]);
		json_object_put(dl->sinks[i].config);
	}
	deliver_held_free(&dl->unfiltered);
	free(dl->sinks);
	json_object_put(dl->config);
	free(dl->ring);
	pollset_free(&dl->ps);
	PQfinish(dl->conn);
	memset(dl, 0, sizeof(*dl));
}
