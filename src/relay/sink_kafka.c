/*
 * sink_kafka.c — the Kafka sink (see sink.h).
 *
 *   --sink=kafka://broker1:9092,broker2:9092/topic
 *   ordersync.add_sink('events', 'kafka://b1:9092/orders',
 *                      '{"kafka": {"linger.ms": 20}, "timeout_ms": 30000}')
 *
 * Every event becomes one record: key = the CloudEvent's subject, value =
 * the CloudEvent JSON (structured mode: header content-type
 * application/cloudevents+json, plus ce_id and ce_type headers so consumers
 * can route without parsing). librdkafka's idempotent producer with
 * acks=all writes them; an event counts as taken only when its delivery
 * report comes back without error.
 *
 * Order per subject. The key puts all events of a subject into one
 * partition, and the idempotent producer keeps a partition's records in
 * produce order through its own retries, so the delivery core may hand this
 * sink many events of a subject at once (lane depth 0). Order is only at
 * risk when a record comes back to be retried, because a retry lands
 * behind whatever of its subject was produced after it. So:
 *
 *   - Nothing times out inside librdkafka (message.timeout.ms = 0: it
 *     retries for as long as it takes, in order). The sink's timeout_ms is
 *     enforced here instead: when a record has not been acknowledged within
 *     it, rd_kafka_purge(RD_KAFKA_PURGE_F_QUEUE) takes back every record
 *     librdkafka has not put on the wire yet, in all partitions at once.
 *     The overdue ones are reported as failed attempts (the core's backoff
 *     and dead-letter rules apply), the others as returned, and the core
 *     offers them again in each subject's order after the retry. Had
 *     librdkafka timed records out itself, it would time out the oldest of
 *     a partition and send the younger ones on at once, before the retry
 *     could be placed before them. The same purge follows any other failed
 *     delivery that may be retried.
 *
 * Records on the wire during a purge are older than anything taken back
 * (a partition is sent in order), so they stay ahead of it; librdkafka
 * keeps retrying them. A purge leaves a gap in the idempotent sequence
 * numbers, which librdkafka resolves with an epoch bump (the broker answers
 * OUT_OF_ORDER_SEQUENCE_NUMBER, the producer re-sends in order). What
 * remains: a request whose outcome is unknown (connection lost after the
 * broker wrote it) can make an event arrive twice, never out of order by
 * first occurrence. Changing the topic's partition count moves keys to
 * other partitions and is outside any ordering guarantee.
 *
 * librdkafka works in its own threads; it wakes the relay's poll through a
 * pipe (rd_kafka_queue_io_event_enable on the main queue), and delivery
 * reports, errors and its log lines are served by rd_kafka_poll(rk, 0) in
 * poll(), on the relay's thread, where each report becomes the event's
 * outcome for the host. While records are in flight the queue is served
 * at most every KAFKA_SERVE_MS, on a timer, not at every wake-up of the
 * pipe: librdkafka queues a report per produce request and partition, and
 * waking the relay for each cost more CPU (poll, read, the scheduler) than
 * serving them (bench/sinks/kafka.sh). Anything that needs the relay's
 * attention sooner (a full queue, a failed record, a fatal error, a refused
 * address) is served at once. Records are produced without copying: the core
 * keeps an event's body until its outcome is reported. A fatal
 * producer error (possible with idempotence) ends that producer instance:
 * what it held is taken back and a new producer is started.
 *
 * Where it connects. librdkafka connects to the URI's brokers and then to
 * whatever brokers their metadata names. Every connection goes through
 * on_connect (a librdkafka thread), which refuses an address the policy
 * forbids (sink_check_peer) before connecting. A refusal is for good: the
 * producer is ended, what it held is returned, and the sink reports itself
 * refused: every event for it becomes a dead letter that names the address
 * and the rule. A sink from
 * the database never runs kinit (GSSAPI is refused by sink_check, and
 * sasl.kerberos.min.time.before.relogin = 0 turns the kinit timer off even
 * if it were chosen).
 */
#define _GNU_SOURCE				/* pipe2 */
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "log.h"
#include "sink.h"
#include "sink_address.h"
#include "sink_policy.h"
#include "sink_tls.h"

/* Wait at most this long while records are with librdkafka (safety net). */
#define KAFKA_POLL_MS 100
/*
 * Serve delivery reports at most this often while records are in flight
 * (see the top): a few ms more before a confirmation, far fewer wake-ups.
 */
#define KAFKA_SERVE_MS 2
/* Say the same librdkafka error again only after this long. */
#define KAFKA_ERROR_REPEAT_MS 30000

/* ev->sink_flags: with librdkafka, its report pending */
#define KAFKA_SENT 0x1

struct kafka
{
	struct sink *s;
	char	   *topic;
	rd_kafka_conf_t *conf;		/* template: a producer is made from a copy */
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	rd_kafka_queue_t *mainq;
	int			wake[2];		/* librdkafka writes to [1] when it has news */

	struct sink_event_list sent;	/* with librdkafka, oldest first */
	uint64_t	nsent;

	int64_t		served_ms;		/* when the queue was last served */
	/* "ordersync.<type>" of the last event produced: most events share a few types */
	char		type[256];
	size_t		type_prefix;	/* strlen("ordersync.") */
	bool		full;			/* librdkafka's queue is full: wait for reports */
	bool		purge;			/* a record failed and may be retried: take back the rest */
	bool		fatal;			/* the producer is dead: make a new one */
	bool		ignore_reports; /* tearing the producer down */
	int64_t		purged_at;		/* last purge for overdue records */
	int64_t		remake_at;		/* a new producer could not be made: try then */
	rd_kafka_resp_err_t last_err;	/* error_cb: for messages and throttling */
	int64_t		last_err_ms;
	char		last_problem[161];	/* sanitized: it can quote a broker */

	/* on_connect (librdkafka's threads) refused an address: why */
	pthread_mutex_t deny_lock;
	char		denied[512];
	atomic_bool deny_noted;		/* denied is set: checked without the lock */
	bool		refused;		/* the relay's thread has seen it: no producer again */

	/* options, while the producer's configuration is made */
	struct sink_tls tls;		/* files as resolved; handed to librdkafka */
	json_object *properties;	/* option "kafka" */
};

/* the options of this kind (sink.h); their order is the one messages list */
static const struct sink_opt kafka_options[] = {
	{"password", SINK_OPT_SECRET, -1, 0, 0},
	SINK_TLS_OPTIONS(struct kafka, tls),
	{"kafka", SINK_OPT_OBJECT, offsetof(struct kafka, properties), 0, 0},
	{NULL, 0, 0, 0, 0}
};

static const struct sink_address_form kafka_form = {
	.kind = "kafka",
	.example = "kafka://host1:9092,host2:9092/topic",
	.server = "broker",
	.path = "topic",
	.example_more = "",
	.params = "a kafka sink uri is kafka://brokers/topic, librdkafka properties go into the "
	"option {\"kafka\": {\"linger.ms\": 20}}",
};

static void kafka_close(struct sink *s);
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque);
static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque);
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf);
static int	on_connect(int fd, const struct sockaddr *addr, int addrlen, const char *id, void *opaque);

/* ---- records with librdkafka --------------------------------------------- */

static void
sent_add(struct kafka *k, struct sink_event *ev)
{
	ev->sink_flags = KAFKA_SENT;
	ev->sink_ms = sink_now_ms();
	TAILQ_INSERT_TAIL(&k->sent, ev, link);
	k->nsent++;
}

static void
sent_remove(struct kafka *k, struct sink_event *ev)
{
	TAILQ_REMOVE(&k->sent, ev, link);
	ev->sink_flags = 0;
	k->nsent--;
}

/* Give back what a producer that is gone did not report. */
static void
take_back_sent(struct kafka *k)
{
	struct sink_event *ev;

	while ((ev = TAILQ_FIRST(&k->sent)) != NULL)
	{
		sent_remove(k, ev);
		sink_host_returned(k->s->host, ev);
	}
	k->purge = false;
}

/* ---- outcomes ------------------------------------------------------------ */

static bool
retryable(rd_kafka_resp_err_t err)
{
	switch (err)
	{
		case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
		case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
		case RD_KAFKA_RESP_ERR__AUTHENTICATION:
		case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
		case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
		case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
		case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
		case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
		case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
		case RD_KAFKA_RESP_ERR_INVALID_RECORD:
		case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
		case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
		case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
		case RD_KAFKA_RESP_ERR__INVALID_ARG:
			return false;
		default:
			return true;
	}
}

/* What the operator can do about a refusal. */
static const char *
err_hint(rd_kafka_resp_err_t err)
{
	switch (err)
	{
		case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
		case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
			return "; grant the relay's principal WRITE on the topic and IDEMPOTENT_WRITE on the cluster";
		case RD_KAFKA_RESP_ERR__AUTHENTICATION:
		case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
			return "; check the user name, password_env/password_file and the \"kafka\" sasl settings";
		case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
		case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
			return "; create the topic (or allow auto-creation on the brokers)";
		case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
		case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
			return "; raise max.message.bytes of the topic and \"message.max.bytes\" in the \"kafka\" option";
		default:
			return "";
	}
}


static void
report_refused(struct kafka *k, struct sink_event *ev, rd_kafka_resp_err_t err)
{
	char		why[512];

	snprintf(why, sizeof(why), "Kafka did not take the event for topic \"%s\": %s (%s)%s",
			 k->topic, rd_kafka_err2str(err), rd_kafka_err2name(err), err_hint(err));
	log_debug("kafka sink \"%s\": event %s (%s): %s", k->s->name, ev->id, ev->subject, why);
	sink_host_failed(k->s->host, ev, retryable(err), 0, why);
}

static void
report_overdue(struct kafka *k, struct sink_event *ev)
{
	char		why[512];

	snprintf(why, sizeof(why), "Kafka did not acknowledge the event within timeout_ms (%d ms)%s%s%s",
			 k->s->opt.timeout_ms, k->last_problem[0] ? "; last problem: " : "",
			 k->last_problem, k->last_problem[0] ? "" :
			 "; are the brokers up and reachable?");
	log_debug("kafka sink \"%s\": event %s (%s): %s", k->s->name, ev->id, ev->subject, why);
	sink_host_failed(k->s->host, ev, true, 0, why);
}

/* ---- librdkafka callbacks (served by rd_kafka_poll on our thread) ------- */

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	struct kafka *k = opaque;
	struct sink_event *ev = msg->_private;

	(void) rk;
	if (k->ignore_reports || ev == NULL || !(ev->sink_flags & KAFKA_SENT))
		return;
	sent_remove(k, ev);
	if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
		sink_host_accepted(k->s->host, ev);
	else if (msg->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
			 msg->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
	{
		/* taken back by us: an attempt only when it was overdue */
		if (sink_now_ms() - ev->sink_ms >= k->s->opt.timeout_ms)
			report_overdue(k, ev);
		else
			sink_host_returned(k->s->host, ev);
	}
	else
	{
		if (msg->err == RD_KAFKA_RESP_ERR__FATAL)
			k->fatal = true;
		/* what librdkafka still queues behind it must not overtake its retry */
		if (retryable(msg->err))
			k->purge = true;
		report_refused(k, ev, msg->err);
	}
}

static void
on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct kafka *k = opaque;
	int64_t		now = sink_now_ms();

	if (err == RD_KAFKA_RESP_ERR__FATAL)
	{
		char		why[512];

		rd_kafka_fatal_error(rk, why, sizeof(why));
		log_error("kafka sink \"%s\": the producer stopped with a fatal error: %s; starting a new "
				  "producer and sending what it had not delivered again (a consumer may see "
				  "some events twice, never out of order)", k->s->name, why);
		k->fatal = true;
		return;
	}
	sink_excerpt(reason, strlen(reason), k->last_problem, sizeof(k->last_problem));
	/* a broker that is down says so at every reconnect: once is enough */
	if (err == (int) k->last_err && now - k->last_err_ms < KAFKA_ERROR_REPEAT_MS)
	{
		log_debug("kafka sink \"%s\": %s", k->s->name, reason);
		return;
	}
	k->last_err = (rd_kafka_resp_err_t) err;
	k->last_err_ms = now;
	if (err_hint((rd_kafka_resp_err_t) err)[0])
		log_warning("kafka sink \"%s\": %s (%s)%s", k->s->name, reason,
					rd_kafka_err2name((rd_kafka_resp_err_t) err), err_hint((rd_kafka_resp_err_t) err));
	else if (err == RD_KAFKA_RESP_ERR__TRANSPORT && k->nsent == 0)
	{
		/* brokers close idle connections: news only when events wait */
		log_info("kafka sink \"%s\": %s", k->s->name, reason);
		k->last_err = RD_KAFKA_RESP_ERR_NO_ERROR;
	}
	else
	{
		char		shown[512];

		sink_redact_uri(k->s->uri, shown, sizeof(shown));
		log_warning("kafka sink \"%s\": %s (%s); librdkafka keeps reconnecting and retrying; "
					"events not acknowledged within timeout_ms (%d ms) are retried with backoff; "
					"check that the brokers of %s are up and reachable", k->s->name, reason,
					rd_kafka_err2name((rd_kafka_resp_err_t) err), k->s->opt.timeout_ms, shown);
	}
}

static void
on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	struct kafka *k = rd_kafka_opaque(rk);
	const char *name = k ? k->s->name : "?";

	/*
	 * Errors also reach on_error, which says what to do; these are details.
	 * level is syslog's: 4 is LOG_WARNING (syslog.h clashes with log.h).
	 */
	if (level <= 4)
		log_info("kafka sink \"%s\": librdkafka %s: %s", name, fac, buf);
	else
		log_debug("kafka sink \"%s\": librdkafka %s: %s", name, fac, buf);
}

/*
 * Connect a broker's socket (librdkafka's thread; the broker is locked):
 * only to an address the policy allows. A refusal is noted for the relay's
 * thread, which ends the producer and dead-letters the events (serve).
 */
static int
on_connect(int fd, const struct sockaddr *addr, int addrlen, const char *id, void *opaque)
{
	struct kafka *k = opaque;
	char		why[512];

	(void) id;
	if (sink_check_peer(k->s, addr, why, sizeof(why)) != 0)
	{
		pthread_mutex_lock(&k->deny_lock);
		if (k->denied[0] == '\0')
			snprintf(k->denied, sizeof(k->denied), "%s", why);
		pthread_mutex_unlock(&k->deny_lock);
		atomic_store(&k->deny_noted, true);
		(void) !write(k->wake[1], "d", 1);
		return EACCES;
	}
	if (connect(fd, addr, (socklen_t) addrlen) != 0 && errno != EINPROGRESS)
		return errno;
	return 0;
}

/* Why on_connect refused an address (into why), or false. */
static bool
connect_denied(struct kafka *k, char *why, size_t len)
{
	/* the common case, at every serve: no lock */
	if (!atomic_load_explicit(&k->deny_noted, memory_order_acquire))
		return false;
	pthread_mutex_lock(&k->deny_lock);
	snprintf(why, len, "%s", k->denied);
	pthread_mutex_unlock(&k->deny_lock);
	return why[0] != '\0';
}


/* ---- the producer ------------------------------------------------------- */

static int
make_producer(struct kafka *k, char *err, size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_dup(k->conf);
	char		errstr[512];

	k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (k->rk == NULL)
	{
		rd_kafka_conf_destroy(conf);
		snprintf(err, errlen, "kafka sink \"%s\": librdkafka refused the configuration: %s; "
				 "fix the \"kafka\" option of the sink", k->s->name, errstr);
		return -1;
	}
	k->rkt = rd_kafka_topic_new(k->rk, k->topic, NULL);
	if (k->rkt == NULL)
	{
		snprintf(err, errlen, "kafka sink \"%s\": cannot use topic \"%s\": %s", k->s->name,
				 k->topic, rd_kafka_err2str(rd_kafka_last_error()));
		rd_kafka_destroy(k->rk);
		k->rk = NULL;
		return -1;
	}
	/* logs go to the main queue too, so they are written from our thread */
	rd_kafka_set_log_queue(k->rk, NULL);
	k->mainq = rd_kafka_queue_get_main(k->rk);
	rd_kafka_queue_io_event_enable(k->mainq, k->wake[1], "1", 1);
	k->fatal = false;
	return 0;
}

/* End the producer; the caller takes back what it did not report. */
static void
destroy_producer(struct kafka *k, int flush_ms)
{
	if (k->rk == NULL)
		return;
	rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	if (flush_ms > 0)
		rd_kafka_flush(k->rk, flush_ms);
	else
		rd_kafka_poll(k->rk, 0);
	k->ignore_reports = true;
	rd_kafka_queue_io_event_enable(k->mainq, -1, NULL, 0);
	rd_kafka_queue_destroy(k->mainq);
	rd_kafka_topic_destroy(k->rkt);
	rd_kafka_destroy(k->rk);
	k->ignore_reports = false;
	k->rk = NULL;
	k->rkt = NULL;
	k->mainq = NULL;
}


/* ---- serving librdkafka --------------------------------------------------- */

/* Serve librdkafka's queue and act on what it reported. */
static void
serve(struct kafka *k)
{
	int64_t		now = sink_now_ms();
	char		why[512];

	if (k->refused)
		return;
	if (connect_denied(k, why, sizeof(why)))
	{
		k->refused = true;
		if (k->rk)
		{
			log_error("%s; the sink delivers nothing from now on: its events go to "
					  "ordersync.dead_letter", why);
			destroy_producer(k, 0);
		}
		take_back_sent(k);
		sink_host_refused(k->s->host, why);
		return;
	}
	if (k->rk)
	{
		rd_kafka_poll(k->rk, 0);

		/*
		 * Take back what librdkafka still queues when a record waits for a
		 * retry, or when a record is overdue (at most once per timeout_ms:
		 * records on the wire cannot be taken back and stay overdue). The
		 * purge blocks until the records are out of librdkafka's queues and
		 * their reports queued, so the next poll has them all before
		 * anything is produced again.
		 */
		if (!k->fatal && (k->purge ||
						  (!TAILQ_EMPTY(&k->sent) &&
						   now - TAILQ_FIRST(&k->sent)->sink_ms >= k->s->opt.timeout_ms &&
						   now - k->purged_at >= k->s->opt.timeout_ms)))
		{
			log_debug("kafka sink \"%s\": taking back the records librdkafka has not sent "
					  "(%llu unacknowledged)", k->s->name, (unsigned long long) k->nsent);
			if (!k->purge)
				k->purged_at = now;
			k->purge = false;
			rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE);
			rd_kafka_poll(k->rk, 0);
			k->purge = false;	/* what failed now was in the purge already */
		}
	}
	if (k->fatal && k->rk)
		destroy_producer(k, 0);
	if (k->rk == NULL)
	{
		/* what the old producer did not report comes back */
		take_back_sent(k);
		if (now >= k->remake_at)
		{
			char		err[1024];

			if (make_producer(k, err, sizeof(err)) != 0)
			{
				log_error("%s; trying again in 5 s", err);
				k->remake_at = now + 5000;
			}
		}
	}
	k->full = false;
}

/* ---- the sink ----------------------------------------------------------- */

static int
kafka_submit(struct sink *s, struct sink_event *ev)
{
	struct kafka *k = s->state;
	rd_kafka_resp_err_t err;

	/* something to resolve first, in poll */
	if (k->rk == NULL || k->full || k->purge || k->fatal || k->refused)
		return SINK_BUSY;
	/* the ce_type header: made again only when the type changes */
	if (strcmp(k->type + k->type_prefix, ev->type) != 0)
		snprintf(k->type + k->type_prefix, sizeof(k->type) - k->type_prefix, "%s", ev->type);
	sent_add(k, ev);
	err = rd_kafka_producev(k->rk,
							RD_KAFKA_V_RKT(k->rkt),
							RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
							RD_KAFKA_V_MSGFLAGS(0),
							RD_KAFKA_V_KEY(ev->subject, strlen(ev->subject)),
							RD_KAFKA_V_VALUE((void *) ev->body, ev->body_len),
							RD_KAFKA_V_HEADER("content-type",
											  "application/cloudevents+json; charset=UTF-8", -1),
							RD_KAFKA_V_HEADER("ce_id", ev->id, -1),
							RD_KAFKA_V_HEADER("ce_type", k->type, -1),
							RD_KAFKA_V_OPAQUE(ev),
							RD_KAFKA_V_END);
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		if (ev->attempts > 0)
			log_debug("kafka sink \"%s\": produced event %s (%s) again", s->name, ev->id,
					  ev->subject);
		return SINK_TAKEN;
	}
	sent_remove(k, ev);
	if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
	{
		k->full = true;
		return SINK_BUSY;
	}
	if (err == RD_KAFKA_RESP_ERR__FATAL)
	{
		k->fatal = true;
		return SINK_BUSY;
	}
	report_refused(k, ev, err);
	return SINK_TAKEN;
}

/* Must the queue be served at the next poll, whenever it was served last? */
static bool
urgent(struct kafka *k)
{
	return k->rk == NULL || k->full || k->purge || k->fatal ||
		atomic_load_explicit(&k->deny_noted, memory_order_relaxed);
}

static void
kafka_prepare(struct sink *s, struct pollset *ps, int *timeout_ms)
{
	struct kafka *k = s->state;
	int64_t		now = sink_now_ms();

	if (k->refused)
		return;
	if (k->rk && (k->fatal || k->purge || atomic_load_explicit(&k->deny_noted, memory_order_relaxed)))
		sink_lower_timeout(timeout_ms, 0);
	if (k->rk == NULL)
		sink_lower_timeout(timeout_ms, k->remake_at - now);
	/*
	 * Records in flight and served a moment ago: come back when the next
	 * serve is due, reports that arrive meanwhile wait for it (the pipe is
	 * left out, or an unread pipe would end every wait at once).
	 */
	if (k->nsent > 0 && !urgent(k) && now - k->served_ms < KAFKA_SERVE_MS)
	{
		sink_lower_timeout(timeout_ms, k->served_ms + KAFKA_SERVE_MS - now);
		return;
	}
	pollset_add(ps, k->wake[0], POLLIN);
	/* reports wake us through the pipe; this also runs the overdue check */
	if (k->nsent > 0)
		sink_lower_timeout(timeout_ms, KAFKA_POLL_MS);
}

static void
kafka_poll(struct sink *s, const struct pollset *ps)
{
	struct kafka *k = s->state;
	char		buf[256];
	int64_t		now = sink_now_ms();

	(void) ps;
	if (k->nsent > 0 && !urgent(k) && now - k->served_ms < KAFKA_SERVE_MS)
		return;					/* reports are served in batches (see the top) */
	k->served_ms = now;
	/* the pipe only says "look": empty it, then serve the queue */
	while (read(k->wake[0], buf, sizeof(buf)) > 0)
		;
	serve(k);
}

/* ---- opening: uri and options ------------------------------------------ */

/* A librdkafka property, or -1 with a message naming the sink option. */
static int
conf_set(struct kafka *k, const char *key, const char *val, const char *from,
		 char *err, size_t errlen)
{
	char		errstr[512];

	if (rd_kafka_conf_set(k->conf, key, val, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
	{
		snprintf(err, errlen, "kafka sink \"%s\": %s \"%s\" = \"%s\": %s; see librdkafka's "
				 "CONFIGURATION.md for the properties and their values", k->s->name, from,
				 key, val, errstr);
		return -1;
	}
	return 0;
}

/* Properties the sink sets itself or that would weaken its guarantees. */
static int
check_property(struct kafka *k, const char *key, const char *val, char *err, size_t errlen)
{
	static const char *const owned[] = {
		"bootstrap.servers", "metadata.broker.list", "log.queue", "transactional.id",
		"enable.gapless.guarantee", NULL
	};
	regex_t		secret;
	bool		is_secret;

	/* the same rule as ordersync.add_sink(), for --sink-options too */
	if (regcomp(&secret, "(password|secret|\\.key$|key\\.pem|keystore)",
				REG_EXTENDED | REG_NOSUB | REG_ICASE) != 0)
		abort();
	is_secret = regexec(&secret, key, 0, NULL, 0) == 0;
	regfree(&secret);
	if (is_secret)
	{
		snprintf(err, errlen, "kafka sink \"%s\": the \"kafka\" option must not hold secrets "
				 "(\"%s\"): give the SASL password with \"password_env\" (an environment "
				 "variable of ordersyncd) or \"password_file\", and keys and keystores as "
				 "files (\"ssl.key.location\", \"ssl.certificate.location\")", k->s->name, key);
		return -1;
	}
	for (int i = 0; owned[i]; i++)
		if (strcmp(key, owned[i]) == 0)
		{
			snprintf(err, errlen, "kafka sink \"%s\": \"kafka\" property \"%s\" is set by "
					 "ordersyncd; give the brokers in the uri (kafka://host1:9092,host2:9092/topic) "
					 "and leave \"%s\" out", k->s->name, key, key);
			return -1;
		}
	if (strcmp(key, "message.timeout.ms") == 0 || strcmp(key, "delivery.timeout.ms") == 0)
	{
		snprintf(err, errlen, "kafka sink \"%s\": set the sink option \"timeout_ms\" instead of "
				 "\"kafka\" property \"%s\": librdkafka must not time records out by itself, "
				 "or a retry could land behind later events of the same order", k->s->name, key);
		return -1;
	}
	if (strcmp(key, "enable.idempotence") == 0 && strcasecmp(val, "true") != 0)
	{
		snprintf(err, errlen, "kafka sink \"%s\": \"enable.idempotence\" must stay true: "
				 "without it retries can reorder or duplicate an order's events", k->s->name);
		return -1;
	}
	if ((strcmp(key, "acks") == 0 || strcmp(key, "request.required.acks") == 0) &&
		strcasecmp(val, "all") != 0 && strcmp(val, "-1") != 0)
	{
		snprintf(err, errlen, "kafka sink \"%s\": \"%s\" must stay \"all\": an event counts as "
				 "delivered only when every in-sync replica has it", k->s->name, key);
		return -1;
	}
	return 0;
}

/* Split kafka://[user@]brokers/topic; *user may come back NULL. */
static int
parse_uri(struct kafka *k, char **brokers, char **user, char *err, size_t errlen)
{
	struct sink *s = k->s;
	struct sink_address a;
	const char *topic;
	size_t		tlen;

	*brokers = *user = NULL;
	if (sink_address_split(s, &kafka_form, &a, err, errlen) != 0)
		return -1;
	topic = a.path;
	tlen = strlen(topic);
	if (tlen > 249 || strspn(topic, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
							 "0123456789._-") != tlen ||
		strcmp(topic, ".") == 0 || strcmp(topic, "..") == 0)
	{
		snprintf(err, errlen, "kafka sink \"%s\": \"%s\" is not a valid topic name: use up to "
				 "249 letters, digits, \".\", \"_\" and \"-\"", s->name, topic);
		sink_address_free(&a);
		return -1;
	}
	for (const char *b = a.servers;; b++)
		if ((*b == ',' || *b == '\0') && (b == a.servers || b[-1] == ','))
		{
			snprintf(err, errlen, "kafka sink \"%s\": empty broker in \"%s\"; separate "
					 "brokers with single commas", s->name, a.servers);
			sink_address_free(&a);
			return -1;
		}
		else if (*b == '\0')
			break;
	k->topic = a.path;
	*brokers = a.servers;
	*user = a.user;
	return 0;
}

/* The SASL password, only by reference (password_env / password_file). */
static int
set_password(struct kafka *k, char *err, size_t errlen)
{
	struct sink *s = k->s;
	char		proto[64] = "plaintext";
	size_t		plen = sizeof(proto);
	char	   *pw;
	int			bad;

	if (!sink_secret_given(s, "password"))
		return 0;
	pw = sink_secret(s, "password", err, errlen);
	if (pw == NULL)
		return -1;
	if (rd_kafka_conf_get(k->conf, "security.protocol", proto, &plen) != RD_KAFKA_CONF_OK ||
		strncasecmp(proto, "sasl_", 5) != 0)
	{
		snprintf(err, errlen, "kafka sink \"%s\": a password is given but security.protocol "
				 "is \"%s\", which sends none; set for instance {\"kafka\": "
				 "{\"security.protocol\": \"sasl_ssl\", \"sasl.mechanisms\": \"SCRAM-SHA-512\", "
				 "\"sasl.username\": \"relay\"}}", s->name, proto);
		sink_secret_free(pw);
		return -1;
	}
	bad = rd_kafka_conf_set(k->conf, "sasl.password", pw, err, errlen) != RD_KAFKA_CONF_OK;
	sink_secret_free(pw);
	if (bad)
	{
		/* librdkafka's text could quote it: say less */
		snprintf(err, errlen, "kafka sink \"%s\": librdkafka refused the password setting", s->name);
		return -1;
	}
	return 0;
}

/* ca_file, cert_file, key_file: as resolved (inside --secret-dir for the database). */
static int
set_files(struct kafka *k, char *err, size_t errlen)
{
	const struct
	{
		const char *option;
		const char *property;
		const char *path;
	}			map[] = {
		{"ca_file", "ssl.ca.location", k->tls.ca_file},
		{"cert_file", "ssl.certificate.location", k->tls.cert_file},
		{"key_file", "ssl.key.location", k->tls.key_file},
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
	{
		char		from[32];

		snprintf(from, sizeof(from), "option \"%s\"", map[i].option);
		if (map[i].path && conf_set(k, map[i].property, map[i].path, from, err, errlen) != 0)
			return -1;
	}
	return 0;
}

static int
configure(struct kafka *k, char *err, size_t errlen)
{
	struct sink *s = k->s;
	char	   *brokers,
			   *user;
	char		num[32];
	int			rc = -1;

	if (parse_uri(k, &brokers, &user, err, errlen) != 0)
		return -1;
	k->conf = rd_kafka_conf_new();
	snprintf(num, sizeof(num), "%d", s->opt.connect_timeout_ms);
	if (conf_set(k, "bootstrap.servers", brokers, "uri", err, errlen) ||
		conf_set(k, "client.id", "ordersyncd", "default", err, errlen) ||
		conf_set(k, "enable.idempotence", "true", "default", err, errlen) ||
		conf_set(k, "acks", "all", "default", err, errlen) ||
		/* retried in order by librdkafka until we take the records back */
		conf_set(k, "message.timeout.ms", "0", "default", err, errlen) ||
		/* the Java client's key hashing: other producers of the topic agree */
		conf_set(k, "partitioner", "murmur2_random", "default", err, errlen) ||
		conf_set(k, "log.queue", "true", "default", err, errlen) ||
		conf_set(k, "socket.connection.setup.timeout.ms", num, "option \"connect_timeout_ms\"",
				 err, errlen) ||
		(user && conf_set(k, "sasl.username", user, "uri user", err, errlen)))
		goto out;
	/*
	 * No kinit timer, ever, for a sink from the database: librdkafka would
	 * run sasl.kerberos.kinit.cmd through the shell. (sink_check refuses
	 * GSSAPI and every property that could change this.)
	 */
	if (!s->trusted &&
		conf_set(k, "sasl.kerberos.min.time.before.relogin", "0", "default", err, errlen))
		goto out;

	sink_tls_init(&k->tls, false);
	if (sink_opts_load(s, "kafka", kafka_options, k, err, errlen) != 0)
		goto out;
	if (k->properties)
	{
		json_object_object_foreach(k->properties, key, val)
		{
			const char *txt;

			if (json_object_is_type(val, json_type_object) ||
				json_object_is_type(val, json_type_array) ||
				json_object_is_type(val, json_type_null))
			{
				snprintf(err, errlen, "kafka sink \"%s\": \"kafka\" property \"%s\" must be a "
						 "string, number or boolean", s->name, key);
				goto out;
			}
			txt = json_object_get_string(val);
			if (check_property(k, key, txt, err, errlen) ||
				conf_set(k, key, txt, "\"kafka\" property", err, errlen))
				goto out;
		}
	}
	if (set_files(k, err, errlen) != 0 || set_password(k, err, errlen) != 0)
		goto out;
	rd_kafka_conf_set_connect_cb(k->conf, on_connect);
	rd_kafka_conf_set_dr_msg_cb(k->conf, on_delivery);
	rd_kafka_conf_set_error_cb(k->conf, on_error);
	rd_kafka_conf_set_log_cb(k->conf, on_log);
	rd_kafka_conf_set_opaque(k->conf, k);
	rc = 0;
out:
	free(brokers);
	free(user);
	return rc;
}


static int
kafka_open(struct sink *s, struct sink_host *host, char *err, size_t errlen)
{
	struct kafka *k = xcalloc(sizeof(*k));

	k->s = s;
	TAILQ_INIT(&k->sent);
	s->host = host;
	k->wake[0] = k->wake[1] = -1;
	k->type_prefix = strlen("ordersync.");
	memcpy(k->type, "ordersync.", k->type_prefix + 1);
	atomic_init(&k->deny_noted, false);
	pthread_mutex_init(&k->deny_lock, NULL);
	s->state = k;
	if (configure(k, err, errlen) != 0)
		goto fail;
	if (pipe2(k->wake, O_NONBLOCK | O_CLOEXEC) != 0)
	{
		snprintf(err, errlen, "kafka sink \"%s\": cannot create a pipe: %s", s->name,
				 strerror(errno));
		goto fail;
	}
	/* starts librdkafka's threads; connecting happens in them, later */
	if (make_producer(k, err, errlen) != 0)
		goto fail;
	return 0;
fail:
	kafka_close(s);
	return -1;
}


static void
kafka_close(struct sink *s)
{
	struct kafka *k = s->state;

	if (k == NULL)
		return;
	/* nothing more is confirmed: drop what librdkafka holds, quickly */
	k->ignore_reports = true;
	destroy_producer(k, 100);
	if (k->conf)
		rd_kafka_conf_destroy(k->conf);
	if (k->wake[0] >= 0)
		close(k->wake[0]);
	if (k->wake[1] >= 0)
		close(k->wake[1]);
	free(k->topic);
	sink_opts_free(kafka_options, k);
	pthread_mutex_destroy(&k->deny_lock);
	free(k);
	s->state = NULL;
}

static bool
kafka_claims(const char *uri)
{
	return strncasecmp(uri, "kafka://", 8) == 0;
}

/* librdkafka's default security.protocol is plaintext */
static bool
kafka_clear_text(const struct sink *s)
{
	json_object *kopt,
			   *v;
	const char *proto = NULL;

	if (s->opt.raw && json_object_object_get_ex(s->opt.raw, "kafka", &kopt) &&
		json_object_is_type(kopt, json_type_object) &&
		json_object_object_get_ex(kopt, "security.protocol", &v))
		proto = json_object_get_string(v);
	return proto == NULL || strcasecmp(proto, "plaintext") == 0 ||
		strcasecmp(proto, "sasl_plaintext") == 0;
}

const struct sink_ops sink_kafka_ops = {
	.kind = "kafka",
	.lane_depth = 0,			/* a partition keeps order: pipeline */
	.window = 0,				/* librdkafka's queue bounds it (SINK_BUSY when full) */
	.options = kafka_options,
	.claims = kafka_claims,
	.clear_text = kafka_clear_text,
	.open = kafka_open,
	.submit = kafka_submit,
	.prepare = kafka_prepare,
	.poll = kafka_poll,
	.close = kafka_close,
};
