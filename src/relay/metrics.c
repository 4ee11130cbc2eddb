/*
 * metrics.c — Prometheus metrics and health endpoint (see metrics.h).
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "buf.h"
#include "lsn.h"
#include "metrics.h"

#define MAX_SINKS 16
#define MAX_SERIES 512
#define MAX_LANE_SINKS 64

struct series
{
	int			sink;
	bool		lane;			/* sink is a delivery (lane) sink's id, not a file's */
	char		type[160];		/* without the "ordersync." prefix */
	uint64_t	events;
	uint64_t	bytes;
};

struct lane_sink_series
{
	char		name[80];
	uint64_t	accepted;
	uint64_t	accepted_bytes;
	uint64_t	retries;
	uint64_t	dead;
	uint64_t	unfiltered;
	uint64_t	outstanding;
};

/* commit -> durable delay buckets, in seconds */
static const double lat_bounds[] = {0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015,
	0.02, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBOUNDS (sizeof(lat_bounds) / sizeof(lat_bounds[0]))

static struct
{
	pthread_mutex_t lock;
	char	   *sinks[MAX_SINKS];
	int			nsinks;
	struct series series[MAX_SERIES];
	int			nseries;
	struct lane_sink_series lane_sinks[MAX_LANE_SINKS];
	int			nlane_sinks;
	uint64_t	overflow_events;	/* series beyond MAX_SERIES, still counted */
	uint64_t	invalid;
	uint64_t	forged;
	uint64_t	config_refused;
	uint64_t	reconnects;
	uint64_t	transactions;
	uint64_t	fsyncs;
	bool		connected;
	int			standby_holder;	/* PID holding the slot while we stand by */
	uint64_t	confirmed_lsn;
	uint64_t	server_lsn;
	double		lag_seconds;
	int64_t		retained_wal;
	uint64_t	lat_buckets[NBOUNDS];
	uint64_t	lat_count;
	double		lat_sum;
	time_t		started;
}			m = {.lock = PTHREAD_MUTEX_INITIALIZER, .retained_wal = -1};

static struct MHD_Daemon *daemon_handle;

/* inbound requests by channel, outcome and reason; guarded by m.lock */
#define MAX_INBOUND_SERIES 256
static struct
{
	struct
	{
		char		channel[64];
		char		outcome[16];
		char		reason[32];
		uint64_t	n;
	}			series[MAX_INBOUND_SERIES];
	int			nseries;
	uint64_t	overflow;		/* beyond the limit: counted, without labels */
	uint64_t	applied, stale, parked, failed;
}			in;

void
metrics_inbound(const char *channel, const char *outcome, const char *reason)
{
	int			i;

	pthread_mutex_lock(&m.lock);
	for (i = 0; i < in.nseries; i++)
		if (strcmp(in.series[i].channel, channel) == 0 &&
			strcmp(in.series[i].outcome, outcome) == 0 &&
			strcmp(in.series[i].reason, reason ? reason : "") == 0)
			break;
	if (i == in.nseries && in.nseries < MAX_INBOUND_SERIES)
	{
		snprintf(in.series[i].channel, sizeof(in.series[i].channel), "%s", channel);
		snprintf(in.series[i].outcome, sizeof(in.series[i].outcome), "%s", outcome);
		snprintf(in.series[i].reason, sizeof(in.series[i].reason), "%s", reason ? reason : "");
		in.nseries++;
	}
	if (i < in.nseries)
		in.series[i].n++;
	else
		in.overflow++;
	pthread_mutex_unlock(&m.lock);
}

void
metrics_inbound_applied(uint64_t applied, uint64_t stale, uint64_t parked, uint64_t failed)
{
	pthread_mutex_lock(&m.lock);
	in.applied += applied;
	in.stale += stale;
	in.parked += parked;
	in.failed += failed;
	pthread_mutex_unlock(&m.lock);
}

int
metrics_add_sink(const char *name)
{
	int			id = -1;

	pthread_mutex_lock(&m.lock);
	if (m.started == 0)
		m.started = time(NULL);
	if (m.nsinks < MAX_SINKS)
	{
		id = m.nsinks++;
		m.sinks[id] = strdup(name);
	}
	pthread_mutex_unlock(&m.lock);
	return id;
}

/* One event of type to a sink: files and stdout (lane false) or delivery sinks. */
static void
count_event(int sink, bool lane, const char *type, size_t bytes)
{
	static int	last = -1;		/* main thread only: most events repeat a type */
	struct series *s = NULL;

	if (sink < 0)
		return;
	pthread_mutex_lock(&m.lock);
	if (last >= 0 && m.series[last].sink == sink && m.series[last].lane == lane &&
		strcmp(m.series[last].type, type) == 0)
		s = &m.series[last];
	for (int i = 0; s == NULL && i < m.nseries; i++)
	{
		if (m.series[i].sink == sink && m.series[i].lane == lane &&
			strcmp(m.series[i].type, type) == 0)
		{
			s = &m.series[i];
			last = i;
		}
	}
	if (s == NULL && m.nseries < MAX_SERIES)
	{
		s = &m.series[m.nseries];
		s->sink = sink;
		s->lane = lane;
		snprintf(s->type, sizeof(s->type), "%s", type);
		last = m.nseries++;
	}
	if (s)
	{
		s->events++;
		s->bytes += bytes;
	}
	else
		m.overflow_events++;
	pthread_mutex_unlock(&m.lock);
}

void
metrics_event(int sink, const char *type, size_t bytes)
{
	count_event(sink, false, type, bytes);
}

void
metrics_delivered_event(int id, const char *type, size_t bytes)
{
	count_event(id, true, type, bytes);
}

int
metrics_register_lane_sink(const char *name)
{
	int			id;

	pthread_mutex_lock(&m.lock);
	/* a sink that comes back under its name keeps its counters */
	for (id = 0; id < m.nlane_sinks; id++)
		if (strcmp(m.lane_sinks[id].name, name) == 0)
			break;
	if (id == m.nlane_sinks && m.nlane_sinks < MAX_LANE_SINKS)
		snprintf(m.lane_sinks[m.nlane_sinks++].name, sizeof(m.lane_sinks[0].name), "%s", name);
	if (id >= MAX_LANE_SINKS)
		id = -1;
	pthread_mutex_unlock(&m.lock);
	return id;
}

void
metrics_delivery(int id, enum delivery_outcome outcome, size_t bytes)
{
	if (id < 0)
		return;
	pthread_mutex_lock(&m.lock);
	switch (outcome)
	{
		case DELIVERY_ACCEPTED:
			m.lane_sinks[id].accepted++;
			m.lane_sinks[id].accepted_bytes += bytes;
			break;
		case DELIVERY_RETRY:
			m.lane_sinks[id].retries++;
			break;
		case DELIVERY_DEAD:
			m.lane_sinks[id].dead++;
			break;
		case DELIVERY_UNFILTERED:
			m.lane_sinks[id].unfiltered++;
			break;
	}
	pthread_mutex_unlock(&m.lock);
}

void
metrics_set_outstanding(int id, uint64_t n)
{
	if (id < 0)
		return;
	pthread_mutex_lock(&m.lock);
	m.lane_sinks[id].outstanding = n;
	pthread_mutex_unlock(&m.lock);
}

#define SIMPLE_SETTER(fn, decl, stmt) \
	void fn(decl) { pthread_mutex_lock(&m.lock); stmt; pthread_mutex_unlock(&m.lock); }

SIMPLE_SETTER(metrics_invalid, void, m.invalid++)
SIMPLE_SETTER(metrics_forged, void, m.forged++)
SIMPLE_SETTER(metrics_config_refused, void, m.config_refused++)
SIMPLE_SETTER(metrics_reconnect, void, m.reconnects++)
SIMPLE_SETTER(metrics_transactions, uint64_t n, m.transactions += n)
SIMPLE_SETTER(metrics_fsync, void, m.fsyncs++)
SIMPLE_SETTER(metrics_set_connected, bool c, m.connected = c)
SIMPLE_SETTER(metrics_set_standby, int pid, m.standby_holder = pid)
SIMPLE_SETTER(metrics_set_server_lsn, uint64_t lsn, if (lsn > m.server_lsn) m.server_lsn = lsn)
SIMPLE_SETTER(metrics_set_retained_wal, int64_t b, m.retained_wal = b)

void
metrics_set_confirmed(uint64_t lsn, double lag)
{
	pthread_mutex_lock(&m.lock);
	m.confirmed_lsn = lsn;
	if (lag >= 0)
		m.lag_seconds = lag;
	if (lsn > m.server_lsn)
		m.server_lsn = lsn;
	pthread_mutex_unlock(&m.lock);
}

void
metrics_observe_latency(double seconds, uint64_t count)
{
	pthread_mutex_lock(&m.lock);
	for (size_t i = 0; i < NBOUNDS; i++)
		if (seconds <= lat_bounds[i])
			m.lat_buckets[i] += count;
	m.lat_count += count;
	m.lat_sum += seconds * (double) count;
	pthread_mutex_unlock(&m.lock);
}

/* Label values: escape backslash, quote and newline as Prometheus requires. */
static void
append_label(struct buf *b, const char *v)
{
	for (; *v; v++)
	{
		if (*v == '\\' || *v == '"')
		{
			buf_append(b, "\\", 1);
			buf_append(b, v, 1);
		}
		else if (*v == '\n')
			buf_append(b, "\\n", 2);
		else
			buf_append(b, v, 1);
	}
}

static void
appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
appendf(struct buf *b, const char *fmt, ...)
{
	char		tmp[512];
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		buf_append(b, tmp, (size_t) n < sizeof(tmp) ? (size_t) n : sizeof(tmp) - 1);
}

char *
metrics_render(size_t *len)
{
	struct buf	b;
	char		lsn[LSN_TEXT_MAX];

	buf_init(&b);
	pthread_mutex_lock(&m.lock);

	buf_append_str(&b, "# HELP ordersyncd_events_total Events a sink took (file and stdout: written; delivery sinks: accepted), by event type.\n"
				   "# TYPE ordersyncd_events_total counter\n");
	for (int i = 0; i < m.nseries; i++)
	{
		buf_append_str(&b, "ordersyncd_events_total{sink=\"");
		append_label(&b, m.series[i].lane ? m.lane_sinks[m.series[i].sink].name :
					 m.sinks[m.series[i].sink]);
		buf_append_str(&b, "\",type=\"ordersync.");
		append_label(&b, m.series[i].type);
		appendf(&b, "\"} %llu\n", (unsigned long long) m.series[i].events);
	}
	buf_append_str(&b, "# HELP ordersyncd_bytes_total Bytes of the events a sink took, by event type.\n"
				   "# TYPE ordersyncd_bytes_total counter\n");
	for (int i = 0; i < m.nseries; i++)
	{
		buf_append_str(&b, "ordersyncd_bytes_total{sink=\"");
		append_label(&b, m.series[i].lane ? m.lane_sinks[m.series[i].sink].name :
					 m.sinks[m.series[i].sink]);
		buf_append_str(&b, "\",type=\"ordersync.");
		append_label(&b, m.series[i].type);
		appendf(&b, "\"} %llu\n", (unsigned long long) m.series[i].bytes);
	}
	{
		static const struct
		{
			const char *name;
			const char *help;
			const char *type;
			size_t		offset;
		}			dm[] = {
			{"ordersyncd_delivered_total", "Events a delivery sink accepted.", "counter",
			offsetof(struct lane_sink_series, accepted)},
			{"ordersyncd_delivered_bytes_total", "Bytes of events a delivery sink accepted.", "counter",
			offsetof(struct lane_sink_series, accepted_bytes)},
			{"ordersyncd_delivery_retries_total", "Failed delivery attempts that are retried.", "counter",
			offsetof(struct lane_sink_series, retries)},
			{"ordersyncd_dead_letters_total", "Events written to ordersync.dead_letter.", "counter",
			offsetof(struct lane_sink_series, dead)},
			{"ordersyncd_personal_data_unfiltered_total", "Events the personal-data filter could not process: dead letters, never sent.", "counter",
			offsetof(struct lane_sink_series, unfiltered)},
			{"ordersyncd_delivery_outstanding", "Events handed to a delivery sink and not yet finished.", "gauge",
			offsetof(struct lane_sink_series, outstanding)},
		};

		for (size_t k = 0; k < sizeof(dm) / sizeof(dm[0]); k++)
		{
			appendf(&b, "# HELP %s %s\n# TYPE %s %s\n", dm[k].name, dm[k].help, dm[k].name, dm[k].type);
			for (int i = 0; i < m.nlane_sinks; i++)
			{
				appendf(&b, "%s{sink=\"", dm[k].name);
				append_label(&b, m.lane_sinks[i].name);
				appendf(&b, "\"} %llu\n", (unsigned long long)
						*(const uint64_t *) ((const char *) &m.lane_sinks[i] + dm[k].offset));
			}
		}
	}
	appendf(&b, "# HELP ordersyncd_untracked_events_total Events beyond the per-type series limit.\n"
			"# TYPE ordersyncd_untracked_events_total counter\n"
			"ordersyncd_untracked_events_total %llu\n", (unsigned long long) m.overflow_events);
	appendf(&b, "# HELP ordersyncd_invalid_events_total Bad input lines reported as ordersync.relay.invalid events.\n"
			"# TYPE ordersyncd_invalid_events_total counter\n"
			"ordersyncd_invalid_events_total %llu\n", (unsigned long long) m.invalid);
	appendf(&b, "# HELP ordersyncd_forged_messages_total Messages with ordersync's prefix that ordersync never writes (relay.*, non-transactional).\n"
			"# TYPE ordersyncd_forged_messages_total counter\n"
			"ordersyncd_forged_messages_total %llu\n", (unsigned long long) m.forged);
	appendf(&b, "# HELP ordersyncd_config_refused_total Sink, route or redelivery rows the relay refused.\n"
			"# TYPE ordersyncd_config_refused_total counter\n"
			"ordersyncd_config_refused_total %llu\n", (unsigned long long) m.config_refused);
	appendf(&b, "# HELP ordersyncd_transactions_total Transactions made durable in every sink.\n"
			"# TYPE ordersyncd_transactions_total counter\n"
			"ordersyncd_transactions_total %llu\n", (unsigned long long) m.transactions);
	appendf(&b, "# HELP ordersyncd_fsyncs_total Sink sync rounds (each may cover many transactions).\n"
			"# TYPE ordersyncd_fsyncs_total counter\n"
			"ordersyncd_fsyncs_total %llu\n", (unsigned long long) m.fsyncs);
	appendf(&b, "# HELP ordersyncd_reconnects_total Replication connections re-established after a failure.\n"
			"# TYPE ordersyncd_reconnects_total counter\n"
			"ordersyncd_reconnects_total %llu\n", (unsigned long long) m.reconnects);
	appendf(&b, "# HELP ordersyncd_connected 1 while streaming from the server.\n"
			"# TYPE ordersyncd_connected gauge\n"
			"ordersyncd_connected %d\n", m.connected ? 1 : 0);
	appendf(&b, "# HELP ordersyncd_active 1 while this relay holds the slot and streams (the active one of a pair).\n"
			"# TYPE ordersyncd_active gauge\n"
			"ordersyncd_active %d\n", m.connected ? 1 : 0);
	appendf(&b, "# HELP ordersyncd_standby 1 while this relay stands by because another process holds the slot.\n"
			"# TYPE ordersyncd_standby gauge\n"
			"ordersyncd_standby %d\n", m.standby_holder > 0 ? 1 : 0);
	appendf(&b, "# HELP ordersyncd_confirmed_lsn Last LSN confirmed (flushed) to the server, as a number.\n"
			"# TYPE ordersyncd_confirmed_lsn gauge\n"
			"ordersyncd_confirmed_lsn{lsn=\"%s\"} %llu\n",
			lsn_format(m.confirmed_lsn, lsn), (unsigned long long) m.confirmed_lsn);
	appendf(&b, "# HELP ordersyncd_lag_bytes Server WAL position minus the confirmed LSN.\n"
			"# TYPE ordersyncd_lag_bytes gauge\n"
			"ordersyncd_lag_bytes %llu\n",
			(unsigned long long) (m.server_lsn > m.confirmed_lsn ? m.server_lsn - m.confirmed_lsn : 0));
	appendf(&b, "# HELP ordersyncd_lag_seconds Commit-to-durable delay of the last confirmed transaction.\n"
			"# TYPE ordersyncd_lag_seconds gauge\n"
			"ordersyncd_lag_seconds %.6f\n", m.lag_seconds);
	appendf(&b, "# HELP ordersyncd_slot_retained_wal_bytes WAL the slot keeps on the server (-1: unknown).\n"
			"# TYPE ordersyncd_slot_retained_wal_bytes gauge\n"
			"ordersyncd_slot_retained_wal_bytes %lld\n", (long long) m.retained_wal);
	buf_append_str(&b, "# HELP ordersyncd_commit_to_durable_seconds Delay from commit to durable in every sink, per event.\n"
				   "# TYPE ordersyncd_commit_to_durable_seconds histogram\n");
	for (size_t i = 0; i < NBOUNDS; i++)
		appendf(&b, "ordersyncd_commit_to_durable_seconds_bucket{le=\"%g\"} %llu\n",
				lat_bounds[i], (unsigned long long) m.lat_buckets[i]);
	appendf(&b, "ordersyncd_commit_to_durable_seconds_bucket{le=\"+Inf\"} %llu\n"
			"ordersyncd_commit_to_durable_seconds_sum %.6f\n"
			"ordersyncd_commit_to_durable_seconds_count %llu\n",
			(unsigned long long) m.lat_count, m.lat_sum, (unsigned long long) m.lat_count);
	{
		static const char *const outcomes[][3] = {
			{"received", "ordersyncd_inbound_received_total", "Webhooks kept in ordersync.inbox, by channel."},
			{"duplicate", "ordersyncd_inbound_duplicates_total", "Repeats of an event a channel sent before: 2xx, nothing written."},
			{"refused", "ordersyncd_inbound_refused_total", "Webhooks refused (4xx, 5xx), by channel and reason."},
		};

		for (size_t k = 0; k < sizeof(outcomes) / sizeof(outcomes[0]); k++)
		{
			appendf(&b, "# HELP %s %s\n# TYPE %s counter\n", outcomes[k][1], outcomes[k][2], outcomes[k][1]);
			for (int i = 0; i < in.nseries; i++)
			{
				if (strcmp(in.series[i].outcome, outcomes[k][0]) != 0)
					continue;
				appendf(&b, "%s{channel=\"", outcomes[k][1]);
				append_label(&b, in.series[i].channel);
				if (in.series[i].reason[0])
				{
					buf_append_str(&b, "\",reason=\"");
					append_label(&b, in.series[i].reason);
				}
				appendf(&b, "\"} %llu\n", (unsigned long long) in.series[i].n);
			}
		}
		appendf(&b, "# HELP ordersyncd_inbound_untracked_total Inbound requests beyond the series limit.\n"
				"# TYPE ordersyncd_inbound_untracked_total counter\n"
				"ordersyncd_inbound_untracked_total %llu\n", (unsigned long long) in.overflow);
		{
			const struct
			{
				const char *name;
				const char *help;
				uint64_t	n;
			}			applier[] = {
				{"ordersyncd_inbound_applied_total", "Inbox rows the relay's applier applied.", in.applied},
				{"ordersyncd_inbound_stale_total", "Inbox status updates older than the last applied one.", in.stale},
				{"ordersyncd_inbound_parked_total", "Attempts the state machine could not take yet (parked).", in.parked},
				{"ordersyncd_inbound_failed_total", "Inbox rows the relay's applier found failed.", in.failed},
			};

			for (size_t k = 0; k < sizeof(applier) / sizeof(applier[0]); k++)
				appendf(&b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", applier[k].name,
						applier[k].help, applier[k].name, applier[k].name,
						(unsigned long long) applier[k].n);
		}
	}
	appendf(&b, "# HELP ordersyncd_start_time_seconds Process start time.\n"
			"# TYPE ordersyncd_start_time_seconds gauge\n"
			"ordersyncd_start_time_seconds %lld\n", (long long) m.started);
	pthread_mutex_unlock(&m.lock);
	*len = b.len;
	return b.data ? b.data : strdup("");
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
	   const char *version, const char *upload_data, size_t *upload_data_size, void **ptr)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned	status = MHD_HTTP_OK;
	const char *ctype = "text/plain; version=0.0.4; charset=utf-8";
	const char *role = NULL;
	char	   *body;
	size_t		len;

	(void) cls;
	(void) version;
	(void) upload_data;
	(void) upload_data_size;
	(void) ptr;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
	{
		body = strdup("only GET is supported\n");
		len = strlen(body);
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
	}
	else if (strcmp(url, "/metrics") == 0)
		body = metrics_render(&len);
	else if (strcmp(url, "/healthz") == 0 || strcmp(url, "/livez") == 0)
	{
		bool		ok;
		int			holder;
		char		text[160];

		pthread_mutex_lock(&m.lock);
		ok = m.connected;
		holder = m.standby_holder;
		pthread_mutex_unlock(&m.lock);
		/*
		 * /healthz: 200 only for the active relay (a load balancer or a
		 * "which one works" check picks it); 503 for a standby and while
		 * reconnecting. /livez: 200 for both roles (the process does its
		 * job; a liveness probe must not restart a standby).
		 */
		if (ok)
			snprintf(text, sizeof(text), "ok: active, streaming\n");
		else if (holder > 0)
			snprintf(text, sizeof(text), "standby: the slot is in use by PID %d on the server; "
					 "taking over when it is released\n", holder);
		else
			snprintf(text, sizeof(text), "not streaming: reconnecting to the server\n");
		body = strdup(text);
		len = strlen(body);
		if (ok || (holder > 0 && url[1] == 'l'))
			status = MHD_HTTP_OK;
		else
			status = MHD_HTTP_SERVICE_UNAVAILABLE;
		role = ok ? "active" : holder > 0 ? "standby" : "reconnecting";
	}
	else
	{
		body = strdup("not found: try /metrics, /healthz or /livez\n");
		len = strlen(body);
		status = MHD_HTTP_NOT_FOUND;
	}
	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(resp, "Content-Type", ctype);
	if (role)
		MHD_add_response_header(resp, "X-Ordersyncd-Role", role);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

int
metrics_start(const char *addr, char *err, size_t errlen)
{
	char		host[256];
	const char *colon = strrchr(addr, ':');
	struct addrinfo hints = {0},
			   *res = NULL;
	int			rc;

	pthread_mutex_lock(&m.lock);
	if (m.started == 0)
		m.started = time(NULL);
	pthread_mutex_unlock(&m.lock);
	if (colon == NULL || colon == addr || colon[1] == '\0' ||
		(size_t) (colon - addr) >= sizeof(host))
	{
		snprintf(err, errlen, "bad --metrics-addr \"%s\": use HOST:PORT, e.g. 127.0.0.1:9187", addr);
		return -1;
	}
	memcpy(host, addr, (size_t) (colon - addr));
	host[colon - addr] = '\0';
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc != 0)
	{
		snprintf(err, errlen, "bad --metrics-addr \"%s\": %s (use an IPv4 HOST:PORT, e.g. 127.0.0.1:9187)",
				 addr, gai_strerror(rc));
		return -1;
	}
	daemon_handle = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
									 0, NULL, NULL, handle, NULL,
									 MHD_OPTION_SOCK_ADDR, res->ai_addr,
									 MHD_OPTION_CONNECTION_LIMIT, (unsigned) 16,
									 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 10,
									 MHD_OPTION_END);
	freeaddrinfo(res);
	if (daemon_handle == NULL)
	{
		snprintf(err, errlen, "cannot listen on --metrics-addr %s: the port is in use or not "
				 "allowed; choose another HOST:PORT", addr);
		return -1;
	}
	return 0;
}

void
metrics_stop(void)
{
	if (daemon_handle)
		MHD_stop_daemon(daemon_handle);
	daemon_handle = NULL;
}
