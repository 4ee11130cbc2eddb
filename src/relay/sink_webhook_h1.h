/*
 * sink_webhook_h1.h — a lean HTTP/1.1 client for the webhook sink's
 * clear-text POSTs to an address literal (see sink_webhook_h1.c).
 */
#ifndef ORDERSYNCD_SINK_WEBHOOK_H1_H
#define ORDERSYNCD_SINK_WEBHOOK_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "sink.h"

/* What became of one POST, from either client. */
struct wh_result
{
	int			failure;		/* 0: status is the answer; else a CURLcode */
	const char *detail;			/* the failure, for the operator */
	bool		denied;			/* the policy refused the address: detail says why */
	long		status;
	long		retry_after_s;	/* 0: none */
	const char *location;		/* a redirect's Location, or NULL */
	const char *body;			/* the start of the answer's body */
	size_t		body_len;
};

/*
 * Report r for ev to s's host: accepted, or failed (retryable or not) with
 * the reason (sink_webhook_outcome.c). url is the sink's, redacted.
 */
void		wh_report(struct sink *s, const char *url, struct sink_event *ev,
					  const struct wh_result *r);

/* done(arg, token, result): one POST is over; the client forgets token. */
typedef void (*h1_done_fn) (void *arg, void *token, const struct wh_result *r);

struct h1_client;

/*
 * Can url go through this client? http://, a literal IPv4 or IPv6 host, no
 * userinfo, and (for a trusted sink) no proxy in the environment that curl
 * would have used.
 */
bool		h1_usable(const struct sink *s, const char *url);

/*
 * A client for s->uri holding at most max_conns connections, watched in
 * epfd (events carry the connection in data.ptr). A connection idle for
 * idle_ms is closed instead of reused: the receiver may have closed it.
 */
struct h1_client *h1_new(struct sink *s, int epfd, int max_conns, int idle_ms,
						 h1_done_fn done, void *arg);
void		h1_free(struct h1_client *c);

/*
 * POST body with the header lines (each "Name: value", without CRLF) on an
 * idle or new connection. When none can be had, done is called before
 * this returns. body must stay until done.
 */
void		h1_post(struct h1_client *c, void *token, const char *const *lines, int nlines,
					const char *body, size_t body_len);

/* An epoll event for one of the client's descriptors. */
void		h1_event(struct h1_client *c, const struct epoll_event *ev);

/* Deadlines: when h1_timers must run next (-1: nothing pending); run them. */
int64_t		h1_next_deadline(struct h1_client *c);
void		h1_timers(struct h1_client *c, int64_t now);

/* Connections open (for prepare: is epfd worth polling?). */
int			h1_connections(const struct h1_client *c);

#endif
