/*
 * sink_link.c — reconnecting with backoff and the outage rule, written once
 * for the sinks that hold their own connection (see sink_link.h).
 *
 * A broker that is down is not the events' fault: failures to connect do
 * not count as attempts, so an outage does not turn every waiting event
 * into a dead letter within seconds. Only once the sink has been unable
 * to deliver for longer than max_age_seconds does each further failure
 * count as a failed attempt of every waiting event (sink_host_outage).
 * A broker down for an hour should not write thousands of identical
 * lines either: the same failure is logged again only after a minute.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sink_link.h"

/* the same failure is logged again only after this long */
#define SINK_LINK_LOG_REPEAT_MS 60000
/* a connection that stayed up this long resets the reconnect backoff */
#define SINK_LINK_STABLE_MS 10000

void
sink_link_init(struct sink_link *l, struct sink *s, const char *kind, const char *again,
			   const char *held)
{
	memset(l, 0, sizeof(*l));
	l->s = s;
	l->kind = kind;
	l->again = again;
	l->held = held;
	backoff_init(&l->bo, (uint32_t) s->opt.backoff_min_ms, (uint32_t) s->opt.backoff_max_ms);
	l->rnd = (uint32_t) getpid() ^ (uint32_t) sink_now_ms();
}

void
sink_link_free(struct sink_link *l)
{
	free(l->refused);
	l->refused = NULL;
}

static void
log_failure(struct sink_link *l, const char *msg, const char *suffix)
{
	int64_t		now = sink_now_ms();

	if (strcmp(l->last_log, msg) == 0 && now - l->last_log_ms < SINK_LINK_LOG_REPEAT_MS)
	{
		log_debug("%s%s", msg, suffix);
		return;
	}
	snprintf(l->last_log, sizeof(l->last_log), "%s", msg);
	l->last_log_ms = now;
	log_error("%s%s", msg, suffix);
}

static void
outage(struct sink_link *l, const char *why)
{
	int64_t		now = sink_now_ms();
	char		prefix[300];
	size_t		plen;

	if (l->down_since_ms == 0)
		l->down_since_ms = now;
	if (now - l->down_since_ms < l->s->opt.max_age_ms)
		return;
	/* the core's own messages name the sink already */
	plen = (size_t) snprintf(prefix, sizeof(prefix), "%s sink \"%s\": ", l->kind, l->s->name);
	if (strncmp(why, prefix, plen) == 0)
		why += plen;
	sink_host_outage(l->s->host, why);
}

void
sink_link_retry(struct sink_link *l, const char *why, long count)
{
	uint32_t	delay;
	char		suffix[128];

	l->rnd = l->rnd * 1664525u + 1013904223u;
	delay = backoff_next(&l->bo, l->rnd);
	l->next_connect_ms = sink_now_ms() + delay;
	snprintf(suffix, sizeof(suffix), "; %s %u ms (%ld %s)", l->again, delay, count, l->held);
	log_failure(l, why, suffix);
	outage(l, why);
}

void
sink_link_lost(struct sink_link *l)
{
	if (sink_now_ms() - l->connected_ms >= SINK_LINK_STABLE_MS)
		backoff_reset(&l->bo);
}

void
sink_link_down(struct sink_link *l, struct sink_ring *ring, const char *fmt, va_list ap)
{
	char		why[512];
	char		msg[640];

	vsnprintf(why, sizeof(why), fmt, ap);
	snprintf(msg, sizeof(msg), "%s sink \"%s\": %s", l->kind, l->s->name, why);
	sink_link_lost(l);
	sink_link_retry(l, msg, sink_ring_return_all(ring, l->s->host));
}

void
sink_link_up(struct sink_link *l, const char *where)
{
	l->connected_ms = sink_now_ms();
	if (l->last_log[0])
		log_info("%s sink \"%s\": connected to %s; publishing the waiting events", l->kind,
				 l->s->name, where);
	else
		log_debug("%s sink \"%s\": connected to %s", l->kind, l->s->name, where);
	l->last_log[0] = '\0';
}

void
sink_link_delivered(struct sink_link *l)
{
	l->down_since_ms = 0;
	backoff_reset(&l->bo);
}

void
sink_link_refuse(struct sink_link *l, const char *why)
{
	log_error("%s; the sink delivers nothing from now on: its events go to "
			  "ordersync.dead_letter", why);
	free(l->refused);
	l->refused = xstrdup(why);
	sink_host_refused(l->s->host, why);
}

bool
sink_link_due(const struct sink_link *l, int64_t now)
{
	return now >= l->next_connect_ms;
}
