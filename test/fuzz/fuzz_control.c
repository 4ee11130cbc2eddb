/*
 * fuzz_control.c — libFuzzer target for what steers the relay: the row
 * changes of ordersync.sink, .route and .redelivery, and messages that
 * claim to be ordersync's (a forged relay.config must steer nothing).
 *
 * Each input is split into lines and fed to a relay inside one
 * transaction, as the stream would bring them; the configuration is
 * applied after every control row, with the real checks of dsink.c
 * (allowlists, secret references, TLS, networks). The sinks themselves are
 * stand-ins that accept at once: a real Kafka client would start
 * connecting to whatever broker the input names, and only loopback may
 * ever be a target here.
 *
 * Properties beyond "no crash, no sanitizer report": every sink the relay
 * holds has a name that passes deliver_sink_name_ok and an ops table; every
 * route pattern passes deliver_pattern_ok; a message never adds a sink.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver.h"
#include "log.h"
#include "relay.h"

static int
stand_in_open(struct dsink *s, char *err, size_t errlen)
{
	(void) s;
	(void) err;
	(void) errlen;
	return 0;
}

static void
stand_in_submit(struct dsink *s, struct delivery *d)
{
	(void) s;
	dsink_accepted(d);
}

static void
stand_in_prepare(struct dsink *s, struct pollset *ps, int *timeout_ms)
{
	(void) s;
	(void) ps;
	(void) timeout_ms;
}

static void
stand_in_work(struct dsink *s, const struct pollset *ps)
{
	(void) s;
	(void) ps;
}

static void
stand_in_close(struct dsink *s)
{
	(void) s;
}

const struct dsink_ops webhook_ops = {"webhook", stand_in_open, stand_in_submit, stand_in_prepare, stand_in_work, stand_in_close};
const struct dsink_ops kafka_ops = {"kafka", stand_in_open, stand_in_submit, stand_in_prepare, stand_in_work, stand_in_close};
const struct dsink_ops amqp_ops = {"amqp", stand_in_open, stand_in_submit, stand_in_prepare, stand_in_work, stand_in_close};

static struct relay R;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* nothing listens there: dead letters fail at once and stay unconfirmed */
	static const struct relay_config cfg = {.source = "/fuzz", .prefix = "ordersync",
	.conninfo = "host=/nonexistent-ordersync-fuzz dbname=none connect_timeout=1",
	.max_pending_bytes = 1 << 20};

	(void) argc;
	(void) argv;
	log_threshold = (enum log_level) -1;
	if (relay_init(&R, &cfg, NULL, 0) != 0)
		abort();
	return 0;
}

static void
check_invariants(void)
{
	for (int i = 0; i < R.dl.nsinks; i++)
	{
		const struct dl_sink *e = &R.dl.sinks[i];

		if (e->sink == NULL || e->sink->ops == NULL || e->sink->name == NULL)
			abort();
		if (e->configured && !e->sink->retired && !deliver_sink_name_ok(e->sink->name))
			abort();
		for (int k = 0; k < e->npatterns; k++)
			if (!deliver_pattern_ok(e->patterns[k]))
				abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char begin[] = "{\"action\":\"B\",\"xid\":1,\"timestamp\":\"2026-11-24 07:00:00+00\","
		"\"lsn\":\"0/100\",\"nextlsn\":\"0/130\"}";
	static const char commit[] = "{\"action\":\"C\",\"xid\":1,\"timestamp\":\"2026-11-24 07:00:00+00\","
		"\"lsn\":\"0/100\",\"nextlsn\":\"0/130\"}";
	const char *p = (const char *) data;
	const char *end = p + size;
	int			configured_before = 0;

	R.received_end = 0;			/* every input is a new transaction to the relay */
	relay_line(&R, 0x100, begin, sizeof(begin) - 1);
	while (p < end)
	{
		const char *nl = memchr(p, '\n', (size_t) (end - p));
		size_t		len = (size_t) ((nl ? nl : end) - p);
		bool		message = len > 14 && memmem(p, len, "\"action\":\"M\"", 12) != NULL;

		for (int i = 0; i < R.dl.nsinks; i++)
			configured_before += R.dl.sinks[i].configured && !R.dl.sinks[i].sink->retired;
		relay_line(&R, 0x110, p, len);
		check_invariants();
		if (message)
		{
			int			after = 0;

			for (int i = 0; i < R.dl.nsinks; i++)
				after += R.dl.sinks[i].configured && !R.dl.sinks[i].sink->retired;
			if (after > configured_before)
				abort();		/* a message added a sink */
		}
		configured_before = 0;
		p = nl ? nl + 1 : end;
	}
	if (R.in_txn)
		relay_line(&R, 0x130, commit, sizeof(commit) - 1);
	relay_abort_txn(&R);
	deliver_pump(&R.dl, 0);
	return 0;
}
