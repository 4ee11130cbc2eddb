/*
 * sink_kafka_report.c — the Kafka sink's records with librdkafka and their
 * outcomes (see sink_kafka.c for the order they keep): the list of records
 * whose delivery report is pending, what a report or an error means for
 * the event and the operator, and librdkafka's callbacks. Delivery
 * reports, errors and log lines are served by rd_kafka_poll on the relay's
 * thread; only on_connect runs in librdkafka's threads.
 *
 * Where it connects. librdkafka connects to the URI's brokers and then to
 * whatever brokers their metadata names. Every connection goes through
 * kafka_on_connect, which refuses an address the policy forbids
 * (sink_check_peer) before connecting. A refusal is for good: the relay's
 * thread ends the producer, what it held is returned, and the sink reports
 * itself refused: every event for it becomes a dead letter that names the
 * address and the rule.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sink_kafka.h"
#include "sink_policy.h"

/* Say the same librdkafka error again only after this long. */
#define KAFKA_ERROR_REPEAT_MS 30000

/* ---- records with librdkafka --------------------------------------------- */

void
kafka_sent_add(struct kafka *k, struct sink_event *ev)
{
	ev->sink_flags = KAFKA_SENT;
	ev->sink_ms = sink_now_ms();
	TAILQ_INSERT_TAIL(&k->sent, ev, link);
	k->nsent++;
}

void
kafka_sent_remove(struct kafka *k, struct sink_event *ev)
{
	TAILQ_REMOVE(&k->sent, ev, link);
	ev->sink_flags = 0;
	k->nsent--;
}

/* Give back what a producer that is gone did not report. */
void
kafka_take_back(struct kafka *k)
{
	struct sink_event *ev;

	while ((ev = TAILQ_FIRST(&k->sent)) != NULL)
	{
		kafka_sent_remove(k, ev);
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


void
kafka_report_refused(struct kafka *k, struct sink_event *ev, rd_kafka_resp_err_t err)
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

void
kafka_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	struct kafka *k = opaque;
	struct sink_event *ev = msg->_private;

	(void) rk;
	if (k->ignore_reports || ev == NULL || !(ev->sink_flags & KAFKA_SENT))
		return;
	kafka_sent_remove(k, ev);
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
		kafka_report_refused(k, ev, msg->err);
	}
}

void
kafka_on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
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

void
kafka_on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	struct kafka *k = rd_kafka_opaque(rk);
	const char *name = k ? k->s->name : "?";

	/*
	 * Errors also reach kafka_on_error, which says what to do; these are details.
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
int
kafka_on_connect(int fd, const struct sockaddr *addr, int addrlen, const char *id, void *opaque)
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
bool
kafka_connect_denied(struct kafka *k, char *why, size_t len)
{
	/* the common case, at every serve: no lock */
	if (!atomic_load_explicit(&k->deny_noted, memory_order_acquire))
		return false;
	pthread_mutex_lock(&k->deny_lock);
	snprintf(why, len, "%s", k->denied);
	pthread_mutex_unlock(&k->deny_lock);
	return why[0] != '\0';
}


