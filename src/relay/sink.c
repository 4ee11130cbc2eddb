/*
 * sink.c — what every sink shares (see sink.h): the registry of kinds, the
 * host's report queue, the poll set and the clock. Options and secrets are
 * read in sink_options.c; what a sink may be configured to do is checked in
 * sink_policy.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sink.h"
#include "sink_policy.h"
#include "ts.h"

void
pollset_reset(struct pollset *ps)
{
	ps->n = 0;
}

int
pollset_add(struct pollset *ps, int fd, short events)
{
	if (ps->n == ps->cap)
	{
		ps->cap = ps->cap ? ps->cap * 2 : 16;
		ps->fds = xrealloc(ps->fds, sizeof(*ps->fds) * (size_t) ps->cap);
	}
	ps->fds[ps->n] = (struct pollfd) {.fd = fd,.events = events,.revents = 0};
	return ps->n++;
}

void
pollset_free(struct pollset *ps)
{
	free(ps->fds);
	memset(ps, 0, sizeof(*ps));
}

int64_t
sink_now_ms(void)
{
	return ts_mono_usec() / 1000;
}

void
sink_lower_timeout(int *timeout_ms, int64_t ms)
{
	if (ms < 0)
		ms = 0;
	if (*timeout_ms < 0 || ms < *timeout_ms)
		*timeout_ms = ms > INT_MAX ? INT_MAX : (int) ms;
}

/* The kinds there are; a new sink adds its line here. */
static const struct sink_ops *const kinds[] = {
	&sink_file_ops,
	&sink_webhook_ops,
	&sink_kafka_ops,
	&sink_amqp_ops,
	&sink_nats_ops,
};

const struct sink_ops *
sink_kind_for(const char *uri)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i]->claims(uri))
			return kinds[i];
	return NULL;
}

/* ---- the host's queue ---------------------------------------------------- */

void
sink_host_init(struct sink_host *h)
{
	memset(h, 0, sizeof(*h));
	buf_init(&h->text);
}

void
sink_host_free(struct sink_host *h)
{
	free(h->results);
	buf_free(&h->text);
	memset(h, 0, sizeof(*h));
}

void
sink_host_clear(struct sink_host *h)
{
	h->n = 0;
	buf_reset(&h->text);
}

const char *
sink_host_why(const struct sink_host *h, const struct sink_result *r)
{
	return r->why == (size_t) -1 ? "" : h->text.data + r->why;
}

static struct sink_result *
push(struct sink_host *h, enum sink_report what, struct sink_event *ev, const char *why)
{
	struct sink_result *r;

	if (h->n == h->cap)
	{
		h->cap = h->cap ? h->cap * 2 : 64;
		h->results = xrealloc(h->results, sizeof(*h->results) * (size_t) h->cap);
	}
	r = &h->results[h->n++];
	*r = (struct sink_result) {.what = what,.ev = ev,.why = (size_t) -1};
	if (why)
		r->why = buf_keep(&h->text, why, strlen(why));
	return r;
}

void
sink_host_accepted(struct sink_host *h, struct sink_event *ev)
{
	push(h, SINK_ACCEPTED, ev, NULL);
}

void
sink_host_failed(struct sink_host *h, struct sink_event *ev, bool retryable,
				 int64_t not_before_ms, const char *why)
{
	struct sink_result *r = push(h, SINK_FAILED, ev, why);

	r->retryable = retryable;
	r->not_before_ms = not_before_ms;
}

void
sink_host_returned(struct sink_host *h, struct sink_event *ev)
{
	push(h, SINK_RETURNED, ev, NULL);
}

void
sink_host_outage(struct sink_host *h, const char *why)
{
	push(h, SINK_OUTAGE, NULL, why);
}

void
sink_host_refused(struct sink_host *h, const char *why)
{
	push(h, SINK_REFUSED, NULL, why);
}

void
sink_host_durable(struct sink_host *h, uint64_t lsn)
{
	push(h, SINK_DURABLE, NULL, NULL)->lsn = lsn;
}

void
sink_host_fatal(struct sink_host *h, const char *why)
{
	push(h, SINK_FATAL, NULL, why);
}
