/*
 * sink_kafka.h — what the Kafka sink's files share (sink_kafka.c: the sink
 * and its producer; sink_kafka_conf.c: librdkafka's configuration from the
 * uri and options; sink_kafka_report.c: records with librdkafka and their
 * outcomes, librdkafka's callbacks). Not for other code: the rest of the
 * relay knows the sink by sink_kafka_ops (sink.h).
 */
#ifndef ORDERSYNCD_SINK_KAFKA_H
#define ORDERSYNCD_SINK_KAFKA_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include <librdkafka/rdkafka.h>

#include "sink.h"
#include "sink_tls.h"

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

/* the options of this kind (sink.h), in sink_kafka_conf.c */
extern const struct sink_opt kafka_options[];

/* sink_kafka_conf.c */

/*
 * k->conf from the uri and options: the template every producer is made
 * from, with the callbacks below set. -1 with a message naming the sink.
 */
int			kafka_configure(struct kafka *k, char *err, size_t errlen);
bool		kafka_clear_text(const struct sink *s);

/* sink_kafka_report.c */

void		kafka_sent_add(struct kafka *k, struct sink_event *ev);
void		kafka_sent_remove(struct kafka *k, struct sink_event *ev);
/* Give back what a producer that is gone did not report. */
void		kafka_take_back(struct kafka *k);
void		kafka_report_refused(struct kafka *k, struct sink_event *ev, rd_kafka_resp_err_t err);
/* Why on_connect refused an address (into why), or false. */
bool		kafka_connect_denied(struct kafka *k, char *why, size_t len);

void		kafka_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque);
void		kafka_on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque);
void		kafka_on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf);
int			kafka_on_connect(int fd, const struct sockaddr *addr, int addrlen, const char *id,
							 void *opaque);

#endif
