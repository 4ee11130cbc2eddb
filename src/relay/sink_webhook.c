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
 * I/O. libcurl's multi interface, driven by the relay's poll loop: curl
 * tells us through CURLMOPT_SOCKETFUNCTION which sockets to watch and
 * through CURLMOPT_TIMERFUNCTION when it wants to run. The sockets go into
 * an epoll set of the sink's own, changed only when curl changes what it
 * watches; prepare() puts that one descriptor and curl's timeout into the
 * relay's poll, poll() hands what epoll reports to
 * curl_multi_socket_action. (With max_in_flight 256 a poll set of every
 * socket, built before each wait and scanned after it, cost more than the
 * requests.) One multi handle keeps connections alive and reuses them (and
 * multiplexes over HTTP/2 when the server offers it).
 *
 * Outcomes. 2xx: accepted. 408, 429, 5xx, timeouts and network errors:
 * retryable (no earlier than a Retry-After on 429/503). Anything else
 * (3xx, other 4xx): refused for good. The reason, which the relay keeps in
 * ordersync.dead_letter, has the status and at most SINK_EXCERPT_MAX
 * printable bytes of the answer: enough to recognise an error page, too
 * little for an admin to read an internal service's answers through a
 * sink pointed at it.
 *
 * Where it connects. Every new connection goes through wh_opensocket,
 * which refuses an address in --deny-networks (and, for a clear-text sink
 * admitted only for this machine, any address but loopback) before the
 * socket exists: a host name that resolves there, or a DNS answer that
 * changes, cannot get around the check. Redirects are never followed, and
 * a sink from the database never goes through a proxy named in the
 * environment (the proxy would connect where the check cannot see).
 *
 * Signing. Headers webhook-id (the event id, the same at every attempt),
 * webhook-timestamp (unix seconds of this attempt) and webhook-signature
 * ("v1,<base64 HMAC-SHA256 of id.timestamp.body>"), with the key set up
 * once (wh_signer). Each request handle keeps its header lines in place
 * and only rewrites the values: no allocation per request. The secret comes by
 * reference (options secret_env or secret_file). Without either, events go
 * out unsigned and a warning says so once; a secret that is named but
 * cannot be read stops the sink from opening, because sending unsigned
 * events to a receiver that expects signatures would only dead-letter them.
 *
 * Options besides the common ones: secret_env, secret_file, ca_file (a PEM
 * bundle for a private CA; the server's certificate and name are always
 * verified).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "sink.h"
#include "sink_policy.h"
#include "sink_tls.h"
#include "log.h"
#include "sink_webhook_h1.h"
#include "sink_webhook_sign.h"

#define WH_WHY_LEN 1024
/* epoll events taken per epoll_wait */
#define WH_EPOLL_BATCH 64

/*
 * The request headers, in this order; a line whose value cannot be sent
 * (too long, or a CR/LF that would break the header block) is left out:
 * they are optional, the body says it all.
 */
enum wh_header
{
	WH_H_CONTENT_TYPE,
	WH_H_SPECVERSION,
	WH_H_CE_ID,
	WH_H_CE_TYPE,
	WH_H_WEBHOOK_ID,
	WH_H_WEBHOOK_TIMESTAMP,
	WH_H_WEBHOOK_SIGNATURE,
	WH_H_EXPECT,				/* no "Expect: 100-continue" round trip before larger bodies */
	WH_NHEADERS
};

static const char *const wh_header_name[WH_NHEADERS] = {
	"Content-Type: ", "ce-specversion: ", "ce-id: ", "ce-type: ordersync.", "webhook-id: ",
	"webhook-timestamp: ", "webhook-signature: ", "Expect:"
};

#define WH_HEADER_LINE 512

struct wh_state;

/* One easy handle and what it is sending; reused across requests. */
struct wh_req
{
	struct wh_req *next_free;
	struct wh_state *st;
	CURL	   *easy;
	/* the header list handed to curl: nodes and lines kept, values rewritten */
	struct curl_slist hnode[WH_NHEADERS];
	char		hline[WH_NHEADERS][WH_HEADER_LINE];
	size_t		hname_len[WH_NHEADERS];
	struct sink_event *ev;		/* NULL when idle */
	size_t		resp_len;
	char		resp[SINK_EXCERPT_MAX];	/* the start of the answer, raw */
	char		errbuf[CURL_ERROR_SIZE];
	char		denied[512];	/* wh_opensocket refused an address: why */
};

/* A socket curl asked us to watch (attached with curl_multi_assign). */
struct wh_sock
{
	struct wh_sock *prev;
	struct wh_sock *next;
	curl_socket_t fd;
	uint32_t	events;			/* as registered in the epoll set */
};

struct wh_state
{
	struct sink *s;
	struct h1_client *h1;		/* http:// to an address: the lean client */
	CURLM	   *multi;			/* else libcurl's */
	char	   *url;			/* for messages: redacted (sink_redact_uri) */
	char	   *ca_file;
	struct wh_signer *signer;	/* NULL: unsigned */

	struct wh_req **reqs;		/* every handle made, max_in_flight at most */
	int			nreqs;
	int			reqs_cap;
	struct wh_req *free_reqs;
	int			in_flight;
	int			max_in_flight;

	int64_t		timer_at;		/* curl's timeout (monotonic ms), -1: none */
	struct wh_sock *socks;
	int			nsocks;
	int			epfd;			/* curl's sockets */
	const struct pollset *polled_ps;	/* where prepare() put epfd */
	int			polled_idx;
	bool		curl_inited;
};

/* the options of this kind (sink.h); their order is the one messages list */
static const struct sink_opt wh_options[] = {
	{"secret", SINK_OPT_SECRET, -1, 0, 0},
	{"ca_file", SINK_OPT_FILE, offsetof(struct wh_state, ca_file), 0, 0},
	{NULL, 0, 0, 0, 0}
};

/* ---- requests --------------------------------------------------------- */

static size_t
wh_write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct wh_req *req = userp;
	size_t		n = size * nmemb;
	size_t		room = sizeof(req->resp) - req->resp_len;
	size_t		take = n < room ? n : room;

	/* Keep the start for the reason of a refusal; the rest is read and dropped. */
	memcpy(req->resp + req->resp_len, data, take);
	req->resp_len += take;
	return n;
}

/*
 * curl is about to open a socket for a connection to address: refuse it
 * when the policy forbids that address. The request then fails with
 * CURLE_COULDNT_CONNECT and wh_finish finds the reason in req->denied.
 */
static curl_socket_t
wh_opensocket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	struct wh_req *req = clientp;

	if (purpose == CURLSOCKTYPE_IPCXN &&
		sink_check_peer(req->st->s, &address->addr, req->denied, sizeof(req->denied)) != 0)
		return CURL_SOCKET_BAD;
	return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

static struct wh_req *
wh_new_req(struct wh_state *st)
{
	struct wh_req *req = xcalloc(sizeof(*req));
	CURL	   *e = st->h1 ? NULL : curl_easy_init();
	const struct sink_options *o = &st->s->opt;

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
	if (st->h1)
		return req;
	if (e == NULL)
	{
		free(req);
		return NULL;
	}
	req->easy = e;
	curl_easy_setopt(e, CURLOPT_URL, st->s->uri);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, wh_opensocket);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, req);
	/* "" = no proxy, whatever http_proxy/https_proxy/ALL_PROXY say */
	if (!st->s->trusted)
		curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_PRIVATE, req);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, wh_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long) o->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) o->timeout_ms);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "ordersyncd");
	/* a redirect is the operator's to fix (see the 3xx reason), not ours to follow */
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, 0L);
	/* curl's defaults, said out loud: never send events to an unverified peer */
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (st->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, st->ca_file);
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

/* Link the lines that may go out into the list handed to curl. */
static struct curl_slist *
link_headers(struct wh_req *req, const bool *use)
{
	struct curl_slist *head = NULL,
			  **tail = &head;

	for (int i = 0; i < WH_NHEADERS; i++)
		if (use[i])
		{
			*tail = &req->hnode[i];
			tail = &req->hnode[i].next;
		}
	*tail = NULL;
	return head;
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
	CURLMcode	mc;

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

	tslen = snprintf(ts, sizeof(ts), "%" PRId64, now);
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
			req->next_free = st->free_reqs;
			st->free_reqs = req;
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
	curl_easy_setopt(req->easy, CURLOPT_HTTPHEADER, link_headers(req, use));
	curl_easy_setopt(req->easy, CURLOPT_POSTFIELDS, ev->body);
	curl_easy_setopt(req->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) ev->body_len);
	mc = curl_multi_add_handle(st->multi, req->easy);
	if (mc != CURLM_OK)
	{
		char		why[WH_WHY_LEN];

		req->ev = NULL;
		req->next_free = st->free_reqs;
		st->free_reqs = req;
		snprintf(why, sizeof(why), "libcurl refused the request to %s: %s",
				 st->url, curl_multi_strerror(mc));
		sink_host_failed(st->s->host, ev, true, 0, why);
		return SINK_TAKEN;
	}
	st->in_flight++;
	return SINK_TAKEN;
}

/* A POST is over: report it and make its request handle free again. */
static void
wh_conclude(struct wh_state *st, struct wh_req *req, const struct wh_result *r)
{
	struct sink_event *ev = req->ev;

	st->in_flight--;
	req->ev = NULL;
	req->next_free = st->free_reqs;
	st->free_reqs = req;
	wh_report(st->s, st->url, ev, r);
}

/* libcurl finished a transfer. */
static void
wh_finish(struct wh_state *st, struct wh_req *req, CURLcode res)
{
	struct wh_result r = {.failure = (int) res,.detail = req->errbuf,.body = req->resp,
	.body_len = req->resp_len};
	curl_off_t	retry_after = 0;
	char	   *loc = NULL;

	curl_multi_remove_handle(st->multi, req->easy);
	if (req->denied[0])
	{
		r.denied = true;
		r.detail = req->denied;
	}
	if (res == CURLE_OK)
	{
		curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &r.status);
		curl_easy_getinfo(req->easy, CURLINFO_RETRY_AFTER, &retry_after);
		if (r.status >= 300 && r.status < 400)
			curl_easy_getinfo(req->easy, CURLINFO_REDIRECT_URL, &loc);
	}
	r.retry_after_s = (long) retry_after;
	r.location = loc;
	wh_conclude(st, req, &r);
}

/* The lean client finished a POST (see sink_webhook_h1.h). */
static void
wh_h1_done(void *arg, void *token, const struct wh_result *r)
{
	wh_conclude(arg, token, r);
}

/* Collect finished transfers. */
static void
wh_reap(struct wh_state *st)
{
	CURLMsg    *m;
	int			left;

	while ((m = curl_multi_info_read(st->multi, &left)) != NULL)
	{
		struct wh_req *req = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &req);
		/* m is invalid once the handle is removed: take the result first */
		wh_finish(st, req, m->data.result);
	}
}

/* ---- curl's callbacks --------------------------------------------------- */

static int
wh_socket_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct wh_state *st = userp;
	struct wh_sock *sk = socketp;

	uint32_t	events;
	struct epoll_event ee = {0};

	(void) e;
	if (what == CURL_POLL_REMOVE)
	{
		if (sk)
		{
			/* curl may have closed it already (then the kernel dropped it) */
			if (sk->events != 0)
				(void) epoll_ctl(st->epfd, EPOLL_CTL_DEL, fd, NULL);
			if (sk->prev)
				sk->prev->next = sk->next;
			else
				st->socks = sk->next;
			if (sk->next)
				sk->next->prev = sk->prev;
			free(sk);
			st->nsocks--;
			curl_multi_assign(st->multi, fd, NULL);
		}
		return 0;
	}
	if (sk == NULL)
	{
		sk = xcalloc(sizeof(*sk));
		sk->fd = fd;
		sk->next = st->socks;
		if (st->socks)
			st->socks->prev = sk;
		st->socks = sk;
		st->nsocks++;
		curl_multi_assign(st->multi, fd, sk);
	}
	events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
	if (events == sk->events)
		return 0;
	ee.events = events;
	ee.data.fd = fd;
	if (epoll_ctl(st->epfd, sk->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ee) != 0 &&
		!(errno == ENOENT && epoll_ctl(st->epfd, EPOLL_CTL_ADD, fd, &ee) == 0) &&
		!(errno == EEXIST && epoll_ctl(st->epfd, EPOLL_CTL_MOD, fd, &ee) == 0))
	{
		/* curl treats -1 as "give up this transfer": it fails and is retried */
		log_warning("webhook sink \"%s\": cannot watch a connection's socket: %s",
					st->s->name, strerror(errno));
		return -1;
	}
	sk->events = events;
	return 0;
}

static int
wh_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct wh_state *st = userp;

	(void) multi;
	st->timer_at = timeout_ms < 0 ? -1 : sink_now_ms() + timeout_ms;
	return 0;
}

/* ---- the sink ----------------------------------------------------------- */

static void wh_close(struct sink *s);

static int
wh_open(struct sink *s, struct sink_host *h, char *err, size_t errlen)
{
	struct wh_state *st;
	CURLU	   *u;
	CURLUcode	uc;
	char	   *scheme = NULL,
			   *host = NULL;
	bool		named_secret;

	st = xcalloc(sizeof(*st));
	st->s = s;
	st->timer_at = -1;
	st->epfd = -1;
	st->max_in_flight = s->opt.max_in_flight > 0 ? s->opt.max_in_flight : sink_webhook_ops.window;
	s->host = h;
	s->state = st;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
	{
		snprintf(err, errlen, "webhook sink \"%s\": libcurl failed to initialise "
				 "(is libcurl with OpenSSL installed?)", s->name);
		goto fail;
	}
	st->curl_inited = true;

	/* The URL: parse it once here so a typo fails at start, not per event. */
	{
		char		shown[1024];

		/* messages and dead letters show it without userinfo and query values */
		sink_redact_uri(s->uri, shown, sizeof(shown));
		st->url = xstrdup(shown);
	}
	u = curl_url();
	uc = u ? curl_url_set(u, CURLUPART_URL, s->uri, 0) : CURLUE_OUT_OF_MEMORY;
	if (uc == CURLUE_OK)
		uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	if (uc == CURLUE_OK)
		uc = curl_url_get(u, CURLUPART_HOST, &host, 0);
	if (uc == CURLUE_OK && strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
		uc = CURLUE_UNSUPPORTED_SCHEME;
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	if (uc != CURLUE_OK)
	{
		snprintf(err, errlen, "webhook sink \"%s\": \"%s\" is not a usable URL (%s); "
				 "give one like https://hooks.example.com/ordersync", s->name, st->url,
				 curl_url_strerror(uc));
		goto fail;
	}

	if (sink_opts_load(s, "webhook", wh_options, st, err, errlen) != 0 ||
		(st->ca_file && sink_tls_readable(s, "webhook", "ca_file", st->ca_file, err, errlen) != 0))
		goto fail;

	named_secret = sink_secret_given(s, "secret");
	if (named_secret)
	{
		char		e2[512];
		char	   *secret = sink_secret(s, "secret", e2, sizeof(e2));

		if (secret == NULL)
		{
			/* e2 names the sink already */
			snprintf(err, errlen, "webhook %s", e2);
			goto fail;
		}
		unsigned char *key;
		size_t		keylen = 0;

		key = wh_key_from_secret(secret, &keylen, e2, sizeof(e2));
		sink_secret_free(secret);
		if (key == NULL)
		{
			snprintf(err, errlen, "webhook sink \"%s\": %s", s->name, e2);
			goto fail;
		}
		st->signer = wh_signer_new(key, keylen);
		explicit_bzero(key, keylen);
		free(key);
		if (st->signer == NULL)
		{
			snprintf(err, errlen, "webhook sink \"%s\": OpenSSL could not set up HMAC-SHA256 "
					 "with the secret (is the OpenSSL default provider available?)", s->name);
			goto fail;
		}
	}
	else
		log_warning("webhook sink \"%s\" has no secret: events to %s go out unsigned, so "
					"the receiver cannot tell them from forgeries; give the sink option "
					"secret_env or secret_file (a whsec_... secret or any string)",
					s->name, st->url);

	st->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (st->epfd < 0)
	{
		snprintf(err, errlen, "webhook sink \"%s\": cannot create an epoll set: %s "
				 "(raise the limit on open files?)", s->name, strerror(errno));
		goto fail;
	}
	if (h1_usable(s, s->uri))
	{
		st->h1 = h1_new(s, st->epfd, st->max_in_flight, wh_h1_done, st);
		if (st->h1 != NULL)
			return 0;
	}
	st->multi = curl_multi_init();
	if (st->multi == NULL)
	{
		snprintf(err, errlen, "webhook sink \"%s\": libcurl could not create its "
				 "multi handle (out of memory?)", s->name);
		goto fail;
	}
	curl_multi_setopt(st->multi, CURLMOPT_SOCKETFUNCTION, wh_socket_cb);
	curl_multi_setopt(st->multi, CURLMOPT_SOCKETDATA, st);
	curl_multi_setopt(st->multi, CURLMOPT_TIMERFUNCTION, wh_timer_cb);
	curl_multi_setopt(st->multi, CURLMOPT_TIMERDATA, st);
	/* one connection per request in flight at most, all kept for reuse */
	curl_multi_setopt(st->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) st->max_in_flight);
	curl_multi_setopt(st->multi, CURLMOPT_MAXCONNECTS, (long) st->max_in_flight);
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

	/* one descriptor for all of curl's sockets: readable when one of them is ready */
	st->polled_ps = NULL;
	if (st->h1)
	{
		int64_t		next = h1_next_deadline(st->h1);

		if (h1_connections(st->h1) > 0)
		{
			st->polled_idx = pollset_add(ps, st->epfd, POLLIN);
			st->polled_ps = ps;
		}
		if (next >= 0)
			sink_lower_timeout(timeout_ms, next - now);
		return;
	}
	if (st->nsocks > 0)
	{
		st->polled_idx = pollset_add(ps, st->epfd, POLLIN);
		st->polled_ps = ps;
	}
	if (st->timer_at >= 0)
		sink_lower_timeout(timeout_ms, st->timer_at - now);
}

/* Hand curl what epoll says about its sockets. */
static void
wh_sockets(struct wh_state *st)
{
	struct epoll_event evs[WH_EPOLL_BATCH];
	int			n,
				running;

	do
	{
		n = epoll_wait(st->epfd, evs, WH_EPOLL_BATCH, 0);
		for (int i = 0; i < n; i++)
		{
			uint32_t	re = evs[i].events;
			int			ev = 0;

			if (st->h1)
			{
				h1_event(st->h1, &evs[i]);
				continue;
			}

			if (re & (EPOLLIN | EPOLLPRI | EPOLLHUP))
				ev |= CURL_CSELECT_IN;
			if (re & EPOLLOUT)
				ev |= CURL_CSELECT_OUT;
			if (re & EPOLLERR)
				ev |= CURL_CSELECT_ERR;
			/* curl ignores a socket it has dropped meanwhile (an earlier event of the batch) */
			curl_multi_socket_action(st->multi, evs[i].data.fd, ev, &running);
		}
	} while (n == WH_EPOLL_BATCH);
}

static void
wh_poll(struct sink *s, const struct pollset *ps)
{
	struct wh_state *st = s->state;
	int			running;
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
		return;
	}
	if (st->timer_at >= 0 && st->timer_at <= now)
	{
		st->timer_at = -1;
		curl_multi_socket_action(st->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	wh_reap(st);
}

static void
wh_close(struct sink *s)
{
	struct wh_state *st = s->state;
	struct wh_sock *sk;

	if (st == NULL)
		return;
	/* Handles first: removing them lets curl close their sockets. */
	for (int i = 0; i < st->nreqs; i++)
	{
		struct wh_req *req = st->reqs[i];

		if (req->ev != NULL && st->multi)
			curl_multi_remove_handle(st->multi, req->easy);
		curl_easy_cleanup(req->easy);
		free(req);
	}
	free(st->reqs);
	h1_free(st->h1);
	if (st->multi)
		curl_multi_cleanup(st->multi);
	while ((sk = st->socks) != NULL)
	{
		st->socks = sk->next;
		free(sk);
	}
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
