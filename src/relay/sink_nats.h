/*
 * sink_nats.h — the NATS JetStream sink's state, shared by its three
 * files: sink_nats.c (publishing, JetStream's answers, the sink
 * interface), sink_nats_conf.c (uri, options, secrets) and
 * sink_nats_connect.c (the mailbox libnats' threads write to, and
 * connecting on a helper thread). Not for other files.
 */
#ifndef ORDERSYNCD_SINK_NATS_H
#define ORDERSYNCD_SINK_NATS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <nats/nats.h>

#include "sink.h"
#include "sink_link.h"
#include "sink_ring.h"
#include "sink_tls.h"

#define NATS_SINK_IN_FLIGHT 1000
/* published messages destroyed together (see nats_sink.spent) */
#define NATS_SINK_SPENT_MAX 1024
#define NATS_SINK_DEFAULT_PORT 4222
#define NATS_SINK_CONTENT_TYPE "application/cloudevents+json"
/* how often poll looks at the connection's status while events are out */
#define NATS_SINK_STATUS_MS 100
/* a write to a server that reads nothing gives up after this long */
#define NATS_SINK_WRITE_DEADLINE_MS 2000
/* bytes of an answer kept (a PubAck is about 50, an error about 120) */
#define NATS_SINK_ANSWER_MAX 512
#define NATS_SINK_PREFIX_MAX 200

/* ---- the mailbox: libnats' threads write, the relay's thread reads ------ */

/* One answer on the inbox: the tag is the last token of its subject. */
struct nats_answer
{
	uint64_t	tag;
	char		status[8];		/* the "Status" header ("503"), or "" */
	natsMsg    *msg;			/* the answer itself, destroyed once read */
	const char *data;			/* its payload */
	int			len;
};

/*
 * Shared with libnats' threads, so reference counted: the sink holds one
 * reference and every live subscription one (dropped by its on-complete
 * callback, after which libnats never calls on_reply for it again).
 */
struct nats_box
{
	pthread_mutex_t lock;
	int			refs;
	int			wake[2];		/* [1]: "look"; [0] in the relay's poll */
	struct nats_answer *answers;
	int			n;
	int			cap;
	bool		connect_done;	/* the helper thread has finished */
};

/* A connection attempt, owned by the helper thread until poll joins it. */
struct nats_attempt
{
	struct nats_sink *n;
	natsOptions *opts;
	natsConnection *nc;
	natsSubscription *sub;
	char		inbox[128];
	bool		refused;
	char		err[1024];
};

struct nats_sink
{
	struct sink *s;

	/* configuration */
	char	   *host;
	int			port;
	char	   *user;			/* NULL: none */
	char	   *prefix;
	char	   *stream;			/* NULL: any stream */
	struct sink_tls tls;
	char	   *password;		/* with user */
	char	   *token;
	int			cap;			/* max unacknowledged */

	struct nats_box *box;

	/* the connection */
	struct sink_link link;		/* backoff, outage, refusal */
	natsConnection *nc;			/* NULL when down */
	natsSubscription *sub;
	char		inbox[128];
	int64_t		max_payload;
	bool		probing;		/* one at a time until JetStream acks one */
	bool		connecting;		/* the helper thread runs */
	pthread_t	thread;
	struct nats_attempt *attempt;

	/* unacknowledged events by tag (the reply subject's last token) */
	struct sink_ring ring;
	json_tokener *ack_tok;		/* reused for every PubAck */

	/*
	 * Published messages not destroyed yet. libnats hands every destroyed
	 * message to its collector thread and wakes that thread when it sleeps,
	 * so one destroy per publish cost a wake-up per event; destroyed in
	 * batches (a full array, or before the relay waits) it is one a batch.
	 */
	natsMsg    *spent[NATS_SINK_SPENT_MAX];
	int			nspent;
};

/* sink_nats_connect.c */

/* Drop a reference to the mailbox; the last one frees it. */
void		nats_sink_box_unref(struct nats_box *b);
/* libnats' status with its last error text, if it has one. */
void		nats_sink_error_text(natsStatus st, char *out, size_t len);
/* The options of one connection, all but the servers; NULL with err. */
natsOptions *nats_sink_options(struct nats_sink *n, char *err, size_t errlen);
/* Start connecting on the helper thread (or schedule the next try). */
void		nats_sink_start_connect(struct nats_sink *n);
/* The helper thread has finished: take its connection, or its failure. */
void		nats_sink_finish_connect(struct nats_sink *n);
/* The connection is lost: events back to the core, the next attempt scheduled. */
void		nats_sink_lost(struct nats_sink *n, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));
void		nats_sink_drop(struct nats_sink *n);

/* sink_nats_conf.c */

/* the options of this kind (sink.h) */
extern const struct sink_opt nats_options[];
/* Read the uri, the options and the secrets into n; -1 with why in err. */
int			nats_sink_configure(struct nats_sink *n, char *err, size_t errlen);
/* Read the password or token (by reference); at open and before each connection. */
int			nats_sink_read_secrets(struct nats_sink *n, char *err, size_t errlen);
/* Whether s is a subject the sink may write: dot-separated [A-Za-z0-9_-]+ tokens. */
bool		nats_sink_subject_ok(const char *s);
/* Whether uri asks for TLS (nats+tls://). */
bool		nats_sink_is_tls(const char *uri);

#endif
