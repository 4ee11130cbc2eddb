/*
 * bench/sinks/replay.c — the relay without PostgreSQL: a captured wal2json
 * stream fed through the relay's own library (line parser, envelopes, the
 * delivery core and one sink) as fast as the sink takes it.
 *
 * Why: on a 2-core machine the walsender decoding the WAL takes about one
 * core for the whole of a relay run, while a reference client (wrk, a bare
 * librdkafka producer, a rabbitmq-c publisher) has both cores to itself and
 * the broker. A wall-clock ratio of the whole relay to such a reference is
 * then capped by the walsender (the file sink reaches half of a bare Kafka
 * producer's rate). This program takes the walsender out, so the sink and
 * the delivery core are measured, wall clock, against the reference on the
 * same broker: what item 2 of issue 11 asks of "each sink".
 *
 *   replay CAPTURE SINK [SINK_OPTIONS]
 *
 * CAPTURE: the payloads pg_recvlogical wrote for a slot read with the
 * relay's wal2json options (capture() in bench/sinks/lib.sh), one per
 * line. The whole file is read into memory first. Then, timed: the relay is set up
 * with the sink as a --sink (so with the operator's trust), every line goes
 * through relay_line() with the stream loop's rhythm (the sinks pumped
 * every 256 lines, a flush every 50 ms, reading paused while the delivery
 * core is backlogged), and the run ends when the delivery core's watermark
 * has reached the last commit: every event accepted by the sink (answered
 * 2xx, acknowledged, confirmed, fsynced). Prints one line:
 *   events seconds cpu_seconds
 * cpu_seconds is the process's user+system time, the library's threads
 * (librdkafka's, for one) included. Exit 1 on any failure, with why.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "relay.h"
#include "sink.h"
#include "ts.h"

/* seconds on the library's monotonic clock */
static double
now_sec(void)
{
	return (double) ts_mono_usec() / 1e6;
}

static double
cpu_sec(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6 +
		(double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;
}

/* The whole file, NUL-terminated; exits on failure. */
static char *
slurp(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	char	   *data;
	long		n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
	{
		fprintf(stderr, "replay: cannot read %s: %s\n", path, strerror(errno));
		exit(1);
	}
	data = malloc((size_t) n + 1);
	if (data == NULL || fread(data, 1, (size_t) n, f) != (size_t) n)
	{
		fprintf(stderr, "replay: cannot read %s\n", path);
		exit(1);
	}
	fclose(f);
	data[n] = '\0';
	*len = (size_t) n;
	return data;
}

static void
fail(struct relay *r, const char *what)
{
	fprintf(stderr, "replay: %s: %s\n", what, r->errmsg[0] ? r->errmsg : "(no message)");
	exit(1);
}

int
main(int argc, char **argv)
{
	static struct relay r;
	struct sink_policy policy = {.secret_env_prefix = "ORDERSYNC_"};
	struct relay_config cfg = {
		.source = "/ordersync",
		.prefix = "ordersync",
		.max_pending_bytes = (uint64_t) 64 << 20,	/* ordersyncd's default */
		.sink_policy = &policy,
	};
	char		err[512];
	size_t		len;
	char	   *data,
			   *p,
			   *end;
	long		events = 0,
				since_pump = 0;
	double		t0,
				c0,
				last_flush;
	bool		advanced;

	if (argc < 3 || argc > 4)
	{
		fprintf(stderr, "usage: replay CAPTURE SINK [SINK_OPTIONS]\n");
		return 2;
	}
	data = slurp(argv[1], &len);
	end = data + len;

	t0 = now_sec();
	c0 = cpu_sec();
	if (relay_init(&r, &cfg) != 0)
		fail(&r, "relay_init");
	if (delivery_add_cli_sink(&r.dl, argv[2], argc > 3 ? argv[3] : NULL, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "replay: %s\n", err);
		return 1;
	}
	last_flush = t0;
	for (p = data; p < end;)
	{
		char	   *nl = memchr(p, '\n', (size_t) (end - p));
		size_t		n = nl ? (size_t) (nl - p) : (size_t) (end - p);

		/* what the stream loop does when the sinks hold too much */
		while (delivery_backlogged(&r.dl))
		{
			delivery_pump(&r.dl, 50);
			if (relay_progress(&r, &advanced) != RELAY_OK)
				fail(&r, "a sink failed");
		}
		if (n > 0)
		{
			if (strncmp(p, "{\"action\":\"M\"", 13) == 0)
				events++;
			if (relay_line(&r, 0, p, n) != RELAY_OK)
				fail(&r, "relay_line");
		}
		p += n + 1;
		if (++since_pump >= 256)
		{
			double		t = now_sec();

			since_pump = 0;
			delivery_pump(&r.dl, 0);
			if (relay_needs_sync(&r) && t - last_flush >= 0.05)
			{
				if (relay_flush(&r) != RELAY_OK)
					fail(&r, "relay_flush");
				last_flush = t;
			}
			if (relay_progress(&r, &advanced) != RELAY_OK)
				fail(&r, "a sink failed");
		}
	}
	if (r.in_txn)
	{
		fprintf(stderr, "replay: the capture ends inside a transaction\n");
		return 1;
	}
	/* everything handed over: wait until every sink has accepted all of it */
	if (relay_sync(&r) != RELAY_OK)
		fail(&r, "relay_sync");
	while (r.durable_end < r.received_end || !delivery_idle(&r.dl))
	{
		delivery_pump(&r.dl, 50);
		if (relay_progress(&r, &advanced) != RELAY_OK)
			fail(&r, "a sink failed");
		if (now_sec() - t0 > 600)
		{
			fprintf(stderr, "replay: not everything accepted after 600 s\n");
			return 1;
		}
	}
	printf("%ld %.4f %.4f\n", events, now_sec() - t0, cpu_sec() - c0);
	relay_free(&r);
	free(data);
	return 0;
}
