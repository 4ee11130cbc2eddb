/*
 * main.c — ordersyncd: command line, signals, and the reconnect loop.
 *
 * Exit codes: 0 clean stop, 1 usage error, 2 configuration problem (the
 * message says what to change), 3 bad input with --bad-input=stop or an
 * inconsistent stream, 4 a sink failed (disk full, I/O error).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "config_file.h"
#include "inbound.h"
#include "log.h"
#include "lsn.h"
#include "metrics.h"
#include "options.h"
#include "relay.h"
#include "service.h"
#include "sink_policy.h"
#include "stream.h"

#define ORDERSYNCD_VERSION "0.8.0"

static int	wake_pipe[2] = {-1, -1};

static void
usage(FILE *out)
{
	fprintf(out,
			"ordersyncd " ORDERSYNCD_VERSION " - relay ordersync events from PostgreSQL logical replication\n"
			"\n"
			"Usage:\n"
			"  ordersyncd --dbname=CONNINFO --slot=NAME [--create-slot] [--snapshot]\n"
			"             --sink=stdout | --sink=file:/path/events.jsonl   (repeatable)\n"
			"             --sink=https://... | kafka://brokers/topic | amqp://user@host/vhost?exchange=X\n"
			"             | nats://host:4222/subject_prefix\n"
			"             [--metrics-addr=127.0.0.1:9187] [--log-level=info]\n"
			"\n"
			"Options:\n"
			"  --config=FILE            read options from FILE first: one \"name = value\" a\n"
			"                           line, names are these long options without \"--\"\n"
			"                           (create-slot = true); flags on the command line\n"
			"                           override it\n"
			"  --dbname=CONNINFO        connection string or URI (replication=database is added)\n"
			"  --slot=NAME              logical replication slot (wal2json)\n"
			"  --create-slot            create the slot if it does not exist\n"
			"  --snapshot               with --create-slot: first emit the open orders as\n"
			"                           order.snapshot events from the slot's snapshot\n"
			"  --sink=stdout|file:PATH  where events go (repeatable; all must accept an event)\n"
			"  --sink=URI               also a webhook (http://, https://), Kafka\n"
			"                           (kafka://b1:9092,b2:9092/topic), RabbitMQ\n"
			"                           (amqp://user@host:5672/vhost?exchange=orders) or NATS\n"
			"                           JetStream (nats://host:4222/ordersync) that gets\n"
			"                           every event; sinks with routes live in the database:\n"
			"                           ordersync.add_sink() and ordersync.add_route()\n"
			"  --sink-options=JSON      options of the --sink before it, e.g.\n"
			"                           '{\"secret_env\":\"HOOK_SECRET\",\"max_attempts\":10}'\n"
			"                           (secrets only as *_env or *_file references)\n"
			"  --max-in-flight=MB       events held by delivery sinks before the stream\n"
			"                           pauses (default 64)\n"
			"  --metrics-addr=HOST:PORT serve /metrics and /healthz (default: off)\n"
			"  --inbound=HOST:PORT      receive channels' signed webhooks (POST\n"
			"                           /channels/<channel>/orders and /status) into\n"
			"                           ordersync.inbox; without --slot the relay only receives\n"
			"  --inbound-max-body=KB    largest webhook body (default 1024)\n"
			"  --inbound-max-connections=N  connections at once (default 64)\n"
			"  --inbound-pool=N         database connections for webhooks (default 8)\n"
			"  --inbound-appliers=N     threads applying the inbox, a connection each (default 8)\n"
			"  --inbound-timeout=SECS   idle and whole-request limit (default 10)\n"
			"  --log-level=LEVEL        error, warning, info (default) or debug\n"
			"  --source=URI             CloudEvents source (default /ordersync/<dbname>)\n"
			"  --raw-changes            also emit row changes of the ordersync tables\n"
			"                           as ordersync.row.<table>.<insert|update|delete|truncate>\n"
			"  --tables=PATTERN         with --raw-changes: wal2json add-tables filter\n"
			"                           (default ordersync.*); without it no rows are decoded\n"
			"  --bad-input=POLICY       dead-letter (default): a malformed line becomes an\n"
			"                           ordersync.relay.invalid event; stop: exit 3 without\n"
			"                           confirming its transaction\n"
			"  --allow-insecure-sinks   let sinks from the database turn TLS checks off and\n"
			"                           send personal data unencrypted to other hosts\n"
			"  --secret-env-prefix=PREFIX  secret_env/password_env of sinks from the\n"
			"                           database must start with PREFIX (default ORDERSYNC_)\n"
			"  --secret-dir=DIR         secret_file, password_file, ca_file, cert_file and\n"
			"                           key_file of sinks from the database must be in DIR\n"
			"                           (default: none, such sinks may name no files)\n"
			"  --deny-networks=LIST     CIDRs no sink ever connects to (default: cloud\n"
			"                           metadata, link-local, multicast; empty: none)\n"
			"  --allow-forgeable-events start even when roles other than superusers may\n"
			"                           execute pg_logical_emit_message (and so forge\n"
			"                           events); a warning instead of exit 2\n"
			"  --snapshot-exclude=LIST  terminal statuses left out of the snapshot\n"
			"                           (default completed,cancelled,expired,refunded)\n"
			"  --status-interval=SECS   status update interval (default 10)\n"
			"  --fsync-interval=MS      max delay before a busy stream is fsynced (default 50)\n"
			"  --max-retained-wal=MB    warn when the slot retains more WAL (default 1024)\n"
			"  --wal-check-interval=SECS how often to check retained WAL (default 60)\n"
			"  --reconnect-delay-max=MS cap of the reconnect backoff (default 30000)\n"
			"  --standby-poll=MS        while another relay holds the slot, stand by and\n"
			"                           ask this often whether it is free (default 100)\n"
			"  --state-file=PATH        remember the server (system, timeline) and the last\n"
			"                           confirmed LSN there, to notice a failover and report\n"
			"                           what was not relayed (doc/operations.md)\n"
			"  --endpos=LSN             relay the transactions committed up to LSN, stop once\n"
			"                           they are confirmed\n"
			"  --help, --version\n"
			"\n"
			"Signals: SIGTERM/SIGINT stop after the last durable transaction; SIGHUP reopens file sinks.\n"
			"Exit codes: 0 stopped, 1 usage, 2 configuration, 3 bad input (stop policy), 4 sink failure.\n");
}

static void
on_stop(int sig)
{
	int			saved = errno;

	(void) sig;
	stream_stop_requested = 1;
	if (wake_pipe[1] >= 0)
		(void) !write(wake_pipe[1], "s", 1);
	errno = saved;
}

static void
on_hup(int sig)
{
	int			saved = errno;

	(void) sig;
	stream_reopen_requested = 1;
	if (wake_pipe[1] >= 0)
		(void) !write(wake_pipe[1], "h", 1);
	errno = saved;
}

static void
setup_signals(void)
{
	struct sigaction sa;

	if (pipe(wake_pipe) == 0)
	{
		for (int i = 0; i < 2; i++)
		{
			fcntl(wake_pipe[i], F_SETFL, O_NONBLOCK);
			fcntl(wake_pipe[i], F_SETFD, FD_CLOEXEC);
		}
		stream_wake_fd = wake_pipe[0];
	}
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;	/* no SA_RESTART: let select() return */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);	/* a closed stdout is reported as EPIPE instead */
}

static int
parse_int(const char *name, const char *v, long min, long max, long *out)
{
	char	   *end;
	long		n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || *end || end == v || n < min || n > max)
	{
		fprintf(stderr, "ordersyncd: --%s must be a number from %ld to %ld, not \"%s\"\n",
				name, min, max, v);
		return -1;
	}
	*out = n;
	return 0;
}

static bool
slot_name_ok(const char *s)
{
	size_t		n = strlen(s);

	if (n == 0 || n > 63)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

/*
 * What sinks from the database may do, from the command line. Returns 0,
 * or the exit code after a message (1 usage, 2 a directory that is not
 * there). dir_buf (PATH_MAX) keeps the resolved secret directory.
 */
static int
make_sink_policy(const struct options *o, struct sink_policy *p, char *dir_buf)
{
	char		err[512];
	struct stat st;

	memset(p, 0, sizeof(*p));
	p->allow_insecure = o->allow_insecure_sinks;
	p->secret_env_prefix = o->secret_env_prefix;
	/* "" would let the database read any variable: PGPASSWORD, AWS_SECRET_ACCESS_KEY... */
	if (o->secret_env_prefix[0] == '\0' ||
		strspn(o->secret_env_prefix, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			   "0123456789_") != strlen(o->secret_env_prefix))
	{
		fprintf(stderr, "ordersyncd: --secret-env-prefix must be letters, digits and "
				"underscores, not \"%s\" (and not empty: that would let the database name "
				"any environment variable of the relay)\n", o->secret_env_prefix);
		return 1;
	}
	if (o->secret_dir)
	{
		errno = 0;
		if (realpath(o->secret_dir, dir_buf) == NULL || stat(dir_buf, &st) != 0 ||
			!S_ISDIR(st.st_mode))
		{
			fprintf(stderr, "ordersyncd: --secret-dir \"%s\" is not a directory%s%s; create "
					"it and put the secret files of the database's sinks there\n",
					o->secret_dir, errno ? ": " : "", errno ? strerror(errno) : "");
			return 2;
		}
		if (st.st_mode & (S_IWGRP | S_IWOTH))
			log_warning("--secret-dir \"%s\" is writable by others than its owner: whoever "
						"can write there chooses what sinks from the database may read; "
						"chmod go-w it", dir_buf);
		p->secret_dir = dir_buf;
	}
	if (netmask_parse_list(o->deny_networks, &p->deny, &p->ndeny, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "ordersyncd: --deny-networks: %s\n", err);
		return 1;
	}
	if (p->allow_insecure)
		log_warning("--allow-insecure-sinks: sinks from the database may turn TLS checks off "
					"and send personal data unencrypted to any host they name");
	return 0;
}

/* Sleep for ms, waking early on SIGTERM/SIGINT; alive for the watchdog every second. */
static void
sleep_ms(uint32_t ms)
{
	while (ms > 0 && !stream_stop_requested)
	{
		uint32_t	step = ms < 1000 ? ms : 1000;
		struct timespec ts = {step / 1000, (long) (step % 1000) * 1000000L};

		while (!stream_stop_requested && nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
		ms -= step;
		service_alive();
	}
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"slot", required_argument, NULL, 'S'},
		{"create-slot", no_argument, NULL, 'c'},
		{"snapshot", no_argument, NULL, 'n'},
		{"sink", required_argument, NULL, 'k'},
		{"metrics-addr", required_argument, NULL, 'm'},
		{"log-level", required_argument, NULL, 'l'},
		{"source", required_argument, NULL, 1},
		{"raw-changes", no_argument, NULL, 2},
		{"tables", required_argument, NULL, 3},
		{"bad-input", required_argument, NULL, 4},
		{"snapshot-exclude", required_argument, NULL, 5},
		{"status-interval", required_argument, NULL, 6},
		{"fsync-interval", required_argument, NULL, 7},
		{"max-retained-wal", required_argument, NULL, 8},
		{"wal-check-interval", required_argument, NULL, 9},
		{"reconnect-delay-max", required_argument, NULL, 10},
		{"endpos", required_argument, NULL, 11},
		{"sink-options", required_argument, NULL, 12},
		{"max-in-flight", required_argument, NULL, 13},
		{"allow-forgeable-events", no_argument, NULL, 14},
		{"standby-poll", required_argument, NULL, 15},
		{"state-file", required_argument, NULL, 16},
		/* what sinks may do (sink_policy.h) */
		{"allow-insecure-sinks", no_argument, NULL, 20},
		{"secret-env-prefix", required_argument, NULL, 21},
		{"secret-dir", required_argument, NULL, 22},
		{"deny-networks", required_argument, NULL, 23},
		/* the inbound endpoint (inbound.h) */
		{"inbound", required_argument, NULL, 30},
		{"inbound-max-body", required_argument, NULL, 31},
		{"inbound-max-connections", required_argument, NULL, 32},
		{"inbound-pool", required_argument, NULL, 33},
		{"inbound-timeout", required_argument, NULL, 34},
		{"inbound-appliers", required_argument, NULL, 35},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}
	};
	struct options o = {
		.tables = "ordersync.*",
		.terminal_statuses = "completed,cancelled,expired,refunded",
		.status_interval_ms = 10000,
		.fsync_interval_ms = 50,
		.max_retained_wal = (uint64_t) 1024 << 20,
		.wal_check_interval_ms = 60000,
		.reconnect_min_ms = 200,
		.reconnect_max_ms = 30000,
		.standby_poll_ms = 100,
		.max_pending_bytes = (uint64_t) 64 << 20,
		.secret_env_prefix = SINK_DEFAULT_ENV_PREFIX,
		.deny_networks = SINK_DEFAULT_DENY,
	};
	struct sink_policy sink_policy;
	struct inbound_options inb = {
		.max_body = 1024 * 1024,
		.max_connections = 64,
		.pool_size = 8,
		.appliers = 8,
		.timeout_s = 10,
	};
	char		secret_dir[PATH_MAX];
	struct relay relay;
	struct relay_config rcfg;
	struct stream_state st;
	struct backoff bo;
	char		err[1024];
	int			c;
	long		n;
	int			exit_code = 0;

	if ((c = config_file_expand(&argc, &argv, longopts)) != 0)
		return c;
	while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1)
	{
		switch (c)
		{
			case 'd':
				o.dbname = optarg;
				break;
			case 'S':
				o.slot = optarg;
				break;
			case 'c':
				o.create_slot = true;
				break;
			case 'n':
				o.snapshot = true;
				break;
			case 'k':
				if (o.nsinks == MAX_SINK_SPECS)
				{
					fprintf(stderr, "ordersyncd: at most %d --sink options\n", MAX_SINK_SPECS);
					return 1;
				}
				o.sinks[o.nsinks++] = optarg;
				break;
			case 'm':
				o.metrics_addr = optarg;
				break;
			case 'l':
				if (log_parse_level(optarg, &log_threshold) != 0)
				{
					fprintf(stderr, "ordersyncd: --log-level must be error, warning, info or debug\n");
					return 1;
				}
				break;
			case 1:
				o.source = optarg;
				break;
			case 2:
				o.raw_changes = true;
				break;
			case 3:
				o.tables = optarg;
				break;
			case 4:
				if (strcmp(optarg, "stop") == 0)
					o.stop_on_bad_input = true;
				else if (strcmp(optarg, "dead-letter") == 0)
					o.stop_on_bad_input = false;
				else
				{
					fprintf(stderr, "ordersyncd: --bad-input must be dead-letter or stop\n");
					return 1;
				}
				break;
			case 5:
				o.terminal_statuses = optarg;
				break;
			case 6:
				if (parse_int("status-interval", optarg, 1, 3600, &n))
					return 1;
				o.status_interval_ms = (int) n * 1000;
				break;
			case 7:
				if (parse_int("fsync-interval", optarg, 0, 60000, &n))
					return 1;
				o.fsync_interval_ms = (int) n;
				break;
			case 8:
				if (parse_int("max-retained-wal", optarg, 1, 1L << 30, &n))
					return 1;
				o.max_retained_wal = (uint64_t) n << 20;
				break;
			case 9:
				if (parse_int("wal-check-interval", optarg, 1, 86400, &n))
					return 1;
				o.wal_check_interval_ms = (int) n * 1000;
				break;
			case 10:
				if (parse_int("reconnect-delay-max", optarg, 100, 3600000, &n))
					return 1;
				o.reconnect_max_ms = (uint32_t) n;
				break;
			case 11:
				if (lsn_parse(optarg, &o.endpos) != 0)
				{
					fprintf(stderr, "ordersyncd: --endpos must be an LSN like 0/16B3748\n");
					return 1;
				}
				break;
			case 12:
				if (o.nsinks == 0 || o.sink_options[o.nsinks - 1] != NULL)
				{
					fprintf(stderr, "ordersyncd: --sink-options applies to the --sink before it: "
							"give it once, after a --sink\n");
					return 1;
				}
				o.sink_options[o.nsinks - 1] = optarg;
				break;
			case 13:
				if (parse_int("max-in-flight", optarg, 1, 1L << 20, &n))
					return 1;
				o.max_pending_bytes = (uint64_t) n << 20;
				break;
			case 14:
				o.allow_forgeable_events = true;
				break;
			case 15:
				if (parse_int("standby-poll", optarg, 10, 60000, &n))
					return 1;
				o.standby_poll_ms = (int) n;
				break;
			case 16:
				o.state_file = optarg;
				break;
			case 20:
				o.allow_insecure_sinks = true;
				break;
			case 21:
				o.secret_env_prefix = optarg;
				break;
			case 22:
				o.secret_dir = optarg;
				break;
			case 23:
				o.deny_networks = optarg;
				break;
			case 30:
				inb.addr = optarg;
				break;
			case 31:
				if (parse_int("inbound-max-body", optarg, 1, 64 * 1024, &n))
					return 1;
				inb.max_body = (size_t) n * 1024;
				break;
			case 32:
				if (parse_int("inbound-max-connections", optarg, 1, 4096, &n))
					return 1;
				inb.max_connections = (int) n;
				break;
			case 33:
				if (parse_int("inbound-pool", optarg, 1, 256, &n))
					return 1;
				inb.pool_size = (int) n;
				break;
			case 34:
				if (parse_int("inbound-timeout", optarg, 1, 600, &n))
					return 1;
				inb.timeout_s = (int) n;
				break;
			case 35:
				if (parse_int("inbound-appliers", optarg, 1, 32, &n))
					return 1;
				inb.appliers = (int) n;
				break;
			case 'h':
				usage(stdout);
				return 0;
			case 'V':
				printf("ordersyncd " ORDERSYNCD_VERSION "\n");
				return 0;
			default:
				fprintf(stderr, "Try \"ordersyncd --help\" for more information.\n");
				return 1;
		}
	}
	if (optind < argc)
	{
		fprintf(stderr, "ordersyncd: unexpected argument \"%s\"\nTry \"ordersyncd --help\".\n", argv[optind]);
		return 1;
	}
	if (o.dbname == NULL || (o.slot == NULL && inb.addr == NULL))
	{
		fprintf(stderr, "ordersyncd: --dbname and --slot are required (or --inbound, to only receive)\n"
				"Try \"ordersyncd --help\" for more information.\n");
		return 1;
	}
	if (o.slot == NULL && (o.create_slot || o.snapshot || o.nsinks > 0 || o.endpos))
	{
		fprintf(stderr, "ordersyncd: --create-slot, --snapshot, --sink and --endpos need --slot "
				"(without it the relay only receives webhooks)\n");
		return 1;
	}
	if (o.slot && !slot_name_ok(o.slot))
	{
		fprintf(stderr, "ordersyncd: --slot \"%s\" is not a valid slot name (lower-case letters, "
				"digits and underscores, at most 63)\n", o.slot);
		return 1;
	}
	if (o.snapshot && !o.create_slot)
	{
		fprintf(stderr, "ordersyncd: --snapshot needs --create-slot (the snapshot is taken when the slot is created)\n");
		return 1;
	}
	if ((c = make_sink_policy(&o, &sink_policy, secret_dir)) != 0)
		return c;
	service_init(&o.status_interval_ms);

	setup_signals();
	/* options belong to sinks from a URI: a usage error before anything opens */
	for (int i = 0; i < o.nsinks; i++)
	{
		const struct sink_ops *kind = sink_kind_for(o.sinks[i]);

		if (o.sink_options[i] && kind && (kind->flags & SINK_LOCAL))
		{
			log_error("--sink-options is for webhook, Kafka and RabbitMQ sinks, not %s", o.sinks[i]);
			return 1;
		}
	}
	if (o.nsinks == 0 && o.slot)
		log_info("no --sink: events go only to the sinks configured in ordersync.sink");
	if (o.metrics_addr && metrics_start(o.metrics_addr, err, sizeof(err)) != 0)
	{
		log_error("%s", err);
		return 2;
	}
	if (inb.addr)
	{
		inb.conninfo = o.dbname;
		inb.policy = &sink_policy;
		if (inbound_start(&inb, err, sizeof(err)) != 0)
		{
			log_error("%s", err);
			metrics_stop();
			return 2;
		}
	}
	if (o.slot == NULL)
	{
		/* only receiving: the endpoint's threads do the work until a signal */
		service_ready();
		while (!stream_stop_requested)
			sleep_ms(1000);
		log_info("stopping: finishing the webhooks under way");
		service_stopping();
		inbound_stop();
		metrics_stop();
		free(sink_policy.deny);
		return 0;
	}

	rcfg = (struct relay_config) {
		.source = o.source ? o.source : "/ordersync",
		.prefix = "ordersync",
		.raw_changes = o.raw_changes,
		.stop_on_bad_input = o.stop_on_bad_input,
		.conninfo = o.dbname,
		.max_pending_bytes = o.max_pending_bytes,
		.sink_policy = &sink_policy,
		.endpos = o.endpos,
	};
	if (relay_init(&relay, &rcfg) != 0)
	{
		log_error("out of memory");
		return 2;
	}
	/* every --sink, in order: files and stdout, webhooks, Kafka, RabbitMQ */
	for (int i = 0; i < o.nsinks; i++)
	{
		if (delivery_add_cli_sink(&relay.dl, o.sinks[i], o.sink_options[i], err, sizeof(err)) != 0)
		{
			log_error("%s", err);
			relay_free(&relay);
			return 2;
		}
	}
	memset(&st, 0, sizeof(st));
	backoff_init(&bo, o.reconnect_min_ms, o.reconnect_max_ms);

	for (;;)
	{
		enum stream_rc rc = stream_session(&o, &relay, &st);
		uint32_t	rnd = 0,
					delay;

		if (rc == STREAM_STOP)
			break;
		if (rc != STREAM_RETRY)
		{
			exit_code = (int) rc;
			break;
		}
		if (stream_stop_requested)
			break;
		if (st.reached_streaming)
		{
			/* it worked until now: start the backoff from the bottom again */
			metrics_reconnect();
			backoff_reset(&bo);
		}
		if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t) sizeof(rnd))
			rnd = (uint32_t) time(NULL);
		delay = backoff_next(&bo, rnd);
		log_info("reconnecting in %u ms", delay);
		service_status("reconnecting in %u ms", delay);
		sleep_ms(delay);
		if (stream_stop_requested)
			break;
	}

	{
		char		l[LSN_TEXT_MAX];

		log_info("stopped; last confirmed LSN %s", lsn_format(relay.durable_end, l));
	}
	service_stopping();
	inbound_stop();
	metrics_stop();
	relay_free(&relay);
	free(sink_policy.deny);
	return exit_code;
}
