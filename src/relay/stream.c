/*
 * stream.c — the replication session (see stream.h).
 *
 * Shaped like PostgreSQL's pg_recvlogical: PQgetCopyData in async mode,
 * select() with a timeout so status updates go out on time, keepalives
 * that ask for a reply answered at once. Different from it: the flush
 * position sent to the server is the relay's durable_end, which only moves
 * after every sink has fsynced whole transactions.
 */
#define _GNU_SOURCE				/* ppoll */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "log.h"
#include "lsn.h"
#include "metrics.h"
#include "pgerr.h"
#include "service.h"
#include "snapshot.h"
#include "stream.h"
#include "stream_standby.h"
#include "trust.h"
#include "ts.h"

volatile sig_atomic_t stream_stop_requested = 0;
volatile sig_atomic_t stream_reopen_requested = 0;
int			stream_wake_fd = -1;

/*
 * A moved confirmation goes to the server at most this often while
 * streaming: with remote sinks the watermark moves at almost every answer,
 * and a status update per answer cost the relay 2-5% of its CPU in
 * bench/sinks/webhook.sh (and the walsender reads each). The last one, on the way out
 * (SIGTERM, --endpos), is never held back: end_session sends it at once.
 */
#define FEEDBACK_MIN_GAP_MS 10

/*
 * A busy stream is read in gulps: after a wait that brought lines, the next
 * wait does not wake for the replication socket but lasts STREAM_GATHER_USEC
 * (or less, when a sink or timer needs the loop sooner), and then takes
 * whatever has come. The walsender sends every change as it is decoded;
 * waking for each (on a stream the relay reads faster than the server
 * decodes) took two to three poll()+recv() pairs and context switches per
 * transaction, a fifth of the relay's CPU with the file sink
 * (bench/sinks/relay_cpu.sh: 4.0 -> 3.1-3.6 us per event). A change waits
 * at most this long more, and only while the stream is busy: the first one
 * after a quiet spell still wakes the relay at once. Sinks' descriptors
 * (answers, finished syncs) wake it as before.
 *
 * The gulp must stay well below what fills the socket: while the relay
 * sleeps, the walsender can only write until the socket's buffer is full
 * (a local socket's holds about 200 kB by default on Linux, one
 * millisecond of a fast stream) and then stops decoding. Gulps of 1 ms
 * cut the relay's throughput to 0.73-0.82 of pg_recvlogical's in
 * bench/relay/run.sh (140k events/s against 210k without gathering in
 * relay_cpu.sh); 100 us keeps the CPU saved and the throughput (0.96-1.09
 * of pg_recvlogical's, 208-222k events/s).
 */
#define STREAM_GATHER_USEC 100

/* Seconds from the Unix epoch to PostgreSQL's epoch (2000-01-01). */
#define PG_EPOCH_OFFSET_USEC INT64_C(946684800000000)

static int64_t
mono_ms(void)
{
	return ts_mono_usec() / 1000;
}

static int64_t
pg_now_usec(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t) tv.tv_sec * 1000000 + tv.tv_usec - PG_EPOCH_OFFSET_USEC;
}

static void
put_u64(char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (char) (v & 0xFF);
}

static uint64_t
get_u64(const char *p)
{
	uint64_t	v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | (unsigned char) p[i];
	return v;
}

/* Log a failed result or connection with advice; returns the session outcome. */
static enum stream_rc
report(const char *what, PGconn *conn, PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
	char		clean[1024];
	struct pgerr_advice a;
	size_t		n;

	if (msg == NULL || *msg == '\0')
		msg = PQerrorMessage(conn);
	snprintf(clean, sizeof(clean), "%s", msg ? msg : "unknown error");
	n = strlen(clean);
	while (n > 0 && (clean[n - 1] == '\n' || clean[n - 1] == ' '))
		clean[--n] = '\0';
	a = pgerr_classify(state, clean);
	if (a.transient)
		log_warning("%s: %s%s%s", what, clean, *a.hint ? "\nHINT: " : "", a.hint);
	else
		log_error("%s: %s%s%s", what, clean, *a.hint ? "\nHINT: " : "", a.hint);
	return a.transient ? STREAM_RETRY : STREAM_FATAL;
}

static int
send_feedback(PGconn *conn, const struct relay *r, bool reply_requested)
{
	char		msg[1 + 8 + 8 + 8 + 8 + 1];
	uint64_t	write_pos = r->received_end > r->durable_end ? r->received_end : r->durable_end;

	msg[0] = 'r';
	put_u64(msg + 1, write_pos);		/* received (queued/written) */
	put_u64(msg + 9, r->durable_end);	/* flushed: what the slot may forget */
	put_u64(msg + 17, r->durable_end);	/* applied */
	put_u64(msg + 25, (uint64_t) pg_now_usec());
	msg[33] = reply_requested ? 1 : 0;
	if (PQputCopyData(conn, msg, sizeof(msg)) <= 0 || PQflush(conn) != 0)
	{
		log_warning("could not send a status update to the server: %s", PQerrorMessage(conn));
		return -1;
	}
	log_debug("status update: write %X/%X flush %X/%X",
			  (unsigned) (write_pos >> 32), (unsigned) write_pos,
			  (unsigned) (r->durable_end >> 32), (unsigned) r->durable_end);
	return 0;
}

static PGconn *
connect_db(const struct options *o, bool replication)
{
	const char *keys[] = {"connect_timeout", "dbname", "replication", "fallback_application_name", NULL};
	const char *vals[] = {"10", o->dbname, replication ? "database" : NULL,
		replication ? "ordersyncd" : "ordersyncd-side", NULL};

	if (!replication)
	{
		/* drop the replication keyword: stop the arrays before it */
		keys[2] = "fallback_application_name";
		vals[2] = vals[3];
		keys[3] = NULL;
		vals[3] = NULL;
	}
	return PQconnectdbParams(keys, vals, 1);
}

/* Run a replication command that returns tuples; NULL after reporting. */
static PGresult *
run(PGconn *conn, const char *sql, const char *what, enum stream_rc *rc)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		*rc = report(what, conn, res);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* 0 if the server can serve us; else -1 with *rc set. */
static int
check_server(PGconn *conn, const struct options *o, struct relay *r,
			 struct stream_state *st, enum stream_rc *rc)
{
	PGresult   *res;

	res = run(conn, "IDENTIFY_SYSTEM", "IDENTIFY_SYSTEM failed", rc);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1 || PQnfields(res) < 4 || PQgetisnull(res, 0, 3))
	{
		log_error("the connection is not a database replication connection: "
				  "do not set replication= in --dbname, ordersyncd adds replication=database");
		PQclear(res);
		*rc = STREAM_FATAL;
		return -1;
	}
	if (o->source == NULL)
	{
		snprintf(st->source, sizeof(st->source), "/ordersync/%s", PQgetvalue(res, 0, 3));
		r->cfg.source = st->source;
	}
	/* which server this is: a failover changes the timeline (stream_failover.h) */
	snprintf(st->server.system_id, sizeof(st->server.system_id), "%s", PQgetvalue(res, 0, 0));
	st->server.timeline = (uint32_t) strtoul(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);

	res = run(conn, "SHOW server_encoding", "could not read server_encoding", rc);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "UTF8") != 0)
	{
		log_error("the database encoding is %s, but ordersyncd emits JSON (UTF-8) and needs a "
				  "UTF8 database\nHINT: create the database WITH ENCODING 'UTF8'",
				  PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "?");
		PQclear(res);
		*rc = STREAM_FATAL;
		return -1;
	}
	PQclear(res);

	res = run(conn, "SHOW wal_level", "could not read wal_level", rc);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "logical") != 0)
	{
		log_error("the server runs with wal_level = %s, but logical decoding needs wal_level = logical\n"
				  "HINT: as a superuser run\n    ALTER SYSTEM SET wal_level = logical\n"
				  "then restart PostgreSQL", PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "?");
		PQclear(res);
		*rc = STREAM_FATAL;
		return -1;
	}
	PQclear(res);
	return 0;
}

/* Nobody but ordersync may write what the relay acts on (trust.h). */
static int
check_trust(PGconn *conn, const struct options *o, enum stream_rc *rc)
{
	switch (trust_check_emitters(conn, o->allow_forgeable_events))
	{
		case TRUST_OK:
			trust_warn_writers(conn);
			return 0;
		case TRUST_REFUSED:
			*rc = STREAM_FATAL;
			return -1;
		default:
			*rc = PQstatus(conn) == CONNECTION_OK ? STREAM_FATAL : STREAM_RETRY;
			return -1;
	}
}

/*
 * The sinks configured in the database; without them nothing may be
 * confirmed. Read once: from then on the row changes of ordersync.sink and
 * ordersync.route in the stream keep the configuration exactly as of the
 * position it has read
 * (after a reconnect, reading it again could apply a change whose
 * transaction comes later in the stream to the events before it).
 */
static int
load_sinks(PGconn *conn, struct relay *r, struct stream_state *st, enum stream_rc *rc)
{
	if (delivery_load_config(&r->dl, conn) == 0)
	{
		st->sinks_loaded = true;
		return 0;
	}
	*rc = PQstatus(conn) == CONNECTION_OK ? STREAM_FATAL : STREAM_RETRY;
	return -1;
}

/*
 * Make sure the slot exists and decodes with wal2json; create it (and take
 * the snapshot) when asked. 0 or -1 with *rc set.
 */
static int
prepare_slot(PGconn *conn, const struct options *o, struct relay *r, enum stream_rc *rc)
{
	char		sql[512];
	char	   *lit;
	PGresult   *res;

	if (o->create_slot)
	{
		snprintf(sql, sizeof(sql), "CREATE_REPLICATION_SLOT \"%s\" LOGICAL wal2json (SNAPSHOT '%s')",
				 o->slot, o->snapshot ? "export" : "nothing");
		res = PQexec(conn, sql);
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
		{
			uint64_t	cp = 0;

			if (lsn_parse(PQgetvalue(res, 0, 1), &cp) != 0)
				cp = 0;
			log_info("created replication slot \"%s\" at %s", o->slot, PQgetvalue(res, 0, 1));
			if (o->snapshot)
			{
				char		err[1024];
				int			src = snapshot_emit(o, r, PQgetvalue(res, 0, 2), cp, err, sizeof(err));

				if (src != 0)
				{
					log_error("initial snapshot failed: %s", err);
					PQclear(res);
					/* without its snapshot the new slot would silently miss the open orders */
					snprintf(sql, sizeof(sql), "DROP_REPLICATION_SLOT \"%s\"", o->slot);
					PQclear(PQexec(conn, sql));
					log_error("dropped the new slot \"%s\" again; fix the problem above and rerun "
							  "with --create-slot --snapshot", o->slot);
					*rc = src == SNAPSHOT_SINK_ERROR ? STREAM_SINK : STREAM_FATAL;
					return -1;
				}
			}
			PQclear(res);
			return 0;
		}
		if (PQresultErrorField(res, PG_DIAG_SQLSTATE) == NULL ||
			strcmp(PQresultErrorField(res, PG_DIAG_SQLSTATE), "42710") != 0)
		{
			*rc = report("could not create the replication slot", conn, res);
			PQclear(res);
			return -1;
		}
		PQclear(res);
		if (o->snapshot)
			log_warning("slot \"%s\" already exists: --snapshot only applies when the slot is "
						"created, so no snapshot was taken (streaming continues where the slot is)",
						o->slot);
		else
			log_info("replication slot \"%s\" already exists; using it", o->slot);
	}

	/* SQL works on replication=database connections: check what the slot decodes with */
	lit = PQescapeLiteral(conn, o->slot, strlen(o->slot));
	snprintf(sql, sizeof(sql),
			 "SELECT plugin, slot_type, database FROM pg_catalog.pg_replication_slots "
			 "WHERE slot_name = %s", lit ? lit : "''");
	PQfreemem(lit);
	res = run(conn, sql, "could not look up the replication slot", rc);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0)
	{
		log_error("replication slot \"%s\" does not exist\n"
				  "HINT: create it by adding --create-slot (and --snapshot for an initial "
				  "snapshot of open orders)", o->slot);
		*rc = STREAM_FATAL;
	}
	else if (strcmp(PQgetvalue(res, 0, 1), "logical") != 0 ||
			 strcmp(PQgetvalue(res, 0, 0), "wal2json") != 0)
	{
		log_error("replication slot \"%s\" is a %s slot with plugin \"%s\", not a wal2json "
				  "logical slot\nHINT: use another --slot, or drop it with "
				  "SELECT pg_drop_replication_slot('%s') and rerun with --create-slot",
				  o->slot, PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 0), o->slot);
		*rc = STREAM_FATAL;
	}
	else
	{
		PQclear(res);
		return 0;
	}
	PQclear(res);
	return -1;
}

/*
 * The tables whose row changes the relay reads: always its own control
 * tables (sink and route changes, redeliveries: they steer the relay, see
 * delivery.h), and with --raw-changes the --tables pattern. dead_letter
 * never leaves the server (it holds whole events, customer data included).
 * Quotes in the pattern are doubled: it goes into a string literal.
 */
static void
table_filters(const struct options *o, char *add, size_t addlen)
{
	size_t		n = (size_t) snprintf(add, addlen, "%s", DELIVERY_CONTROL_TABLES);

	if (o->raw_changes && n + 1 < addlen)
	{
		add[n++] = ',';
		for (const char *p = o->tables; *p && n + 2 < addlen; p++)
		{
			if (*p == '\'')
				add[n++] = '\'';
			add[n++] = *p;
		}
		add[n] = '\0';
	}
}

/*
 * 0 streaming; -1 with *rc set; -2 another process took the slot first
 * (another standby, between our question and this command): stand by again.
 */
static int
start_replication(PGconn *conn, const struct options *o, const struct relay *r, enum stream_rc *rc)
{
	char		sql[2048];
	char		tables[1024];
	char		start[LSN_TEXT_MAX];
	PGresult   *res;

	/*
	 * Start at what we know is durable; 0/0 means "where the slot is". The
	 * server never goes back before its confirmed position, and starts later
	 * if we ask, which skips what we made durable but could not confirm
	 * before a connection dropped.
	 */
	lsn_format(r->durable_end, start);
	table_filters(o, tables, sizeof(tables));
	snprintf(sql, sizeof(sql),
			 "START_REPLICATION SLOT \"%s\" LOGICAL %s ("
			 "\"format-version\" '2', \"include-xids\" '1', \"include-timestamp\" '1', "
			 "\"include-lsn\" '1', \"include-transaction\" '1', \"include-types\" '0', "
			 "\"add-msg-prefixes\" '%s', \"filter-tables\" 'ordersync.dead_letter', "
			 "\"add-tables\" '%s')",
			 o->slot, start, r->cfg.prefix, tables);
	log_debug("%s", sql);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COPY_BOTH &&
		PQresultErrorField(res, PG_DIAG_SQLSTATE) &&
		strcmp(PQresultErrorField(res, PG_DIAG_SQLSTATE), "55006") == 0)
	{
		log_info("replication slot \"%s\" was taken by another process a moment ago", o->slot);
		PQclear(res);
		return -2;
	}
	if (PQresultStatus(res) != PGRES_COPY_BOTH)
	{
		*rc = report("could not start streaming from the slot", conn, res);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	log_info("streaming from slot \"%s\" at %s", o->slot, start);
	return 0;
}

/* Retained WAL of the slot, via a plain side connection. -1 if unknown. */
static int64_t
retained_wal(const struct options *o, PGconn **side)
{
	const char *params[1] = {o->slot};
	PGresult   *res;
	int64_t		v = -1;

	if (*side == NULL || PQstatus(*side) != CONNECTION_OK)
	{
		PQfinish(*side);
		*side = connect_db(o, false);
		if (PQstatus(*side) != CONNECTION_OK)
		{
			log_debug("retained-WAL check: cannot connect: %s", PQerrorMessage(*side));
			return -1;
		}
	}
	res = PQexecParams(*side,
					   "SELECT pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), restart_lsn)::bigint "
					   "FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
					   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	else if (PQresultStatus(res) != PGRES_TUPLES_OK)
		log_debug("retained-WAL check failed: %s", PQresultErrorMessage(res));
	log_debug("retained-WAL check: %lld bytes", (long long) v);
	PQclear(res);
	return v;
}

int
stream_reopen_sinks(struct relay *r)
{
	bool		advanced;

	if (relay_sync(r) != RELAY_OK)
		return -1;
	delivery_reopen(&r->dl);
	if (relay_progress(r, &advanced) != RELAY_OK)
		return -1;
	log_info("SIGHUP: reopened the file sinks");
	return 0;
}

/* Sync and, if that moved the durable position, tell the server. */
static int
sync_and_confirm(PGconn *conn, struct relay *r, uint64_t *last_sent, int64_t *last_status)
{
	if (relay_sync(r) != RELAY_OK)
		return -1;
	if (r->durable_end > *last_sent && conn != NULL)
	{
		if (send_feedback(conn, r, false) == 0)
		{
			*last_sent = r->durable_end;
			*last_status = mono_ms();
		}
	}
	return 0;
}

/*
 * Tell the server when durable_end moved, unless the last status update is
 * less than FEEDBACK_MIN_GAP_MS old (the loop's wait ends when it is due);
 * -1 if the connection failed.
 */
static int
confirm_progress(PGconn *conn, struct relay *r, uint64_t *last_sent, int64_t *last_status)
{
	int64_t		now;

	if (r->durable_end <= *last_sent)
		return 0;
	now = mono_ms();
	if (now - *last_status < FEEDBACK_MIN_GAP_MS)
		return 0;
	if (send_feedback(conn, r, false) != 0)
		return -1;
	*last_sent = r->durable_end;
	*last_status = now;
	return 0;
}

/*
 * What the sinks finished (a background flush, deliveries) is confirmed to
 * the server.  False when the loop must stop: a sink failed (*rc set) or
 * the connection did (*alive cleared).
 */
static bool
progress(PGconn *conn, struct relay *r, uint64_t *last_sent, int64_t *last_status,
		 enum stream_rc *rc, bool *alive)
{
	bool		advanced;

	if (relay_progress(r, &advanced) != RELAY_OK)
	{
		log_error("%s", r->errmsg);
		*rc = STREAM_SINK;
		return false;
	}
	if (confirm_progress(conn, r, last_sent, last_status) != 0)
	{
		*alive = false;
		return false;
	}
	return true;
}

/* Take in what the server has sent, without waiting; false (logged) when the connection is lost. */
static bool
read_input(PGconn *conn)
{
	if (PQconsumeInput(conn) != 0)
		return true;
	log_warning("lost the replication connection: %s", PQerrorMessage(conn));
	return false;
}

/*
 * On the way out, give the delivery sinks a moment to finish what they
 * have, so that a restart repeats less. What they do not finish is simply
 * not confirmed.
 */
static void
drain_deliveries(struct relay *r, int max_ms)
{
	int64_t		until = mono_ms() + max_ms;
	bool		advanced;

	while (!delivery_idle(&r->dl) && mono_ms() < until)
		delivery_pump(&r->dl, 50);
	(void) relay_progress(r, &advanced);
}

/*
 * After our CopyDone, read (and drop) what the server still sends until it
 * ends the stream too, for at most max_ms: only then do we know the
 * walsender has read our last status update. Closing at once could lose
 * it: a walsender blocked writing to us tries to flush before it reads
 * again, fails on the closed socket and exits, and the slot keeps the
 * previous confirmation, so the next start repeats transactions the file
 * already holds (seen once in the SIGTERM test). pg_recvlogical drains
 * the same way. What is dropped here was never confirmed: it comes again.
 */
static void
drain_copy(PGconn *conn, int max_ms)
{
	int64_t		until = mono_ms() + max_ms;
	PGresult   *res;

	for (;;)
	{
		char	   *buf = NULL;
		int			len = PQgetCopyData(conn, &buf, 1);
		struct pollfd pfd;
		int64_t		left;

		if (len > 0)
		{
			PQfreemem(buf);
			continue;
		}
		if (len < 0)
			break;				/* -1: the server ended the stream; -2: the connection broke */
		left = until - mono_ms();
		if (left <= 0)
		{
			log_warning("the server did not end the replication stream within %d ms of "
						"ours; closing anyway (at worst the last confirmation is lost and a "
						"restart repeats the transactions after the previous one)", max_ms);
			return;
		}
		pfd = (struct pollfd) {.fd = PQsocket(conn), .events = POLLIN};
		if (poll(&pfd, 1, (int) left) < 0 && errno != EINTR)
			return;
		if (PQconsumeInput(conn) == 0)
			return;
	}
	/* the command's results: take what has come, never wait for more */
	while (PQconsumeInput(conn) && !PQisBusy(conn) && (res = PQgetResult(conn)) != NULL)
		PQclear(res);
}

/*
 * Leave the session: make complete transactions durable, cut an open one
 * from the sinks, confirm, and close. If the sinks failed, nothing more is
 * confirmed.
 */
static enum stream_rc
end_session(PGconn *conn, struct relay *r, enum stream_rc rc, bool alive,
			uint64_t *last_sent, int64_t *last_status)
{
	if (rc == STREAM_STOP)
		drain_deliveries(r, 5000);
	if (rc != STREAM_SINK)
	{
		/* the open transaction's lines go: the server sends it again */
		if (sync_and_confirm(alive ? conn : NULL, r, last_sent, last_status) != 0 ||
			relay_abort_txn(r) != RELAY_OK)
		{
			log_error("%s", r->errmsg);
			rc = STREAM_SINK;
		}
	}
	if (alive && rc != STREAM_SINK)
	{
		send_feedback(conn, r, false);
		PQputCopyEnd(conn, NULL);
		PQflush(conn);
		drain_copy(conn, 10000);
	}
	metrics_set_connected(false);
	return rc;
}

/*
 * Record in --state-file that this server confirmed lsn (stream_failover.h):
 * at once when force, else at most every STATE_SAVE_GAP_MS.
 */
#define STATE_SAVE_GAP_MS 1000

static void
save_state(const struct options *o, struct stream_state *st, uint64_t lsn, bool force)
{
	char		err[512];
	int64_t		now = mono_ms();
	bool		same = st->saved.known &&
		strcmp(st->saved.system_id, st->server.system_id) == 0 &&
		st->saved.timeline == st->server.timeline &&
		strcmp(st->saved.slot, o->slot) == 0;

	if (o->state_file == NULL || (same && lsn <= st->saved.confirmed) ||
		(!force && now - st->state_saved_ms < STATE_SAVE_GAP_MS))
		return;
	snprintf(st->saved.slot, sizeof(st->saved.slot), "%s", o->slot);
	memcpy(st->saved.system_id, st->server.system_id, sizeof(st->saved.system_id));
	st->saved.timeline = st->server.timeline;
	st->saved.confirmed = lsn;
	st->saved.confirmed_at = (int64_t) time(NULL);
	st->saved.known = true;
	st->state_saved_ms = now;
	if (failover_save(o->state_file, &st->saved, err, sizeof(err)) != 0)
		log_warning("%s (after a failover the relay could not tell what it missed)", err);
}

/*
 * Before the slot is used: is this the server and slot the relay last
 * confirmed to? 0 to go on (*gap: report the gap once the slot exists),
 * -1 with *rc set.
 */
static int
check_failover(PGconn *conn, const struct options *o, struct stream_state *st, bool *gap,
			   enum stream_rc *rc)
{
	char		err[512];

	*gap = false;
	if (o->state_file == NULL)
		return 0;
	if (!st->state_read)
	{
		if (failover_load(o->state_file, &st->saved, err, sizeof(err)) != 0)
		{
			log_error("%s", err);
			*rc = STREAM_FATAL;
			return -1;
		}
		st->state_read = true;
	}
	switch (failover_check(conn, o, &st->server, &st->saved))
	{
		case FAILOVER_OK:
			return 0;
		case FAILOVER_LOST:
			*rc = STREAM_RETRY;
			return -1;
		case FAILOVER_REFUSE:
			*rc = STREAM_FATAL;
			return -1;
		case FAILOVER_GAP:
			if (st->streamed_once)
			{
				/* this process's position belongs to the old server: start afresh */
				log_error("the relay exits so that a new start (systemd's Restart=) creates the "
						  "slot and reports the gap from --state-file");
				*rc = STREAM_FATAL;
				return -1;
			}
			st->slot_ready = false;
			*gap = true;
			return 0;
	}
	return 0;
}

enum stream_rc
stream_session(const struct options *o, struct relay *r, struct stream_state *st)
{
	PGconn	   *conn;
	PGconn	   *side = NULL;
	enum stream_rc rc = STREAM_RETRY;
	int64_t		last_status = 0;
	int64_t		first_unsynced = 0;
	int64_t		next_wal_check;
	uint64_t	last_sent = 0;
	bool		alive = true;
	bool		warned_wal = false;
	bool		warned_backlog = false;
	bool		hold;			/* backlogged or past --endpos: no reading */
	int64_t		last_pump = 0;
	unsigned	lines_since_pump = 0;
	unsigned	lines_since_wait = 0;
	unsigned	lines_since_read = 1;	/* nothing read yet: try */
	struct pollset ps = {0};
	uint64_t	slot_at = 0;

	st->reached_streaming = false;
	conn = connect_db(o, true);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		rc = report("could not connect to the server", conn, NULL);
		PQfinish(conn);
		return rc;
	}
	if (check_server(conn, o, r, st, &rc) != 0 ||
		check_trust(conn, o, &rc) != 0)
	{
		PQfinish(conn);
		return rc;
	}
	for (;;)
	{
		int			src;
		bool		gap;

		/* another relay streams from the slot: stand by (stream_standby.h) */
		switch (standby_wait(conn, o->slot, o->standby_poll_ms, stream_wake_fd,
							 &stream_stop_requested))
		{
			case STANDBY_FREE:
				break;
			case STANDBY_STOP:
				PQfinish(conn);
				return STREAM_STOP;
			case STANDBY_LOST:
				log_warning("lost the connection while standing by: %s", PQerrorMessage(conn));
				PQfinish(conn);
				return STREAM_RETRY;
		}
		if (check_failover(conn, o, st, &gap, &rc) != 0 ||
			(!st->sinks_loaded && load_sinks(conn, r, st, &rc) != 0) ||
			(!st->slot_ready && prepare_slot(conn, o, r, &rc) != 0))
		{
			PQfinish(conn);
			return rc;
		}
		if (gap)
			failover_report_gap(conn, o, &st->server, &st->saved);
		/* a fresh start streams from the slot's position: what to record */
		if (o->state_file && r->durable_end == 0 &&
			failover_slot_position(conn, o->slot, &slot_at) != 1)
			slot_at = 0;
		src = start_replication(conn, o, r, &rc);
		if (src == 0)
			break;
		if (src == -1)
		{
			PQfinish(conn);
			return rc;
		}
	}
	st->slot_ready = true;
	st->streamed_once = true;
	st->reached_streaming = true;
	metrics_set_connected(true);
	if (o->state_file && (r->durable_end || slot_at))
		save_state(o, st, r->durable_end ? r->durable_end : slot_at, true);
	next_wal_check = mono_ms();	/* at once: a slot that already retains a lot is news */
	send_feedback(conn, r, false);
	last_status = mono_ms();
	last_sent = r->durable_end;

	for (;;)
	{
		char	   *copybuf = NULL;
		int			len;
		int64_t		now = mono_ms();

		service_loop_turn();	/* systemd: READY=1 on the first turn, then the watchdog */

		if (stream_stop_requested)
		{
			log_info("stopping: confirming the last durable transaction");
			rc = STREAM_STOP;
			break;
		}
		if (stream_reopen_requested)
		{
			stream_reopen_requested = 0;
			if (stream_reopen_sinks(r) != 0)
			{
				log_error("%s", r->errmsg);
				rc = STREAM_SINK;
				break;
			}
		}
		/*
		 * --endpos: everything up to it is confirmed, or a transaction
		 * committed after it has begun (not relayed: the stream is done)
		 * and everything relayed is confirmed.
		 */
		if (o->endpos && ((r->durable_end >= o->endpos && !r->in_txn) ||
						  (r->past_endpos && r->durable_end >= r->received_end &&
						   delivery_idle(&r->dl))))
		{
			log_info("reached --endpos %X/%X", (unsigned) (o->endpos >> 32), (unsigned) o->endpos);
			rc = STREAM_STOP;
			break;
		}
		if (now - last_status >= o->status_interval_ms)
		{
			if (send_feedback(conn, r, false) != 0)
			{
				alive = false;
				break;
			}
			last_status = now;
			last_sent = r->durable_end;
		}
		if (now >= next_wal_check)
		{
			int64_t		w = retained_wal(o, &side);

			next_wal_check = now + o->wal_check_interval_ms;
			metrics_set_retained_wal(w);
			if (w > 0 && (uint64_t) w > o->max_retained_wal)
			{
				if (!warned_wal)
					log_warning("slot \"%s\" retains %lld MB of WAL on the server (threshold %llu MB): "
								"ordersyncd is behind or a sink is slow; the server's disk fills up "
								"if this keeps growing", o->slot, (long long) (w >> 20),
								(unsigned long long) (o->max_retained_wal >> 20));
				warned_wal = true;
			}
			else
				warned_wal = false;
			/* a grant made since we connected: stop relaying what could be forged */
			if (!o->allow_forgeable_events && side && PQstatus(side) == CONNECTION_OK &&
				trust_check_emitters(side, false) == TRUST_REFUSED)
			{
				rc = STREAM_FATAL;
				break;
			}
		}

		/* a background flush finished, or deliveries did: confirm it */
		if (!progress(conn, r, &last_sent, &last_status, &rc, &alive))
			break;
		save_state(o, st, r->durable_end, false);

		/* past --endpos nothing more is read: the sinks finish what they have */
		if (r->past_endpos)
			len = 0;
		/* delivery sinks hold too much: read no more until they catch up */
		else if (delivery_backlogged(&r->dl))
		{
			if (!warned_backlog)
				log_warning("delivery sinks have %llu events (%llu bytes) in flight: pausing the "
							"stream until they catch up", (unsigned long long) r->dl.outstanding,
							(unsigned long long) r->dl.outstanding_bytes);
			warned_backlog = true;
			len = 0;
		}
		else
		{
			warned_backlog = false;
			len = PQgetCopyData(conn, &copybuf, 1);
		}
		hold = warned_backlog || r->past_endpos;	/* the socket stays unread */
		if (len == 0 && lines_since_read > 0 && !hold)
		{
			/*
			 * The last read brought lines: the socket may hold more at once.
			 * Remote sinks get their turn first (answers in, requests out),
			 * as they had when the loop polled after every read.
			 */
			lines_since_read = 0;
			if (delivery_has_remote_sinks(&r->dl))
			{
				delivery_pump(&r->dl, 0);
				last_pump = now;
				lines_since_pump = 0;
			}
			if (!read_input(conn))
			{
				alive = false;
				break;
			}
			continue;
		}
		if (len == 0)
		{
			int64_t		wait_ms;
			int			timeout;
			int			isock,
						iwake = -1;
			bool		gather = lines_since_wait > 0 && !hold;
			struct timespec tmo;

			/* nothing more right now: a good moment to make the batch durable */
			if (relay_needs_sync(r))
			{
				if (relay_flush(r) != RELAY_OK)
				{
					log_error("%s", r->errmsg);
					rc = STREAM_SINK;
					break;
				}
				first_unsynced = 0;
			}
			wait_ms = last_status + o->status_interval_ms - now;
			if (next_wal_check - now < wait_ms)
				wait_ms = next_wal_check - now;
			/* a confirmation held back by FEEDBACK_MIN_GAP_MS goes out when due */
			if (r->durable_end > last_sent && last_status + FEEDBACK_MIN_GAP_MS - now < wait_ms)
				wait_ms = last_status + FEEDBACK_MIN_GAP_MS - now;
			if (wait_ms < 1)
				wait_ms = 1;
			timeout = (int) wait_ms;
			pollset_reset(&ps);
			/*
			 * While held the socket stays unread: polling it would spin.
			 * While busy it is read after the gathering wait.
			 */
			isock = hold || gather ? -1 : pollset_add(&ps, PQsocket(conn), POLLIN);
			if (stream_wake_fd >= 0)
				iwake = pollset_add(&ps, stream_wake_fd, POLLIN);
			/* the sinks' descriptors and timers: a file's finished sync, a
			 * batch held back by the sync gap, retries, library queues */
			delivery_prepare(&r->dl, &ps, &timeout);
			if (gather && (timeout < 0 || (int64_t) timeout * 1000 > STREAM_GATHER_USEC))
				tmo = (struct timespec) {0, STREAM_GATHER_USEC * 1000L};
			else
				tmo = (struct timespec) {timeout / 1000, (timeout % 1000) * 1000000L};
			lines_since_wait = 0;
			if (ppoll(ps.fds, (nfds_t) ps.n, timeout < 0 && !gather ? NULL : &tmo, NULL) < 0 &&
				errno != EINTR)
			{
				log_warning("ppoll() failed: %s", strerror(errno));
				alive = false;
				break;
			}
			if (iwake >= 0 && ps.fds[iwake].revents)
			{
				char		drain[64];

				while (read(stream_wake_fd, drain, sizeof(drain)) > 0)
					;
			}
			delivery_poll(&r->dl, &ps);
			last_pump = mono_ms();
			lines_since_pump = 0;
			if (!progress(conn, r, &last_sent, &last_status, &rc, &alive))
				break;
			if (!(gather || (isock >= 0 && ps.fds[isock].revents)))
				continue;
			lines_since_read = 0;
			if (!read_input(conn))
			{
				alive = false;
				break;
			}
			continue;
		}
		if (len == -1)
		{
			PGresult   *res = PQgetResult(conn);

			if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_COPY_OUT)
				log_warning("the server ended the replication stream; reconnecting");
			else
				(void) report("the server ended the replication stream", conn, res);
			PQclear(res);
			alive = false;
			break;
		}
		if (len < 0)
		{
			log_warning("lost the replication connection: %s", PQerrorMessage(conn));
			alive = false;
			break;
		}

		lines_since_wait++;
		lines_since_read++;
		if (copybuf[0] == 'k' && len >= 18)
		{
			uint64_t	wal_end = get_u64(copybuf + 1);
			bool		reply = copybuf[17] != 0;

			metrics_set_server_lsn(wal_end);
			if (relay_idle_advance(r, wal_end) || reply)
			{
				/* an idle slot moves on; a reply request must be answered now */
				if (send_feedback(conn, r, false) != 0)
				{
					PQfreemem(copybuf);
					alive = false;
					break;
				}
				last_status = now;
				last_sent = r->durable_end;
			}
		}
		else if (copybuf[0] == 'w' && len >= 25)
		{
			uint64_t	data_start = get_u64(copybuf + 1);
			int			lrc;

			metrics_set_server_lsn(get_u64(copybuf + 9));
			lrc = relay_line(r, data_start, copybuf + 25, (size_t) (len - 25));
			if (lrc != RELAY_OK)
			{
				PQfreemem(copybuf);
				if (lrc == RELAY_SINK_ERROR)
				{
					log_error("%s", r->errmsg);
					rc = STREAM_SINK;
				}
				else
				{
					if (lrc == RELAY_PROTOCOL_ERROR)
						log_error("%s", r->errmsg);
					else
						log_error("stopped (--bad-input=stop): the transaction was not confirmed and "
								  "will be read again on restart\nHINT: to deliver the bad line as an "
								  "ordersync.relay.invalid event and continue, restart with "
								  "--bad-input=dead-letter");
					rc = STREAM_BAD_INPUT;
				}
				break;
			}
			if (relay_needs_sync(r))
			{
				/* a busy stream: start a flush at least every --fsync-interval */
				if (first_unsynced == 0)
					first_unsynced = now;
				else if (now - first_unsynced >= o->fsync_interval_ms)
				{
					if (relay_flush(r) != RELAY_OK)
					{
						PQfreemem(copybuf);
						log_error("%s", r->errmsg);
						rc = STREAM_SINK;
						break;
					}
					first_unsynced = 0;
				}
			}
		}
		else
			log_warning("ignoring an unknown replication message of type '%c' (%d bytes)",
						copybuf[0], len);
		PQfreemem(copybuf);

		/* a busy stream never waits in poll(): let the delivery sinks work now and then */
		if (delivery_has_remote_sinks(&r->dl) && (++lines_since_pump >= 256 || now - last_pump >= 5))
		{
			delivery_pump(&r->dl, 0);
			last_pump = now;
			lines_since_pump = 0;
		}
	}
	pollset_free(&ps);

	rc = end_session(conn, r, rc, alive, &last_sent, &last_status);
	if (rc != STREAM_SINK)
		save_state(o, st, r->durable_end, true);
	PQfinish(conn);
	PQfinish(side);
	return rc;
}
