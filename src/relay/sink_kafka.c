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
 * The sink's other files: sink_kafka_conf.c makes librdkafka's
 * configuration from the uri and options; sink_kafka_report.c turns
 * delivery reports and errors into outcomes and checks every broker
 * address before librdkafka connects to it.
 */
#define _GNU_SOURCE				/* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "sink_kafka.h"

/* Wait at most this long while records are with librdkafka (safety net). */
#define KAFKA_POLL_MS 100
/*
 * Serve delivery reports at most this often while records are in flight
 * (see the top): a few ms more before a confirmation, far fewer wake-ups.
 */
#define KAFKA_SERVE_MS 2

static void kafka_close(struct sink *s);

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
	if (kafka_connect_denied(k, why, sizeof(why)))
	{
		k->refused = true;
		if (k->rk)
		{
			log_error("%s; the sink delivers nothing from now on: its events go to "
					  "ordersync.dead_letter", why);
			destroy_producer(k, 0);
		}
		kafka_take_back(k);
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
		kafka_take_back(k);
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
	kafka_sent_add(k, ev);
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
	kafka_sent_remove(k, ev);
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
	kafka_report_refused(k, ev, err);
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
	if (kafka_configure(k, err, errlen) != 0)
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
