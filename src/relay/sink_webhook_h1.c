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
 * Answers are read as RFC 9112 says: a status line, headers, then a body
 * by Content-Length, chunked, or until the connection closes; 1xx answers
 * are skipped. Only the start of a body is kept (SINK_EXCERPT_MAX), for
 * the reason of a refusal. Every address is checked against the policy
 * (sink_check_peer) before the socket is connected.
 */
#define _GNU_SOURCE				/* memmem, strcasestr */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "sink_policy.h"
#include "sink_webhook_h1.h"

/* a request's head: the request line, Host, the sink's header lines */
#define H1_HEAD_MAX 8192
/* an answer's status line and headers must fit */
#define H1_IN_MAX 16384

enum h1_state
{
	H1_CONNECTING,
	H1_IDLE,
	H1_BUSY
};

/* how the body of the answer ends */
enum h1_body
{
	H1_HEAD,					/* still reading the headers */
	H1_LENGTH,					/* left bytes */
	H1_CHUNK_SIZE,				/* a chunk-size line */
	H1_CHUNK_DATA,				/* left bytes, then CRLF */
	H1_CHUNK_END,				/* the CRLF after a chunk */
	H1_TRAILER,					/* trailer lines up to an empty one */
	H1_UNTIL_CLOSE,
	H1_DONE
};

/* What became of a POST, as the connection gathers it. */
struct h1_answer
{
	int			failure;		/* 0: status is the answer; else a CURLcode */
	char		detail[512];
	bool		denied;
	long		status;
	long		retry_after_s;
	char		location[512];
	size_t		body_len;		/* of excerpt */
};

struct h1_conn
{
	TAILQ_ENTRY(h1_conn) link;	/* in idle or busy */
	struct h1_client *c;
	int			fd;
	enum h1_state state;
	bool		reused;			/* answered a request before */
	void	   *token;
	int64_t		deadline;

	/* the request */
	char		head[H1_HEAD_MAX];
	size_t		head_len;
	const char *body;
	size_t		body_len;
	size_t		sent;

	/* the answer */
	char		in[H1_IN_MAX];
	size_t		in_len;
	bool		got_any;
	enum h1_body body_state;
	uint64_t	left;
	bool		close_after;
	struct h1_answer a;
	char		excerpt[SINK_EXCERPT_MAX];
};

TAILQ_HEAD(h1_conn_list, h1_conn);

struct h1_client
{
	struct sink *s;
	int			epfd;
	int			max_conns;
	int			nconns;
	h1_done_fn	done;
	void	   *arg;
	struct sockaddr_storage addr;
	socklen_t	addrlen;
	char		host[80];		/* "127.0.0.1 port 8080", for messages */
	char	   *prefix;			/* "POST /path HTTP/1.1\r\nHost: h:p\r\n..." */
	size_t		prefix_len;
	struct h1_conn_list idle;	/* most recently used first */
	struct h1_conn_list busy;	/* connecting or waiting for an answer */
};

/* ---- the URL -------------------------------------------------------------- */

static bool
proxy_in_environment(void)
{
	static const char *const vars[] = {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", NULL};

	for (int i = 0; vars[i]; i++)
	{
		const char *v = getenv(vars[i]);

		if (v && *v)
			return true;
	}
	return false;
}

/* host without brackets into out; false when it is not an address literal */
static bool
literal_host(CURLU *u, struct sockaddr_storage *ss, char *out, size_t outlen)
{
	char	   *host = NULL;
	bool		ok = false;

	if (curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host)
	{
		size_t		n = strlen(host);

		if (host[0] == '[' && n > 2 && host[n - 1] == ']')
			snprintf(out, outlen, "%.*s", (int) (n - 2), host + 1);
		else
			snprintf(out, outlen, "%s", host);
		ok = strchr(out, '%') == NULL && sink_host_literal(out, ss);
	}
	curl_free(host);
	return ok;
}

bool
h1_usable(const struct sink *s, const char *url)
{
	CURLU	   *u = curl_url();
	char	   *scheme = NULL,
			   *user = NULL;
	struct sockaddr_storage ss;
	char		host[256];
	bool		ok;

	if (u == NULL)
		return false;
	ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		strcmp(scheme, "http") == 0 &&
		curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_NO_USER &&
		literal_host(u, &ss, host, sizeof(host)) &&
		/* curl honours http_proxy for trusted sinks: so must the choice */
		!(s->trusted && proxy_in_environment());
	curl_free(scheme);
	curl_free(user);
	curl_url_cleanup(u);
	return ok;
}

/* The request line and Host, once per client. */
static bool
build_prefix(struct h1_client *c)
{
	CURLU	   *u = curl_url();
	char	   *path = NULL,
			   *query = NULL,
			   *port = NULL;
	char		host[256];
	bool		v6;
	int			portnum;
	size_t		cap;

	if (u == NULL || curl_url_set(u, CURLUPART_URL, c->s->uri, 0) != CURLUE_OK ||
		!literal_host(u, &c->addr, host, sizeof(host)) ||
		curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
	{
		curl_free(path);
		curl_free(port);
		curl_url_cleanup(u);
		return false;
	}
	if (curl_url_get(u, CURLUPART_QUERY, &query, 0) != CURLUE_OK)
		query = NULL;
	portnum = atoi(port);
	snprintf(c->host, sizeof(c->host), "%.60s port %d", host, portnum);
	v6 = c->addr.ss_family == AF_INET6;
	if (v6)
	{
		((struct sockaddr_in6 *) &c->addr)->sin6_port = htons((uint16_t) portnum);
		c->addrlen = sizeof(struct sockaddr_in6);
	}
	else
	{
		((struct sockaddr_in *) &c->addr)->sin_port = htons((uint16_t) portnum);
		c->addrlen = sizeof(struct sockaddr_in);
	}
	cap = strlen(path) + (query ? strlen(query) : 0) + strlen(host) + 128;
	c->prefix = xmalloc(cap);
	c->prefix_len = (size_t) snprintf(c->prefix, cap,
									  "POST %s%s%s HTTP/1.1\r\nHost: %s%s%s%s%s\r\n"
									  "User-Agent: ordersyncd\r\nAccept: */*\r\n",
									  path, query ? "?" : "", query ? query : "",
									  v6 ? "[" : "", host, v6 ? "]" : "",
									  portnum == 80 ? "" : ":", portnum == 80 ? "" : port);
	curl_free(path);
	curl_free(query);
	curl_free(port);
	curl_url_cleanup(u);
	return true;
}

/* ---- connections ---------------------------------------------------------- */

struct h1_client *
h1_new(struct sink *s, int epfd, int max_conns, h1_done_fn done, void *arg)
{
	struct h1_client *c = xcalloc(sizeof(*c));

	c->s = s;
	c->epfd = epfd;
	c->max_conns = max_conns;
	c->done = done;
	c->arg = arg;
	TAILQ_INIT(&c->idle);
	TAILQ_INIT(&c->busy);
	if (!build_prefix(c))
	{
		free(c);
		return NULL;
	}
	return c;
}

static void
conn_close(struct h1_conn *k)
{
	struct h1_client *c = k->c;

	if (k->state == H1_IDLE)
		TAILQ_REMOVE(&c->idle, k, link);
	else
		TAILQ_REMOVE(&c->busy, k, link);
	close(k->fd);				/* leaves the epoll set with it */
	c->nconns--;
	free(k);
}

/* A new connection, connecting (or -1 with a's failure filled). */
static struct h1_conn *
conn_open(struct h1_client *c, struct h1_answer *a)
{
	struct h1_conn *k;
	struct epoll_event ee = {0};
	int			one = 1;
	int			fd;

	if (sink_check_peer(c->s, (struct sockaddr *) &c->addr, a->detail, sizeof(a->detail)) != 0)
	{
		a->denied = true;
		a->failure = CURLE_COULDNT_CONNECT;
		return NULL;
	}
	fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
	{
		a->failure = CURLE_COULDNT_CONNECT;
		snprintf(a->detail, sizeof(a->detail), "cannot create a socket: %s", strerror(errno));
		return NULL;
	}
	(void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void) setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *) &c->addr, c->addrlen) != 0 && errno != EINPROGRESS)
	{
		a->failure = CURLE_COULDNT_CONNECT;
		snprintf(a->detail, sizeof(a->detail), "Failed to connect to %s: %s", c->host,
				 strerror(errno));
		close(fd);
		return NULL;
	}
	k = xcalloc(sizeof(*k));
	k->c = c;
	k->fd = fd;
	k->state = H1_CONNECTING;
	ee.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ee.data.ptr = k;
	if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ee) != 0)
	{
		a->failure = CURLE_COULDNT_CONNECT;
		snprintf(a->detail, sizeof(a->detail), "cannot watch the socket: %s", strerror(errno));
		close(fd);
		free(k);
		return NULL;
	}
	c->nconns++;
	TAILQ_INSERT_TAIL(&c->busy, k, link);
	return k;
}

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
		TAILQ_INSERT_HEAD(&c->idle, k, link);
	}
	else
		conn_close(k);
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
	o += (size_t) snprintf(k->head + o, sizeof(k->head) - o, "Content-Length: %zu\r\n\r\n",
						   body_len);
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
	struct h1_conn *k = TAILQ_FIRST(&c->idle);

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

		if ((k = conn_open(c, &a)) == NULL)
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
		struct h1_conn *n = conn_open(c, &a);

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
			conn_close(k);
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
		conn_close(k);
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

/* ---- answers -------------------------------------------------------------- */

static bool
header_is(const char *line, size_t len, const char *name, const char **value)
{
	size_t		n = strlen(name);

	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return false;
	*value = line + n + 1;
	while (**value == ' ' || **value == '\t')
		(*value)++;
	return true;
}

/* Parse the status line and headers (in[0..end), CRLFs included). -1: malformed. */
static int
parse_head(struct h1_conn *k, size_t end)
{
	char	   *p = k->in;
	char	   *stop = k->in + end;
	int			minor = 1;
	bool		chunked = false,
				length = false,
				keep_alive = false;

	if (sscanf(p, "HTTP/1.%d %3ld", &minor, &k->a.status) != 2 || k->a.status < 100 ||
		k->a.status > 999)
		return -1;
	p = memchr(p, '\n', (size_t) (stop - p)) + 1;
	while (p < stop)
	{
		char	   *eol = memchr(p, '\n', (size_t) (stop - p));
		size_t		len = (size_t) (eol - p);
		const char *v;
		char		val[600];

		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len == 0)
			break;
		snprintf(val, sizeof(val), "%.*s", (int) len, p);
		if (header_is(val, strlen(val), "content-length", &v))
		{
			length = true;
			k->left = strtoull(v, NULL, 10);
		}
		else if (header_is(val, strlen(val), "transfer-encoding", &v))
			chunked = strcasestr(v, "chunked") != NULL;
		else if (header_is(val, strlen(val), "connection", &v))
		{
			k->close_after = k->close_after || strcasestr(v, "close") != NULL;
			keep_alive = strcasestr(v, "keep-alive") != NULL;
		}
		else if (header_is(val, strlen(val), "retry-after", &v))
		{
			if (*v >= '0' && *v <= '9')
				k->a.retry_after_s = strtol(v, NULL, 10);
			else
			{
				/* an HTTP date: seconds from now, as curl reports it */
				time_t		t = curl_getdate(v, NULL);
				time_t		now = time(NULL);

				k->a.retry_after_s = t > now ? (long) (t - now) : 0;
			}
		}
		else if (header_is(val, strlen(val), "location", &v))
			snprintf(k->a.location, sizeof(k->a.location), "%s", v);
		p = eol + 1;
	}
	if (minor == 0 && !keep_alive)
		k->close_after = true;
	if (k->a.status < 200 || k->a.status == 204 || k->a.status == 304)
		k->body_state = k->a.status < 200 ? H1_HEAD : H1_DONE;
	else if (chunked)
		k->body_state = H1_CHUNK_SIZE;
	else if (length)
		k->body_state = k->left > 0 ? H1_LENGTH : H1_DONE;
	else
	{
		k->body_state = H1_UNTIL_CLOSE;
		k->close_after = true;
	}
	return 0;
}

/* Body bytes: the start is kept, the rest dropped. */
static void
keep_body(struct h1_conn *k, const char *data, size_t n)
{
	size_t		room = sizeof(k->excerpt) - k->a.body_len;
	size_t		take = n < room ? n : room;

	memcpy(k->excerpt + k->a.body_len, data, take);
	k->a.body_len += take;
}

/*
 * Take what in[] holds as far as it goes; consumed bytes leave the
 * buffer. -1: malformed answer.
 */
static int
parse(struct h1_conn *k)
{
	size_t		at = 0;

	while (k->body_state != H1_DONE)
	{
		char	   *avail = k->in + at;
		size_t		n = k->in_len - at;
		char	   *nl;

		if (k->body_state == H1_HEAD)
		{
			char	   *end = memmem(avail, n, "\r\n\r\n", 4);

			if (end == NULL)
				break;
			/* the headers are parsed where they are: move them to the start */
			if (at > 0)
			{
				memmove(k->in, avail, n);
				k->in_len = n;
				at = 0;
				end = memmem(k->in, k->in_len, "\r\n\r\n", 4);
			}
			if (parse_head(k, (size_t) (end - k->in) + 4) != 0)
				return -1;
			at = (size_t) (end - k->in) + 4;
			if (k->a.status < 200)
			{
				/* 100 Continue and friends: the real answer follows */
				k->a.status = 0;
				k->a.location[0] = '\0';
				k->a.retry_after_s = 0;
			}
			continue;
		}
		if (k->body_state == H1_LENGTH || k->body_state == H1_CHUNK_DATA ||
			k->body_state == H1_UNTIL_CLOSE)
		{
			size_t		take = k->body_state == H1_UNTIL_CLOSE || n < k->left ? n : (size_t) k->left;

			keep_body(k, avail, take);
			at += take;
			if (k->body_state != H1_UNTIL_CLOSE)
			{
				k->left -= take;
				if (k->left == 0)
					k->body_state = k->body_state == H1_LENGTH ? H1_DONE : H1_CHUNK_END;
			}
			if (take == n)
				break;
			continue;
		}
		/* the line-based states */
		if ((nl = memchr(avail, '\n', n)) == NULL)
			break;
		at += (size_t) (nl - avail) + 1;
		if (k->body_state == H1_CHUNK_SIZE)
		{
			char	   *endp;

			k->left = strtoull(avail, &endp, 16);
			if (endp == avail)
				return -1;
			k->body_state = k->left > 0 ? H1_CHUNK_DATA : H1_TRAILER;
		}
		else if (k->body_state == H1_CHUNK_END)
			k->body_state = H1_CHUNK_SIZE;
		else if (nl == avail || (nl == avail + 1 && avail[0] == '\r'))
			k->body_state = H1_DONE;	/* the empty line after the trailers */
	}
	if (at > 0)
	{
		memmove(k->in, k->in + at, k->in_len - at);
		k->in_len -= at;
	}
	if (k->body_state != H1_DONE && k->in_len == sizeof(k->in))
		return -1;				/* headers (or a line) larger than the buffer */
	return 0;
}

/* Read what is there; finish the request when its answer is complete. */
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
				conn_close(k);
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
			conn_close(k);
			return;
		}
		k->got_any = true;
		k->in_len += (size_t) r;
		if (parse(k) != 0)
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

int
h1_connections(const struct h1_client *c)
{
	return c->nconns;
}

void
h1_free(struct h1_client *c)
{
	struct h1_conn *k;

	if (c == NULL)
		return;
	while ((k = TAILQ_FIRST(&c->busy)) != NULL)
		conn_close(k);
	while ((k = TAILQ_FIRST(&c->idle)) != NULL)
		conn_close(k);
	free(c->prefix);
	free(c);
}
