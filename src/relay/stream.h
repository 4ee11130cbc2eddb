/*
 * stream.h — one replication session: connect, check the server, create
 * the slot (and snapshot) if asked, START_REPLICATION, and pump CopyData
 * into the relay until something ends the session.
 */
#ifndef ORDERSYNCD_STREAM_H
#define ORDERSYNCD_STREAM_H

#include <signal.h>
#include <stdbool.h>

#include "options.h"
#include "relay.h"
#include "stream_failover.h"

enum stream_rc
{
	STREAM_STOP = 0,			/* clean stop (signal or --endpos): exit 0 */
	STREAM_RETRY = 1,			/* connection lost / server restarting: back off, reconnect */
	STREAM_FATAL = 2,			/* configuration problem: exit 2 */
	STREAM_BAD_INPUT = 3,		/* --bad-input=stop or inconsistent stream: exit 3 */
	STREAM_SINK = 4				/* a sink failed: exit 4 */
};

/* Set by the signal handlers; the self-pipe wakes select(). */
extern volatile sig_atomic_t stream_stop_requested;
extern volatile sig_atomic_t stream_reopen_requested;
extern int	stream_wake_fd;		/* read end of the self-pipe, -1 if none */

/* What survives from one session to the next. */
struct stream_state
{
	bool		slot_ready;		/* slot created/verified: do it only once */
	bool		streamed_once;	/* at least one session reached streaming */
	bool		reached_streaming;	/* the last session did */
	bool		sinks_loaded;	/* ordersync.relay_config() read: the stream keeps it current */
	char		source[512];
	/* what the server is (IDENTIFY_SYSTEM) and what the relay last saw (--state-file) */
	struct failover_server server;
	struct failover_state saved;
	bool		state_read;		/* --state-file read (once per process) */
	int64_t		state_saved_ms; /* when it was last written */
};

enum stream_rc stream_session(const struct options *o, struct relay *r,
							  struct stream_state *st);

/* Handle SIGHUP: make queued data durable, reopen file sinks. */
int stream_reopen_sinks(struct relay *r);

#endif
