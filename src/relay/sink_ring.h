/*
 * sink_ring.h — events on their way to a broker, by tag, for sinks whose
 * broker answers each publish with a number (an AMQP delivery tag, the
 * NATS sink's reply subject). See sink_ring.c.
 */
#ifndef ORDERSYNCD_SINK_RING_H
#define ORDERSYNCD_SINK_RING_H

#include <stdbool.h>
#include <stdint.h>

#include "sink.h"

struct sink_ring
{
	struct sink_event **slot;	/* slot[tag % cap] */
	int			cap;
	uint64_t	head;			/* oldest unanswered tag */
	uint64_t	next;			/* the tag of the next put */
	int			n;				/* events in the ring */
};

void		sink_ring_init(struct sink_ring *r, int cap);
void		sink_ring_free(struct sink_ring *r);

/* No room for another put: cap tags between the oldest and the next. */
static inline bool
sink_ring_full(const struct sink_ring *r)
{
	return r->next - r->head >= (uint64_t) r->cap;
}

/* Start counting at first again (an AMQP channel's tags start at 1); empty rings only. */
void		sink_ring_restart(struct sink_ring *r, uint64_t first);

/* Put ev under the next tag, which it returns. The ring must not be full. */
uint64_t	sink_ring_put(struct sink_ring *r, struct sink_event *ev);

/* The event under tag, or NULL (answered already, or not a tag of ours). */
struct sink_event *sink_ring_get(const struct sink_ring *r, uint64_t tag);

/* Take the event under tag out (NULL as for get); the oldest moves on. */
struct sink_event *sink_ring_take(struct sink_ring *r, uint64_t tag);

/* The oldest event still in the ring, or NULL. */
struct sink_event *sink_ring_oldest(const struct sink_ring *r);

/*
 * The connection is gone: every event goes back to the core
 * (sink_host_returned), oldest first, which offers them again in each
 * subject's order. Tags go on rising, so a late answer for one of them is
 * recognised as old. Returns how many.
 */
int			sink_ring_return_all(struct sink_ring *r, struct sink_host *host);

#endif
