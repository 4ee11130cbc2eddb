/*
 * sink_webhook_curl.c — the webhook sink's POSTs through libcurl: https,
 * host names and proxies (http:// to an address goes through the lean
 * client, sink_webhook_h1.c).
 *
 * libcurl's multi interface, driven by the relay's poll loop: curl tells
 * us through CURLMOPT_SOCKETFUNCTION which sockets to watch and through
 * CURLMOPT_TIMERFUNCTION when it wants to run. The sockets go into the
 * sink's epoll set, changed only when curl changes what it watches; the
 * sink puts that one descriptor and curl's timeout into the relay's poll
 * and hands what epoll reports to curl_multi_socket_action. (With
 * max_in_flight 256 a poll set of every socket, built before each wait and
 * scanned after it, cost more than the requests.) One multi handle keeps
 * connections alive and reuses them (and multiplexes over HTTP/2 when the
 * server offers it).
 *
 * Where it connects. Every new connection goes through wh_opensocket,
 * which refuses an address the policy forbids before the socket exists: a
 * host name that resolves there, or a DNS answer that changes, cannot get
 * around the check. Redirects are never followed, and a sink from the
 * database never goes through a proxy named in the environment (the proxy
 * would connect where the check cannot see).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sink_policy.h"
#include "sink_webhook.h"

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

bool
wh_curl_new_req(struct wh_state *st, struct wh_req *req)
{
	CURL	   *e = curl_easy_init();
	const struct sink_options *o = &st->s->opt;

	if (e == NULL)
		return false;
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
	/* a connection idle longer than this is closed, not reused (the lean client's rule too) */
	curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, (long) ((st->idle_timeout_ms + 999) / 1000));
	curl_easy_setopt(e, CURLOPT_USERAGENT, "ordersyncd");
	/* a redirect is the operator's to fix (see the 3xx reason), not ours to follow */
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, 0L);
	/* curl's defaults, said out loud: never send events to an unverified peer */
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (st->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, st->ca_file);
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

int
wh_curl_start(struct wh_state *st, struct wh_req *req, const bool *use, char *why, size_t whylen)
{
	struct sink_event *ev = req->ev;
	CURLMcode	mc;

	curl_easy_setopt(req->easy, CURLOPT_HTTPHEADER, link_headers(req, use));
	curl_easy_setopt(req->easy, CURLOPT_POSTFIELDS, ev->body);
	curl_easy_setopt(req->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) ev->body_len);
	mc = curl_multi_add_handle(st->multi, req->easy);
	if (mc == CURLM_OK)
		return 0;
	snprintf(why, whylen, "libcurl refused the request to %s: %s", st->url,
			 curl_multi_strerror(mc));
	return -1;
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

int
wh_curl_open(struct wh_state *st, char *err, size_t errlen)
{
	st->multi = curl_multi_init();
	if (st->multi == NULL)
	{
		snprintf(err, errlen, "webhook sink \"%s\": libcurl could not create its "
				 "multi handle (out of memory?)", st->s->name);
		return -1;
	}
	curl_multi_setopt(st->multi, CURLMOPT_SOCKETFUNCTION, wh_socket_cb);
	curl_multi_setopt(st->multi, CURLMOPT_SOCKETDATA, st);
	curl_multi_setopt(st->multi, CURLMOPT_TIMERFUNCTION, wh_timer_cb);
	curl_multi_setopt(st->multi, CURLMOPT_TIMERDATA, st);
	/* one connection per request in flight at most, all kept for reuse */
	curl_multi_setopt(st->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) st->max_in_flight);
	curl_multi_setopt(st->multi, CURLMOPT_MAXCONNECTS, (long) st->max_in_flight);
	return 0;
}

void
wh_curl_event(struct wh_state *st, const struct epoll_event *ev)
{
	uint32_t	re = ev->events;
	int			what = 0,
				running;

	if (re & (EPOLLIN | EPOLLPRI | EPOLLHUP))
		what |= CURL_CSELECT_IN;
	if (re & EPOLLOUT)
		what |= CURL_CSELECT_OUT;
	if (re & EPOLLERR)
		what |= CURL_CSELECT_ERR;
	/* curl ignores a socket it has dropped meanwhile (an earlier event of the batch) */
	curl_multi_socket_action(st->multi, ev->data.fd, what, &running);
}

void
wh_curl_poll(struct wh_state *st, int64_t now)
{
	CURLMsg    *m;
	int			left,
				running;

	if (st->timer_at >= 0 && st->timer_at <= now)
	{
		st->timer_at = -1;
		curl_multi_socket_action(st->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
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

void
wh_curl_close(struct wh_state *st)
{
	struct wh_sock *sk;

	/* Handles first: removing them lets curl close their sockets. */
	for (int i = 0; i < st->nreqs; i++)
	{
		struct wh_req *req = st->reqs[i];

		if (req->ev != NULL && st->multi)
			curl_multi_remove_handle(st->multi, req->easy);
		curl_easy_cleanup(req->easy);
	}
	if (st->multi)
		curl_multi_cleanup(st->multi);
	st->multi = NULL;
	while ((sk = st->socks) != NULL)
	{
		st->socks = sk->next;
		free(sk);
	}
}

/* The URL, parsed once at open so that a typo fails at start, not per event. */
int
wh_curl_check_url(struct wh_state *st, char *err, size_t errlen)
{
	struct sink *s = st->s;
	CURLU	   *u = curl_url();
	CURLUcode	uc;
	char	   *scheme = NULL,
			   *host = NULL;

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
	if (uc == CURLUE_OK)
		return 0;
	snprintf(err, errlen, "webhook sink \"%s\": \"%s\" is not a usable URL (%s); "
			 "give one like https://hooks.example.com/ordersync", s->name, st->url,
			 curl_url_strerror(uc));
	return -1;
}
