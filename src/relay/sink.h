/*
 * sink.h — the one interface every sink implements: stdout and files,
 * webhooks, Kafka, RabbitMQ, and whatever comes next.
 *
 * A sink is glue between the relay and one client library. It does not
 * decide about order, retries or dead letters: the delivery core
 * (delivery.h) owns the per-subject lanes, the in-flight window, the retry
 * schedule and the dead letters, and hands a sink only what may go out now.
 * The sink says what became of each event through the host handle it gets
 * at open. Those reports only fill a queue that the delivery core reads
 * after each call into the sink: a sink never calls back into the core.
 *
 * The life of a sink:
 *
 *   open     check s->uri and s->opt, set up; no slow network I/O (connect
 *            later, in poll, so a sink that is down does not stop the
 *            relay). 0, or -1 with err saying what to fix (close is not
 *            called then: free what was allocated).
 *   submit   take one event. SINK_TAKEN: the sink holds it until it reports
 *            an outcome for it. SINK_BUSY: not now (queue full, no
 *            connection, socket full); the core offers it again after the
 *            next poll. Outcomes may be reported from inside submit.
 *   prepare  before the relay waits: add descriptors to ps and lower
 *            *timeout_ms (never raise it; -1 is "no limit") to when poll
 *            must run at the latest.
 *   poll     after the wait (and now and then on a busy stream, with ps
 *            NULL: then only timers and library queues): make progress and
 *            report outcomes.
 *   close    free everything; events still held are dropped unreported
 *            (never confirmed, so the stream brings them again).
 *
 * Outcomes, reported through the host (each event exactly one of the first
 * three, after which the sink must not touch it again):
 *
 *   sink_host_accepted   the other system has the event durably (HTTP 2xx,
 *                        a Kafka delivery report without error, an AMQP
 *                        basic.ack, a JetStream ack);
 *   sink_host_failed     an attempt failed: retryable or not, why, and
 *                        no earlier than not_before_ms (a Retry-After) if
 *                        the core retries. The core counts the attempt and
 *                        retries with backoff or dead-letters the event;
 *   sink_host_returned   the sink gives the event back unattempted (a
 *                        connection dropped before its outcome was known,
 *                        records taken back from a library's queue); the
 *                        core offers it again, in order, without counting
 *                        an attempt.
 *
 * and for the sink as a whole:
 *
 *   sink_host_outage     the sink has been unable to deliver for longer than
 *                        max_age_seconds: count a failed attempt for every
 *                        event waiting for it;
 *   sink_host_refused    the sink will deliver nothing from now on (its
 *                        address is denied by policy): every event waiting
 *                        for it, and every later one, becomes a dead letter
 *                        with this reason;
 *   sink_host_durable    (SINK_ORDERED sinks) everything of the transactions
 *                        committed up to this LSN is durable;
 *   sink_host_fatal      the relay must stop (a file sink's failed write
 *                        or fsync: retrying could lose data silently).
 *
 * Order. The core submits a subject's events in commit order, at most
 * ops->lane_depth of them at once (0: as many as the window allows, for
 * sinks whose library keeps order on one connection or partition), never
 * more than the sink's window in all. A failed or returned event is
 * offered again before any later event of its subject that the sink has
 * not been given yet.
 *
 * SINK_ORDERED sinks (stdout and files) take every event in stream order,
 * never refuse one and never report per event: they report the LSN up to
 * which whole transactions are durable (commit marks come through
 * ops->commit, an unfinished transaction is dropped through ops->abort).
 * The core keeps no per-event state for them.
 *
 * Everything runs on the relay's thread. A library's own threads (librdkafka's
 * connect hook, for instance) may only note facts for poll to act on.
 *
 * Adding a sink: one file sink_<kind>.c that defines a struct sink_ops, a line
 * in the registry in sink.c and the library in the Makefile's pkg-config list.
 */
#ifndef ORDERSYNCD_SINK_H
#define ORDERSYNCD_SINK_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <json-c/json.h>

#include "buf.h"
#include "mem.h"

/* ---- what a sink gets --------------------------------------------------- */

/*
 * One event for one sink. The core owns it; the sink may keep the pointer
 * until it reports the event's outcome (or is closed), and uses the link and
 * scratch fields below as it likes meanwhile.
 */
struct sink_event
{
	const char *id;				/* CloudEvents id "<commit LSN>/<ordinal>" */
	const char *type;			/* event type without "ordersync.": "order.paid" */
	const char *subject;		/* "order/42": the core keeps order per subject */
	const char *body;			/* the CloudEvent, JSON, no trailing newline */
	size_t		body_len;
	int			attempts;		/* failed attempts so far (read only) */

	/* the sink's, while it holds the event */
	TAILQ_ENTRY(sink_event) link;
	int64_t		sink_ms;		/* e.g. when it went out (monotonic ms) */
	uint64_t	sink_tag;		/* e.g. an AMQP delivery tag */
	int			sink_flags;
};

TAILQ_HEAD(sink_event_list, sink_event);

/* Descriptors to poll, built anew before every wait. */
struct pollset
{
	struct pollfd *fds;
	int			n;
	int			cap;
};

void		pollset_reset(struct pollset *ps);
/* Returns the index of the entry (for revents after the poll). */
int			pollset_add(struct pollset *ps, int fd, short events);
void		pollset_free(struct pollset *ps);

/* ---- the host: where a sink reports ------------------------------------ */

enum sink_report
{
	SINK_ACCEPTED,
	SINK_FAILED,
	SINK_RETURNED,
	SINK_OUTAGE,
	SINK_REFUSED,
	SINK_DURABLE,
	SINK_FATAL
};

struct sink_result
{
	enum sink_report what;
	struct sink_event *ev;		/* the first three; NULL for the others */
	bool		retryable;		/* SINK_FAILED */
	int64_t		not_before_ms;	/* SINK_FAILED: 0, or the earliest retry */
	uint64_t	lsn;			/* SINK_DURABLE */
	size_t		why;			/* offset of the reason in text; (size_t) -1: none */
};

/*
 * The queue the sink fills and the delivery core empties after every call
 * into the sink. Plain data: reporting never runs code of the core.
 */
struct sink_host
{
	struct sink_result *results;
	int			n;
	int			cap;
	struct buf	text;			/* reasons, NUL-separated */
};

void		sink_host_init(struct sink_host *h);
void		sink_host_free(struct sink_host *h);
/* Forget what was read (the core, after acting on every result). */
void		sink_host_clear(struct sink_host *h);
/* The reason of a result, or "". */
const char *sink_host_why(const struct sink_host *h, const struct sink_result *r);

void		sink_host_accepted(struct sink_host *h, struct sink_event *ev);
void		sink_host_failed(struct sink_host *h, struct sink_event *ev, bool retryable,
							 int64_t not_before_ms, const char *why);
void		sink_host_returned(struct sink_host *h, struct sink_event *ev);
void		sink_host_outage(struct sink_host *h, const char *why);
void		sink_host_refused(struct sink_host *h, const char *why);
void		sink_host_durable(struct sink_host *h, uint64_t lsn);
void		sink_host_fatal(struct sink_host *h, const char *why);

/* ---- the sink ----------------------------------------------------------- */

/* Options common to all sinks from a URI, from the sink's options object. */
struct sink_options
{
	int			max_attempts;	/* "max_attempts", default 25 */
	int			max_age_ms;		/* "max_age_seconds", default 3600 */
	int			backoff_min_ms; /* "backoff_min_ms", default 200 */
	int			backoff_max_ms; /* "backoff_max_ms", default 30000 */
	int			timeout_ms;		/* "timeout_ms": one attempt, default 10000 */
	int			connect_timeout_ms; /* "connect_timeout_ms", default 5000 */
	int			max_in_flight;	/* "max_in_flight"; 0: the kind's default window */
	bool		drop_personal_data; /* "drop_personal_data": no customer data */
	json_object *raw;			/* the whole object, for sink-specific keys */
};

/*
 * What the relay's command line allows sinks that come from the database
 * (ordersync.sink, which any admin can write). Sinks given on the command
 * line are trusted: the operator of the relay's host chose them.
 */
struct netmask
{
	int			family;			/* AF_INET or AF_INET6 */
	unsigned char addr[16];
	int			bits;
};

struct sink_policy
{
	bool		allow_insecure; /* --allow-insecure-sinks: TLS off, clear text with PII */
	const char *secret_env_prefix;	/* --secret-env-prefix: "*_env" must start so */
	const char *secret_dir;		/* --secret-dir: "*_file" under it; NULL: none */
	struct netmask *deny;		/* --deny-networks: never connect there */
	int			ndeny;
};

struct sink;

/*
 * A kind's own options, one table per kind ended by {NULL}: the allowlist
 * sink_policy.c checks keys against, and what sink_opts_load reads into
 * the kind's state (at offset; -1: only allowed, read by the sink itself).
 */
enum sink_opt_type
{
	SINK_OPT_STRING,			/* char *: a non-empty string */
	SINK_OPT_FILE,				/* char *: a path, resolved by the policy */
	SINK_OPT_BOOL,				/* bool */
	SINK_OPT_INT,				/* int in [min, max] */
	SINK_OPT_OBJECT,			/* json_object *, borrowed from opt.raw */
	SINK_OPT_SECRET				/* keys name_env and name_file; never stored:
								 * sink_secret reads it when it is needed */
};

struct sink_opt
{
	const char *name;
	enum sink_opt_type type;
	ptrdiff_t	offset;			/* offsetof(state, field), or -1 */
	int			min,
				max;			/* SINK_OPT_INT */
};

/* SINK_TAKEN / SINK_BUSY: what submit returns */
#define SINK_TAKEN 0
#define SINK_BUSY 1

/* ops->flags */
#define SINK_ORDERED 0x1		/* stream order, durable by LSN (see the top) */
#define SINK_LOCAL 0x2			/* command line only (files): never from the database */

struct sink_ops
{
	const char *kind;			/* "file", "webhook", "kafka", "amqp", "nats" */
	unsigned	flags;
	int			lane_depth;		/* events of one subject at once; 0: no limit */
	int			window;			/* default events in flight; 0: no limit */
	/* sink-specific options (sink_policy.c checks every key against them) */
	const struct sink_opt *options;
	const char *const *option_keys; /* or plain keys (test doubles) */

	bool		(*claims) (const char *uri);	/* is uri one of this kind's? */
	/* does this sink send events unencrypted (the personal-data rule)? */
	bool		(*clear_text) (const struct sink *s);

	int			(*open) (struct sink *s, struct sink_host *host, char *err, size_t errlen);
	int			(*submit) (struct sink *s, struct sink_event *ev);
	void		(*prepare) (struct sink *s, struct pollset *ps, int *timeout_ms);
	void		(*poll) (struct sink *s, const struct pollset *ps);
	void		(*close) (struct sink *s);

	/* optional */
	void		(*flush) (struct sink *s);	/* the stream paused: make durable what it has */
	void		(*commit) (struct sink *s, uint64_t end_lsn);	/* SINK_ORDERED */
	void		(*abort) (struct sink *s);	/* SINK_ORDERED: drop since the last commit */
	void		(*reopen) (struct sink *s);	/* SIGHUP: files are reopened */
};

struct sink
{
	const struct sink_ops *ops;
	char	   *name;			/* route target: "warehouse", or the URI for --sink */
	char	   *uri;			/* "https://...", "file:/path", "stdout" */
	struct sink_options opt;
	bool		trusted;		/* from the command line, not the database */
	const struct sink_policy *policy;	/* never NULL once opened */
	bool		loopback_only;	/* set by sink_check: clear text with personal
								 * data, admitted only because it stays on this
								 * machine; the connect hooks hold it to that */
	struct sink_host *host;		/* given at open */
	void	   *state;			/* the sink's own */
};

/* The kind that handles uri (any), or NULL. */
const struct sink_ops *sink_kind_for(const char *uri);

extern const struct sink_ops sink_file_ops;
extern const struct sink_ops sink_webhook_ops;
extern const struct sink_ops sink_kafka_ops;
extern const struct sink_ops sink_amqp_ops;
extern const struct sink_ops sink_nats_ops;

/* Defaults, then the keys of raw (kept in opt->raw). 0 or -1 (err filled). */
int			sink_parse_options(struct sink_options *opt, json_object *raw,
							   char *err, size_t errlen);

/*
 * Check a sink from a URI before it is opened: its options against the
 * allowlist of its kind and, unless s->trusted, against s->policy (secret
 * references, TLS, clear text, networks; see sink_policy.c). Sets s->ops
 * and s->loopback_only. 0 or -1 with err saying what to fix (it names the
 * sink, and never quotes a secret).
 */
int			sink_check(struct sink *s, char *err, size_t errlen);

/*
 * The policy when the command line gives none: secret variables named
 * ORDERSYNC_*, no file references, the default deny list.
 */
const struct sink_policy *sink_default_policy(void);

/*
 * uri as it may be shown (logs, metric labels, dead letters): without
 * userinfo or fragment, every query value but exchange's replaced by ***,
 * control characters replaced by '?'. Always NUL-terminated.
 */
void		sink_redact_uri(const char *uri, char *out, size_t outlen);

/* Monotonic clock in ms, the one retry times are given in. */
int64_t		sink_now_ms(void);

/* prepare's rule: *timeout_ms becomes the earlier of itself (-1: none) and ms. */
void		sink_lower_timeout(int *timeout_ms, int64_t ms);

/* Is key in the sink's options? */
bool		sink_opt_given(const struct sink *s, const char *key);

/*
 * Read the options of table that s has into state (see struct sink_opt);
 * kind names the sink in messages (NULL: s->ops->kind). Refuses a
 * secret's own key ("password" where "password_env" is meant). 0, or -1
 * with err; what was read before an error is freed by sink_opts_free.
 */
int			sink_opts_load(const struct sink *s, const char *kind, const struct sink_opt *table,
						   void *state, char *err, size_t errlen);
/* Free the strings sink_opts_load put into state. */
void		sink_opts_free(const struct sink_opt *table, void *state);
/* Is key one of table's? Its keys as "a, b_env, b_file" for messages. */
bool		sink_opts_allow(const struct sink_opt *table, const char *key);
void		sink_opts_names(const struct sink_opt *table, char *out, size_t outlen);

/*
 * Read a secret named by reference in the options: "<key>_env" names an
 * environment variable, "<key>_file" a file (trailing newline removed).
 * Returns a malloc'd string, or NULL with err filled when neither is given
 * or it cannot be read. Secrets are never taken from the options directly.
 * For a sink from the database the reference is checked against the policy
 * again at every read (a file may have been replaced since the sink opened).
 */
char	   *sink_secret(const struct sink *s, const char *key, char *err, size_t errlen);
/* Does s name the secret key ("<key>_env" or "<key>_file")? */
bool		sink_secret_given(const struct sink *s, const char *key);
/* Wipe and free a secret (NULL is fine). */
void		sink_secret_free(char *secret);

#endif
