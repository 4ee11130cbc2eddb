/*
 * backoff.c — exponential backoff with equal jitter (see backoff.h).
 */
#include "backoff.h"

void
backoff_init(struct backoff *b, uint32_t base_ms, uint32_t max_ms)
{
	b->base_ms = base_ms ? base_ms : 1;
	b->max_ms = max_ms < b->base_ms ? b->base_ms : max_ms;
	b->attempt = 0;
}

uint32_t
backoff_next(struct backoff *b, uint32_t rnd)
{
	uint64_t	step = b->base_ms;
	uint32_t	half;

	/* base * 2^attempt, computed without overflow, then capped */
	for (uint32_t i = 0; i < b->attempt && step < b->max_ms; i++)
		step *= 2;
	if (step > b->max_ms)
		step = b->max_ms;
	if (b->attempt < UINT32_MAX)
		b->attempt++;

	half = (uint32_t) (step / 2);
	/* the random half: 0 .. step-half inclusive */
	return half + (uint32_t) (rnd % ((uint32_t) step - half + 1));
}

void
backoff_reset(struct backoff *b)
{
	b->attempt = 0;
}
