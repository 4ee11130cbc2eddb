/*
 * kafka_mock.c — a Kafka cluster for the tests: librdkafka's own mock
 * cluster (rdkafka_mock.h), driven by commands on stdin.
 *
 *   kafka_mock [BROKERS]        (default 3 brokers, ids 1..BROKERS)
 *
 * Prints the bootstrap servers (one line) on stdout, then reads one
 * command per line and answers each with "ok" or "error: ..." on stdout,
 * so a test can wait for a command to have taken effect:
 *
 *   create-topic NAME PARTITIONS REPLICATION
 *   produce-errors N CODE      the next N produce requests fail with CODE
 *                              (a Kafka error code, e.g. 6 NOT_LEADER_FOR_PARTITION,
 *                              7 REQUEST_TIMED_OUT, 29 TOPIC_AUTHORIZATION_FAILED;
 *                              -195 drops the connection)
 *   broker-down ID | broker-up ID   (-1: every broker)
 *   rtt ID MS                  answer ID's requests MS ms late
 *   leader TOPIC PARTITION ID  move a partition's leadership
 *
 * Ends on end of input or SIGTERM. The mock keeps records in memory only;
 * read them back with kcat -b BOOTSTRAPS -C -t TOPIC -e.
 *
 * Build: cc -o kafka_mock kafka_mock.c -lrdkafka
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* Kafka protocol ApiKey of ProduceRequest (not exported by rdkafka.h). */
#define PRODUCE_API_KEY 0

static void
on_term(int sig)
{
	(void) sig;
	_exit(0);
}

/* The handle only anchors the cluster: keep its own chatter quiet. */
static void
quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void) rk;
	(void) level;
	(void) fac;
	(void) buf;
}

static void
answer(rd_kafka_resp_err_t err)
{
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
		printf("ok\n");
	else
		printf("error: %s\n", rd_kafka_err2str(err));
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	int			brokers = argc > 1 ? atoi(argv[1]) : 3;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mc;
	char		errstr[512];
	char		line[1024];

	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	if (brokers < 1 || brokers > 16)
	{
		fprintf(stderr, "kafka_mock: BROKERS must be 1..16\n");
		return 2;
	}
	rd_kafka_conf_set_log_cb(conf, quiet_log);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
	{
		fprintf(stderr, "kafka_mock: %s\n", errstr);
		return 1;
	}
	mc = rd_kafka_mock_cluster_new(rk, brokers);
	if (mc == NULL)
	{
		fprintf(stderr, "kafka_mock: could not create the mock cluster\n");
		return 1;
	}
	printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
	fflush(stdout);

	while (fgets(line, sizeof(line), stdin))
	{
		char		a[256],
					b[256];
		int			n,
					x,
					y;

		if (sscanf(line, "create-topic %255s %d %d", a, &x, &y) == 3)
			answer(rd_kafka_mock_topic_create(mc, a, x, y));
		else if (sscanf(line, "produce-errors %d %d", &n, &x) == 2 && n > 0 && n <= 1000)
		{
			rd_kafka_resp_err_t errs[1000];

			for (int i = 0; i < n; i++)
				errs[i] = (rd_kafka_resp_err_t) x;
			rd_kafka_mock_push_request_errors_array(mc, PRODUCE_API_KEY, (size_t) n, errs);
			answer(RD_KAFKA_RESP_ERR_NO_ERROR);
		}
		else if (sscanf(line, "broker-down %d", &x) == 1)
			answer(rd_kafka_mock_broker_set_down(mc, x));
		else if (sscanf(line, "broker-up %d", &x) == 1)
			answer(rd_kafka_mock_broker_set_up(mc, x));
		else if (sscanf(line, "rtt %d %d", &x, &y) == 2)
			answer(rd_kafka_mock_broker_set_rtt(mc, x, y));
		else if (sscanf(line, "leader %255s %d %d", a, &x, &y) == 3)
			answer(rd_kafka_mock_partition_set_leader(mc, a, x, y));
		else if (sscanf(line, "%255s", b) == 1)
		{
			printf("error: unknown command \"%s\"\n", b);
			fflush(stdout);
		}
	}
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}
