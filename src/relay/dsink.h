/*
 * dsink.h — delivery sinks: webhooks, Kafka and RabbitMQ.
 *
 * Unlike the file sinks (sink.h), which append every event and fsync in
 * batches, these hand events one by one to another system and learn
 * asynchronously whether it took them. The relay gives each routed event
 * to a sink as a struct delivery through ops->submit. For every delivery
 * the sink then calls, exactly once in the end:
 *
 *   dsink_accepted(d)   the other system has the event durably (HTTP 2xx,
 *                       Kafka delivery report without error, AMQP basic.ack);
 *
 * and after each failed attempt
 *
 *   dsink_failed(d, retryable, why)
 *                       returns the monotonic time (ms) at which to try the
 *                       delivery again, or DSINK_GIVEN_UP when the relay has
 *                       written it to ordersync.dead_letter: the delivery is
 *                       then finished and freed and must not be touched.
 *
 * The relay confirms a transaction to PostgreSQL only when every delivery
 * of it (to every sink) is finished. Deliveries a sink still holds when it
 * is closed are simply not confirmed: the stream sends them again after a
 * restart.
 *
 * Sinks never block for long: the relay's loop polls their descriptors
 * together with the replication connection (ops->prepare adds descriptors
 * and lowers the timeout; ops->work does what is ready). Sinks are called
 * from the relay's thread only; dsink_accepted/dsink_failed must be called
 * from ops->work (or ops->submit), never from another thread.
 */
#ifndef ORDERSYNCD_DSINK_H
#define ORDERSYNCD_DSINK_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define DSINK_GIVEN_UP (-1)

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

struct dsink;

struct delivery
{
	struct delivery *next;		/* free for the sink's own queues */
	struct dsink *sink;
	const char *id;				/* CloudEvents id "<commit LSN>/<ordinal>" */
	const char *type;			/* event type without "ordersync.": "order.paid" */
	const char *subject;		/* "order/42": a sink keeps order per subject */
	const char *body;			/* the CloudEvent, JSON, no trailing newline */
	size_t		body_len;
	int			attempts;		/* failed attempts so far */
	int64_t		first_failure_ms;	/* monotonic; 0 until an attempt fails */
	void	   *sink_data;		/* free for the sink */

	/* private to the relay */
	uint64_t	txn_seq;		/* which transaction it belongs to */
};

/* Options common to all delivery sinks, from the sink's options object. */
struct dsink_options
{
	int			max_attempts;	/* "max_attempts", default 10 */
	int			max_age_ms;		/* "max_age_seconds", default 3600 */
	int			backoff_min_ms; /* "backoff_min_ms", default 200 */
	int			backoff_max_ms; /* "backoff_max_ms", default 30000 */
	int			timeout_ms;		/* "timeout_ms": one attempt, default 10000 */
	int			connect_timeout_ms; /* "connect_timeout_ms", default 5000 */
	int			max_in_flight;	/* "max_in_flight": webhooks, default 64 */
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

struct dsink_policy
{
	bool		allow_insecure; /* --allow-insecure-sinks: TLS off, clear text with PII */
	const char *secret_env_prefix;	/* --secret-env-prefix: "*_env" must start so */
	const char *secret_dir;		/* --secret-dir: "*_file" under it; NULL: none */
	struct netmask *deny;		/* --deny-networks: never connect there */
	int			ndeny;
};

struct dsink_ops
{
	const char *kind;			/* "webhook", "kafka", "amqp" */

	/*
	 * Check s->uri and s->opt and set up; no slow network I/O here (connect
	 * later, in work, so a sink that is down does not stop the relay). On
	 * failure free what it allocated and return -1 with a message that
	 * says what to fix in err (close is not called then).
	 */
	int			(*open) (struct dsink *s, char *err, size_t errlen);

	/* Take a delivery; the sink owns it until it finishes it. */
	void		(*submit) (struct dsink *s, struct delivery *d);

	/*
	 * Before the relay waits: add descriptors to ps and lower *timeout_ms
	 * (never raise it) to when work must run at the latest.
	 */
	void		(*prepare) (struct dsink *s, struct pollset *ps, int *timeout_ms);

	/* After the wait (and now and then on a busy stream): make progress. */
	void		(*work) (struct dsink *s, const struct pollset *ps);

	/* Free everything; unfinished deliveries are dropped unconfirmed. */
	void		(*close) (struct dsink *s);
};

struct dsink
{
	const struct dsink_ops *ops;
	char	   *name;			/* route target: "warehouse", or the URI for --sink */
	char	   *uri;
	struct dsink_options opt;
	void	   *state;			/* the sink's own */
	bool		trusted;		/* from the command line, not the database */
	const struct dsink_policy *policy;	/* never NULL once opened */
	bool		loopback_only;	/* set by dsink_check: clear text with personal
								 * data, admitted only because it stays on this
								 * machine; the connect hooks hold it to that */

	/* kept by the relay */
	uint64_t	outstanding;	/* deliveries handed over, not finished */
	uint64_t	outstanding_bytes;
	bool		retired;		/* dropped from the configuration: drain, then free */
	bool		failing;		/* warned about failures; info again on success */
	int			metrics_id;
};

/* The sinks there are: the kind that handles uri, or NULL. */
const struct dsink_ops *dsink_ops_for(const char *uri);

extern const struct dsink_ops webhook_ops;
extern const struct dsink_ops kafka_ops;
extern const struct dsink_ops amqp_ops;

/* Defaults, then the keys of raw (kept in opt->raw). 0 or -1 (err filled). */
int			dsink_parse_options(struct dsink_options *opt, json_object *raw,
								char *err, size_t errlen);

/*
 * Check a sink before it is opened: its options against the allowlist of its
 * kind and, unless s->trusted, against s->policy (secret references, TLS,
 * clear text, networks; see dsink_policy.c). Sets s->loopback_only. 0 or -1
 * with err saying what to fix (it names the sink, and never quotes a secret).
 */
int			dsink_check(struct dsink *s, char *err, size_t errlen);

/*
 * The policy when the command line gives none: secret variables named
 * ORDERSYNC_*, no file references, the default deny list.
 */
const struct dsink_policy *dsink_default_policy(void);

/*
 * uri as it may be shown (logs, metric labels, dead letters): without
 * userinfo or fragment, every query value but exchange's replaced by ***,
 * control characters replaced by '?'. Always NUL-terminated.
 */
void		dsink_redact_uri(const char *uri, char *out, size_t outlen);

/* Called by the sinks (see the top of this file). */
void		dsink_accepted(struct delivery *d);
int64_t		dsink_failed(struct delivery *d, bool retryable, const char *why);

/*
 * Allocation for the delivery code: out of memory ends the process (after
 * a log line), which loses nothing: whatever was not confirmed is read
 * again from the slot on restart.
 */
void	   *ds_xmalloc(size_t n);
void	   *ds_xcalloc(size_t n);	/* zeroed */
void	   *ds_xrealloc(void *p, size_t n);
char	   *ds_xstrdup(const char *s);

/* Monotonic clock in ms, the one retry times are given in. */
int64_t		dsink_now_ms(void);

/*
 * Read a secret named by reference in the options: "<key>_env" names an
 * environment variable, "<key>_file" a file (trailing newline removed).
 * Returns a malloc'd string, or NULL with err filled when neither is given
 * or it cannot be read. Secrets are never taken from the options directly.
 * For a sink from the database the reference is checked against the policy
 * again at every read (a file may have been replaced since the sink opened).
 */
char	   *dsink_secret(const struct dsink *s, const char *key, char *err, size_t errlen);

#endif
