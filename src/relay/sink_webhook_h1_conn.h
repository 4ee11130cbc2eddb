/*
 * sink_webhook_h1_conn.h — the lean HTTP/1.1 client's client and
 * connection, shared by its files: sink_webhook_h1.c (requests),
 * sink_webhook_h1_conn.c (connections), sink_webhook_h1_answer.c (reading
 * an answer) and sink_webhook_h1_url.c (the URL). Only they include it;
 * the webhook sink uses sink_webhook_h1.h.
 */
#ifndef ORDERSYNCD_SINK_WEBHOOK_H1_CONN_H
#define ORDERSYNCD_SINK_WEBHOOK_H1_CONN_H

#include <sys/queue.h>
#include <sys/socket.h>

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
	int64_t		idle_since;		/* H1_IDLE: when its last answer was complete */

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
	int			idle_ms;		/* a connection idle this long is closed, not reused */
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

/*
 * sink_webhook_h1_conn.c: a new connection, connecting, in c->busy (NULL
 * with a's failure filled).
 */
struct h1_conn *h1_conn_open(struct h1_client *c, struct h1_answer *a);
/* Close k (it leaves the epoll set and its list) and free it. */
void		h1_conn_close(struct h1_conn *k);
/* Close the connections idle for c->idle_ms or longer (now: monotonic ms). */
void		h1_drop_stale(struct h1_client *c, int64_t now);

/*
 * Take what k->in holds of the answer as far as it goes; consumed bytes
 * leave the buffer, body_state says how far the answer is. -1: malformed.
 */
int			h1_parse(struct h1_conn *k);

/* The request line and Host into c->prefix, c->addr from the URL; false: unusable. */
bool		h1_prefix(struct h1_client *c);

#endif
