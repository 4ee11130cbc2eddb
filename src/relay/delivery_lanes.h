/*
 * delivery_lanes.h — inside the delivery core: between delivery.c (routing,
 * transactions, the watermark, the loop) and delivery_lanes.c (lanes, the
 * window, retries, and reading what sinks report). Not for sinks.
 */
#ifndef ORDERSYNCD_DELIVERY_LANES_H
#define ORDERSYNCD_DELIVERY_LANES_H

#include "delivery.h"

/* An event's text, shared by the entries of every sink that gets it. */
struct delivery_payload
{
	uint32_t	refs;
	const char *id;
	const char *type;
	const char *subject;
	const char *body;
	size_t		body_len;
	char		text[];			/* id, type, subject, body: NUL-terminated */
};

/* One allocation for all of it; refs 0 (each holder counts itself). */
struct delivery_payload *delivery_payload_new(const char *id, const char *type,
											  const char *subject, const char *body, size_t len);
void		delivery_payload_put(struct delivery_payload *p);

/* Transaction seq has one more unfinished entry / one less (delivery.c). */
void		delivery_txn_hold(struct delivery *dl, uint64_t seq);
void		delivery_txn_release(struct delivery *dl, uint64_t seq);

/*
 * One event for a lane-keeping sink, in the transaction seq; unfiltered:
 * the personal-data filter failed, so it is dead-lettered, never sent.
 */
void		delivery_lanes_enqueue(struct delivery *dl, struct delivery_sink *ds,
								   struct delivery_payload *p, uint64_t seq, bool unfiltered);

/* Act on the sink's reports, then hand it what may go, until neither moves. */
void		delivery_lanes_run(struct delivery *dl, struct delivery_sink *ds);

/* Only act on the sink's reports (and empty its queue). */
void		delivery_lanes_reports(struct delivery *dl, struct delivery_sink *ds);

/* Lanes whose retry time came may go again; when the next one comes (-1: none). */
void		delivery_lanes_expire(struct delivery *dl);
int64_t		delivery_lanes_next_retry(const struct delivery *dl);

/* The sink is closed: drop its lanes and entries, unconfirmed. */
void		delivery_lanes_drop(struct delivery *dl, struct delivery_sink *ds);
void		delivery_lanes_free_pools(struct delivery *dl);

#endif
