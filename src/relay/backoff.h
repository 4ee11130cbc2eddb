/*
 * backoff.h — reconnect delays: exponential growth with jitter.
 *
 * Pure (the caller supplies the random number) so it is unit-testable and
 * so many relays restarting together do not reconnect in lock step.
 */
#ifndef ORDERSYNCD_BACKOFF_H
#define ORDERSYNCD_BACKOFF_H

#include <stdint.h>

struct backoff
{
	uint32_t	base_ms;		/* first delay */
	uint32_t	max_ms;			/* cap on any delay */
	uint32_t	attempt;		/* failures since the last success */
};

void backoff_init(struct backoff *b, uint32_t base_ms, uint32_t max_ms);

/*
 * Delay before the next attempt, in ms. "Equal jitter": half of the
 * exponential step is fixed, the other half random, so the delay still
 * grows but two clients rarely collide. rnd is any uniform 32-bit value.
 */
uint32_t backoff_next(struct backoff *b, uint32_t rnd);

/* Call after a successful connection. */
void backoff_reset(struct backoff *b);

#endif
