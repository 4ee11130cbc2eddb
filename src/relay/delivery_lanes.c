/*
 * delivery_lanes.c — per-subject lanes, the in-flight window and the retry
 * schedule of the delivery core (see delivery.h and delivery_lanes.h).
 *
 * Each event a lane-keeping sink gets is one entry (from a free list: the
 * steady state allocates only the event's text, once, shared by every sink
 * that gets it as is). A sink's entries sit in lanes, one per subject
 * (uthash), each a FIFO in commit order. lane->next is the first entry the
 * sink does not hold; a lane whose next may go now is on its sink's ready
 * list, one whose next waits for a retry time is in the heap, and one whose
 * next waits for an answer (lane depth reached) is in neither. Every change
 * of a lane ends in lane_update, which puts it where it belongs (or frees
 * it when empty): O(1), or O(log n) for the heap.
 *
 * What a sink reports is read here (handle_reports), after each call into
 * the sink: accepted entries are finished, failed ones retried after their
 * backoff or dead-lettered, returned ones offered again in order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

#include "backoff.h"
#include "delivery_lanes.h"
#include "log.h"
#include "metrics.h"

enum entry_state
{
	QUEUED,						/* not with the sink */
	INFLIGHT,					/* with the sink, outcome pending */
	WAITING						/* failed; may go again at retry_at */
};

struct delivery_entry
{
	struct sink_event ev;		/* first: a sink's report leads back here */
	TAILQ_ENTRY(delivery_entry) link;	/* in its lane, commit order */
	struct delivery_lane *lane;
	struct delivery_payload *payload;
	uint64_t	txn_seq;
	uint64_t	pos;			/* order within the sink */
	int64_t		retry_at;
	int64_t		first_failure_ms;
	enum entry_state state;
	bool		unfiltered;		/* the personal-data filter failed: dead letter, never sent */
};

struct delivery_lane
{
	UT_hash_handle hh;
	struct delivery_sink *owner;
	TAILQ_HEAD(, delivery_entry) q;
	struct delivery_entry *next;	/* first entry the sink does not hold */
	int			inflight;
	int			heap_idx;		/* -1: not in the heap */
	bool		on_ready;
	bool		pinned;			/* being walked: not to be freed */
	TAILQ_ENTRY(delivery_lane) ready_link;
	struct delivery_lane *free_next;
	char	   *key;
	char		key_buf[48];	/* most subjects fit ("order/123456") */
};

static const char unfiltered_why[] =
	"the personal-data filter (drop_personal_data) could not process this event, so it was "
	"not sent; it is kept here whole";


/* ---- the retry heap ------------------------------------------------------ */

static int64_t
lane_time(const struct delivery_lane *l)
{
	return l->next->retry_at;
}

static void
heap_set(struct delivery *dl, int i, struct delivery_lane *l)
{
	dl->heap[i] = l;
	l->heap_idx = i;
}

static void
heap_up(struct delivery *dl, int i)
{
	struct delivery_lane *l = dl->heap[i];

	while (i > 0 && lane_time(dl->heap[(i - 1) / 2]) > lane_time(l))
	{
		heap_set(dl, i, dl->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(dl, i, l);
}

static void
heap_down(struct delivery *dl, int i)
{
	struct delivery_lane *l = dl->heap[i];

	for (;;)
	{
		int			c = 2 * i + 1;

		if (c >= dl->heap_n)
			break;
		if (c + 1 < dl->heap_n && lane_time(dl->heap[c + 1]) < lane_time(dl->heap[c]))
			c++;
		if (lane_time(dl->heap[c]) >= lane_time(l))
			break;
		heap_set(dl, i, dl->heap[c]);
		i = c;
	}
	heap_set(dl, i, l);
}

static void
heap_remove(struct delivery *dl, struct delivery_lane *l)
{
	int			i = l->heap_idx;
	struct delivery_lane *last;

	if (i < 0)
		return;
	l->heap_idx = -1;
	last = dl->heap[--dl->heap_n];
	if (last == l)
		return;
	heap_set(dl, i, last);
	heap_up(dl, i);
	heap_down(dl, last->heap_idx);
}

/* Into the heap, or moved to its place when its time changed. */
static void
heap_place(struct delivery *dl, struct delivery_lane *l)
{
	if (l->heap_idx >= 0)
	{
		heap_up(dl, l->heap_idx);
		heap_down(dl, l->heap_idx);
		return;
	}
	if (dl->heap_n == dl->heap_cap)
	{
		dl->heap_cap = dl->heap_cap ? dl->heap_cap * 2 : 64;
		dl->heap = xrealloc(dl->heap, sizeof(*dl->heap) * (size_t) dl->heap_cap);
	}
	heap_set(dl, dl->heap_n++, l);
	heap_up(dl, l->heap_idx);
}

/* ---- lanes --------------------------------------------------------------- */

static struct delivery_lane *
lane_get(struct delivery *dl, struct delivery_sink *ds, const char *subject)
{
	struct delivery_lane *l;
	size_t		len = strlen(subject);

	HASH_FIND(hh, ds->lanes, subject, len, l);
	if (l)
		return l;
	if ((l = dl->free_lanes) != NULL)
		dl->free_lanes = l->free_next;
	else
		l = xmalloc(sizeof(*l));
	memset(l, 0, offsetof(struct delivery_lane, key_buf));
	l->owner = ds;
	l->heap_idx = -1;
	TAILQ_INIT(&l->q);
	l->key = len < sizeof(l->key_buf) ? memcpy(l->key_buf, subject, len + 1) : xstrdup(subject);
	HASH_ADD_KEYPTR(hh, ds->lanes, l->key, len, l);
	return l;
}

static void
lane_free(struct delivery *dl, struct delivery_lane *l)
{
	HASH_DEL(l->owner->lanes, l);
	if (l->key != l->key_buf)
		free(l->key);
	l->free_next = dl->free_lanes;
	dl->free_lanes = l;
}

static void
ready_remove(struct delivery_lane *l)
{
	if (l->on_ready)
		TAILQ_REMOVE(&l->owner->ready, l, ready_link);
	l->on_ready = false;
}

/*
 * Put the lane where its next entry says: the ready list (may go now), the
 * heap (waits for its retry time), or neither (nothing to send, or the
 * lane depth is reached); free it when it is empty.
 */
static void
lane_update(struct delivery *dl, struct delivery_lane *l)
{
	struct delivery_sink *ds = l->owner;
	struct delivery_entry *e = l->next;
	int			depth = ds->sink->ops ? ds->sink->ops->lane_depth : 0;
	bool		blocked = e == NULL || (depth > 0 && l->inflight >= depth && !ds->refused &&
										!e->unfiltered);

	if (blocked)
	{
		ready_remove(l);
		heap_remove(dl, l);
		if (TAILQ_EMPTY(&l->q) && !l->pinned)
			lane_free(dl, l);
		return;
	}
	if (e->state == WAITING && e->retry_at > sink_now_ms())
	{
		ready_remove(l);
		heap_place(dl, l);
		return;
	}
	heap_remove(dl, l);
	if (!l->on_ready)
	{
		TAILQ_INSERT_TAIL(&ds->ready, l, ready_link);
		l->on_ready = true;
	}
}

/* The first entry at or after e that the sink does not hold. */
static struct delivery_entry *
first_not_held(struct delivery_entry *e)
{
	while (e && e->state == INFLIGHT)
		e = TAILQ_NEXT(e, link);
	return e;
}

/* e is no longer with the sink: it goes before anything later of its lane. */
static void
lane_rewind(struct delivery *dl, struct delivery_entry *e)
{
	struct delivery_lane *l = e->lane;

	if (l->next == NULL || e->pos < l->next->pos)
		l->next = e;
	lane_update(dl, l);
}

/* ---- entries -------------------------------------------------------------- */

struct delivery_payload *
delivery_payload_new(const char *id, const char *type, const char *subject, const char *body, size_t len)
{
	size_t		lid = strlen(id) + 1,
				ltype = strlen(type) + 1,
				lsub = strlen(subject) + 1;
	struct delivery_payload *p = xmalloc(sizeof(*p) + lid + ltype + lsub + len + 1);
	char	   *t = p->text;

	p->refs = 0;
	p->id = memcpy(t, id, lid);
	p->type = memcpy(t + lid, type, ltype);
	p->subject = memcpy(t + lid + ltype, subject, lsub);
	p->body = memcpy(t + lid + ltype + lsub, body, len);
	t[lid + ltype + lsub + len] = '\0';
	p->body_len = len;
	return p;
}

void
delivery_payload_put(struct delivery_payload *p)
{
	if (--p->refs == 0)
		free(p);
}

static struct delivery_entry *
entry_new(struct delivery *dl)
{
	struct delivery_entry *e = dl->free_entries;

	if (e)
		dl->free_entries = TAILQ_NEXT(e, link);
	else
		e = xmalloc(sizeof(*e));
	memset(e, 0, sizeof(*e));
	return e;
}

static void
entry_free(struct delivery *dl, struct delivery_entry *e)
{
	delivery_payload_put(e->payload);
	TAILQ_NEXT(e, link) = dl->free_entries;
	dl->free_entries = e;
}

/* The entry is finished (accepted or dead-lettered): it leaves everything. */
static void
finish(struct delivery *dl, struct delivery_entry *e)
{
	struct delivery_lane *l = e->lane;
	struct delivery_sink *ds = l->owner;

	if (l->next == e)
		l->next = first_not_held(TAILQ_NEXT(e, link));
	TAILQ_REMOVE(&l->q, e, link);
	delivery_txn_release(dl, e->txn_seq);
	ds->outstanding--;
	ds->outstanding_bytes -= e->ev.body_len;
	dl->outstanding--;
	dl->outstanding_bytes -= e->ev.body_len;
	entry_free(dl, e);
	lane_update(dl, l);
}

/* A failed attempt: retry later, or dead-letter it. */
static void
failed(struct delivery *dl, struct delivery_sink *ds, struct delivery_entry *e, bool retryable,
	   const char *why, int64_t not_before)
{
	struct sink *s = ds->sink;
	int64_t		now = sink_now_ms();
	struct backoff b;
	int64_t		at;

	e->ev.attempts++;
	if (e->first_failure_ms == 0)
		e->first_failure_ms = now;
	if (!retryable || e->ev.attempts >= s->opt.max_attempts ||
		now - e->first_failure_ms >= s->opt.max_age_ms)
	{
		if (delivery_dead_letter(dl, ds, &e->ev, why) == 0)
		{
			metrics_delivery(ds->metrics_id, DELIVERY_DEAD, e->ev.body_len);
			finish(dl, e);
			return;
		}
		/* not kept anywhere yet: it stays, and is tried again */
	}
	else if (!ds->failing)
	{
		log_warning("sink \"%s\": %s; retrying with backoff (event %s, %s; up to %d attempts "
					"or %d s, then it goes to ordersync.dead_letter)", s->name, why, e->ev.id,
					e->ev.subject, s->opt.max_attempts, s->opt.max_age_ms / 1000);
		ds->failing = true;
	}
	else
		log_debug("sink \"%s\": attempt %d of event %s failed: %s", s->name, e->ev.attempts,
				  e->ev.id, why);
	metrics_delivery(ds->metrics_id, DELIVERY_RETRY, 0);

	backoff_init(&b, (uint32_t) s->opt.backoff_min_ms, (uint32_t) s->opt.backoff_max_ms);
	b.attempt = (uint32_t) (e->ev.attempts > 31 ? 31 : e->ev.attempts - 1);
	dl->rnd = dl->rnd * 1664525u + 1013904223u;
	at = now + backoff_next(&b, dl->rnd);
	e->state = WAITING;
	e->retry_at = at > not_before ? at : not_before;
	lane_rewind(dl, e);
}

/* ---- talking to a sink ---------------------------------------------------- */

static struct delivery_entry *
entry_of(struct sink_event *ev)
{
	return (struct delivery_entry *) ev;
}

/* An entry the sink held comes back (answered or returned). */
static void
unhold(struct delivery_sink *ds, struct delivery_entry *e)
{
	e->lane->inflight--;
	ds->inflight--;
}

/* Every entry of the sink that it does not hold: fn on each. */
static void
each_waiting(struct delivery *dl, struct delivery_sink *ds,
			 void (*fn) (struct delivery *, struct delivery_sink *, struct delivery_entry *, const char *),
			 const char *why)
{
	struct delivery_lane *l,
			   *tmp;

	HASH_ITER(hh, ds->lanes, l, tmp)
	{
		struct delivery_entry *e = l->next;

		l->pinned = true;
		while (e)
		{
			struct delivery_entry *next = first_not_held(TAILQ_NEXT(e, link));

			fn(dl, ds, e, why);
			e = next;
		}
		l->pinned = false;
		lane_update(dl, l);
	}
}

static void
outage_attempt(struct delivery *dl, struct delivery_sink *ds, struct delivery_entry *e, const char *why)
{
	failed(dl, ds, e, true, why, 0);
}

static void
refused_now(struct delivery *dl, struct delivery_sink *ds, struct delivery_entry *e, const char *why)
{
	(void) why;
	/* on the ready list now: the submit path dead-letters it */
	e->state = QUEUED;
	e->retry_at = 0;
	(void) dl;
	(void) ds;
}

/* Act on what the sink reported, in order. */
void
delivery_lanes_reports(struct delivery *dl, struct delivery_sink *ds)
{
	struct sink_host *h = &ds->host;

	for (int i = 0; i < h->n; i++)
	{
		struct sink_result *r = &h->results[i];
		struct delivery_entry *e = r->ev ? entry_of(r->ev) : NULL;
		const char *why = sink_host_why(h, r);

		switch (r->what)
		{
			case SINK_ACCEPTED:
				unhold(ds, e);
				metrics_delivery(ds->metrics_id, DELIVERY_ACCEPTED, e->ev.body_len);
				metrics_delivered_event(ds->metrics_id, e->ev.type, e->ev.body_len);
				if (ds->failing)
				{
					log_info("sink \"%s\" accepts events again", ds->sink->name);
					ds->failing = false;
				}
				finish(dl, e);
				break;
			case SINK_FAILED:
				unhold(ds, e);
				failed(dl, ds, e, r->retryable, why, r->not_before_ms);
				break;
			case SINK_RETURNED:
				unhold(ds, e);
				e->state = QUEUED;
				lane_rewind(dl, e);
				break;
			case SINK_OUTAGE:
				each_waiting(dl, ds, outage_attempt, why);
				break;
			case SINK_REFUSED:
				if (ds->refused == NULL)
					ds->refused = xstrdup(why);
				each_waiting(dl, ds, refused_now, why);
				break;
			case SINK_DURABLE:
				if (r->lsn > ds->durable_lsn)
					ds->durable_lsn = r->lsn;
				break;
			case SINK_FATAL:
				if (dl->fatal == NULL)
					dl->fatal = xstrdup(why);
				break;
		}
	}
	sink_host_clear(h);
}

/*
 * Hand the sink what its ready lanes may send, one event per lane in turn,
 * until it is busy or the window is full. True when it stopped because the
 * sink reported something, which must be acted on first.
 */
static bool
submit_ready(struct delivery *dl, struct delivery_sink *ds)
{
	struct delivery_lane *l;

	while ((l = TAILQ_FIRST(&ds->ready)) != NULL)
	{
		struct delivery_entry *e = l->next;

		if (ds->refused || e->unfiltered)
		{
			/* never sent: it goes to the dead letters (or waits to) */
			failed(dl, ds, e, false, ds->refused ? ds->refused : unfiltered_why, 0);
			continue;
		}
		if (ds->busy || (ds->window > 0 && ds->inflight >= ds->window))
			return false;
		e->state = INFLIGHT;
		l->inflight++;
		ds->inflight++;
		l->next = first_not_held(TAILQ_NEXT(e, link));
		if (ds->sink->ops->submit(ds->sink, &e->ev) == SINK_BUSY)
		{
			e->state = QUEUED;
			l->inflight--;
			ds->inflight--;
			l->next = e;
			ds->busy = true;
			return false;
		}
		/* to the end of the list: subjects take turns */
		ready_remove(l);
		lane_update(dl, l);
		if (ds->host.n > 0)
			return true;
	}
	return false;
}

/* Let one sink make progress: its reports, then what may go. */
void
delivery_lanes_run(struct delivery *dl, struct delivery_sink *ds)
{
	do
		delivery_lanes_reports(dl, ds);
	while (submit_ready(dl, ds));
	if (ds->host.n > 0)
		delivery_lanes_reports(dl, ds);
}


/* ---- the core's side ------------------------------------------------------ */

void
delivery_lanes_enqueue(struct delivery *dl, struct delivery_sink *ds, struct delivery_payload *p,
					   uint64_t txn_seq, bool unfiltered)
{
	struct delivery_entry *e = entry_new(dl);
	struct delivery_lane *l = lane_get(dl, ds, p->subject);

	p->refs++;
	e->payload = p;
	e->ev.id = p->id;
	e->ev.type = p->type;
	e->ev.subject = p->subject;
	e->ev.body = p->body;
	e->ev.body_len = p->body_len;
	e->lane = l;
	e->txn_seq = txn_seq;
	e->pos = ds->next_pos++;
	e->state = QUEUED;
	e->unfiltered = unfiltered;
	TAILQ_INSERT_TAIL(&l->q, e, link);
	if (l->next == NULL)
		l->next = e;

	delivery_txn_hold(dl, txn_seq);
	ds->outstanding++;
	ds->outstanding_bytes += p->body_len;
	dl->outstanding++;
	dl->outstanding_bytes += p->body_len;
	if (unfiltered)
		metrics_delivery(ds->metrics_id, DELIVERY_UNFILTERED, 0);
	lane_update(dl, l);
	delivery_lanes_run(dl, ds);
}

void
delivery_lanes_expire(struct delivery *dl)
{
	int64_t		now = sink_now_ms();

	while (dl->heap_n > 0 && lane_time(dl->heap[0]) <= now)
	{
		struct delivery_lane *l = dl->heap[0];

		heap_remove(dl, l);
		lane_update(dl, l);
	}
}

int64_t
delivery_lanes_next_retry(const struct delivery *dl)
{
	return dl->heap_n > 0 ? lane_time(dl->heap[0]) : -1;
}

void
delivery_lanes_drop(struct delivery *dl, struct delivery_sink *ds)
{
	struct delivery_lane *l,
			   *tmp;

	HASH_ITER(hh, ds->lanes, l, tmp)
	{
		struct delivery_entry *e;

		ready_remove(l);
		heap_remove(dl, l);
		while ((e = TAILQ_FIRST(&l->q)) != NULL)
		{
			TAILQ_REMOVE(&l->q, e, link);
			entry_free(dl, e);
		}
		lane_free(dl, l);
	}
}

void
delivery_lanes_free_pools(struct delivery *dl)
{
	while (dl->free_entries)
	{
		struct delivery_entry *e = dl->free_entries;

		dl->free_entries = TAILQ_NEXT(e, link);
		free(e);
	}
	while (dl->free_lanes)
	{
		struct delivery_lane *l = dl->free_lanes;

		dl->free_lanes = l->free_next;
		free(l);
	}
	free(dl->heap);
	dl->heap = NULL;
}
