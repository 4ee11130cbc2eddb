/*
 * inbound.h — ordersyncd --inbound=HOST:PORT: channels push orders and
 * status updates (POST /channels/<channel>/orders and /status), signed;
 * each is kept in ordersync.inbox before it is answered 2xx, and applied
 * in the database once and in order (doc/inbound.md).
 *
 * libmicrohttpd, a thread per connection (at most max_connections), the
 * same library as --metrics-addr; a request waits for the database, so a
 * thread of its own keeps the others going. Runs beside the replication
 * stream or alone (no --slot).
 */
#ifndef ORDERSYNCD_INBOUND_H
#define ORDERSYNCD_INBOUND_H

#include <stddef.h>

#include "sink.h"

struct inbound_options
{
	const char *addr;			/* "HOST:PORT" */
	const char *conninfo;		/* --dbname, as given */
	size_t		max_body;		/* bytes */
	int			max_connections;
	int			pool_size;		/* database connections for requests */
	int			appliers;		/* threads calling inbox_apply(), a connection each */
	int			timeout_s;		/* idle and whole-request limit */
	const struct sink_policy *policy;	/* where secrets may be read */
};

/* Listen and start the applier. 0, or -1 with err saying what to change. */
int			inbound_start(const struct inbound_options *o, char *err, size_t errlen);

/* Stop taking requests, let those under way finish (5 s at most), stop. */
void		inbound_stop(void);

#endif
