/*
 * sink_amqp.h — the RabbitMQ sink's state, shared by its three files:
 * sink_amqp.c (publishing, confirms, the sink interface), sink_amqp_conf.c
 * (URI, options, password) and sink_amqp_connect.c (connecting, logging
 * in, and what the broker's refusals mean). Not for other files.
 */
#ifndef ORDERSYNCD_SINK_AMQP_H
#define ORDERSYNCD_SINK_AMQP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>

#include <amqp.h>

#include "sink.h"
#include "sink_link.h"
#include "sink_ring.h"
#include "sink_tls.h"

#define AMQP_SINK_CHANNEL 1
#define AMQP_SINK_IN_FLIGHT 1000
#define AMQP_SINK_HEARTBEAT_S 30
#define AMQP_SINK_CONTENT_TYPE "application/cloudevents+json"
/*
 * What a publish takes of the socket's send buffer besides its body, at
 * most: the method, header and body frames (with the id, type, exchange
 * and content type, a few hundred bytes) and the kernel's per-segment
 * overhead, which the send buffer is accounted in.
 */
#define AMQP_SINK_WIRE_OVERHEAD 2048
/* frames read per work call at most, so other sinks and the stream get a turn */
#define AMQP_SINK_READ_BUDGET 4096

/*
 * What the sink keeps per event, in the event's scratch fields: sink_ms
 * when it was published on the current channel, sink_flags AMQP_RETURNED
 * once a basic.return named it (unroutable), sink_tag the return's code.
 */
#define AMQP_RETURNED 0x1

struct amqp_sink
{
	/* configuration */
	char	   *host;
	int			port;
	char	   *vhost;
	char	   *user;
	char	   *password;
	struct sink_tls tls;
	char	   *exchange;
	char	   *declare_type;	/* NULL: passive declare only */
	int			heartbeat_s;
	int			cap;			/* max unconfirmed */

	/* the connection */
	struct sink_link link;		/* backoff, outage, refusal */
	amqp_connection_state_t conn;	/* NULL when down */
	int			fd;
	int			heartbeat;		/* negotiated, seconds */
	bool		blocked;		/* connection.blocked by the broker */
	bool		want_write;		/* socket was full: wait for POLLOUT */
	size_t		room;			/* send buffer bytes publishes may still take */
	bool		corked;			/* TCP_CORK is on: lifted in prepare */
	const struct pollset *polled_ps;	/* where prepare put fd, for poll */
	int			polled_idx;
	int64_t		last_rx_ms;

	/* reading a basic.return: its header, then its body */
	int			ret_state;		/* 0 none, 1 header next, 2 body */
	uint64_t	ret_left;
	uint16_t	ret_code;
	char		ret_text[128];

	/* unconfirmed events by delivery tag */
	struct sink_ring ring;
};

static inline struct timeval
amqp_sink_tv(int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000,.tv_usec = (ms % 1000) * 1000};

	return tv;
}

/* sink_amqp_connect.c */

/*
 * Connect, log in, open the channel in confirm mode and check (or declare)
 * the exchange; on failure schedule the next attempt (or refuse for good).
 */
void		amqp_sink_connect(struct sink *s);
/* The connection is lost: events back to the core, the next attempt scheduled. */
void		amqp_sink_lost(struct sink *s, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));
void		amqp_sink_drop(struct amqp_sink *a);
/* rabbitmq-c's text, with the system's reason for a socket error */
const char *amqp_sink_status_text(int rc, int err);
/* Text the broker sent, as a short printable excerpt (it may end in a dead letter). */
void		amqp_sink_server_text(amqp_bytes_t b, char *out, size_t outsize);

/* sink_amqp_conf.c */

/* the options of this kind (sink.h) */
extern const struct sink_opt amqp_options[];
/* Read the URI, the options and the password into a; -1 with why in err. */
int			amqp_sink_configure(struct sink *s, struct amqp_sink *a, char *err, size_t errlen);
/* The password: by reference only; guest's default when there is no user. */
int			amqp_sink_read_password(struct sink *s, struct amqp_sink *a, char *err, size_t errlen);

#endif
