/*
 * sink_webhook.c — the webhook sink (see sink.h): each event is
 * POSTed as a structured-mode CloudEvent (application/cloudevents+json) to
 * the sink's http:// or https:// URL, signed the Standard Webhooks way.
 *
 * Order, retries and dead letters are the delivery core's: it hands this
 * sink one event per subject at a time (lane depth 1) and at most
 * max_in_flight at once, so a receiver sees a subject's events one at a
 * time and in commit order, across retries too. This file only sends.
 *
 * I/O. http:// to an address literal goes through the lean HTTP/1.1
 * client (sink_webhook_h1.c), everything else through libcurl's multi
 * interface (sink_webhook_curl.c). Either keeps its connections in the
 * sink's epoll set: prepare() puts that one descriptor and the client's
 * next deadline into the relay's poll, poll() hands what epoll reports to
 * the client. A connection idle for idle_timeout_ms is closed rather than
 * reused: servers close idle connections (Apache and Node.js after 5 s),
 * and a POST on one they closed fails.
 *
 * Outcomes (sink_webhook_outcome.c). 2xx: accepted. 408, 429, 5xx,
 * timeouts and network errors: retryable (no earlier than a Retry-After
 * on 429/503). Anything else (3xx, other 4xx): refused for good. The
 * reason, which the relay keeps in ordersync.dead_letter, has the status
 * and at most SINK_EXCERPT_MAX printable bytes of the answer: enough to
 * recognise an error page, too little for an admin to read an internal
 * service's answers through a sink pointed at it.
 *
 * Signing. Headers webhook-id (the event id, the same at every attempt),
 * webhook-timestamp (unix seconds of this attempt) and webhook-signature
 * ("v1,<base64 HMAC-SHA256 of id.timestamp.body>"), with the key set up
 * once (wh_signer). Each request keeps its header lines in place and only
 * rewrites the values: no allocation per request. The secret comes by
 * reference (options secret_env or secret_file). Without either, events go
 * out unsigned and a warning says so once; a secret that is named but
 * cannot be read stops the sink from opening, because sending unsigned
 * events to a receiver that expects signatures would only dead-letter them.
 *
 * Options besides the common ones: secret_env, secret_file, ca_file (a PEM
 * bundle for a private CA; the server's certificate and name are always
 * verified), idle_timeout_ms.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sink_tls.h"
#include "sink_webhook.h"
#include "sink_webhook_sign.h"

/* epoll events taken per epoll_wait */
#define WH_EPOLL_BATCH 64
/* a few seconds below the 5 s after which Apache and Node.js close an idle connection */
#define WH_IDLE_TIMEOUT_MS 4000

static const char *const wh_header_name[WH_NHEADERS] = {
	"Content-Type: ", "ce-specversion: ", "ce-id: ", "ce-type: ordersync.", "webhook-id: ",
	"webhook-timestamp: ", "webhook-signature: ", "Expect:"
};

/* the options of this kind (sink.h); their order is the one messages list */
static const struct sink_opt wh_options[] = {
	{"secret", SINK_OPT_SECRET, -1, 0, 0},
	{"ca_file", SINK_OPT_FILE, offsetof(struct wh_state, ca_file), 0, 0},
	{"idle_timeout_ms", SINK_OPT_INT, offsetof(struct wh_state, idle_timeout_ms), 1, 3600000},
	{NULL, 0, 0, 0, 0}
};

/* ---- requests --------------------------------------------------------- */

static struct wh_req *
wh_new_req(struct wh_state *st)
{
	struct wh_req *req = xcalloc(sizeof(*req));

	req->st = st;
	for (int i = 0; i < WH_NHEADERS; i++)
	{
		req->hname_len[i] = strlen(wh_header_name[i]);
		memcpy(req->hline[i], wh_header_name[i], req->hname_len[i] + 1);
		req->hnode[i].data = req->hline[i];
	}
	memcpy(req->hline[WH_H_CONTENT_TYPE] + req->hname_len[WH_H_CONTENT_TYPE],
		   "application/cloudevents+json", sizeof("application/cloudevents+json"));
	memcpy(req->hline[WH_H_SPECVERSION] + req->hname_len[WH_H_SPECVERSION], "1.0", 4);
	if (st->h1 == NULL && !wh_curl_new_req(st, req))
	{
		free(req);
		return NULL;
	}
	return req;
}

/*
 * Write value (len bytes) after the header's name in req's line; false
 * when it cannot go out (too long, or a CR/LF that would break the block).
 */
static bool
set_header(struct wh_req *req, enum wh_header h, const char *value, size_t len)
{
	size_t		at = req->hname_len[h];

	if (at + len >= WH_HEADER_LINE || memchr(value, '\r', len) || memchr(value, '\n', len))
		return false;
	memcpy(req->hline[h] + at, value, len);
	req->hline[h][at + len] = '\0';
	return true;
}

/* req is free for the next event. */
static void
wh_release(struct wh_state *st, struct wh_req *req)
{
	req->ev = NULL;
	req->next_free = st->free_reqs;
	st->free_reqs = req;
}

/* Put ev on the wire. */
static int
wh_start(struct wh_state *st, struct sink_event *ev)
{
	struct wh_req *req = st->free_reqs;
	bool		use[WH_NHEADERS];
	char		ts[24],
				sig[WH_SIGNATURE_LEN];
	int			tslen;
	size_t		idlen = strlen(ev->id);
	int64_t		now = (int64_t) time(NULL);
	char		why[WH_WHY_LEN];

	if (req != NULL)
		st->free_reqs = req->next_free;
	else if ((req = wh_new_req(st)) != NULL)
	{
		if (st->nreqs == st->reqs_cap)
		{
			st->reqs_cap = st->reqs_cap ? st->reqs_cap * 2 : 16;
			st->reqs = xrealloc(st->reqs, sizeof(*st->reqs) * (size_t) st->reqs_cap);
		}
		st->reqs[st->nreqs++] = req;
	}
	else
	{
		sink_host_failed(st->s->host, ev, true, 0, "libcurl could not create a request handle "
						 "(out of memory?)");
		return SINK_TAKEN;
	}

	tslen = (int) buf_format_u64((uint64_t) now, ts);
	use[WH_H_CONTENT_TYPE] = use[WH_H_SPECVERSION] = use[WH_H_EXPECT] = true;
	use[WH_H_CE_ID] = set_header(req, WH_H_CE_ID, ev->id, idlen);
	use[WH_H_CE_TYPE] = set_header(req, WH_H_CE_TYPE, ev->type, strlen(ev->type));
	use[WH_H_WEBHOOK_ID] = set_header(req, WH_H_WEBHOOK_ID, ev->id, idlen);
	use[WH_H_WEBHOOK_TIMESTAMP] = set_header(req, WH_H_WEBHOOK_TIMESTAMP, ts, (size_t) tslen);
	use[WH_H_WEBHOOK_SIGNATURE] = false;
	if (st->signer)
	{
		if (wh_signer_sign(st->signer, ev->id, now, ev->body, ev->body_len, sig) != 0)
		{
			wh_release(st, req);
			sink_host_failed(st->s->host, ev, true, 0, "could not sign the request (an OpenSSL "
							 "failure, or out of memory)");
			return SINK_TAKEN;
		}
		use[WH_H_WEBHOOK_SIGNATURE] = set_header(req, WH_H_WEBHOOK_SIGNATURE, sig, strlen(sig));
	}

	req->ev = ev;
	req->resp_len = 0;
	req->errbuf[0] = '\0';
	req->denied[0] = '\0';
	if (st->h1)
	{
		const char *lines[WH_NHEADERS];
		int			n = 0;

		/* "Expect:" only tells curl to leave that header out */
		use[WH_H_EXPECT] = false;
		for (int i = 0; i < WH_NHEADERS; i++)
			if (use[i])
				lines[n++] = req->hline[i];
		st->in_flight++;
		h1_post(st->h1, req, lines, n, ev->body, ev->body_len);
		return SINK_TAKEN;
	}
	if (wh_curl_start(st, req, use, why, sizeof(why)) != 0)
	{
		wh_release(st, req);
		sink_host_failed(st->s->host, ev, true, 0, why);
		return SINK_TAKEN;
	}
	st->in_flight++;
	return SINK_TAKEN;
}

void
wh_conclude(struct wh_state *st, struct wh_req *req, const struct wh_result *r)
{
	struct sink_event *ev = req->ev;

	st->in_flight--;
	wh_release(st, req);
	wh_report(st->s, st->url, ev, r);
}

/* The lean client finished a POST (see sink_webhook_h1.h). */
static void
wh_h1_done(void *arg, void *token, const struct wh_result *r)
{
	wh_conclude(arg, token, r);
}

/* ---- the sink ----------------------------------------------------------- */

static void wh_close(struct sink *s);

static int
wh_open(struct sink *s, struct sink_host *h, char *err, size_t errlen)
{
	struct wh_state *st = xcalloc(sizeof(*st));
	char		shown[1024];

	st->s = s;
	st->timer_at = -1;
	st->epfd = -1;
	st->max_in_flight = s->opt.max_in_flight > 0 ? s->opt.max_in_flight : sink_webhook_ops.window;
	st->idle_timeout_ms = WH_IDLE_TIMEOUT_MS;
	s->host = h;
	s->state = st;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
	{
		snprintf(err, errlen, "webhook sink \"%s\": libcurl failed to initialise "
				 "(is libcurl with OpenSSL installed?)", s->name);
		goto fail;
	}
	st->curl_inited = true;
	/* messages and dead letters show it without userinfo and query values */
	sink_redact_uri(s->uri, shown, sizeof(shown));
	st->url = xstrdup(shown);
	if (wh_curl_check_url(st, err, errlen) != 0 ||
		sink_opts_load(s, "webhook", wh_options, st, err, errlen) != 0 ||
		(st->ca_file && sink_tls_readable(s, "webhook", "ca_file", st->ca_file, err, errlen) != 0) ||
		wh_signer_from_sink(s, st->url, &st->signer, err, errlen) != 0)
		goto fail;

	st->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (st->epfd < 0)
	{
		snprintf(err, errlen, "webhook sink \"%s\": cannot create an epoll set: %s "
				 "(raise the limit on open files?)", s->name, strerror(errno));
		goto fail;
	}
	if (h1_usable(s, s->uri))
	{
		st->h1 = h1_new(s, st->epfd, st->max_in_flight, st->idle_timeout_ms, wh_h1_done, st);
		if (st->h1 != NULL)
			return 0;
	}
	if (wh_curl_open(st, err, errlen) == 0)
		return 0;
fail:
	wh_close(s);
	return -1;
}

static int
wh_submit(struct sink *s, struct sink_event *ev)
{
	return wh_start(s->state, ev);
}

static void
wh_prepare(struct sink *s, struct pollset *ps, int *timeout_ms)
{
	struct wh_state *st = s->state;
	int64_t		now = sink_now_ms();
	int64_t		next = st->h1 ? h1_next_deadline(st->h1) : st->timer_at;

	/* one descriptor for all the connections: readable when one of them is ready */
	st->polled_ps = NULL;
	if (st->h1 ? h1_connections(st->h1) > 0 : st->nsocks > 0)
	{
		st->polled_idx = pollset_add(ps, st->epfd, POLLIN);
		st->polled_ps = ps;
	}
	if (next >= 0)
		sink_lower_timeout(timeout_ms, next - now);
}

/* Hand the client what epoll says about its sockets. */
static void
wh_sockets(struct wh_state *st)
{
	struct epoll_event evs[WH_EPOLL_BATCH];
	int			n;

	do
	{
		n = epoll_wait(st->epfd, evs, WH_EPOLL_BATCH, 0);
		for (int i = 0; i < n; i++)
			if (st->h1)
				h1_event(st->h1, &evs[i]);
			else
				wh_curl_event(st, &evs[i]);
	} while (n == WH_EPOLL_BATCH);
}

static void
wh_poll(struct sink *s, const struct pollset *ps)
{
	struct wh_state *st = s->state;
	int64_t		now;

	/*
	 * Sockets first, when the relay's poll says some are ready (the epoll
	 * entry only counts if it still is the one prepare() added).
	 */
	if (ps != NULL && ps == st->polled_ps && st->polled_idx < ps->n &&
		ps->fds[st->polled_idx].fd == st->epfd && ps->fds[st->polled_idx].revents)
		wh_sockets(st);
	st->polled_ps = NULL;

	now = sink_now_ms();
	if (st->h1)
	{
		int64_t		next = h1_next_deadline(st->h1);

		if (next >= 0 && next <= now)
			h1_timers(st->h1, now);
	}
	else
		wh_curl_poll(st, now);
}

static void
wh_close(struct sink *s)
{
	struct wh_state *st = s->state;

	if (st == NULL)
		return;
	wh_curl_close(st);
	for (int i = 0; i < st->nreqs; i++)
		free(st->reqs[i]);
	free(st->reqs);
	h1_free(st->h1);
	if (st->epfd >= 0)
		close(st->epfd);
	wh_signer_free(st->signer);
	sink_opts_free(wh_options, st);
	free(st->url);
	if (st->curl_inited)
		curl_global_cleanup();
	free(st);
	s->state = NULL;
}

static bool
wh_claims(const char *uri)
{
	return strncasecmp(uri, "http://", 7) == 0 || strncasecmp(uri, "https://", 8) == 0;
}

static bool
wh_clear_text(const struct sink *s)
{
	return strncasecmp(s->uri, "https://", 8) != 0;
}

const struct sink_ops sink_webhook_ops = {
	.kind = "webhook",
	.lane_depth = 1,			/* one request per subject at a time */
	.window = 64,
	.options = wh_options,
	.claims = wh_claims,
	.clear_text = wh_clear_text,
	.open = wh_open,
	.submit = wh_submit,
	.prepare = wh_prepare,
	.poll = wh_poll,
	.close = wh_close,
};
