/*
 * stream_failover.h — notice that the server is not the one the relay last
 * streamed from, and never skip silently past events it did not relay.
 *
 * PostgreSQL 15 does not carry logical replication slots to a promoted
 * standby: after a failover the slot is gone, and a slot created anew
 * starts at the new primary's current position. Every event committed
 * after the relay's last confirmation and before that position was never
 * relayed. The relay keeps what it last saw in a state file
 * (--state-file): the server's system identifier and timeline (from
 * IDENTIFY_SYSTEM), the slot and the last confirmed LSN. The file survives
 * a restart of the relay and a failover of the server. At the start of
 * each session:
 *
 *   - the slot exists and the server is the one recorded: stream;
 *   - the slot is missing, or the server's system or timeline changed and
 *     the slot now starts past the recorded position: stop (exit 2),
 *     saying what happened and how to recover; with --create-slot, create
 *     the slot and log a gap report: the LSN range that was not relayed,
 *     where the timeline switched, and the ordersync.history rows that may
 *     have been missed.
 */
#ifndef ORDERSYNCD_STREAM_FAILOVER_H
#define ORDERSYNCD_STREAM_FAILOVER_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "options.h"

/* What the relay last saw; "known" false until a state file was read or written. */
struct failover_state
{
	bool		known;
	char		slot[64];
	char		system_id[32];
	uint32_t	timeline;
	uint64_t	confirmed;		/* last LSN confirmed to that server */
	int64_t		confirmed_at;	/* Unix seconds when it was */
};

/* What IDENTIFY_SYSTEM said this session. */
struct failover_server
{
	char		system_id[32];
	uint32_t	timeline;
};

/* Read the state file: 0 (fs->known tells whether there was one) or -1 with err. */
int			failover_load(const char *path, struct failover_state *fs, char *err, size_t errlen);

/* Write it atomically (temporary file, fsync, rename): 0 or -1 with err. */
int			failover_save(const char *path, const struct failover_state *fs, char *err, size_t errlen);

/*
 * The slot's confirmed position, over a replication connection not yet
 * streaming: 1 it exists (*lsn set), 0 it does not, -1 the query failed.
 */
int			failover_slot_position(PGconn *conn, const char *slot, uint64_t *lsn);

enum failover_rc
{
	FAILOVER_OK = 0,			/* stream as usual */
	FAILOVER_REFUSE,			/* logged what happened: exit 2 */
	FAILOVER_GAP,				/* --create-slot: create the slot, then failover_report_gap() */
	FAILOVER_LOST				/* a query failed: retry */
};

/*
 * Before the slot is used: compare the server and the slot with the state.
 * saved may be unknown (no file yet): then only the identity is taken.
 */
enum failover_rc failover_check(PGconn *conn, const struct options *o,
								const struct failover_server *srv,
								const struct failover_state *saved);

/*
 * After the slot was created (FAILOVER_GAP): log the gap report, from the
 * saved position to the new slot's start.
 */
void		failover_report_gap(PGconn *conn, const struct options *o,
								const struct failover_server *srv,
								const struct failover_state *saved);

#endif
