/*
 * kafka_ref.c — the reference bench/sinks/kafka.sh measures ordersyncd's
 * Kafka sink against: the smallest librdkafka producer that delivers what
 * the sink delivers, so "relay / reference" says how close the sink gets to
 * what librdkafka and the cluster allow on this machine.
 *
 * Same producer settings as src/relay/sink_kafka.c: enable.idempotence,
 * acks=all, message.timeout.ms=0, partitioner murmur2_random, librdkafka's
 * defaults for everything else (linger.ms, batch sizes, in-flight
 * requests); the same records: key = a subject ("order/<n>", SUBJECTS of
 * them in turn), value = SIZE bytes, headers content-type, ce_id and
 * ce_type. A record counts once its delivery report comes back without
 * error (any error ends the run). It produces as fast as librdkafka takes
 * records (on a full queue it serves reports for a moment and tries again)
 * and serves delivery reports with rd_kafka_poll(rk, 0) between produces.
 *
 *   kafka_ref BOOTSTRAP TOPIC COUNT SIZE SUBJECTS
 *
 * Prints one line: "COUNT SECONDS RECORDS_PER_S", timed from the first
 * produce to the last delivery report (connecting and the topic's metadata
 * are waited for before). Exit 0 when every record was delivered.
 *
 *   pg_recvlogical ... -f - | kafka_ref BOOTSTRAP TOPIC - SIZE SUBJECTS
 *
 * The same producer fed by a replication stream: one record per wal2json
 * message line on stdin (a line with "action":"M"), its value the line's
 * first SIZE bytes, until the line of the bench.end event (subject
 * "bench/end"), which is produced too. Nothing is parsed or checked: the
 * least any relay from PostgreSQL to Kafka must do, so bench/sinks/kafka.sh
 * can time the relay against it on the same slot's WAL, both with the
 * walsender beside them. The caller times the whole pipeline (COUNT is the
 * records produced).
 *
 * Build: cc -O2 -o kafka_ref kafka_ref.c -lrdkafka
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static uint64_t delivered,
			failed;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void) rk;
	(void) opaque;
	if (m->err)
	{
		if (failed++ == 0)
			fprintf(stderr, "kafka_ref: delivery failed: %s\n", rd_kafka_err2str(m->err));
	}
	else
		delivered++;
}

static void
set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
	char		err[512];

	if (rd_kafka_conf_set(conf, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK)
	{
		fprintf(stderr, "kafka_ref: %s=%s: %s\n", k, v, err);
		exit(2);
	}
}

/* One record with the sink's key, value and headers. */
static rd_kafka_resp_err_t
produce(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int flags, const char *key,
		char *value, size_t vlen, const char *id)
{
	return rd_kafka_producev(rk,
							 RD_KAFKA_V_RKT(rkt),
							 RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
							 RD_KAFKA_V_MSGFLAGS(flags),
							 RD_KAFKA_V_KEY(key, strlen(key)),
							 RD_KAFKA_V_VALUE(value, vlen),
							 RD_KAFKA_V_HEADER("content-type",
											   "application/cloudevents+json; charset=UTF-8", -1),
							 RD_KAFKA_V_HEADER("ce_id", id, -1),
							 RD_KAFKA_V_HEADER("ce_type", "ordersync.order.paid", -1),
							 RD_KAFKA_V_END);
}

int
main(int argc, char **argv)
{
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	const struct rd_kafka_metadata *md;
	uint64_t	count,
				size,
				subjects;
	char	   *value;
	bool		lines;
	char	   *line = NULL;
	size_t		linecap = 0;
	char		err[512],
				key[32],
				id[64];
	double		t0,
				t;

	if (argc != 6)
	{
		fprintf(stderr, "usage: kafka_ref BOOTSTRAP TOPIC COUNT|- SIZE SUBJECTS\n");
		return 2;
	}
	lines = strcmp(argv[3], "-") == 0;
	count = lines ? UINT64_MAX : strtoull(argv[3], NULL, 10);
	size = strtoull(argv[4], NULL, 10);
	subjects = strtoull(argv[5], NULL, 10);
	if (count == 0 || size == 0 || subjects == 0)
	{
		fprintf(stderr, "kafka_ref: COUNT, SIZE and SUBJECTS must be positive\n");
		return 2;
	}
	value = malloc(size);
	if (value == NULL)
		return 1;
	memset(value, 'x', size);

	conf = rd_kafka_conf_new();
	set(conf, "bootstrap.servers", argv[1]);
	set(conf, "client.id", "kafka_ref");
	set(conf, "enable.idempotence", "true");
	set(conf, "acks", "all");
	set(conf, "message.timeout.ms", "0");
	set(conf, "partitioner", "murmur2_random");
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (rk == NULL)
	{
		fprintf(stderr, "kafka_ref: %s\n", err);
		return 1;
	}
	rkt = rd_kafka_topic_new(rk, argv[2], NULL);
	/* connected, and the topic's partitions known, before the clock starts */
	if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		fprintf(stderr, "kafka_ref: no metadata for topic %s\n", argv[2]);
		return 1;
	}
	rd_kafka_metadata_destroy(md);

	t0 = now_s();
	for (uint64_t i = 0; i < count && failed == 0;)
	{
		rd_kafka_resp_err_t e;
		char	   *v = value;
		size_t		vlen = size;
		int			flags = 0;	/* not copied, as the sink */

		if (lines)
		{
			ssize_t		n = getline(&line, &linecap, stdin);

			if (n < 0)
			{
				fprintf(stderr, "kafka_ref: stdin ended before the bench.end event\n");
				return 1;
			}
			if (strstr(line, "\"action\":\"M\"") == NULL)
				continue;
			if (strstr(line, "bench/end") != NULL)
				count = i + 1;
			/* the line's buffer is read into again: librdkafka keeps a copy */
			v = line;
			vlen = (size_t) n < size ? (size_t) n : size;
			flags = RD_KAFKA_MSG_F_COPY;
		}

		snprintf(key, sizeof(key), "order/%" PRIu64, i % subjects);
		snprintf(id, sizeof(id), "0/%" PRIX64 "/%" PRIu64, 0x1000000 + i / 10 * 512, i % 10);
		/* on a full queue serve reports for a moment and try again */
		while ((e = produce(rk, rkt, flags, key, v, vlen, id)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(rk, 10);
		if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			fprintf(stderr, "kafka_ref: produce: %s\n", rd_kafka_err2str(e));
			return 1;
		}
		i++;
		rd_kafka_poll(rk, 0);
	}
	while (delivered + failed < count)
		rd_kafka_poll(rk, 100);
	t = now_s() - t0;
	if (failed)
	{
		fprintf(stderr, "kafka_ref: %" PRIu64 " records failed\n", failed);
		return 1;
	}
	printf("%" PRIu64 " %.3f %.0f\n", count, t, (double) count / t);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
	free(value);
	free(line);
	return 0;
}
