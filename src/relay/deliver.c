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

/* dsink_accepted/dsink_failed reach the relay's one instance through this. */
static struct deliver *the_deliver;

void
deliver_init(struct deliver *dl, const char *conninfo, uint64_t max_bytes)
{
	memset(dl, 0, sizeof(*dl));
	dl->conninfo = conninfo;
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
				  "HINT: the relay's user needs the ordersync_admin role and the extension "
				  "ordersync 0.2.0 (ALTER EXTENSION ordersync UPDATE); the event stays "
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
 * The event without personal data (data.customer), for the sinks with
 * drop_personal_data; malloc'd, or NULL when body is not such an event.
 */
static char *
without_personal_data(const char *body, size_t len, size_t *outlen)
{
	json_tokener *tok = json_tokener_new();
	json_object *ev = json_tokener_parse_ex(tok, body, (int) len);
	json_object *data;
	char	   *out = NULL;

	json_tokener_free(tok);
	if (ev && json_object_object_get_ex(ev, "data", &data) &&
		json_object_is_type(data, json_type_object))
	{
		size_t		n;
		const char *txt;

		json_object_object_del(data, "customer");
		txt = json_object_to_json_string_length(ev, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
		out = ds_xmalloc(n + 1);
		memcpy(out, txt, n + 1);
		*outlen = n;
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
	char	   *filtered;		/* made on first need */
	size_t		filtered_len;
	bool		tried;
};

static const char *
body_for(struct event_bodies *b, const struct dsink *s, size_t *len)
{
	if (s->opt.drop_personal_data)
	{
		if (!b->tried)
		{
			b->filtered = without_personal_data(b->body, b->len, &b->filtered_len);
			b->tried = true;
		}
		if (b->filtered)
		{
			*len = b->filtered_len;
			return b->filtered;
		}
	}
	*len = b->len;
	return b->body;
}

/* Hand one event to one sink, as part of the current transaction. */
static void
submit(struct deliver *dl, struct dsink *s, uint64_t seq, const char *id, const char *type,
	   const char *subject, struct event_bodies *bodies)
{
	size_t		len;
	const char *body = body_for(bodies, s, &len);
	size_t		lid = strlen(id) + 1,
				ltype = strlen(type) + 1,
				lsub = strlen(subject) + 1;
	struct delivery *d;
	char	   *p;

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
				  const char *data, size_t len)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = json_tokener_parse_ex(tok, data, (int) len);
	json_object *v,
			   *ev = NULL;
	const char *sink = NULL,
			   *id = NULL,
			   *type = NULL,
			   *subject = NULL;
	int64_t		dlid = 0;

	json_tokener_free(tok);
	if (o && json_object_object_get_ex(o, "sink", &v))
		sink = json_object_get_string(v);
	if (o && json_object_object_get_ex(o, "dead_letter_id", &v))
		dlid = json_object_get_int64(v);
	if (o && json_object_object_get_ex(o, "event", &ev) && json_object_is_type(ev, json_type_object))
	{
		if (json_object_object_get_ex(ev, "id", &v))
			id = json_object_get_string(v);
		if (json_object_object_get_ex(ev, "type", &v))
			type = json_object_get_string(v);
		if (json_object_object_get_ex(ev, "subject", &v))
			subject = json_object_get_string(v);
	}
	if (sink == NULL || id == NULL || type == NULL || subject == NULL)
	{
		log_error("ignoring a relay.redeliver message without sink and event (%.200s); it is "
				  "written by ordersync.redeliver() only", data);
		json_object_put(o);
		return;
	}
	if (strncmp(type, "ordersync.", 10) == 0)
		type += 10;
	for (int i = 0; i < dl->nsinks; i++)
	{
		struct dl_sink *e = &dl->sinks[i];

		if (e->configured && !e->sink->retired && strcmp(e->sink->name, sink) == 0)
		{
			struct event_bodies bodies = {0};

			bodies.body = json_object_to_json_string_length(ev, JSON_C_TO_STRING_PLAIN |
															JSON_C_TO_STRING_NOSLASHESCAPE,
															&bodies.len);
			log_info("redelivering dead letter %lld (event %s) to sink \"%s\"",
					 (long long) dlid, id, sink);
			submit(dl, e->sink, current_txn(dl, end_lsn, commit_usec), id, type, subject, &bodies);
			free(bodies.filtered);
			json_object_put(o);
			return;
		}
	}
	log_error("cannot redeliver dead letter %lld: this relay has no sink \"%s\"\n"
			  "HINT: add it with ordersync.add_sink() and call ordersync.redeliver(%lld) again",
			  (long long) dlid, sink, (long long) dlid);
	json_object_put(o);
}

/* ---- the sinks --------------------------------------------------------- */

/*
 * A configured sink that could not be opened (bad URI, missing secret):
 * every event routed to it becomes a dead letter with the reason, so none
 * is lost and the operator can redeliver once it is fixed.
 */
struct broken
{
	char	   *why;
	struct delivery *held;		/* the dead letter could not be written yet */
	int64_t		retry_at;
};

static void
broken_submit(struct dsink *s, struct delivery *d)
{
	struct broken *b = s->state;

	if (dsink_failed(d, false, b->why) != DSINK_GIVEN_UP)
	{
		d->next = b->held;
		b->held = d;
	}
}

static void
broken_work(struct dsink *s, const struct pollset *ps)
{
	struct broken *b = s->state;
	struct delivery *d = b->held;
	int64_t		now = dsink_now_ms();

	(void) ps;
	if (d == NULL || now < b->retry_at)
		return;
	b->held = NULL;
	b->retry_at = now + 1000;
	while (d)
	{
		struct delivery *next = d->next;

		broken_submit(s, d);
		d = next;
	}
}

static void
broken_prepare(struct dsink *s, struct pollset *ps, int *timeout_ms)
{
	struct broken *b = s->state;

	(void) ps;
	if (b->held && *timeout_ms > 1000)
		*timeout_ms = 1000;
}

static void
broken_close(struct dsink *s)
{
	struct broken *b = s->state;

	while (b->held)
	{
		struct delivery *next = b->held->next;

		free(b->held);
		b->held = next;
	}
	free(b->why);
	free(b);
}

static const struct dsink_ops broken_ops = {
	.kind = "broken",.submit = broken_submit,.prepare = broken_prepare,
	.work = broken_work,.close = broken_close
};

static void
free_entry(struct dl_sink *e)
{
	for (int i = 0; i < e->npatterns; i++)
		free(e->patterns[i]);
	free(e->patterns);
	e->patterns = NULL;
	e->npatterns = 0;
}

static void
close_sink(struct dsink *s)
{
	if (s->ops && s->ops->close)
		s->ops->close(s);
	json_object_put(s->opt.raw);
	free(s->name);
	free(s->uri);
	free(s);
}

/*
 * Open a sink; on failure returns NULL with err filled, or, when
 * keep_broken, a sink that dead-letters everything it gets.
 */
static struct dsink *
open_sink(const char *name, const char *uri, json_object *options, bool keep_broken,
		  char *err, size_t errlen)
{
	struct dsink *s = ds_xcalloc(sizeof(*s));
	const struct dsink_ops *ops = dsink_ops_for(uri);

	s->name = ds_xstrdup(name);
	s->uri = ds_xstrdup(uri);
	s->opt.raw = json_object_get(options);
	if (ops == NULL)
		snprintf(err, errlen, "sink \"%s\": unsupported uri \"%s\"; use http://, https://, "
				 "kafka://brokers/topic or amqp://user@host/vhost?exchange=NAME", name, uri);
	else if (dsink_parse_options(&s->opt, options, err, errlen) != 0)
	{
		/* say which sink */
		char		tmp[512];

		snprintf(tmp, sizeof(tmp), "sink \"%s\": %s", name, err);
		snprintf(err, errlen, "%s", tmp);
	}
	else
	{
		s->ops = ops;
		if (ops->open(s, err, errlen) == 0)
		{
			s->metrics_id = metrics_register_dsink(name);
			return s;
		}
	}
	s->ops = NULL;				/* nothing of the sink's own to close */
	if (!keep_broken)
	{
		close_sink(s);
		return NULL;
	}
	s->ops = &broken_ops;
	s->state = ds_xcalloc(sizeof(struct broken));
	((struct broken *) s->state)->why = ds_xstrdup(err);
	s->metrics_id = metrics_register_dsink(name);
	return s;
}

static struct dl_sink *
add_entry(struct deliver *dl, struct dsink *s, bool configured, const char *config)
{
	struct dl_sink *e;

	if (dl->nsinks == dl->cap)
	{
		dl->cap = dl->cap ? dl->cap * 2 : 8;
		dl->sinks = ds_xrealloc(dl->sinks, sizeof(*dl->sinks) * (size_t) dl->cap);
	}
	e = &dl->sinks[dl->nsinks++];
	memset(e, 0, sizeof(*e));
	e->sink = s;
	e->configured = configured;
	e->config = config ? ds_xstrdup(config) : NULL;
	return e;
}

static void
add_pattern(struct dl_sink *e, const char *p)
{
	e->patterns = ds_xrealloc(e->patterns, sizeof(char *) * (size_t) (e->npatterns + 1));
	e->patterns[e->npatterns++] = ds_xstrdup(p);
}

int
deliver_add_cli_sink(struct deliver *dl, const char *uri, const char *options,
					 char *err, size_t errlen)
{
	json_object *opt = NULL;
	struct dsink *s;
	char		name[256];
	const char *at = strchr(uri, '@');
	const char *scheme_end = strstr(uri, "://");

	if (options)
	{
		opt = json_tokener_parse(options);
		if (opt == NULL || !json_object_is_type(opt, json_type_object))
		{
			snprintf(err, errlen, "--sink-options for %s is not a JSON object: %s", uri, options);
			json_object_put(opt);
			return -1;
		}
	}
	/* the name shows in logs and metrics: leave out any user name */
	if (at && scheme_end && at > scheme_end)
		snprintf(name, sizeof(name), "%.*s%s", (int) (scheme_end + 3 - uri), uri, at + 1);
	else
		snprintf(name, sizeof(name), "%s", uri);
	s = open_sink(name, uri, opt, false, err, errlen);
	json_object_put(opt);
	if (s == NULL)
		return -1;
	add_pattern(add_entry(dl, s, false, NULL), "*");
	return 0;
}

/* Stop routing to a sink; it is freed once nothing it holds is unfinished. */
static void
retire(struct dl_sink *e)
{
	free_entry(e);
	e->sink->retired = true;
	if (e->sink->outstanding > 0)
		log_info("sink \"%s\" left the configuration; delivering the %llu events it still has",
				 e->sink->name, (unsigned long long) e->sink->outstanding);
}

/* Free retired sinks with nothing left; never from inside a sink's callback. */
static void
reap(struct deliver *dl)
{
	for (int i = 0; i < dl->nsinks;)
	{
		struct dl_sink *e = &dl->sinks[i];

		if (e->sink->retired && e->sink->outstanding == 0)
		{
			log_info("closed sink \"%s\"", e->sink->name);
			close_sink(e->sink);
			free_entry(e);
			free(e->config);
			dl->sinks[i] = dl->sinks[--dl->nsinks];
		}
		else
			i++;
	}
}

int
deliver_apply_config(struct deliver *dl, json_object *cfg)
{
	json_object *sinks = NULL,
			   *routes = NULL;
	int			broken = 0;
	size_t		nsinks,
				nroutes;

	if (!json_object_object_get_ex(cfg, "sinks", &sinks) ||
		!json_object_is_type(sinks, json_type_array) ||
		!json_object_object_get_ex(cfg, "routes", &routes) ||
		!json_object_is_type(routes, json_type_array))
	{
		log_error("ignoring a relay configuration without \"sinks\" and \"routes\" arrays: %.300s",
				  json_object_to_json_string(cfg));
		return 0;
	}
	nsinks = json_object_array_length(sinks);
	nroutes = json_object_array_length(routes);

	/* sinks that are gone or changed retire; routes are rebuilt below */
	for (int i = 0; i < dl->nsinks; i++)
	{
		struct dl_sink *e = &dl->sinks[i];
		bool		keep = false;

		if (!e->configured || e->sink->retired)
			continue;
		for (size_t j = 0; j < nsinks && !keep; j++)
		{
			json_object *sj = json_object_array_get_idx(sinks, j),
					   *n;

			keep = json_object_object_get_ex(sj, "name", &n) &&
				strcmp(json_object_get_string(n), e->sink->name) == 0 &&
				strcmp(json_object_to_json_string_ext(sj, JSON_C_TO_STRING_PLAIN), e->config) == 0;
		}
		if (keep)
			free_entry(e);
		else
		{
			log_info("sink \"%s\" was %s", e->sink->name, "changed or dropped in ordersync.sink");
			retire(e);
		}
	}
	for (size_t j = 0; j < nsinks; j++)
	{
		json_object *sj = json_object_array_get_idx(sinks, j),
				   *n,
				   *u,
				   *o = NULL;
		const char *txt = json_object_to_json_string_ext(sj, JSON_C_TO_STRING_PLAIN);
		struct dl_sink *e = NULL;
		char		err[1024];

		if (!json_object_object_get_ex(sj, "name", &n) || !json_object_object_get_ex(sj, "uri", &u))
			continue;
		json_object_object_get_ex(sj, "options", &o);
		for (int i = 0; i < dl->nsinks && e == NULL; i++)
			if (dl->sinks[i].configured && !dl->sinks[i].sink->retired &&
				strcmp(dl->sinks[i].sink->name, json_object_get_string(n)) == 0)
				e = &dl->sinks[i];
		if (e == NULL)
		{
			struct dsink *s = open_sink(json_object_get_string(n), json_object_get_string(u),
										o, true, err, sizeof(err));

			if (s->ops == &broken_ops)
			{
				log_error("%s\nHINT: until this is fixed, events routed to sink \"%s\" go to "
						  "ordersync.dead_letter; fix it (ordersync.drop_sink + add_sink, or the "
						  "relay's environment) and redeliver them", err, s->name);
				broken++;
			}
			else
				log_info("sink \"%s\" (%s) added", s->name, s->ops->kind);
			e = add_entry(dl, s, true, txt);
		}
		for (size_t k = 0; k < nroutes; k++)
		{
			json_object *rk = json_object_array_get_idx(routes, k),
					   *rs,
					   *rp;

			if (json_object_object_get_ex(rk, "sink", &rs) &&
				json_object_object_get_ex(rk, "pattern", &rp) &&
				strcmp(json_object_get_string(rs), e->sink->name) == 0)
				add_pattern(e, json_object_get_string(rp));
		}
	}
	reap(dl);
	return broken;
}

int
deliver_load_config(struct deliver *dl, PGconn *conn)
{
	/* not to_regprocedure(): before PostgreSQL 16 it fails when the schema is missing */
	PGresult   *res = PQexec(conn,
							 "SELECT EXISTS (SELECT FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n"
							 " ON n.oid = p.pronamespace WHERE n.nspname = 'ordersync'"
							 " AND p.proname = 'relay_config' AND p.pronargs = 0)");
	json_object *cfg;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		log_error("could not look for ordersync.relay_config(): %s", PQresultErrorMessage(res));
		PQclear(res);
		return -1;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
	{
		/* no extension (or 0.1.0): the command line's sinks are all there is */
		PQclear(res);
		return 0;
	}
	PQclear(res);
	res = PQexec(conn, "SELECT ordersync.relay_config()::text");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		log_error("could not read the sinks from ordersync.relay_config(): %s"
				  "HINT: grant the role ordersync_admin to the relay's user "
				  "(GRANT ordersync_admin TO <user>)", PQresultErrorMessage(res));
		PQclear(res);
		return -1;
	}
	cfg = json_tokener_parse(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (cfg)
		deliver_apply_config(dl, cfg);
	json_object_put(cfg);
	return 0;
}

/* ---- the loop ---------------------------------------------------------- */

void
deliver_prepare(struct deliver *dl, struct pollset *ps, int *timeout_ms)
{
	for (int i = 0; i < dl->nsinks; i++)
		dl->sinks[i].sink->ops->prepare(dl->sinks[i].sink, ps, timeout_ms);
}

void
deliver_work(struct deliver *dl, const struct pollset *ps)
{
	for (int i = 0; i < dl->nsinks; i++)
		dl->sinks[i].sink->ops->work(dl->sinks[i].sink, ps);
	for (int i = 0; i < dl->nsinks; i++)
		metrics_set_outstanding(dl->sinks[i].sink->metrics_id, dl->sinks[i].sink->outstanding);
	reap(dl);
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
		close_sink(dl->sinks[i].sink);
		free_entry(&dl->sinks[i]);
		free(dl->sinks[i].config);
	}
	free(dl->sinks);
	free(dl->ring);
	pollset_free(&dl->ps);
	PQfinish(dl->conn);
	memset(dl, 0, sizeof(*dl));
}
