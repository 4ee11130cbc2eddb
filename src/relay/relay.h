/*
 * relay.h — turn wal2json lines into events and track what is durable.
 *
 * The relay owns the sinks and the LSNs that matter:
 *   received_end: end of the last transaction whose events are all queued
 *                 or written to every sink;
 *   files_end:    the same, after every file sink's fsync succeeded;
 *   dl.done_end:  the same, after every delivery sink took every event of
 *                 it or it went to the dead letters (deliver.h);
 *   durable_end:  the lower of the two. Only this one is ever reported to
 *                 the server as flushed.
 * Network-free, so the integration of parsing, envelopes and sinks can be
 * driven from tests and the fuzzer as well as from the stream loop.
 */
#ifndef ORDERSYNCD_RELAY_H
#define ORDERSYNCD_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "deliver.h"
#include "envelope.h"
#include "sink.h"
#include "syncer.h"
#include "w2j.h"

enum relay_rc
{
	RELAY_OK = 0,
	RELAY_SINK_ERROR = -1,		/* a sink failed: stop, nothing more confirmed */
	RELAY_BAD_INPUT = -2,		/* --bad-input=stop and a bad line arrived */
	RELAY_PROTOCOL_ERROR = -3	/* the stream is inconsistent (begin inside begin...) */
};

struct relay_config
{
	const char *source;			/* CloudEvents source */
	const char *prefix;			/* logical message prefix: "ordersync" */
	bool		raw_changes;	/* also pass row changes through */
	bool		stop_on_bad_input;	/* else: emit ordersync.relay.invalid and go on */
	const char *conninfo;		/* for dead letters */
	uint64_t	max_pending_bytes;	/* delivery sinks: stop reading above this */
	const struct dsink_policy *sink_policy; /* for sinks from the database */
};

/* Commit time and event count of a transaction waiting for fsync. */
struct pending_txn
{
	int64_t		commit_usec;
	uint32_t	events;
};

#define RELAY_MAX_PENDING_TXNS 4096

struct relay
{
	struct relay_config cfg;
	struct sink *sinks;
	int			nsinks;
	struct w2j_parser parser;
	json_tokener *ctok;			/* for the snapshot's rows */
	struct content_parser content;	/* for message content */
	struct buf	ev;				/* the envelope being built */

	struct deliver dl;			/* webhooks, Kafka, RabbitMQ */

	bool		in_txn;
	bool		skipping;		/* a transaction we already have (after a reconnect) */
	struct txn_info txn;
	uint32_t	ordinal;		/* events emitted so far in this txn */

	uint64_t	received_end;
	uint64_t	files_end;
	uint64_t	durable_end;
	int64_t		durable_commit_usec;	/* commit time of the last durable txn */
	int64_t		last_commit_usec;	/* commit time of the last received txn */

	struct pending_txn pending[RELAY_MAX_PENDING_TXNS];
	int			npending;
	uint64_t	unsynced_txns;
	bool		unsynced;		/* anything appended since the last sync */

	/* the batch the syncer thread is flushing */
	struct syncer syncer;
	int64_t		sync_started_usec;	/* monotonic: when the last batch went to the syncer */
	struct pending_txn inflight[RELAY_MAX_PENDING_TXNS];
	int			ninflight;
	uint64_t	inflight_txns;
	int64_t		inflight_commit_usec;

	char		errmsg[1024];	/* why the last call failed */
};

int relay_init(struct relay *r, const struct relay_config *cfg,
			   struct sink *sinks, int nsinks);
void relay_free(struct relay *r);

/* One CopyData payload; data_start is its LSN from the XLogData header. */
int relay_line(struct relay *r, uint64_t data_start, const char *line, size_t len);

/* Emit an event outside the wal2json stream (the initial snapshot). */
int relay_emit(struct relay *r, const struct txn_info *txn, uint32_t ordinal,
			   const char *type_suffix, const char *subject, json_object *data);

/* Events emitted with relay_emit() form a whole unit ending at end_lsn. */
void relay_commit_external(struct relay *r, uint64_t end_lsn);

/*
 * Write + fsync every sink and wait for it, then durable_end =
 * received_end. For the snapshot, stopping, reconnecting and SIGHUP.
 */
int relay_sync(struct relay *r);

/*
 * The streaming path: write what is queued and hand the fsync to the
 * syncer thread; relay_sync_poll() later moves durable_end. Call only when
 * relay_sync_due().
 */
int relay_sync_start(struct relay *r);

/* Collect a finished background sync; *advanced tells whether durable_end moved. */
int relay_sync_poll(struct relay *r, bool *advanced);

/*
 * Commits waiting for a sync, no sync in flight, and the last one began at
 * least SYNC_MIN_GAP_USEC (2 ms) ago?
 */
bool relay_sync_due(struct relay *r);
/*
 * How long until relay_sync_due turns true by the clock alone, in ms for
 * poll(): 0 now, -1 not by the clock (nothing waits, or a sync in flight
 * wakes the loop through relay_sync_fd when it ends).
 */
int relay_sync_wait_ms(struct relay *r);

/* Anything received but not yet durable? */
bool relay_needs_sync(const struct relay *r);

/* fd to select() on: readable when a background sync finished. */
int relay_sync_fd(const struct relay *r);

/* Bytes queued in sinks (to bound memory). */
size_t relay_queued(const struct relay *r);

/*
 * Between transactions with nothing pending, a keepalive's WAL end can be
 * confirmed as is: nothing before it is waiting for us. Returns true if
 * durable_end moved.
 */
bool relay_idle_advance(struct relay *r, uint64_t wal_end);

/*
 * Delivery sinks may have finished transactions: move durable_end. True if
 * it moved (worth telling the server).
 */
bool relay_delivery_progress(struct relay *r);

/*
 * The connection is gone: forget the open transaction and cut its lines
 * from the sinks (the server sends it again from the start).
 */
int relay_abort_txn(struct relay *r);

#endif
