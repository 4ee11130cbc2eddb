/*
 * deliver.h — the relay's side of the delivery sinks (dsink.h): which
 * sinks exist and which event types they get, handing events to them, and
 * knowing up to which transaction everything has been taken.
 *
 * Transactions that have deliveries in flight sit in a ring, in commit
 * order, each with a count of unfinished deliveries. done_end is the end
 * LSN of the last transaction such that it and every transaction before it
 * are finished: delivered, or given up and written to
 * ordersync.dead_letter. The relay confirms no more than done_end (and no
 * more than the file sinks have fsynced).
 *
 * Sinks come from the command line (--sink=URI: every event) and from the
 * database (ordersync.sink and ordersync.route, read once at start, then
 * followed through those tables' row changes in the stream, exactly where
 * they commit; deliver_config.c). A sink that leaves the configuration gets
 * no new events and is closed when everything handed to it is finished:
 * nothing it holds is lost. Messages never steer the relay: anyone allowed
 * to emit one could forge it (trust.h).
 */
#ifndef ORDERSYNCD_DELIVER_H
#define ORDERSYNCD_DELIVER_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "dsink.h"

struct dl_txn
{
	uint64_t	end_lsn;		/* 0: cut off (the stream broke inside it) */
	int64_t		commit_usec;
	uint32_t	outstanding;	/* deliveries not finished */
	bool		closed;			/* its commit was seen */
};

struct dl_sink
{
	struct dsink *sink;
	char	  **patterns;
	int			npatterns;
	bool		configured;		/* from ordersync.sink, not --sink */
	json_object *config;		/* its entry of the configuration: changed? */
};

/*
 * Deliveries given up for good (everything a broken sink gets, events the
 * personal-data filter could not read) whose dead letter could not be
 * written yet: kept, unconfirmed, and written again every second.
 */
struct dl_held
{
	struct delivery *head;
	int64_t		retry_at;
};

struct deliver
{
	struct dl_sink *sinks;
	int			nsinks;
	int			cap;

	struct dl_txn *ring;		/* transactions from head_seq to next_seq - 1 */
	uint64_t	ring_cap;
	uint64_t	head_seq;
	uint64_t	next_seq;
	bool		txn_open;		/* the current transaction has a ring entry */

	uint64_t	done_end;
	int64_t		done_commit_usec;	/* commit time of the transaction ending there */
	uint64_t	outstanding;
	uint64_t	outstanding_bytes;
	uint64_t	max_bytes;		/* backpressure above this */

	json_object *config;		/* {"sinks": [...], "routes": [...]} as last read */
	struct dl_held unfiltered;	/* personal-data filter failed, dead letter pending */

	const char *conninfo;		/* for dead letters */
	const struct dsink_policy *policy;	/* for sinks from the database */
	PGconn	   *conn;
	struct pollset ps;
	uint32_t	rnd;
};

void		deliver_init(struct deliver *dl, const char *conninfo, uint64_t max_bytes,
						 const struct dsink_policy *policy);
void		deliver_free(struct deliver *dl);

/* A --sink=URI with its --sink-options (may be NULL). 0 or -1 (err filled). */
int			deliver_add_cli_sink(struct deliver *dl, const char *uri, const char *options,
								 char *err, size_t errlen);

/*
 * Switch to a configuration document {"sinks": [...], "routes": [...]}
 * (ordersync.relay_config()); where says what it came from, for the log.
 * Every entry is checked: a running sink whose new version is refused keeps
 * running as it was; a new one that cannot be opened dead-letters what is
 * routed to it. Returns the number of such broken sinks, -1 when the
 * document itself is refused (nothing changes then).
 */
int			deliver_apply_config(struct deliver *dl, json_object *cfg, const char *where);

/* Read ordersync.relay_config() over conn; no extension: no change. */
int			deliver_load_config(struct deliver *dl, PGconn *conn);

/* The tables whose row changes steer the relay, as a wal2json add-tables list. */
#define DELIVER_CONTROL_TABLES "ordersync.sink,ordersync.route,ordersync.redelivery"

/* Is ordersync.<table> one of them? */
bool		deliver_is_control_table(const char *schema, const char *table);

/*
 * A row change of a control table (action I, U, D or T; change is the whole
 * wal2json record) in the transaction ending at end_lsn: the configuration
 * changes right here in the stream, or a dead letter is sent again. where
 * names the position for the log. Bad rows are refused with a log line and
 * a metric; they never crash the relay or change what runs.
 */
void		deliver_control_row(struct deliver *dl, const char *table, char action,
								json_object *change, uint64_t end_lsn, int64_t commit_usec,
								const char *where);

/* Formats of ordersync.sink.name and ordersync.route.pattern. */
bool		deliver_sink_name_ok(const char *name);
bool		deliver_pattern_ok(const char *pattern);

bool		deliver_has_sinks(const struct deliver *dl);

/*
 * Route one event of the transaction ending at end_lsn to the sinks that
 * want its type. body is the CloudEvent without newline.
 */
void		deliver_event(struct deliver *dl, uint64_t end_lsn, int64_t commit_usec,
						  const char *id, const char *type, const char *subject,
						  const char *body, size_t len);

/* A row of ordersync.redelivery: send the stored event to its sink again. */
void		deliver_redeliver(struct deliver *dl, uint64_t end_lsn, int64_t commit_usec,
							  int64_t dead_letter_id, const char *sink, json_object *event);

/*
 * The event body without personal data (see deliver.c), malloc'd; NULL when
 * it cannot be read, in which case it must not be sent to such a sink.
 */
char	   *deliver_without_personal_data(const char *body, size_t len, size_t *outlen);

/* Events are read back this deep (the extension limits the customer's depth). */
#define DELIVER_EVENT_MAX_DEPTH 64

/*
 * text as one complete JSON value nested at most max_depth deep
 * (w2j_parse_json with a tokener of that depth), or NULL.
 */
json_object *deliver_parse_json(const char *text, size_t len, int max_depth);

/* The transaction ending at end_lsn is complete. */
void		deliver_commit(struct deliver *dl, uint64_t end_lsn, int64_t commit_usec);

/* The stream broke inside a transaction: its entry no longer moves done_end. */
void		deliver_abort(struct deliver *dl);

/* Nothing in flight (a keepalive's position may be confirmed as is). */
bool		deliver_idle(const struct deliver *dl);

/* Too much in flight: stop reading the stream until sinks catch up. */
bool		deliver_backlogged(const struct deliver *dl);

/* Around the relay's poll(). */
void		deliver_prepare(struct deliver *dl, struct pollset *ps, int *timeout_ms);
void		deliver_work(struct deliver *dl, const struct pollset *ps);

/*
 * Poll the sinks alone, up to timeout_ms (lowered to what they need), and
 * let them work: with 0 for a busy stream, with a timeout to drain on stop.
 */
void		deliver_pump(struct deliver *dl, int timeout_ms);

/* Dead-letter d (why) now, or hold it in h when that cannot be written yet. */
void		deliver_give_up(struct dl_held *h, struct delivery *d, const char *why);
/* Around the poll: try the held ones again, at most every second. */
void		deliver_held_prepare(const struct dl_held *h, int *timeout_ms);
void		deliver_held_work(struct dl_held *h, const char *why);
/* Drop the held ones unconfirmed (the stream brings them again). */
void		deliver_held_free(struct dl_held *h);

/* Between deliver.c and deliver_config.c. */
void		deliver_free_entry(struct dl_sink *e);
void		deliver_close_sink(struct dsink *s);
void		deliver_reap(struct deliver *dl);

#endif
