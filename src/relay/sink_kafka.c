/*
 * sink_kafka.c — the Kafka delivery sink (see dsink.h).
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
 * produce order through its own retries. Order is only at risk when a
 * record comes back to us to be retried, because a retry lands behind
 * whatever of its subject was produced after it. Two things prevent that:
 *
 *   - Hold-back: each subject (a uthash table) keeps its unfinished
 *     deliveries in submit order, and a delivery is produced only when
 *     nothing before it in its subject waits for a retry.
 *   - Nothing times out inside librdkafka (message.timeout.ms = 0: it
 *     retries for as long as it takes, in order). The sink's timeout_ms is
 *     enforced here instead: when a record has not been acknowledged within
 *     it, rd_kafka_purge(RD_KAFKA_PURGE_F_QUEUE) takes back every record
 *     librdkafka has not put on the wire yet, in all partitions at once.
 *     The overdue ones count as a failed attempt (the relay's backoff and
 *     dead-letter rules apply), the others are simply produced again, and
 *     hold-back keeps each subject in order. Had librdkafka timed records
 *     out itself, it would time out the oldest of a partition and send the
 *     younger ones on at once, before the retry could be placed before them.
 *     The same purge follows any other failed delivery that is to be
 *     retried.
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
 * work(), on the relay's thread. Reports are collected first and only then
 * handed to the relay (dsink_accepted/dsink_failed), so the relay is never
 * called from inside librdkafka. Records are produced without copying: a
 * delivery's body lives until its report has been handled. A fatal
 * producer error (possible with idempotence) ends that producer instance:
 * what it held is taken back and a new producer is started.
 *
 * Where it connects. librdkafka connects to the URI's brokers and then to
 * whatever brokers their metadata names. Every connection goes through
 * on_connect (a librdkafka thread), which refuses an address the policy
 * forbids (dsink_check_peer) before connecting. A refusal is for good: the
 * producer is ended and every event the sink holds, and every later one,
 * becomes a dead letter that names the address and the rule. A sink from
 * the database never runs kinit (GSSAPI is refused by dsink_check, and
 * sasl.kerberos.min.time.before.relogin = 0 turns the kinit timer off even
 * if it were chosen).
 */
#define _GNU_SOURCE				/* pipe2 */
#include <errno.h>
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
#include <uthash.h>

#include "dsink.h"
#include "dsink_policy.h"
#include "log.h"

/* Most records produced per work() call, so the stream is read meanwhile. */
#define KAFKA_PRODUCE_BUDGET 20000
/* Wait at most this long while records are with librdkafka (safety net). */
#define KAFKA_POLL_MS 100
/* Say the same librdkafka error again only after this long. */
#define KAFKA_ERROR_REPEAT_MS 30000

enum kmsg_state
{
	KM_QUEUED,					/* ours: to be produced */
	KM_SENT,					/* with librdkafka, delivery report pending */
	KM_WAIT						/* failed, produce again at retry_at */
};

struct ksubj;

/* One delivery as this sink tracks it (d->sink_data). */
struct kmsg
{
	struct delivery *d;
	struct ksubj *subj;
	struct kmsg *prev;			/* the subject's deliveries, in submit order */
	struct kmsg *next;
	struct kmsg *sent_prev;		/* KM_SENT ones, in produce order */
	struct kmsg *sent_next;
	struct kmsg *done_next;		/* delivery reports not handled yet */
	uint64_t	seq;			/* submit order within the sink */
	int64_t		sent_at;		/* when produced (KM_SENT) */
	int64_t		retry_at;		/* KM_WAIT */
	rd_kafka_resp_err_t err;	/* of the delivery report */
	enum kmsg_state state;
	bool		reported;		/* in the done list */
	bool		retried;		/* has failed before: log when producing again */
};

/* The unfinished deliveries of one subject. */
struct ksubj
{
	UT_hash_handle hh;
	struct kmsg *head;
	struct kmsg *tail;
	struct kmsg *cur;			/* first one not KM_SENT, or NULL */
	struct ksubj *ready_next;
	struct ksubj *wait_next;
	bool		ready;			/* in the ready list */
	bool		waiting;		/* in the wait list */
	bool		busy;			/* being pumped: not to be freed */
	char		key[];
};

struct kafka
{
	struct dsink *s;
	char	   *topic;
	rd_kafka_conf_t *conf;		/* template: a producer is made from a copy */
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	rd_kafka_queue_t *mainq;
	int			wake[2];		/* librdkafka writes to [1] when it has news */

	struct ksubj *subjects;		/* uthash by key */
	struct ksubj *ready_head;	/* subjects with something to produce now */
	struct ksubj *ready_tail;
	struct ksubj *wait_head;	/* subjects blocked until a retry time */
	struct kmsg *sent_head;		/* with librdkafka, oldest first */
	struct kmsg *sent_tail;
	struct kmsg *done_head;		/* delivery reports, in arrival order */
	struct kmsg *done_tail;
	uint64_t	next_seq;
	uint64_t	nsent;

	bool		full;			/* librdkafka's queue is full: wait for reports */
	bool		purge;			/* a delivery waits for a retry: take back the rest */
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
	bool		refused;		/* the relay's thread has seen it: no producer again */
};

static void kafka_close(struct dsink *s);

/* ---- subjects and their queues ----------------------------------------- */

static void
ready_push(struct kafka *k, struct ksubj *sj, bool front)
{
	if (sj->ready)
		return;
	sj->ready = true;
	sj->ready_next = NULL;
	if (k->ready_head == NULL)
		k->ready_head = k->ready_tail = sj;
	else if (front)
	{
		sj->ready_next = k->ready_head;
		k->ready_head = sj;
	}
	else
	{
		k->ready_tail->ready_next = sj;
		k->ready_tail = sj;
	}
}

static struct ksubj *
ready_pop(struct kafka *k)
{
	struct ksubj *sj = k->ready_head;

	if (sj)
	{
		k->ready_head = sj->ready_next;
		if (k->ready_head == NULL)
			k->ready_tail = NULL;
		sj->ready = false;
		sj->ready_next = NULL;
	}
	return sj;
}

static void
wait_push(struct kafka *k, struct ksubj *sj)
{
	if (sj->waiting)
		return;
	sj->waiting = true;
	sj->wait_next = k->wait_head;
	k->wait_head = sj;
}

/* Free a subject nobody refers to any more. */
static void
subj_release(struct kafka *k, struct ksubj *sj)
{
	if (sj->head == NULL && !sj->ready && !sj->waiting && !sj->busy)
	{
		HASH_DEL(k->subjects, sj);
		free(sj);
	}
}

/* First delivery at or after m that is not with librdkafka. */
static struct kmsg *
first_unsent(struct kmsg *m)
{
	while (m && m->state == KM_SENT)
		m = m->next;
	return m;
}

/*
 * m is no longer with librdkafka (queued again or waiting for a retry):
 * production of its subject resumes at m at the latest.
 */
static void
subj_rewind(struct kafka *k, struct kmsg *m)
{
	struct ksubj *sj = m->subj;

	if (sj->cur == NULL || m->seq < sj->cur->seq)
		sj->cur = m;
	if (sj->cur->state == KM_WAIT)
		wait_push(k, sj);
	else
		ready_push(k, sj, false);
}

static void
sent_add(struct kafka *k, struct kmsg *m)
{
	m->state = KM_SENT;
	m->sent_at = dsink_now_ms();
	m->sent_next = NULL;
	m->sent_prev = k->sent_tail;
	if (k->sent_tail)
		k->sent_tail->sent_next = m;
	else
		k->sent_head = m;
	k->sent_tail = m;
	k->nsent++;
}

/* m is no longer with librdkafka; the caller sets its new state. */
static void
sent_remove(struct kafka *k, struct kmsg *m)
{
	if (m->sent_prev)
		m->sent_prev->sent_next = m->sent_next;
	else
		k->sent_head = m->sent_next;
	if (m->sent_next)
		m->sent_next->sent_prev = m->sent_prev;
	else
		k->sent_tail = m->sent_prev;
	m->sent_prev = m->sent_next = NULL;
	m->state = KM_QUEUED;
	k->nsent--;
}

/* Take m out of its subject; the delivery is finished (m->d is gone). */
static void
kmsg_unlink(struct kafka *k, struct kmsg *m)
{
	struct ksubj *sj = m->subj;

	if (m->prev)
		m->prev->next = m->next;
	else
		sj->head = m->next;
	if (m->next)
		m->next->prev = m->prev;
	else
		sj->tail = m->prev;
	if (sj->cur == m)
	{
		sj->cur = first_unsent(m->next);
		if (sj->cur)
			subj_rewind(k, sj->cur);
	}
	free(m);
	subj_release(k, sj);
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

/*
 * A delivery failed (why): the relay decides about a retry. Returns false
 * when the delivery is finished (dead letter) and m is gone.
 */
static bool
kmsg_failed(struct kafka *k, struct kmsg *m, bool can_retry, const char *why)
{
	int64_t		at;

	log_debug("kafka sink \"%s\": event %s (%s): %s", k->s->name, m->d->id, m->d->subject, why);
	m->retried = true;
	at = dsink_failed(m->d, can_retry, why);
	if (at == DSINK_GIVEN_UP)
	{
		m->d = NULL;			/* freed by the relay */
		kmsg_unlink(k, m);
		return false;
	}
	m->state = KM_WAIT;
	m->retry_at = at;
	subj_rewind(k, m);
	return true;
}

static bool
kmsg_refused(struct kafka *k, struct kmsg *m, rd_kafka_resp_err_t err)
{
	char		why[512];

	snprintf(why, sizeof(why), "Kafka did not take the event for topic \"%s\": %s (%s)%s",
			 k->topic, rd_kafka_err2str(err), rd_kafka_err2name(err), err_hint(err));
	return kmsg_failed(k, m, retryable(err), why);
}

static bool
kmsg_overdue(struct kafka *k, struct kmsg *m)
{
	char		why[512];

	snprintf(why, sizeof(why), "Kafka did not acknowledge the event within timeout_ms (%d ms)%s%s%s",
			 k->s->opt.timeout_ms, k->last_problem[0] ? "; last problem: " : "",
			 k->last_problem, k->last_problem[0] ? "" :
			 "; are the brokers up and reachable?");
	return kmsg_failed(k, m, true, why);
}

/* ---- producing ---------------------------------------------------------- */

/*
 * Hand one delivery to librdkafka. Returns 0 (produced, or finished by a
 * refusal), 1 when production must stop for now (queue full, producer
 * dead), -1 when m must wait.
 */
static int
produce(struct kafka *k, struct kmsg *m)
{
	struct delivery *d = m->d;
	char		type[256];
	rd_kafka_resp_err_t err;

	if (m->retried)
		log_debug("kafka sink \"%s\": producing event %s (%s) again", k->s->name, d->id,
				  d->subject);
	snprintf(type, sizeof(type), "ordersync.%s", d->type);
	sent_add(k, m);
	err = rd_kafka_producev(k->rk,
							RD_KAFKA_V_RKT(k->rkt),
							RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
							RD_KAFKA_V_MSGFLAGS(0),
							RD_KAFKA_V_KEY(d->subject, strlen(d->subject)),
							RD_KAFKA_V_VALUE((void *) d->body, d->body_len),
							RD_KAFKA_V_HEADER("content-type",
											  "application/cloudevents+json; charset=UTF-8", -1),
							RD_KAFKA_V_HEADER("ce_id", d->id, -1),
							RD_KAFKA_V_HEADER("ce_type", type, -1),
							RD_KAFKA_V_OPAQUE(m),
							RD_KAFKA_V_END);
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
		return 0;
	sent_remove(k, m);
	if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
	{
		k->full = true;
		return 1;
	}
	if (err == RD_KAFKA_RESP_ERR__FATAL)
	{
		k->fatal = true;
		return 1;
	}
	return kmsg_refused(k, m, err) ? -1 : 0;
}

/*
 * Produce what a subject may send now, in order. Returns false when it
 * had to stop (the subject stays ready).
 */
static bool
pump_subject(struct kafka *k, struct ksubj *sj, int *budget, int64_t now)
{
	while (sj->cur)
	{
		struct kmsg *m = sj->cur;
		int			rc;

		if (m->state == KM_WAIT && m->retry_at > now)
		{
			wait_push(k, sj);
			return true;
		}
		if (*budget <= 0)
			return false;
		(*budget)--;
		rc = produce(k, m);
		if (rc > 0)
			return false;
		if (rc < 0)
			continue;			/* m waits now and is still sj->cur */
		/* produced, or finished (kmsg_unlink then moved cur on) */
		if (sj->cur == m)
			sj->cur = first_unsent(m->next);
	}
	return true;
}

static void
pump(struct kafka *k)
{
	int			budget = KAFKA_PRODUCE_BUDGET;
	int64_t		now = dsink_now_ms();
	struct ksubj *sj;

	if (k->rk == NULL || k->fatal || k->purge)
		return;
	k->full = false;
	while ((sj = ready_pop(k)) != NULL)
	{
		bool		done;

		sj->busy = true;
		done = pump_subject(k, sj, &budget, now);
		sj->busy = false;
		if (!done)
		{
			ready_push(k, sj, true);
			break;
		}
		subj_release(k, sj);
	}
}

/* Subjects whose retry time has come become ready. */
static void
wake_waiting(struct kafka *k)
{
	int64_t		now = dsink_now_ms();
	struct ksubj **p = &k->wait_head;

	while (*p)
	{
		struct ksubj *sj = *p;

		if (sj->cur == NULL || sj->cur->state != KM_WAIT || sj->cur->retry_at <= now)
		{
			*p = sj->wait_next;
			sj->waiting = false;
			sj->wait_next = NULL;
			if (sj->cur)
				ready_push(k, sj, false);
			else
				subj_release(k, sj);
		}
		else
			p = &sj->wait_next;
	}
}

/* ---- librdkafka callbacks (served by rd_kafka_poll on our thread) ------- */

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	struct kafka *k = opaque;
	struct kmsg *m = msg->_private;

	(void) rk;
	if (k->ignore_reports || m == NULL || m->reported)
		return;
	m->err = msg->err;
	m->reported = true;
	m->done_next = NULL;
	if (k->done_tail)
		k->done_tail->done_next = m;
	else
		k->done_head = m;
	k->done_tail = m;
}

static void
on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct kafka *k = opaque;
	int64_t		now = dsink_now_ms();

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
	dsink_excerpt(reason, strlen(reason), k->last_problem, sizeof(k->last_problem));
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

		dsink_redact_uri(k->s->uri, shown, sizeof(shown));
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
	if (dsink_check_peer(k->s, addr, why, sizeof(why)) != 0)
	{
		pthread_mutex_lock(&k->deny_lock);
		if (k->denied[0] == '\0')
			snprintf(k->denied, sizeof(k->denied), "%s", why);
		pthread_mutex_unlock(&k->deny_lock);
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

/* ---- handling delivery reports ----------------------------------------- */

static void
handle_reports(struct kafka *k)
{
	int64_t		now = dsink_now_ms();
	struct kmsg *m;

	while ((m = k->done_head) != NULL)
	{
		rd_kafka_resp_err_t err = m->err;

		k->done_head = m->done_next;
		if (k->done_head == NULL)
			k->done_tail = NULL;
		m->done_next = NULL;
		m->reported = false;
		if (m->state != KM_SENT)
			continue;			/* cannot happen: one report per produce */
		sent_remove(k, m);
		if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			struct delivery *d = m->d;

			kmsg_unlink(k, m);
			dsink_accepted(d);
		}
		else if (err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
				 err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
		{
			/* taken back by us: an attempt only when it was overdue */
			if (now - m->sent_at >= k->s->opt.timeout_ms)
				kmsg_overdue(k, m);
			else
				subj_rewind(k, m);
		}
		else
		{
			if (err == RD_KAFKA_RESP_ERR__FATAL)
				k->fatal = true;
			if (kmsg_refused(k, m, err))
				k->purge = true;
		}
	}
}

/*
 * The policy refused a broker's address: nothing of this sink can be
 * delivered. Every delivery that is not waiting for a later retry (of its
 * dead letter) fails for good with the reason.
 */
static void
fail_denied(struct kafka *k, const char *why)
{
	int64_t		now = dsink_now_ms();
	struct ksubj *sj,
			   *tmp;

	/* nothing is produced any more: the ready list is only a to-do list here */
	while ((sj = ready_pop(k)) != NULL)
		subj_release(k, sj);
	HASH_ITER(hh, k->subjects, sj, tmp)
	{
		struct kmsg *m = sj->head;

		sj->busy = true;		/* kept while its deliveries go */
		while (m)
		{
			struct kmsg *next = m->next;

			if (m->state == KM_QUEUED || (m->state == KM_WAIT && m->retry_at <= now))
				kmsg_failed(k, m, false, why);
			m = next;
		}
		sj->busy = false;
		subj_release(k, sj);
	}
	while ((sj = ready_pop(k)) != NULL)
		subj_release(k, sj);
}

/* Take back what a producer that is gone did not report. */
static void
take_back_sent(struct kafka *k)
{
	while (k->sent_head)
	{
		struct kmsg *m = k->sent_head;

		sent_remove(k, m);
		subj_rewind(k, m);
	}
	k->purge = false;
}

/* Serve librdkafka's queue and act on what it reported. */
static void
serve(struct kafka *k)
{
	int64_t		now = dsink_now_ms();
	char		why[512];

	if (connect_denied(k, why, sizeof(why)))
	{
		k->refused = true;
		if (k->rk)
		{
			log_error("%s; the sink delivers nothing from now on: its events go to "
					  "ordersync.dead_letter", why);
			destroy_producer(k, 0);
			handle_reports(k);
		}
		take_back_sent(k);
		fail_denied(k, why);
		return;
	}
	if (k->rk)
	{
		rd_kafka_poll(k->rk, 0);
		handle_reports(k);

		/*
		 * Take back what librdkafka still queues when a delivery waits for
		 * a retry, or when a record is overdue (at most once per
		 * timeout_ms: records on the wire cannot be taken back and stay
		 * overdue). The purge blocks until the records are out of
		 * librdkafka's queues and their reports queued, so the next poll
		 * has them all before anything is produced again.
		 */
		if (!k->fatal && (k->purge ||
						  (k->sent_head && now - k->sent_head->sent_at >= k->s->opt.timeout_ms &&
						   now - k->purged_at >= k->s->opt.timeout_ms)))
		{
			log_debug("kafka sink \"%s\": taking back the records librdkafka has not sent "
					  "(%llu unacknowledged)", k->s->name, (unsigned long long) k->nsent);
			if (!k->purge)
				k->purged_at = now;
			k->purge = false;
			rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE);
			rd_kafka_poll(k->rk, 0);
			handle_reports(k);
			k->purge = false;	/* what failed now was in the purge already */
		}
	}
	if (k->fatal && k->rk)
	{
		destroy_producer(k, 0);
		handle_reports(k);
	}
	if (k->rk == NULL)
	{
		/* what the old producer did not report is ours again */
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
}

/* ---- the sink ----------------------------------------------------------- */

static void
kafka_submit(struct dsink *s, struct delivery *d)
{
	struct kafka *k = s->state;
	struct kmsg *m = ds_xcalloc(sizeof(*m));
	struct ksubj *sj;
	size_t		len = strlen(d->subject);

	m->d = d;
	m->seq = ++k->next_seq;
	m->state = KM_QUEUED;
	d->sink_data = m;
	HASH_FIND(hh, k->subjects, d->subject, len, sj);
	if (sj == NULL)
	{
		sj = ds_xcalloc(sizeof(*sj) + len + 1);
		memcpy(sj->key, d->subject, len + 1);
		HASH_ADD_KEYPTR(hh, k->subjects, sj->key, len, sj);
	}
	m->subj = sj;
	m->prev = sj->tail;
	if (sj->tail)
		sj->tail->next = m;
	else
		sj->head = m;
	sj->tail = m;
	if (sj->cur == NULL)
	{
		sj->cur = m;
		ready_push(k, sj, false);
	}
	/* produce right away unless something is pending that must go first */
	if (k->rk && !k->full && !k->purge && !k->fatal && k->done_head == NULL)
		pump(k);
}

/* *t = the earlier of *t (-1: none yet) and v ms from now */
static void
lower(int64_t *t, int64_t v)
{
	if (v < 0)
		v = 0;
	if (*t < 0 || v < *t)
		*t = v;
}

static void
kafka_prepare(struct dsink *s, struct pollset *ps, int *timeout_ms)
{
	struct kafka *k = s->state;
	int64_t		now = dsink_now_ms();
	int64_t		t = *timeout_ms;

	pollset_add(ps, k->wake[0], POLLIN);
	/* reports wake us through the pipe; this also runs the overdue check */
	if (k->nsent > 0)
		lower(&t, KAFKA_POLL_MS);
	if (k->rk && ((k->ready_head && !k->full) || k->fatal || k->purge || k->done_head))
		lower(&t, 0);
	for (struct ksubj *sj = k->wait_head; sj; sj = sj->wait_next)
		lower(&t, (sj->cur && sj->cur->state == KM_WAIT) ? sj->cur->retry_at - now : 0);
	if (k->rk == NULL && !k->refused)
		lower(&t, k->remake_at - now);
	if (k->refused && k->ready_head)
		lower(&t, 0);			/* new events: dead letters at once */
	*timeout_ms = (int) t;
}

static void
kafka_work(struct dsink *s, const struct pollset *ps)
{
	struct kafka *k = s->state;
	char		buf[256];

	(void) ps;
	/* the pipe only says "look": empty it, then serve the queue */
	while (read(k->wake[0], buf, sizeof(buf)) > 0)
		;
	serve(k);
	wake_waiting(k);
	pump(k);
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
	const char *uri = k->s->uri;
	const char *p = uri + strlen("kafka://");
	char		shown[512];
	const char *slash;
	const char *at;
	const char *topic;
	size_t		tlen;

	*brokers = *user = NULL;
	dsink_redact_uri(uri, shown, sizeof(shown));
	if (strncasecmp(uri, "kafka://", 8) != 0)
	{
		snprintf(err, errlen, "kafka sink \"%s\": uri \"%s\" does not start with kafka://",
				 k->s->name, shown);
		return -1;
	}
	slash = strchr(p, '/');
	if (slash == NULL || slash[1] == '\0')
	{
		snprintf(err, errlen, "kafka sink \"%s\": uri \"%s\" names no topic; write "
				 "kafka://host1:9092,host2:9092/topic", k->s->name, shown);
		return -1;
	}
	topic = slash + 1;
	tlen = strlen(topic);
	if (strpbrk(topic, "?#") != NULL)
	{
		snprintf(err, errlen, "kafka sink \"%s\": uri \"%s\" has parameters; a kafka sink uri is "
				 "kafka://brokers/topic, librdkafka properties go into the option "
				 "{\"kafka\": {\"linger.ms\": 20}}", k->s->name, shown);
		return -1;
	}
	if (tlen > 249 || strspn(topic, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
							 "0123456789._-") != tlen ||
		strcmp(topic, ".") == 0 || strcmp(topic, "..") == 0)
	{
		snprintf(err, errlen, "kafka sink \"%s\": \"%s\" is not a valid topic name: use up to "
				 "249 letters, digits, \".\", \"_\" and \"-\"", k->s->name, topic);
		return -1;
	}
	at = memchr(p, '@', (size_t) (slash - p));
	if (at)
	{
		if (memchr(p, ':', (size_t) (at - p)) != NULL)
		{
			snprintf(err, errlen, "kafka sink \"%s\": the uri contains a password; remove it "
					 "and give option \"password_env\" or \"password_file\" instead", k->s->name);
			return -1;
		}
		if (at == p)
		{
			snprintf(err, errlen, "kafka sink \"%s\": empty user name before \"@\" in uri \"%s\"",
					 k->s->name, shown);
			return -1;
		}
		p = at + 1;
	}
	if (p == slash)
	{
		snprintf(err, errlen, "kafka sink \"%s\": uri \"%s\" names no broker; write "
				 "kafka://host1:9092,host2:9092/topic", k->s->name, shown);
		return -1;
	}
	for (const char *b = p; b <= slash; b++)
		if ((*b == ',' || b == slash) && (b == p || b[-1] == ','))
		{
			snprintf(err, errlen, "kafka sink \"%s\": empty broker in \"%.*s\"; separate "
					 "brokers with single commas", k->s->name, (int) (slash - p), p);
			return -1;
		}
	if (at)
		*user = strndup(uri + 8, (size_t) (at - (uri + 8)));
	*brokers = strndup(p, (size_t) (slash - p));
	k->topic = strdup(topic);
	if (*brokers == NULL || k->topic == NULL || (at && *user == NULL))
		abort();
	return 0;
}

/* The SASL password, only by reference (password_env / password_file). */
static int
set_password(struct kafka *k, char *err, size_t errlen)
{
	struct dsink *s = k->s;
	json_object *v;
	char		proto[64] = "plaintext";
	size_t		plen = sizeof(proto);
	char	   *pw;
	int			bad;

	if (s->opt.raw == NULL || (!json_object_object_get_ex(s->opt.raw, "password_env", &v) &&
							   !json_object_object_get_ex(s->opt.raw, "password_file", &v)))
		return 0;
	pw = dsink_secret(s, "password", err, errlen);
	if (pw == NULL)
		return -1;
	if (rd_kafka_conf_get(k->conf, "security.protocol", proto, &plen) != RD_KAFKA_CONF_OK ||
		strncasecmp(proto, "sasl_", 5) != 0)
	{
		snprintf(err, errlen, "kafka sink \"%s\": a password is given but security.protocol "
				 "is \"%s\", which sends none; set for instance {\"kafka\": "
				 "{\"security.protocol\": \"sasl_ssl\", \"sasl.mechanisms\": \"SCRAM-SHA-512\", "
				 "\"sasl.username\": \"relay\"}}", s->name, proto);
		explicit_bzero(pw, strlen(pw));
		free(pw);
		return -1;
	}
	bad = rd_kafka_conf_set(k->conf, "sasl.password", pw, err, errlen) != RD_KAFKA_CONF_OK;
	explicit_bzero(pw, strlen(pw));
	free(pw);
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
	static const char *const map[][2] = {
		{"ca_file", "ssl.ca.location"},
		{"cert_file", "ssl.certificate.location"},
		{"key_file", "ssl.key.location"},
	};
	struct dsink *s = k->s;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
	{
		json_object *v;
		char		path[PATH_MAX],
					from[32];

		if (s->opt.raw == NULL || !json_object_object_get_ex(s->opt.raw, map[i][0], &v))
			continue;
		snprintf(from, sizeof(from), "option \"%s\"", map[i][0]);
		if (!json_object_is_type(v, json_type_string) ||
			dsink_reference(s, map[i][0], json_object_get_string(v), path, sizeof(path),
							err, errlen) != 0)
		{
			if (!json_object_is_type(v, json_type_string))
				snprintf(err, errlen, "kafka sink \"%s\": option %s must be a path", s->name,
						 map[i][0]);
			return -1;
		}
		if (conf_set(k, map[i][1], path, from, err, errlen) != 0)
			return -1;
	}
	return 0;
}

static int
configure(struct kafka *k, char *err, size_t errlen)
{
	struct dsink *s = k->s;
	json_object *kopt = NULL;
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
	 * run sasl.kerberos.kinit.cmd through the shell. (dsink_check refuses
	 * GSSAPI and every property that could change this.)
	 */
	if (!s->trusted &&
		conf_set(k, "sasl.kerberos.min.time.before.relogin", "0", "default", err, errlen))
		goto out;

	if (s->opt.raw && json_object_object_get_ex(s->opt.raw, "kafka", &kopt))
	{
		if (!json_object_is_type(kopt, json_type_object))
		{
			snprintf(err, errlen, "kafka sink \"%s\": option \"kafka\" must be an object of "
					 "librdkafka properties such as {\"linger.ms\": 20}", s->name);
			goto out;
		}
		json_object_object_foreach(kopt, key, val)
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
kafka_open(struct dsink *s, char *err, size_t errlen)
{
	struct kafka *k = ds_xcalloc(sizeof(*k));

	k->s = s;
	k->wake[0] = k->wake[1] = -1;
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
kafka_close(struct dsink *s)
{
	struct kafka *k = s->state;
	struct ksubj *sj,
			   *tmp;

	if (k == NULL)
		return;
	/* nothing more is confirmed: drop what librdkafka holds, quickly */
	k->ignore_reports = true;
	destroy_producer(k, 100);
	HASH_ITER(hh, k->subjects, sj, tmp)
	{
		struct kmsg *m = sj->head;

		while (m)
		{
			struct kmsg *next = m->next;

			free(m->d);			/* unconfirmed: the stream sends it again */
			free(m);
			m = next;
		}
		HASH_DEL(k->subjects, sj);
		free(sj);
	}
	if (k->conf)
		rd_kafka_conf_destroy(k->conf);
	if (k->wake[0] >= 0)
		close(k->wake[0]);
	if (k->wake[1] >= 0)
		close(k->wake[1]);
	free(k->topic);
	pthread_mutex_destroy(&k->deny_lock);
	free(k);
	s->state = NULL;
}

const struct dsink_ops kafka_ops = {
	.kind = "kafka",
	.open = kafka_open,
	.submit = kafka_submit,
	.prepare = kafka_prepare,
	.work = kafka_work,
	.close = kafka_close
};
