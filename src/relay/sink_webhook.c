/*
 * sink_webhook.c — the webhook delivery sink (see dsink.h): each event is
 * POSTed as a structured-mode CloudEvent (application/cloudevents+json) to
 * the sink's http:// or https:// URL, signed the Standard Webhooks way.
 *
 * Ordering. A receiver sees a subject's events one at a time and in commit
 * order, across retries too: each subject has a FIFO, and only its head is
 * ever on the wire. While the head waits for a retry (in the retry heap),
 * the subject's later events wait behind it; other subjects keep flowing,
 * up to max_in_flight requests at once. Subjects whose head can go now sit
 * on a ready list, so handing out work is O(1) per event; a subject whose
 * FIFO empties is freed, so the table only holds subjects with something
 * pending.
 *
 * I/O. libcurl's multi interface, driven by the relay's poll loop: curl
 * tells us through CURLMOPT_SOCKETFUNCTION which sockets to watch and
 * through CURLMOPT_TIMERFUNCTION when it wants to run; prepare() turns that
 * into poll entries and a timeout, work() hands the results back with
 * curl_multi_socket_action. One multi handle keeps connections alive and
 * reuses them (and multiplexes over HTTP/2 when the server offers it).
 *
 * Outcomes. 2xx: accepted. 408, 429, 5xx, timeouts and network errors:
 * retryable (no earlier than a Retry-After on 429/503). Anything else
 * (3xx, other 4xx): refused for good. The reason, which the relay keeps in
 * ordersync.dead_letter, has the status and at most DSINK_EXCERPT_MAX
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
 * ("v1,<base64 HMAC-SHA256 of id.timestamp.body>"). The secret comes by
 * reference (options secret_env or secret_file). Without either, events go
 * out unsigned and a warning says so once; a secret that is named but
 * cannot be read stops the sink from opening, because sending unsigned
 * events to a receiver that expects signatures would only dead-letter them.
 *
 * Options besides the common ones: secret_env, secret_file, ca_file (a PEM
 * bundle for a private CA; the server's certificate and name are always
 * verified).
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <uthash.h>

#include "dsink.h"
#include "dsink_policy.h"
#include "log.h"
#include "sink_webhook_sign.h"

#define WH_WHY_LEN 1024

struct wh_state;

/* One subject's pending events. */
struct wh_subject
{
	UT_hash_handle hh;
	char	   *key;
	struct delivery *head;		/* FIFO through delivery.next */
	struct delivery *tail;
	bool		busy;			/* head is on the wire (or being finished) */
	bool		queued;			/* on the ready list */
	int			heap_idx;		/* in the retry heap, or -1 */
	int64_t		retry_at;		/* while in the retry heap */
	struct wh_subject *ready_next;
};

/* One easy handle and what it is sending; reused across requests. */
struct wh_req
{
	struct wh_req *next_free;
	struct wh_state *st;
	CURL	   *easy;
	struct curl_slist *headers;
	struct wh_subject *subj;	/* NULL when idle */
	struct delivery *d;
	size_t		resp_len;
	char		resp[DSINK_EXCERPT_MAX];	/* the start of the answer, raw */
	char		errbuf[CURL_ERROR_SIZE];
	char		denied[512];	/* wh_opensocket refused an address: why */
};

/* A socket curl asked us to watch (attached with curl_multi_assign). */
struct wh_sock
{
	struct wh_sock *prev;
	struct wh_sock *next;
	curl_socket_t fd;
	short		events;
};

/* Where prepare() put a socket in the poll set. */
struct wh_polled
{
	curl_socket_t fd;
	int			idx;
};

struct wh_state
{
	struct dsink *s;
	CURLM	   *multi;
	char	   *url;			/* for messages: redacted (dsink_redact_uri) */
	char	   *ca_file;
	unsigned char *key;			/* NULL: unsigned */
	size_t		keylen;

	struct wh_subject *subjects;	/* uthash by key */
	struct wh_subject *ready_head;
	struct wh_subject *ready_tail;
	struct wh_subject **heap;	/* min-heap by retry_at */
	int			heap_n;
	int			heap_cap;

	struct wh_req **reqs;		/* every handle made, max_in_flight at most */
	int			nreqs;
	struct wh_req *free_reqs;
	int			in_flight;
	int			max_in_flight;

	int64_t		timer_at;		/* curl's timeout (monotonic ms), -1: none */
	struct wh_sock *socks;
	struct wh_polled *polled;
	int			npolled;
	int			polled_cap;
	const struct pollset *polled_ps;
	bool		curl_inited;
};

/* ---- ready list and retry heap -------------------------------------- */

static void
ready_push(struct wh_state *st, struct wh_subject *subj)
{
	subj->queued = true;
	subj->ready_next = NULL;
	if (st->ready_tail)
		st->ready_tail->ready_next = subj;
	else
		st->ready_head = subj;
	st->ready_tail = subj;
}

static struct wh_subject *
ready_pop(struct wh_state *st)
{
	struct wh_subject *subj = st->ready_head;

	st->ready_head = subj->ready_next;
	if (st->ready_head == NULL)
		st->ready_tail = NULL;
	subj->queued = false;
	subj->ready_next = NULL;
	return subj;
}

static void
heap_swap(struct wh_state *st, int a, int b)
{
	struct wh_subject *t = st->heap[a];

	st->heap[a] = st->heap[b];
	st->heap[b] = t;
	st->heap[a]->heap_idx = a;
	st->heap[b]->heap_idx = b;
}

static void
heap_push(struct wh_state *st, struct wh_subject *subj)
{
	int			i;

	if (st->heap_n == st->heap_cap)
	{
		st->heap_cap = st->heap_cap ? st->heap_cap * 2 : 64;
		st->heap = ds_xrealloc(st->heap, sizeof(*st->heap) * (size_t) st->heap_cap);
	}
	i = st->heap_n++;
	st->heap[i] = subj;
	subj->heap_idx = i;
	while (i > 0 && st->heap[(i - 1) / 2]->retry_at > st->heap[i]->retry_at)
	{
		heap_swap(st, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static struct wh_subject *
heap_pop(struct wh_state *st)
{
	struct wh_subject *top = st->heap[0];
	int			i = 0;

	heap_swap(st, 0, --st->heap_n);
	for (;;)
	{
		int			l = 2 * i + 1,
					r = l + 1,
					m = i;

		if (l < st->heap_n && st->heap[l]->retry_at < st->heap[m]->retry_at)
			m = l;
		if (r < st->heap_n && st->heap[r]->retry_at < st->heap[m]->retry_at)
			m = r;
		if (m == i)
			break;
		heap_swap(st, i, m);
		i = m;
	}
	top->heap_idx = -1;
	return top;
}

/* ---- subjects --------------------------------------------------------- */

/* Nothing of the subject is on the wire, waiting, or queued to go. */
static bool
subject_idle(const struct wh_subject *subj)
{
	return !subj->busy && !subj->queued && subj->heap_idx < 0;
}

/*
 * The subject's head just finished (or came back from a retry wait): queue
 * it again if more is pending, forget it if not.
 */
static void
subject_next(struct wh_state *st, struct wh_subject *subj)
{
	if (!subject_idle(subj))
		return;
	if (subj->head != NULL)
		ready_push(st, subj);
	else
	{
		HASH_DEL(st->subjects, subj);
		free(subj->key);
		free(subj);
	}
}

static struct delivery *
subject_pop_head(struct wh_subject *subj)
{
	struct delivery *d = subj->head;

	subj->head = d->next;
	if (subj->head == NULL)
		subj->tail = NULL;
	d->next = NULL;
	return d;
}

static void
subject_push_head(struct wh_subject *subj, struct delivery *d)
{
	d->next = subj->head;
	subj->head = d;
	if (subj->tail == NULL)
		subj->tail = d;
}

/* ---- outcomes --------------------------------------------------------- */

/*
 * The head of subj was taken by the receiver. The head is unlinked before
 * the relay hears of it, and the subject stays busy meanwhile, so that a
 * submit() the relay might make from inside dsink_accepted finds the
 * subject consistent.
 */
static void
head_accepted(struct wh_state *st, struct wh_subject *subj)
{
	struct delivery *d = subject_pop_head(subj);

	subj->busy = true;
	dsink_accepted(d);
	subj->busy = false;
	subject_next(st, subj);
}

/*
 * An attempt of subj's head failed: the relay says when to retry, or has
 * dead-lettered (and freed) it, in which case the next event of the subject
 * may go. not_before is the receiver's Retry-After as monotonic ms, or 0.
 */
static void
head_failed(struct wh_state *st, struct wh_subject *subj, bool retryable,
			const char *why, int64_t not_before)
{
	struct delivery *d = subject_pop_head(subj);
	int64_t		at;

	subj->busy = true;
	at = dsink_failed(d, retryable, why);
	subj->busy = false;
	if (at == DSINK_GIVEN_UP)
	{
		subject_next(st, subj);
		return;
	}
	subject_push_head(subj, d);
	subj->retry_at = at > not_before ? at : not_before;
	heap_push(st, subj);
}

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
		dsink_check_peer(req->st->s, &address->addr, req->denied, sizeof(req->denied)) != 0)
		return CURL_SOCKET_BAD;
	return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

static struct wh_req *
wh_new_req(struct wh_state *st)
{
	struct wh_req *req = ds_xcalloc(sizeof(*req));
	CURL	   *e = curl_easy_init();
	const struct dsink_options *o = &st->s->opt;

	if (e == NULL)
	{
		free(req);
		return NULL;
	}
	req->st = st;
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

/* Add "name: value" unless value could break the header block. */
static struct curl_slist *
add_header(struct curl_slist *h, const char *name, const char *value, bool *ok)
{
	char		line[512];
	struct curl_slist *n;

	if (strpbrk(value, "\r\n") != NULL ||
		snprintf(line, sizeof(line), "%s: %s", name, value) >= (int) sizeof(line))
		return h;				/* optional headers only; the body says it all */
	n = curl_slist_append(h, line);
	if (n == NULL)
	{
		*ok = false;
		return h;
	}
	return n;
}

/* Put subj's head on the wire. */
static void
wh_start(struct wh_state *st, struct wh_subject *subj)
{
	struct delivery *d = subj->head;
	struct wh_req *req = st->free_reqs;
	struct curl_slist *h = NULL;
	bool		ok = true;
	char		ts[24],
				sig[WH_SIGNATURE_LEN],
				type[200];
	int64_t		now = (int64_t) time(NULL);
	CURLMcode	mc;

	if (req != NULL)
		st->free_reqs = req->next_free;
	else if ((req = wh_new_req(st)) != NULL)
		st->reqs[st->nreqs++] = req;
	else
	{
		head_failed(st, subj, true, "libcurl could not create a request handle "
					"(out of memory?)", 0);
		return;
	}

	snprintf(ts, sizeof(ts), "%" PRId64, now);
	snprintf(type, sizeof(type), "ordersync.%s", d->type);
	h = add_header(h, "Content-Type", "application/cloudevents+json", &ok);
	h = add_header(h, "ce-specversion", "1.0", &ok);
	h = add_header(h, "ce-id", d->id, &ok);
	h = add_header(h, "ce-type", type, &ok);
	h = add_header(h, "webhook-id", d->id, &ok);
	h = add_header(h, "webhook-timestamp", ts, &ok);
	if (st->key)
	{
		if (wh_sign(st->key, st->keylen, d->id, now, d->body, d->body_len, sig) != 0)
			ok = false;
		h = add_header(h, "webhook-signature", sig, &ok);
	}
	/* no "Expect: 100-continue" round trip before larger bodies */
	h = add_header(h, "Expect", "", &ok);
	if (!ok)
	{
		curl_slist_free_all(h);
		req->next_free = st->free_reqs;
		st->free_reqs = req;
		head_failed(st, subj, true, "could not build the request headers or the "
					"signature (out of memory or an OpenSSL failure)", 0);
		return;
	}

	req->headers = h;
	req->subj = subj;
	req->d = d;
	req->resp_len = 0;
	req->errbuf[0] = '\0';
	req->denied[0] = '\0';
	curl_easy_setopt(req->easy, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(req->easy, CURLOPT_POSTFIELDS, d->body);
	curl_easy_setopt(req->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) d->body_len);
	subj->busy = true;
	mc = curl_multi_add_handle(st->multi, req->easy);
	if (mc != CURLM_OK)
	{
		char		why[WH_WHY_LEN];

		curl_slist_free_all(h);
		req->headers = NULL;
		req->subj = NULL;
		req->d = NULL;
		req->next_free = st->free_reqs;
		st->free_reqs = req;
		subj->busy = false;
		snprintf(why, sizeof(why), "libcurl refused the request to %s: %s",
				 st->url, curl_multi_strerror(mc));
		head_failed(st, subj, true, why, 0);
		return;
	}
	st->in_flight++;
}

static void
wh_dispatch(struct wh_state *st)
{
	while (st->ready_head != NULL && st->in_flight < st->max_in_flight)
		wh_start(st, ready_pop(st));
}

/* Why a transfer failed without an HTTP answer, and what to do about it. */
static void
describe_curl_error(struct wh_state *st, struct wh_req *req, CURLcode res,
					char *why, size_t len)
{
	char		detail[161];
	const char *hint;

	/* curl's text can quote the server (a TLS alert, a certificate name) */
	if (req->errbuf[0])
		dsink_excerpt(req->errbuf, strlen(req->errbuf), detail, sizeof(detail));
	else
		snprintf(detail, sizeof(detail), "%s", curl_easy_strerror(res));
	switch (res)
	{
		case CURLE_COULDNT_CONNECT:
			hint = "nothing accepts connections there: start the receiver or fix the sink's URL";
			break;
		case CURLE_COULDNT_RESOLVE_HOST:
			hint = "the host name does not resolve: fix the sink's URL or DNS";
			break;
		case CURLE_OPERATION_TIMEDOUT:
			hint = "the receiver did not answer in time: make it answer faster or raise "
				"the sink's timeout_ms / connect_timeout_ms";
			break;
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CONNECT_ERROR:
			hint = "TLS failed; certificates are always verified: give the receiver a "
				"certificate for this host name signed by a trusted CA, or point the sink's "
				"option ca_file at your private CA's PEM file";
			break;
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
			hint = "the connection broke: the receiver crashed, restarted or closed it early";
			break;
		default:
			hint = "check that the receiver is up and reachable from this host";
			break;
	}
	snprintf(why, len, "POST %s failed: %s (%s); %s", st->url, detail,
			 curl_easy_strerror(res), hint);
}

/* What to do about an answer that is not 2xx. */
static const char *
refusal_hint(long status)
{
	if (status >= 300 && status < 400)
		return "redirects are not followed: set the sink's URL to the final address";
	if (status == 401 || status == 403)
		return "the receiver rejected the request's credentials: if it checks the "
			"webhook-signature, give the sink the same secret as the receiver "
			"(secret_env/secret_file), then SELECT ordersync.redeliver(id) the dead letters";
	if (status == 404 || status == 405)
		return "nothing takes POSTs at that URL: fix the sink's URL, then "
			"SELECT ordersync.redeliver(id) the dead letters";
	return "the receiver refused this event for good: fix the receiver (or the "
		"data), then SELECT ordersync.redeliver(id) it";
}

/*
 * "HTTP 404 (Not Found) from URL: <excerpt>" and what follows: only the
 * status and a short, sanitized excerpt of what the receiver said.
 */
static void
describe_answer(struct wh_state *st, struct wh_req *req, long status, int64_t not_before,
				char *why, size_t len)
{
	char		excerpt[DSINK_EXCERPT_MAX + 1];
	char		where[DSINK_EXCERPT_MAX + 16] = "";
	char	   *loc = NULL;

	if (dsink_excerpt(req->resp, req->resp_len, excerpt, sizeof(excerpt)) == 0)
		strcpy(excerpt, "(empty body)");
	if (status >= 300 && status < 400 &&
		curl_easy_getinfo(req->easy, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc)
	{
		char		shown[512];

		/* where it points is the receiver's answer too: redacted and bounded */
		dsink_redact_uri(loc, shown, sizeof(shown));
		snprintf(where, sizeof(where), " (Location: %.*s)", DSINK_EXCERPT_MAX, shown);
	}
	if (wh_classify(status) == WH_RETRY)
		snprintf(why, len, "HTTP %ld (%s) from %s: %s; the receiver %s%s", status,
				 wh_status_text(status), st->url, excerpt,
				 status == 429 ? "asks to slow down" :
				 status == 408 ? "timed out reading the request" :
				 "failed: look at its logs",
				 not_before ? " (next attempt no earlier than its Retry-After)" : "");
	else
		snprintf(why, len, "HTTP %ld (%s) from %s: %s%s; %s", status, wh_status_text(status),
				 st->url, excerpt, where, refusal_hint(status));
}

/* A transfer is over: decide what it means for its delivery. */
static void
wh_finish(struct wh_state *st, struct wh_req *req, CURLcode res)
{
	struct wh_subject *subj = req->subj;
	char		why[WH_WHY_LEN];
	long		status = 0;
	curl_off_t	retry_after = 0;
	int64_t		not_before = 0;
	enum wh_outcome outcome = WH_RETRY;

	curl_multi_remove_handle(st->multi, req->easy);
	st->in_flight--;
	if (res == CURLE_OK)
	{
		curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(req->easy, CURLINFO_RETRY_AFTER, &retry_after);
		outcome = wh_classify(status);
		if (outcome == WH_RETRY && (status == 429 || status == 503) && retry_after > 0)
		{
			/* past max_age the relay gives up anyway: no point waiting longer */
			int64_t		wait_ms = retry_after * 1000 < st->s->opt.max_age_ms ?
				(int64_t) retry_after * 1000 : st->s->opt.max_age_ms;

			not_before = dsink_now_ms() + wait_ms;
		}
		if (outcome != WH_ACCEPTED)
			describe_answer(st, req, status, not_before, why, sizeof(why));
	}
	else if (req->denied[0])
	{
		/* the policy refused every address: no attempt will ever go there */
		snprintf(why, sizeof(why), "%s", req->denied);
		outcome = WH_REFUSED;
	}
	else
		describe_curl_error(st, req, res, why, sizeof(why));

	/* The handle is free again before the outcome reaches the relay. */
	curl_slist_free_all(req->headers);
	req->headers = NULL;
	req->subj = NULL;
	req->d = NULL;
	req->next_free = st->free_reqs;
	st->free_reqs = req;
	subj->busy = false;

	if (outcome == WH_ACCEPTED)
		head_accepted(st, subj);
	else
		head_failed(st, subj, outcome == WH_RETRY, why, not_before);
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

	(void) e;
	if (what == CURL_POLL_REMOVE)
	{
		if (sk)
		{
			if (sk->prev)
				sk->prev->next = sk->next;
			else
				st->socks = sk->next;
			if (sk->next)
				sk->next->prev = sk->prev;
			free(sk);
			curl_multi_assign(st->multi, fd, NULL);
		}
		return 0;
	}
	if (sk == NULL)
	{
		sk = ds_xcalloc(sizeof(*sk));
		sk->fd = fd;
		sk->next = st->socks;
		if (st->socks)
			st->socks->prev = sk;
		st->socks = sk;
		curl_multi_assign(st->multi, fd, sk);
	}
	sk->events = (short) (((what & CURL_POLL_IN) ? POLLIN : 0) |
						  ((what & CURL_POLL_OUT) ? POLLOUT : 0));
	return 0;
}

static int
wh_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct wh_state *st = userp;

	(void) multi;
	st->timer_at = timeout_ms < 0 ? -1 : dsink_now_ms() + timeout_ms;
	return 0;
}

/* ---- the sink ----------------------------------------------------------- */

static void wh_close(struct dsink *s);

static int
wh_open(struct dsink *s, char *err, size_t errlen)
{
	struct wh_state *st;
	json_object *v;
	CURLU	   *u;
	CURLUcode	uc;
	char	   *scheme = NULL,
			   *host = NULL;
	bool		named_secret;

	st = ds_xcalloc(sizeof(*st));
	st->s = s;
	st->timer_at = -1;
	st->max_in_flight = s->opt.max_in_flight > 0 ? s->opt.max_in_flight : 64;
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
		dsink_redact_uri(s->uri, shown, sizeof(shown));
		st->url = ds_xstrdup(shown);
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

	if (s->opt.raw && json_object_object_get_ex(s->opt.raw, "ca_file", &v))
	{
		const char *path = json_object_get_string(v);
		char		resolved[PATH_MAX];
		FILE	   *f;

		if (!json_object_is_type(v, json_type_string) || path[0] == '\0')
		{
			snprintf(err, errlen, "webhook sink \"%s\": option ca_file must be the path of "
					 "a PEM file with the CA certificates to trust", s->name);
			goto fail;
		}
		/* a sink from the database: the file as resolved inside --secret-dir */
		if (dsink_reference(s, "ca_file", path, resolved, sizeof(resolved), err, errlen) != 0)
			goto fail;
		if ((f = fopen(resolved, "r")) == NULL)
		{
			snprintf(err, errlen, "webhook sink \"%s\": cannot read ca_file \"%s\": %m; "
					 "make it readable by the user ordersyncd runs as", s->name, path);
			goto fail;
		}
		fclose(f);
		st->ca_file = ds_xstrdup(resolved);
	}

	named_secret = s->opt.raw &&
		(json_object_object_get_ex(s->opt.raw, "secret_env", NULL) ||
		 json_object_object_get_ex(s->opt.raw, "secret_file", NULL));
	if (named_secret)
	{
		char		e2[512];
		char	   *secret = dsink_secret(s, "secret", e2, sizeof(e2));

		if (secret == NULL)
		{
			/* e2 names the sink already */
			snprintf(err, errlen, "webhook %s", e2);
			goto fail;
		}
		st->key = wh_key_from_secret(secret, &st->keylen, e2, sizeof(e2));
		memset(secret, 0, strlen(secret));
		free(secret);
		if (st->key == NULL)
		{
			snprintf(err, errlen, "webhook sink \"%s\": %s", s->name, e2);
			goto fail;
		}
	}
	else
		log_warning("webhook sink \"%s\" has no secret: events to %s go out unsigned, so "
					"the receiver cannot tell them from forgeries; give the sink option "
					"secret_env or secret_file (a whsec_... secret or any string)",
					s->name, st->url);

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
	st->reqs = ds_xcalloc(sizeof(*st->reqs) * (size_t) st->max_in_flight);
	return 0;

fail:
	wh_close(s);
	return -1;
}

static void
wh_submit(struct dsink *s, struct delivery *d)
{
	struct wh_state *st = s->state;
	struct wh_subject *subj;

	HASH_FIND_STR(st->subjects, d->subject, subj);
	if (subj == NULL)
	{
		subj = ds_xcalloc(sizeof(*subj));
		subj->key = ds_xstrdup(d->subject);
		subj->heap_idx = -1;
		HASH_ADD_KEYPTR(hh, st->subjects, subj->key, strlen(subj->key), subj);
	}
	d->next = NULL;
	if (subj->tail)
		subj->tail->next = d;
	else
		subj->head = d;
	subj->tail = d;
	if (subj->head == d && subject_idle(subj))
		ready_push(st, subj);
	wh_dispatch(st);
}

static void
wh_prepare(struct dsink *s, struct pollset *ps, int *timeout_ms)
{
	struct wh_state *st = s->state;
	int64_t		now = dsink_now_ms();
	int64_t		wake = -1;
	struct wh_sock *sk;

	st->npolled = 0;
	for (sk = st->socks; sk; sk = sk->next)
	{
		if (sk->events == 0)
			continue;
		if (st->npolled == st->polled_cap)
		{
			st->polled_cap = st->polled_cap ? st->polled_cap * 2 : 16;
			st->polled = ds_xrealloc(st->polled, sizeof(*st->polled) * (size_t) st->polled_cap);
		}
		st->polled[st->npolled].fd = sk->fd;
		st->polled[st->npolled].idx = pollset_add(ps, sk->fd, sk->events);
		st->npolled++;
	}
	st->polled_ps = ps;

	if (st->timer_at >= 0)
		wake = st->timer_at;
	if (st->heap_n > 0 && (wake < 0 || st->heap[0]->retry_at < wake))
		wake = st->heap[0]->retry_at;
	if (st->ready_head != NULL && st->in_flight < st->max_in_flight)
		wake = now;
	if (wake >= 0)
	{
		int64_t		left = wake > now ? wake - now : 0;

		if (*timeout_ms < 0 || left < *timeout_ms)
			*timeout_ms = (int) left;
	}
}

static void
wh_work(struct dsink *s, const struct pollset *ps)
{
	struct wh_state *st = s->state;
	int			running;
	int64_t		now;

	/*
	 * Sockets first, from the copy prepare() made: curl may open and close
	 * sockets while we hand it events, and a poll entry only counts if it
	 * still is the one we added.
	 */
	if (ps != NULL && ps == st->polled_ps)
	{
		for (int i = 0; i < st->npolled; i++)
		{
			int			idx = st->polled[i].idx;
			short		re;
			int			ev = 0;

			if (idx >= ps->n || ps->fds[idx].fd != st->polled[i].fd)
				continue;
			re = ps->fds[idx].revents;
			if (re & (POLLIN | POLLPRI | POLLHUP))
				ev |= CURL_CSELECT_IN;
			if (re & POLLOUT)
				ev |= CURL_CSELECT_OUT;
			if (re & (POLLERR | POLLNVAL))
				ev |= CURL_CSELECT_ERR;
			if (ev)
				curl_multi_socket_action(st->multi, st->polled[i].fd, ev, &running);
		}
	}
	st->npolled = 0;
	st->polled_ps = NULL;

	now = dsink_now_ms();
	if (st->timer_at >= 0 && st->timer_at <= now)
	{
		st->timer_at = -1;
		curl_multi_socket_action(st->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	wh_reap(st);

	/* Heads whose retry time has come may go again. */
	now = dsink_now_ms();
	while (st->heap_n > 0 && st->heap[0]->retry_at <= now)
		subject_next(st, heap_pop(st));
	wh_dispatch(st);
}

static void
wh_close(struct dsink *s)
{
	struct wh_state *st = s->state;
	struct wh_subject *subj,
			   *tmp;
	struct wh_sock *sk;

	if (st == NULL)
		return;
	/* Handles first: removing them lets curl close their sockets. */
	for (int i = 0; i < st->nreqs; i++)
	{
		struct wh_req *req = st->reqs[i];

		if (req->subj != NULL)
			curl_multi_remove_handle(st->multi, req->easy);
		curl_easy_cleanup(req->easy);
		curl_slist_free_all(req->headers);
		free(req);
	}
	free(st->reqs);
	if (st->multi)
		curl_multi_cleanup(st->multi);
	while ((sk = st->socks) != NULL)
	{
		st->socks = sk->next;
		free(sk);
	}
	/*
	 * Deliveries still queued are dropped unconfirmed (the stream sends them
	 * again after a restart); each is one allocation made by the relay.
	 */
	HASH_ITER(hh, st->subjects, subj, tmp)
	{
		while (subj->head)
			free(subject_pop_head(subj));
		HASH_DEL(st->subjects, subj);
		free(subj->key);
		free(subj);
	}
	free(st->heap);
	free(st->polled);
	if (st->key)
	{
		memset(st->key, 0, st->keylen);
		free(st->key);
	}
	free(st->ca_file);
	free(st->url);
	if (st->curl_inited)
		curl_global_cleanup();
	free(st);
	s->state = NULL;
}

const struct dsink_ops webhook_ops = {
	.kind = "webhook",
	.open = wh_open,
	.submit = wh_submit,
	.prepare = wh_prepare,
	.work = wh_work,
	.close = wh_close,
};
