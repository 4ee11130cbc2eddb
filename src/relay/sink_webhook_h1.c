/*
 * sink_webhook_h1.c — a lean HTTP/1.1 client for the webhook sink's POSTs
 * over clear text to an address literal (http://127.0.0.1:8080/hook).
 *
 * Why not libcurl here too: profiled in bench/sinks/webhook.sh, libcurl
 * and the allocations, environment lookups and poll() calls it makes per
 * transfer took about half of the relay's CPU per event, the relay's own
 * code a tenth. This client does per POST one sendmsg() and usually one
 * read(): every connection is registered in the sink's epoll set once,
 * edge-triggered, and stays there while it lives; requests are written
 * from buffers built in place.
 *
 * What it does not do, and leaves to libcurl (the sink picks curl for
 * every other URL): TLS, host names (resolving would block the relay's
 * loop; curl resolves on a thread), proxies, authentication in the URL.
 * Like curl it keeps connections alive, one request at a time on each,
 * never follows a redirect, and sends a POST again once on a new
 * connection when a kept connection turns out closed before any byte of
 * the answer (the receiver deduplicates by webhook-id).
 *
 * Every address is checked against the policy (sink_check_peer) before
 * the socket is connected (sink_webhook_h1_conn.c, the connections).
 * Answers are read in sink_webhook_h1_answer.c, the URL in
 * sink_webhook_h1_url.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <curl/curl.h>

#include "sink_webhook_h1_conn.h"

/* ---- requests ------------------------------------------------------------- */

static bool conn_write(struct h1_conn *k);

/* Hand a's outcome of token's POST to the sink. */
static void
report(struct h1_client *c, void *token, const struct h1_answer *a, const char *body)
{
	struct wh_result r = {
		.failure = a->failure,.detail = a->detail,.denied = a->denied,.status = a->status,
		.retry_after_s = a->retry_after_s,.location = a->location[0] ? a->location : NULL,
		.body = body,.body_len = a->body_len
	};

	c->done(c->arg, token, &r);
}

/* Report the outcome of k's request; keep k for the next one when it may. */
static void
finish(struct h1_conn *k, bool keep)
{
	struct h1_client *c = k->c;
	void	   *token = k->token;

	/* the answer lives in k: report it before k may go */
	k->token = NULL;
	report(c, token, &k->a, k->excerpt);
	if (keep && !k->close_after && k->in_len == 0)
	{
		TAILQ_REMOVE(&c->busy, k, link);
		k->state = H1_IDLE;
		k->reused = true;
		k->idle_since = sink_now_ms();
		TAILQ_INSERT_HEAD(&c->idle, k, link);
	}
	else
		h1_conn_close(k);
}

/* Start the request on k: head built, state reset. */
static void
start(struct h1_conn *k, void *token, const char *const *lines, int nlines,
	  const char *body, size_t body_len)
{
	struct h1_client *c = k->c;
	size_t		o = c->prefix_len;

	memcpy(k->head, c->prefix, o);
	for (int i = 0; i < nlines; i++)
	{
		size_t		n = strlen(lines[i]);

		/* the sink bounds its lines (WH_HEADER_LINE): they always fit */
		if (o + n + 64 >= sizeof(k->head))
			continue;
		memcpy(k->head + o, lines[i], n);
		k->head[o + n] = '\r';
		k->head[o + n + 1] = '\n';
		o += n + 2;
	}
	/* the room for this was kept above (64 bytes); no printf per request */
	memcpy(k->head + o, "Content-Length: ", 16);
	o += 16;
	o += buf_format_u64(body_len, k->head + o);
	memcpy(k->head + o, "\r\n\r\n", 4);
	o += 4;
	k->head_len = o;
	k->body = body;
	k->body_len = body_len;
	k->sent = 0;
	k->token = token;
	k->in_len = 0;
	k->got_any = false;
	k->body_state = H1_HEAD;
	k->close_after = false;
	memset(&k->a, 0, sizeof(k->a));
	k->deadline = sink_now_ms() + (k->state == H1_CONNECTING ?
								   c->s->opt.connect_timeout_ms : c->s->opt.timeout_ms);
}

void
h1_post(struct h1_client *c, void *token, const char *const *lines, int nlines,
		const char *body, size_t body_len)
{
	struct h1_conn *k;

	h1_drop_stale(c, sink_now_ms());
	k = TAILQ_FIRST(&c->idle);

	if (k != NULL)
	{
		TAILQ_REMOVE(&c->idle, k, link);
		k->state = H1_BUSY;
		TAILQ_INSERT_TAIL(&c->busy, k, link);
		start(k, token, lines, nlines, body, body_len);
		conn_write(k);
		return;
	}
	{
		struct h1_answer a = {0};

		if ((k = h1_conn_open(c, &a)) == NULL)
		{
			report(c, token, &a, "");
			return;
		}
	}
	start(k, token, lines, nlines, body, body_len);
}

/*
 * k failed with code: on a kept connection before any byte of the answer,
 * the receiver closed it meanwhile: send again once on a new connection.
 * k is gone afterwards.
 */
static void
fail(struct h1_conn *k, int code, const char *detail)
{
	struct h1_client *c = k->c;

	if (k->reused && !k->got_any && k->token)
	{
		struct h1_answer a = {0};
		struct h1_conn *n = h1_conn_open(c, &a);

		if (n != NULL)
		{
			/* the request moves over as it is: the same head and body */
			memcpy(n->head, k->head, k->head_len);
			n->head_len = k->head_len;
			n->body = k->body;
			n->body_len = k->body_len;
			n->token = k->token;
			n->body_state = H1_HEAD;
			n->deadline = sink_now_ms() + c->s->opt.connect_timeout_ms;
			k->token = NULL;
			h1_conn_close(k);
			return;
		}
		k->a = a;
		finish(k, false);
		return;
	}
	k->a.failure = code;
	snprintf(k->a.detail, sizeof(k->a.detail), "%s", detail);
	if (k->token)
		finish(k, false);
	else
		h1_conn_close(k);
}

/* Write what the socket takes of the request. false: k failed and is gone. */
static bool
conn_write(struct h1_conn *k)
{
	while (k->sent < k->head_len + k->body_len)
	{
		struct iovec iov[2];
		int			n = 0;
		ssize_t		w;

		if (k->sent < k->head_len)
			iov[n++] = (struct iovec) {k->head + k->sent, k->head_len - k->sent};
		if (k->body_len > 0)
		{
			size_t		off = k->sent > k->head_len ? k->sent - k->head_len : 0;

			iov[n++] = (struct iovec) {(char *) k->body + off, k->body_len - off};
		}
		/* sendmsg for MSG_NOSIGNAL: a receiver that closed is EPIPE, never SIGPIPE */
		w = sendmsg(k->fd, &(struct msghdr) {.msg_iov = iov,.msg_iovlen = (size_t) n}, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;		/* EPOLLOUT (edge) says when to go on */
		if (w < 0)
		{
			char		why[128];

			snprintf(why, sizeof(why), "Send failure: %s", strerror(errno));
			fail(k, CURLE_SEND_ERROR, why);
			return false;
		}
		k->sent += (size_t) w;
	}
	return true;
}

static void
conn_read(struct h1_conn *k)
{
	for (;;)
	{
		ssize_t		r = read(k->fd, k->in + k->in_len, sizeof(k->in) - k->in_len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0)
		{
			if (k->token == NULL)
			{
				/* an idle connection the receiver closed */
				h1_conn_close(k);
				return;
			}
			if (r == 0 && k->body_state == H1_UNTIL_CLOSE)
			{
				finish(k, false);
				return;
			}
			if (r < 0)
			{
				char		why[128];

				snprintf(why, sizeof(why), "Recv failure: %s", strerror(errno));
				fail(k, CURLE_RECV_ERROR, why);
			}
			else if (!k->got_any)
				fail(k, CURLE_GOT_NOTHING, "Empty reply from server");
			else
				fail(k, CURLE_PARTIAL_FILE, "the connection closed in the middle of the answer");
			return;
		}
		if (k->token == NULL)
		{
			/* bytes nobody asked for: the connection is out of step */
			h1_conn_close(k);
			return;
		}
		k->got_any = true;
		k->in_len += (size_t) r;
		if (h1_parse(k) != 0)
		{
			fail(k, CURLE_WEIRD_SERVER_REPLY, "the answer is not HTTP/1.1 this client can read");
			return;
		}
		if (k->body_state == H1_DONE)
		{
			finish(k, true);
			return;
		}
	}
}

void
h1_event(struct h1_client *c, const struct epoll_event *ev)
{
	struct h1_conn *k = ev->data.ptr;

	(void) c;
	if (k->state == H1_CONNECTING)
	{
		int			err = 0;
		socklen_t	len = sizeof(err);

		if (!(ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err != 0)
		{
			char		why[256];

			snprintf(why, sizeof(why), "Failed to connect to %s: %s", c->host, strerror(err));
			fail(k, CURLE_COULDNT_CONNECT, why);
			return;
		}
		k->state = H1_BUSY;
		k->deadline = sink_now_ms() + c->s->opt.timeout_ms;
	}
	/* a failed write has closed k */
	if (k->state == H1_BUSY && (ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && !conn_write(k))
		return;
	if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		conn_read(k);
}

/* ---- time ----------------------------------------------------------------- */

int64_t
h1_next_deadline(struct h1_client *c)
{
	struct h1_conn *k;
	int64_t		next = -1;

	TAILQ_FOREACH(k, &c->busy, link)
		if (next < 0 || k->deadline < next)
			next = k->deadline;
	return next;
}

void
h1_timers(struct h1_client *c, int64_t now)
{
	struct h1_conn *k,
			   *next;

	h1_drop_stale(c, now);
	for (k = TAILQ_FIRST(&c->busy); k != NULL; k = next)
	{
		next = TAILQ_NEXT(k, link);
		if (k->deadline > now)
			continue;
		k->reused = false;		/* a timeout is never sent again here */
		fail(k, CURLE_OPERATION_TIMEDOUT, k->state == H1_CONNECTING ?
			 "Connection timed out" : "Operation timed out: no complete answer in time");
	}
}
