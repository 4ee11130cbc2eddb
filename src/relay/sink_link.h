/*
 * sink_link.h — the state of a sink's one connection to its broker, for
 * sinks that connect by themselves (RabbitMQ, NATS): when to try again,
 * how long deliveries have been failing, what was logged, and whether the
 * policy refused the broker for good. See sink_link.c.
 */
#ifndef ORDERSYNCD_SINK_LINK_H
#define ORDERSYNCD_SINK_LINK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "backoff.h"
#include "sink.h"
#include "sink_ring.h"

struct sink_link
{
	struct sink *s;
	const char *kind;			/* "amqp": messages say 'amqp sink "name": ...' */
	const char *again;			/* "reconnecting in": the retry's words in the log */
	const char *held;			/* "events waiting": what the count is */
	struct backoff bo;
	uint32_t	rnd;
	int64_t		next_connect_ms;	/* no attempt before then */
	int64_t		connected_ms;	/* when the current connection came up */
	int64_t		down_since_ms;	/* 0: delivering fine */
	char		last_log[1024];	/* the last failure logged; "" once connected */
	int64_t		last_log_ms;
	char	   *refused;		/* the policy refused the broker: why; NULL: not */
};

/* In open, after the options are read (the backoff comes from them). */
void		sink_link_init(struct sink_link *l, struct sink *s, const char *kind,
						   const char *again, const char *held);
void		sink_link_free(struct sink_link *l);

/*
 * An attempt to connect failed, or the connection was lost with count
 * events handed back: log why (the same text at most once a minute), pick
 * the next attempt's time, and past max_age_seconds of failing count a
 * failed attempt for every waiting event (sink_host_outage). why starts
 * with 'kind sink "name": '.
 */
void		sink_link_retry(struct sink_link *l, const char *why, long count);

/*
 * The connection that is being dropped: one that stayed up a while starts
 * the backoff afresh.
 */
void		sink_link_lost(struct sink_link *l);

/*
 * The connection was lost and the sink has dropped it: every event on ring
 * goes back to the host, and the next attempt is set (sink_link_lost,
 * sink_link_retry) with the reason fmt, ap, logged as 'kind sink "name": ...'.
 */
void		sink_link_down(struct sink_link *l, struct sink_ring *ring, const char *fmt, va_list ap)
			__attribute__((format(printf, 3, 0)));

/* Connected: log it (at info after failures), remember when. */
void		sink_link_up(struct sink_link *l, const char *where);

/* The broker took an event: any outage is over. */
void		sink_link_delivered(struct sink_link *l);

/*
 * The policy refused the broker's address: for good. Logs it and tells the
 * host; every event of the sink becomes a dead letter from now on.
 */
void		sink_link_refuse(struct sink_link *l, const char *why);

/* Is it time for the next attempt (next_connect_ms, for prepare too)? */
bool		sink_link_due(const struct sink_link *l, int64_t now);

#endif
