/*
 * stream_standby.h — a second ordersyncd on the same slot waits for it.
 *
 * PostgreSQL lets one process at a time read a replication slot; a second
 * START_REPLICATION fails with "replication slot ... is active for PID N".
 * Run two relays on one slot and the second stands by: it keeps its
 * replication connection, asks every --standby-poll milliseconds whether
 * the slot is still held, says once that it is standing by, and starts
 * streaming as soon as the slot is free (the active relay died: the server
 * releases the slot when its walsender notices the closed connection).
 * It then starts at the slot's confirmed position, so what the first one
 * made durable but had not confirmed comes again (the same event ids);
 * nothing is lost.
 */
#ifndef ORDERSYNCD_STREAM_STANDBY_H
#define ORDERSYNCD_STREAM_STANDBY_H

#include <signal.h>
#include <stdbool.h>

#include <libpq-fe.h>

enum standby_rc
{
	STANDBY_FREE = 0,			/* nobody holds the slot (or it does not exist) */
	STANDBY_STOP,				/* SIGTERM/SIGINT while waiting */
	STANDBY_LOST				/* the connection failed while waiting */
};

/*
 * The PID of the process that holds the slot, 0 if none (or no such
 * slot), -1 if the query failed.
 */
int			standby_slot_holder(PGconn *conn, const char *slot);

/*
 * Wait until nobody holds the slot. Returns at once (STANDBY_FREE) when it
 * is free; otherwise logs once that this relay stands by, sets the standby
 * metrics, and polls every poll_ms, waking on wake_fd (the signal
 * self-pipe, -1 if none) to check *stop.
 */
enum standby_rc standby_wait(PGconn *conn, const char *slot, int poll_ms,
							 int wake_fd, volatile const sig_atomic_t *stop);

#endif
