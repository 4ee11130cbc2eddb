/*
 * sink_ring.c — unanswered publishes by tag (see sink_ring.h): a fixed
 * array of max_in_flight slots, tag % cap, so an answer finds its event in
 * one step and the oldest (for the overdue check) is at head. Tags never
 * repeat while the ring lives unless the sink restarts them on a new
 * channel, so an answer that comes late from a connection given up finds
 * nothing.
 */
#include <stdlib.h>

#include "sink_ring.h"

void
sink_ring_init(struct sink_ring *r, int cap)
{
	r->slot = xcalloc(sizeof(*r->slot) * (size_t) cap);
	r->cap = cap;
	r->head = r->next = 1;
	r->n = 0;
}

void
sink_ring_free(struct sink_ring *r)
{
	free(r->slot);
	r->slot = NULL;
}

void
sink_ring_restart(struct sink_ring *r, uint64_t first)
{
	r->head = r->next = first;
}

uint64_t
sink_ring_put(struct sink_ring *r, struct sink_event *ev)
{
	uint64_t	tag = r->next++;

	r->slot[tag % (uint64_t) r->cap] = ev;
	r->n++;
	return tag;
}

struct sink_event *
sink_ring_get(const struct sink_ring *r, uint64_t tag)
{
	if (tag < r->head || tag >= r->next)
		return NULL;
	return r->slot[tag % (uint64_t) r->cap];
}

struct sink_event *
sink_ring_take(struct sink_ring *r, uint64_t tag)
{
	struct sink_event *ev = sink_ring_get(r, tag);

	if (ev == NULL)
		return NULL;
	r->slot[tag % (uint64_t) r->cap] = NULL;
	r->n--;
	while (r->head < r->next && r->slot[r->head % (uint64_t) r->cap] == NULL)
		r->head++;
	return ev;
}

struct sink_event *
sink_ring_oldest(const struct sink_ring *r)
{
	return r->head < r->next ? r->slot[r->head % (uint64_t) r->cap] : NULL;
}

int
sink_ring_return_all(struct sink_ring *r, struct sink_host *host)
{
	int			count = 0;

	for (uint64_t t = r->head; t < r->next; t++)
	{
		struct sink_event **slot = &r->slot[t % (uint64_t) r->cap];

		if (*slot)
		{
			(*slot)->sink_flags = 0;
			sink_host_returned(host, *slot);
			*slot = NULL;
			count++;
		}
	}
	r->head = r->next;
	r->n = 0;
	return count;
}
