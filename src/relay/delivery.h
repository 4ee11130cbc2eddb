/*
 * delivery.h — the delivery core: every sink (files, stdout, webhooks,
 * Kafka, RabbitMQ) gets its events from here, and only from here is it
 * decided what the relay may confirm to the server.
 *
 * What it owns:
 *   - routing: which sinks get which event types (command-line sinks get
 *     all; sinks from ordersync.sink get what ordersync.route says,
 *     followed through the stream exactly where it commits:
 *     delivery_config.c);
 *   - per-subject FIFO lanes per sink: a subject's events go out in commit
 *     order, at most the sink kind's lane depth at once (one for webhooks),
 *     also across retries;
 *   - an in-flight window per sink (max_in_flight, or the kind's default);
 *   - the retry schedule (exponential backoff with jitter, Retry-After) and
 *     dead-lettering (ordersync.dead_letter, delivery_letters.c) after
 *     max_attempts or max_age_seconds, or at once for a refusal;
 *   - the watermark: the end LSN of the last transaction such that it and
 *     everything before it is finished at every sink, delivered (a file:
 *     fsynced) or dead-lettered. The relay confirms nothing past it.
 *
 * Sinks report through their host handle (sink.h); the core reads those
 * reports after each call into a sink. A sink that leaves the
 * configuration gets no new events and is closed when everything handed to
 * it is finished: nothing it holds is lost. Messages never steer the relay:
 * anyone allowed to emit one could forge it (trust.h).
 */
#ifndef ORDERSYNCD_DELIVERY_H
#define ORDERSYNCD_DELIVERY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "sink.h"

struct delivery_lane;
struct delivery_entry;
struct delivery_payload;

/* One sink as the core sees it. */
struct delivery_sink
{
	struct sink *sink;			/* name, uri, options; sink->ops NULL: never opened */
	struct sink_host host;		/* where the sink reports */
	char	  **patterns;		/* routed event types: "*", "order.paid", "order.*" */
	int			npatterns;
	bool		configured;		/* from ordersync.sink, not --sink */
	json_object *config;		/* its entry of the configuration: changed? */
	bool		retired;		/* dropped from the configuration: drain, then free */
	bool		failing;		/* warned about failures; info again on success */
	char	   *refused;		/* delivers nothing: every event becomes a dead letter */
	int			metrics_id;
	bool		ordered;		/* SINK_ORDERED: no lanes, durable by LSN */

	/* SINK_ORDERED sinks */
	uint64_t	committed_lsn;	/* last commit handed to it */
	uint64_t	durable_lsn;	/* what it reported durable */

	/* the others */
	int			window;			/* events in flight at most; 0: no limit */
	int			inflight;
	bool		busy;			/* said SINK_BUSY: nothing more until its next poll */
	uint64_t	outstanding;	/* events handed to the core for it, not finished */
	uint64_t	outstanding_bytes;
	uint64_t	next_pos;		/* order of its events */
	struct delivery_lane *lanes;	/* uthash by subject */
	TAILQ_HEAD(, delivery_lane) ready;	/* lanes with an event that may go now */
};

/* A transaction with unfinished events, in commit order. */
struct delivery_txn
{
	uint64_t	end_lsn;		/* 0: cut off (the stream broke inside it) */
	uint32_t	outstanding;	/* events not finished */
	bool		closed;			/* its commit was seen */
};

struct delivery
{
	struct delivery_sink **sinks;
	int			nsinks;
	int			cap;

	struct delivery_txn *ring;	/* transactions from head_seq to next_seq - 1 */
	uint64_t	ring_cap;
	uint64_t	head_seq;
	uint64_t	next_seq;
	bool		txn_open;		/* the current transaction has a ring entry */
	uint64_t	done_end;		/* the watermark of the lane-keeping sinks */

	uint64_t	outstanding;	/* events of all lane-keeping sinks, unfinished */
	uint64_t	outstanding_bytes;
	uint64_t	max_bytes;		/* backpressure above this */

	/* retry times: a min-heap of lanes by the time their next event may go */
	struct delivery_lane **heap;
	int			heap_n;
	int			heap_cap;
	struct delivery_entry *free_entries;	/* reused, never returned to malloc */
	struct delivery_lane *free_lanes;

	json_object *config;		/* {"sinks": [...], "routes": [...]} as last read */
	const char *conninfo;		/* for dead letters */
	const struct sink_policy *policy;	/* for sinks from the database */
	PGconn	   *conn;			/* dead letters are written over it */
	int64_t		letters_down_until; /* could not write one: not before then */
	struct pollset ps;
	uint32_t	rnd;
	char	   *fatal;			/* a sink failed for good: the relay must stop */
};

void		delivery_init(struct delivery *dl, const char *conninfo, uint64_t max_bytes,
						  const struct sink_policy *policy);
void		delivery_free(struct delivery *dl);

/*
 * A --sink: stdout, file:PATH, or a URI with its --sink-options (may be
 * NULL). 0 or -1 (err says what to fix).
 */
int			delivery_add_cli_sink(struct delivery *dl, const char *spec, const char *options,
								  char *err, size_t errlen);

/*
 * Switch to a configuration document {"sinks": [...], "routes": [...]}
 * (ordersync.relay_config()); where says what it came from, for the log.
 * Every entry is checked: a running sink whose new version is refused keeps
 * running as it was; a new one that cannot be opened dead-letters what is
 * routed to it. Returns the number of such broken sinks, -1 when the
 * document itself is refused (nothing changes then).
 */
int			delivery_apply_config(struct delivery *dl, json_object *cfg, const char *where);

/* Read ordersync.relay_config() over conn; no extension: no change. 0 or -1. */
int			delivery_load_config(struct delivery *dl, PGconn *conn);

/* The tables whose row changes steer the relay, as a wal2json add-tables list. */
#define DELIVERY_CONTROL_TABLES "ordersync.sink,ordersync.route,ordersync.redelivery"

/* Is ordersync.<table> one of them? */
bool		delivery_is_control_table(const char *schema, const char *table);

/*
 * A row change of a control table (action I, U, D or T; change is the whole
 * wal2json record) in the transaction ending at end_lsn: the configuration
 * changes right here in the stream, or a dead letter is sent again. where
 * names the position for the log. Bad rows are refused with a log line and
 * a metric; they never crash the relay or change what runs.
 */
void		delivery_control_row(struct delivery *dl, const char *table, char action,
								 json_object *change, uint64_t end_lsn, const char *where);

/* Formats of ordersync.sink.name and ordersync.route.pattern. */
bool		delivery_sink_name_ok(const char *name);
bool		delivery_pattern_ok(const char *pattern);

/*
 * One event of the transaction ending at end_lsn, to every sink that wants
 * its type. body is the CloudEvent without newline.
 */
void		delivery_event(struct delivery *dl, uint64_t end_lsn, const char *id,
						   const char *type, const char *subject, const char *body, size_t len);

/* A row of ordersync.redelivery: send the stored event to its sink again. */
void		delivery_redeliver(struct delivery *dl, uint64_t end_lsn, int64_t dead_letter_id,
							   const char *sink, json_object *event);

/* The transaction ending at end_lsn (0: one without its own LSN) is complete. */
void		delivery_commit(struct delivery *dl, uint64_t end_lsn);

/*
 * The stream broke inside a transaction: files cut its lines, and its
 * events elsewhere no longer move the watermark (they only have to finish).
 */
void		delivery_abort(struct delivery *dl);

/* The stream paused: sinks that batch (files) start making their batch durable. */
void		delivery_flush(struct delivery *dl);

/*
 * Make everything committed durable in the SINK_ORDERED sinks and wait for
 * it (the snapshot, stopping, reconnecting, SIGHUP). 0, or -1 when a sink
 * failed (delivery_fatal says why).
 */
int			delivery_sync(struct delivery *dl);

/* SIGHUP: the file sinks reopen their files (call delivery_sync first). */
void		delivery_reopen(struct delivery *dl);

/* Up to here every sink has every committed event (see the top). */
uint64_t	delivery_watermark(const struct delivery *dl);

/*
 * Nothing pending anywhere: the stream's position lsn (a keepalive) may be
 * confirmed as is. True when the watermark moved to lsn.
 */
bool		delivery_idle_advance(struct delivery *dl, uint64_t lsn);

/* Nothing in flight at the lane-keeping sinks. */
bool		delivery_idle(const struct delivery *dl);

/* Too much in flight: stop reading the stream until sinks catch up. */
bool		delivery_backlogged(const struct delivery *dl);

/* Sinks besides files and stdout (worth pumping on a busy stream). */
bool		delivery_has_remote_sinks(const struct delivery *dl);

/* NULL, or why the relay must stop (a file sink's write or fsync failed). */
const char *delivery_fatal(const struct delivery *dl);

/* Around the relay's poll(). */
void		delivery_prepare(struct delivery *dl, struct pollset *ps, int *timeout_ms);
void		delivery_poll(struct delivery *dl, const struct pollset *ps);

/* Cheap, at every line: the file sinks' finished syncs and due batches. */
void		delivery_tick(struct delivery *dl);

/*
 * Poll the sinks alone, up to timeout_ms (lowered to what they need), and
 * let them work: with 0 for a busy stream, with a timeout to drain on stop.
 */
void		delivery_pump(struct delivery *dl, int timeout_ms);

/* ---- between delivery.c, delivery_config.c and delivery_letters.c ---- */

/*
 * A sink from the command line or the database, opened. On failure NULL
 * with err filled, or, when keep_refused, a sink that dead-letters every
 * event routed to it with err as the reason.
 */
struct delivery_sink *delivery_open_sink(struct delivery *dl, const char *name, const char *uri,
										 json_object *options, bool trusted, bool keep_refused,
										 char *err, size_t errlen);
/* Make it one of dl's sinks. */
void		delivery_add_sink(struct delivery *dl, struct delivery_sink *ds, bool configured,
							  json_object *config);
void		delivery_add_pattern(struct delivery_sink *ds, const char *pattern);
void		delivery_drop_patterns(struct delivery_sink *ds);
/* No new events; closed once nothing it holds is unfinished. */
void		delivery_retire(struct delivery_sink *ds);
/* Free retired sinks with nothing left. */
void		delivery_reap(struct delivery *dl);

/*
 * Keep an event in ordersync.dead_letter (delivery_letters.c): 0 when
 * committed, -1 when it could not be written (tried again later).
 */
int			delivery_dead_letter(struct delivery *dl, const struct delivery_sink *ds,
								 const struct sink_event *ev, const char *why);

/*
 * The event body without personal data (see delivery_letters.c), malloc'd;
 * NULL when it cannot be read, in which case it must not be sent to such a
 * sink.
 */
char	   *delivery_without_personal_data(const char *body, size_t len, size_t *outlen);

/* Events are read back this deep (the extension limits the customer's depth). */
#define DELIVERY_EVENT_MAX_DEPTH 64

/*
 * text as one complete JSON value nested at most max_depth deep
 * (w2j_parse_json with a tokener of that depth), or NULL.
 */
json_object *delivery_parse_json(const char *text, size_t len, int max_depth);

#endif
