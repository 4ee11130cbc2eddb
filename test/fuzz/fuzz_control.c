/*
 * fuzz_control.c — libFuzzer target for what steers the relay: the row
 * changes of ordersync.sink, .route and .redelivery, and messages that
 * claim to be ordersync's (a forged relay.config must steer nothing).
 *
 * Each input is split into lines and fed to a relay inside one
 * transaction, as the stream would bring them; the configuration is
 * applied after every control row, with the real checks of sink_policy.c
 * (allowlists, secret references, TLS, networks). The sinks themselves are
 * stand-ins that accept at once: a real Kafka client would start
 * connecting to whatever broker the input names, and only loopback may
 * ever be a target here.
 *
 * Properties beyond "no crash, no sanitizer report": every sink the relay
 * holds has a name that passes delivery_sink_name_ok and is opened or
 * refused with a reason, never a file; every route pattern passes
 * delivery_pattern_ok; only a row change adds a sink (never a message, a
 * begin or commit, or a line the relay cannot read).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "delivery.h"
#include "log.h"
#include "relay.h"

static int
stand_in_open(struct sink *s, struct sink_host *host, char *err, size_t errlen)
{
	(void) err;
	(void) errlen;
	s->host = host;
	return 0;
}

static int
stand_in_submit(struct sink *s, struct sink_event *ev)
{
	sink_host_accepted(s->host, ev);
	return SINK_TAKEN;
}

static void
stand_in_prepare(struct sink *s, struct pollset *ps, int *timeout_ms)
{
	(void) s;
	(void) ps;
	(void) timeout_ms;
}

static void
stand_in_poll(struct sink *s, const struct pollset *ps)
{
	(void) s;
	(void) ps;
}

static void
stand_in_close(struct sink *s)
{
	(void) s;
}

static bool
scheme(const char *uri, const char *a, const char *b)
{
	return strncasecmp(uri, a, strlen(a)) == 0 || (b && strncasecmp(uri, b, strlen(b)) == 0);
}

static bool
web(const char *uri)
{
	return scheme(uri, "http://", "https://");
}

static bool
kafka(const char *uri)
{
	return scheme(uri, "kafka://", NULL);
}

static bool
amqp(const char *uri)
{
	return scheme(uri, "amqp://", "amqps://");
}

static bool
nats(const char *uri)
{
	return scheme(uri, "nats://", "nats+tls://");
}

/* the real sinks' option keys and clear-text rules: the checks are the real ones */
static bool
clear_http(const struct sink *s)
{
	return strncasecmp(s->uri, "https://", 8) != 0;
}

static bool
clear_amqp(const struct sink *s)
{
	return strncasecmp(s->uri, "amqps://", 8) != 0;
}

static bool
clear_nats(const struct sink *s)
{
	return strncasecmp(s->uri, "nats+tls://", 11) != 0;
}

static bool
clear_kafka(const struct sink *s)
{
	json_object *k,
			   *v;
	const char *p = NULL;

	if (s->opt.raw && json_object_object_get_ex(s->opt.raw, "kafka", &k) &&
		json_object_is_type(k, json_type_object) &&
		json_object_object_get_ex(k, "security.protocol", &v))
		p = json_object_get_string(v);
	return p == NULL || strcasecmp(p, "plaintext") == 0 || strcasecmp(p, "sasl_plaintext") == 0;
}

static const char *const wh_keys[] = {"secret_env", "secret_file", "ca_file", NULL};
static const char *const kafka_keys[] = {
	"password_env", "password_file", "ca_file", "cert_file", "key_file", "kafka", NULL
};
static const char *const amqp_keys[] = {
	"password_env", "password_file", "ca_file", "cert_file", "key_file", "verify_peer",
	"declare_exchange", "heartbeat_seconds", NULL
};
static const char *const nats_keys[] = {
	"stream", "password_env", "password_file", "token_env", "token_file", "ca_file",
	"cert_file", "key_file", NULL
};

#define STAND_IN(var, name, depth, keys, claim, clear) \
	const struct sink_ops var = {.kind = name,.lane_depth = depth,.option_keys = keys, \
		.claims = claim,.clear_text = clear,.open = stand_in_open,.submit = stand_in_submit, \
		.prepare = stand_in_prepare,.poll = stand_in_poll,.close = stand_in_close}

STAND_IN(sink_webhook_ops, "webhook", 1, wh_keys, web, clear_http);
STAND_IN(sink_kafka_ops, "kafka", 0, kafka_keys, kafka, clear_kafka);
STAND_IN(sink_amqp_ops, "amqp", 0, amqp_keys, amqp, clear_amqp);
STAND_IN(sink_nats_ops, "nats", 0, nats_keys, nats, clear_nats);

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
	if (relay_init(&R, &cfg) != 0)
		abort();
	return 0;
}

static void
check_invariants(void)
{
	for (int i = 0; i < R.dl.nsinks; i++)
	{
		const struct delivery_sink *e = R.dl.sinks[i];

		/* a sink is opened, or refused with a reason */
		if (e->sink == NULL || e->sink->name == NULL || (e->sink->ops == NULL && e->refused == NULL))
			abort();
		if (e->sink->ops && e->sink->ops->kind[0] == 'f')
			abort();			/* never a file sink from the database */
		if (e->configured && !e->retired && !delivery_sink_name_ok(e->sink->name))
			abort();
		for (int k = 0; k < e->npatterns; k++)
			if (!delivery_pattern_ok(e->patterns[k]))
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
		struct w2j_rec rec;
		char		err[256];
		bool		row = false;

		/*
		 * What the relay reads the line as decides, not its text: a row
		 * may hold "action":"M" in a value, a message a second "action".
		 */
		if (w2j_parse(&R.parser, p, len, &rec, err, sizeof(err)) == 0)
		{
			row = strchr("IUDT", rec.action) != NULL && rec.action != '\0';
			w2j_rec_free(&rec);
		}

		for (int i = 0; i < R.dl.nsinks; i++)
			configured_before += R.dl.sinks[i]->configured && !R.dl.sinks[i]->retired;
		relay_line(&R, 0x110, p, len);
		check_invariants();
		if (!row)
		{
			int			after = 0;

			for (int i = 0; i < R.dl.nsinks; i++)
				after += R.dl.sinks[i]->configured && !R.dl.sinks[i]->retired;
			if (after > configured_before)
				abort();		/* a message, or a line that is no row, added a sink */
		}
		configured_before = 0;
		p = nl ? nl + 1 : end;
	}
	if (R.in_txn)
		relay_line(&R, 0x130, commit, sizeof(commit) - 1);
	relay_abort_txn(&R);
	delivery_pump(&R.dl, 0);
	return 0;
}
