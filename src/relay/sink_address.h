/*
 * sink_address.h — the URI of a broker sink taken apart (see
 * sink_address.c): scheme://[user@]servers/path, the form the Kafka and
 * NATS sinks share.
 */
#ifndef ORDERSYNCD_SINK_ADDRESS_H
#define ORDERSYNCD_SINK_ADDRESS_H

#include <stddef.h>

#include "sink.h"

/* How a kind writes its URI, for the messages that say how to fix one. */
struct sink_address_form
{
	const char *kind;			/* "nats" */
	const char *example;		/* "nats://host:4222/ordersync" */
	const char *server;			/* what the authority names: "host", "broker" */
	const char *path;			/* what the path names: "subject prefix", "topic" */
	const char *example_more;	/* after the example when the path is missing */
	const char *params;			/* why there are no URI parameters */
};

struct sink_address
{
	char	   *user;			/* before "@", or NULL */
	char	   *servers;		/* "host:4222", "h1:9092,h2:9092" */
	char	   *path;			/* after the first "/", never empty */
};

/*
 * Split s->uri (whose scheme the kind claimed): refuses parameters, a
 * password, an empty user, no servers and no path. 0, or -1 with err.
 */
int			sink_address_split(const struct sink *s, const struct sink_address_form *f,
							   struct sink_address *a, char *err, size_t errlen);

/*
 * One server, "host", "host:port" or "[v6]:port", into *host (malloc'd)
 * and *port (default_port when none). 0, or -1 with err.
 */
int			sink_address_server(const struct sink *s, const struct sink_address_form *f,
								const char *server, int default_port, char **host, int *port,
								char *err, size_t errlen);

void		sink_address_free(struct sink_address *a);

#endif
