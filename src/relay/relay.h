/*
 * relay.h — turn wal2json lines into events and know what is durable.
 *
 * The relay owns the stream's transaction state and two LSNs:
 *   received_end: end of the last transaction whose events are all handed
 *                 to the delivery core;
 *   durable_end:  the delivery core's watermark: every sink (files fsynced,
 *                 webhooks, Kafka, RabbitMQ answered or dead-lettered) has
 *                 every event of every transaction up to it. Only this one
 *                 is ever reported to the server as flushed.
 * Network-free, so the integration of parsing, envelopes and sinks can be
 * driven from tests and the fuzzer as well as from the stream loop.
 */
#ifndef ORDERSYNCD_RELAY_H
#define ORDERSYNCD_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "content.h"
#include "delivery.h"
#include "envelope.h"
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
	const struct sink_policy *sink_policy;	/* for sinks from the database */
	uint64_t	endpos;			/* --endpos: no transaction committed after it
								 * is relayed (0: no end) */
};

/* Commits not yet durable, for the latency histogram and transactions_total. */
struct relay_commit
{
	uint64_t	end_lsn;
	int64_t		commit_usec;
	uint32_t	events;
	uint32_t	txns;			/* more than one when the ring was full */
};

#define RELAY_MAX_PENDING_TXNS 4096

struct relay
{
	struct relay_config cfg;
	struct w2j_parser parser;
	json_tokener *ctok;			/* for the snapshot's rows */
	struct content_parser content;	/* for message content */
	struct buf	ev;				/* the envelope being built */

	struct delivery dl;			/* every sink */

	bool		in_txn;
	bool		skipping;		/* a transaction we already have (after a
								 * reconnect), or one past cfg.endpos */
	bool		past_endpos;	/* a transaction committed after cfg.endpos
								 * began: nothing more is relayed */
	struct txn_info txn;
	uint32_t	ordinal;		/* events emitted so far in this txn */

	uint64_t	received_end;
	uint64_t	durable_end;

	struct relay_commit pending[RELAY_MAX_PENDING_TXNS];	/* a ring */
	int			pending_head;
	int			npending;
	uint64_t	unsynced_txns;	/* commits since the last flush */
	bool		unsynced;		/* anything handed over since the last flush */

	char		errmsg[1024];	/* why the last call failed */
};

/* Sinks are added to r->dl afterwards (delivery_add_cli_sink). 0 or -1. */
int relay_init(struct relay *r, const struct relay_config *cfg);
void relay_free(struct relay *r);

/* One CopyData payload; data_start is its LSN from the XLogData header. */
int relay_line(struct relay *r, uint64_t data_start, const char *line, size_t len);

/* Emit an event outside the wal2json stream (the initial snapshot). */
int relay_emit(struct relay *r, const struct txn_info *txn, uint32_t ordinal,
			   const char *type_suffix, const char *subject, json_object *data);

/* Events emitted with relay_emit() form a whole unit ending at end_lsn. */
void relay_commit_external(struct relay *r, uint64_t end_lsn);

/*
 * Make everything committed durable in the file sinks and wait for it,
 * then move durable_end. For the snapshot, stopping, reconnecting and
 * SIGHUP.
 */
int relay_sync(struct relay *r);

/*
 * The streaming path: the stream paused, or --fsync-interval passed on a
 * busy one; file sinks start making their batch durable (in the
 * background, at most every 2 ms). Call when relay_needs_sync().
 */
int relay_flush(struct relay *r);

/* Anything received but not yet flushed? */
bool relay_needs_sync(const struct relay *r);

/*
 * Sinks may have made more durable: move durable_end to the delivery
 * core's watermark. *advanced tells whether it moved (worth telling the
 * server). RELAY_SINK_ERROR when a sink failed for good (errmsg).
 */
int relay_progress(struct relay *r, bool *advanced);

/*
 * Between transactions with nothing pending, a keepalive's WAL end can be
 * confirmed as is: nothing before it is waiting for us. Returns true if
 * durable_end moved.
 */
bool relay_idle_advance(struct relay *r, uint64_t wal_end);

/*
 * The connection is gone: forget the open transaction and cut its lines
 * from the file sinks (the server sends it again from the start).
 */
int relay_abort_txn(struct relay *r);

#endif
