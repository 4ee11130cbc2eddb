/*
 * sink_webhook_h1_conn.c — the lean HTTP/1.1 client's connections (see
 * sink_webhook_h1.c for the client and its requests): made non-blocking,
 * with TCP_NODELAY, after the policy has checked the address; registered
 * in the sink's epoll set once, edge-triggered, for as long as they live;
 * kept alive in the idle list (most recently used first) and closed when
 * idle too long.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "sink_policy.h"
#include "sink_webhook_h1_conn.h"

struct h1_client *
h1_new(struct sink *s, int epfd, int max_conns, int idle_ms, h1_done_fn done, void *arg)
{
	struct h1_client *c = xcalloc(sizeof(*c));

	c->s = s;
	c->epfd = epfd;
	c->max_conns = max_conns;
	c->idle_ms = idle_ms;
	c->done = done;
	c->arg = arg;
	TAILQ_INIT(&c->idle);
	TAILQ_INIT(&c->busy);
	if (!h1_prefix(c))
	{
		free(c);
		return NULL;
	}
	return c;
}

void
h1_conn_close(struct h1_conn *k)
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
struct h1_conn *
h1_conn_open(struct h1_client *c, struct h1_answer *a)
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

/*
 * Close the connections idle for idle_ms or longer: a receiver closes idle
 * connections after a while of its own (Apache, Node.js: 5 s), and a POST
 * sent as the close crosses it fails. The idle list runs from the most
 * recently used, so the stale ones are at its tail.
 */
void
h1_drop_stale(struct h1_client *c, int64_t now)
{
	struct h1_conn *k;

	while ((k = TAILQ_LAST(&c->idle, h1_conn_list)) != NULL && now - k->idle_since >= c->idle_ms)
		h1_conn_close(k);
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
		h1_conn_close(k);
	while ((k = TAILQ_FIRST(&c->idle)) != NULL)
		h1_conn_close(k);
	free(c->prefix);
	free(c);
}
