/*
 * inbound_db.c — the inbound endpoint's database work (see inbound_db.h).
 *
 * Connections: pool_size for requests, one for the applier, each made on
 * first use and again after it broke. Every statement is bounded
 * (statement_timeout 4 s, lock_timeout 3 s) so that a sender hears within
 * its 5 s, and an answer that cannot be given in time is a 503, never a
 * 2xx for a row that was not committed.
 *
 * Receiving applies in the same transaction where the database can
 * (ordersync.inbox_receive_apply, 0.8.0; inbox_receive before it).
 * Applier threads (one per part of the orders, each with its own
 * connection) call ordersync.inbox_apply() whenever a receipt left its
 * row received (and every few seconds, for parked rows without a
 * background worker), until a call finds nothing to do. The database
 * keeps the order and the exactness; the relay only saves the wait for
 * the background worker's next tick.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "inbound_db.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "sink_policy.h"

#define CACHE_MS 5000			/* a changed setting takes effect within this */
#define MAX_CACHED 256
#define BORROW_WAIT_MS 1000
#define APPLY_BATCH 1			/* orders per transaction: see inbox_apply() */
#define APPLY_IDLE_MS 5000
#define MAX_APPLIERS 32

struct pooled
{
	PGconn	   *conn;
	bool		busy;
	bool		prepared;		/* the receiving statement, on this connection */
};

static struct
{
	char	   *conninfo;
	const struct sink_policy *policy;
	pthread_mutex_t lock;
	pthread_cond_t freed;
	struct pooled *conns;
	int			n;
	struct inbound_channel *cache[MAX_CACHED];
	int			ncache;
	/* the extension predates inbox_receive_apply() (before 0.8.0) */
	atomic_bool receive_only;
	/* the appliers: each runs when the generation moved past what it saw */
	pthread_t	appliers[MAX_APPLIERS];
	int			nappliers;
	pthread_cond_t wake;
	uint64_t	generation;
	bool		stopping;
} db = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.freed = PTHREAD_COND_INITIALIZER,
	.wake = PTHREAD_COND_INITIALIZER,
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* a connection with our limits, or NULL (err says why) */
static PGconn *
connect_db(char *err, size_t errlen)
{
	const char *const keys[] = {"dbname", "connect_timeout", "application_name", NULL};
	const char *const vals[] = {db.conninfo, "3", "ordersyncd inbound", NULL};
	PGconn	   *c = PQconnectdbParams(keys, vals, 1);
	PGresult   *r;

	if (c == NULL)
		x_out_of_memory(0);
	if (PQstatus(c) != CONNECTION_OK)
	{
		snprintf(err, errlen, "%s", PQerrorMessage(c));
		err[strcspn(err, "\n")] = '\0';
		PQfinish(c);
		return NULL;
	}
	r = PQexec(c, "SET statement_timeout = '4s'; SET lock_timeout = '3s'; "
			   "SET idle_in_transaction_session_timeout = '10s'");
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
	{
		snprintf(err, errlen, "%s", PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
		return NULL;
	}
	PQclear(r);
	return c;
}

int
inbound_db_start(const char *conninfo, int pool_size, const struct sink_policy *policy,
				 char *err, size_t errlen)
{
	(void) err;
	(void) errlen;
	db.conninfo = xstrdup(conninfo);
	db.policy = policy;
	db.n = pool_size;
	db.conns = xcalloc(sizeof(struct pooled) * (size_t) pool_size);
	return 0;
}

/* ---- the pool ---------------------------------------------------------- */

static struct pooled *
borrow(void)
{
	struct timespec until;
	struct pooled *p = NULL;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += (long) BORROW_WAIT_MS * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&db.lock);
	for (;;)
	{
		for (int i = 0; i < db.n && p == NULL; i++)
			if (!db.conns[i].busy)
				p = &db.conns[i];
		if (p || db.stopping)
			break;
		if (pthread_cond_timedwait(&db.freed, &db.lock, &until) == ETIMEDOUT)
			break;
	}
	if (p)
		p->busy = true;
	pthread_mutex_unlock(&db.lock);
	return p;
}

static void
give_back(struct pooled *p)
{
	/* a connection that broke is made again on its next use */
	if (p->conn && PQstatus(p->conn) != CONNECTION_OK)
	{
		PQfinish(p->conn);
		p->conn = NULL;
		p->prepared = false;
	}
	pthread_mutex_lock(&db.lock);
	p->busy = false;
	pthread_cond_signal(&db.freed);
	pthread_mutex_unlock(&db.lock);
}

static bool
ensure_connected(struct pooled *p)
{
	char		err[512];

	if (p->conn)
		return true;
	p->conn = connect_db(err, sizeof(err));
	if (p->conn == NULL)
	{
		static int64_t last_log;
		int64_t		t = now_ms();

		/* once a few seconds, not per request: a storm of senders retries */
		if (t - last_log > 5000)
		{
			last_log = t;
			log_warning("inbound: cannot connect to the database, answering 503 so senders "
						"retry: %s", err);
		}
		return false;
	}
	return true;
}

/* SQLSTATE classes that mean "try again later" */
static bool
unavailable(const char *state)
{
	return state == NULL ||
		strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
		strncmp(state, "57", 2) == 0 || strncmp(state, "40", 2) == 0 ||
		strcmp(state, "55P03") == 0 || strcmp(state, "58000") == 0;
}

/* ---- channels ------------------------------------------------------------ */

void
inbound_channel_release(struct inbound_channel *ch)
{
	bool		last;

	if (ch == NULL)
		return;
	pthread_mutex_lock(&db.lock);
	last = --ch->refs == 0;
	pthread_mutex_unlock(&db.lock);
	if (last)
	{
		wh_signer_free(ch->signer);
		free(ch);
	}
}

/* the key from the secret the options name, through the sinks' policy */
static void
make_signer(struct inbound_channel *ch, const char *options)
{
	json_object *raw = json_tokener_parse(options);
	struct sink	s;
	char	   *secret;
	unsigned char *key = NULL;
	size_t		keylen = 0;
	char		err[400];

	memset(&s, 0, sizeof(s));
	s.name = ch->name;
	s.opt.raw = raw;
	s.policy = db.policy;
	s.trusted = false;			/* the database chose it: --secret-env-prefix, --secret-dir */
	secret = raw ? sink_secret(&s, "secret", err, sizeof(err)) : NULL;
	if (raw == NULL)
		snprintf(err, sizeof(err), "its options are not JSON");
	if (secret && ch->scheme == INBOUND_STANDARD_WEBHOOKS)
		key = wh_key_from_secret(secret, &keylen, err, sizeof(err));
	else if (secret)
	{
		/* Shopify and WooCommerce use the secret's bytes as they are */
		keylen = strlen(secret);
		key = (unsigned char *) xstrdup(secret);
	}
	if (key)
		ch->signer = wh_signer_new(key, keylen);
	if (key && ch->signer == NULL)
		snprintf(err, sizeof(err), "OpenSSL could not set up HMAC-SHA256");
	if (ch->signer == NULL)
		snprintf(ch->why, sizeof(ch->why), "channel \"%s\": %s", ch->name, err);
	if (secret)
	{
		memset(secret, 0, strlen(secret));
		free(secret);
	}
	if (key)
	{
		memset(key, 0, keylen);
		free(key);
	}
	json_object_put(raw);
}

static enum inbound_db_rc
fetch_channel(const char *name, struct inbound_channel **out)
{
	const char *params[1] = {name};
	struct pooled *p = borrow();
	PGresult   *r;
	enum inbound_db_rc rc;

	if (p == NULL || !ensure_connected(p))
	{
		if (p)
			give_back(p);
		return INDB_UNAVAILABLE;
	}
	r = PQexecParams(p->conn, "SELECT signature, format, options::text,"
					 " COALESCE((options->>'tolerance_seconds')::integer, 0)"
					 " FROM ordersync.channel_inbound WHERE channel = $1",
					 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 0)
		rc = INDB_NOT_FOUND;
	else if (PQresultStatus(r) == PGRES_TUPLES_OK)
	{
		struct inbound_channel *ch = xcalloc(sizeof(*ch));
		int			scheme = inbound_scheme_parse(PQgetvalue(r, 0, 0));

		snprintf(ch->name, sizeof(ch->name), "%s", name);
		snprintf(ch->format, sizeof(ch->format), "%s", PQgetvalue(r, 0, 1));
		ch->tolerance = atoi(PQgetvalue(r, 0, 3));
		if (ch->tolerance <= 0)
			ch->tolerance = INBOUND_DEFAULT_TOLERANCE;
		ch->fetched_ms = now_ms();
		ch->refs = 1;
		if (scheme < 0)
			snprintf(ch->why, sizeof(ch->why), "channel \"%s\": unknown signature scheme \"%.40s\" "
					 "(a newer extension than this relay?)", name, PQgetvalue(r, 0, 0));
		else
		{
			ch->scheme = (enum inbound_scheme) scheme;
			make_signer(ch, PQgetvalue(r, 0, 2));
		}
		*out = ch;
		rc = INDB_OK;
	}
	else
	{
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

		rc = unavailable(state) || PQstatus(p->conn) != CONNECTION_OK ? INDB_UNAVAILABLE : INDB_ERROR;
		if (rc == INDB_ERROR)
			log_error("inbound: cannot read ordersync.channel_inbound: %s%s",
					  PQresultErrorMessage(r),
					  state && strcmp(state, "42501") == 0 ?
					  "  Grant the relay's role ordersync_relay (extension 0.4.0 or later)." :
					  state && strcmp(state, "42P01") == 0 ?
					  "  Update the extension: ALTER EXTENSION ordersync UPDATE." : "");
	}
	PQclear(r);
	give_back(p);
	return rc;
}

enum inbound_db_rc
inbound_channel_get(const char *name, struct inbound_channel **out)
{
	struct inbound_channel *ch = NULL;
	enum inbound_db_rc rc;
	int64_t		t = now_ms();

	pthread_mutex_lock(&db.lock);
	for (int i = 0; i < db.ncache; i++)
		if (strcmp(db.cache[i]->name, name) == 0 && t - db.cache[i]->fetched_ms < CACHE_MS)
		{
			ch = db.cache[i];
			ch->refs++;
			break;
		}
	pthread_mutex_unlock(&db.lock);
	if (ch)
	{
		*out = ch;
		return INDB_OK;
	}

	rc = fetch_channel(name, &ch);
	if (rc != INDB_OK)
		return rc;
	if (ch->signer == NULL)
	{
		static int64_t last_log;

		if (t - last_log > 5000)
		{
			last_log = t;
			log_error("inbound: %s; its webhooks are answered 503 until that is fixed", ch->why);
		}
	}

	/* into the cache, replacing its older entry or the stalest one */
	pthread_mutex_lock(&db.lock);
	{
		int			slot = -1;
		struct inbound_channel *old;

		for (int i = 0; i < db.ncache; i++)
			if (strcmp(db.cache[i]->name, name) == 0)
				slot = i;
		if (slot < 0 && db.ncache < MAX_CACHED)
		{
			slot = db.ncache++;
			db.cache[slot] = NULL;
		}
		if (slot < 0)
		{
			slot = 0;
			for (int i = 1; i < db.ncache; i++)
				if (db.cache[i]->fetched_ms < db.cache[slot]->fetched_ms)
					slot = i;
		}
		old = db.cache[slot];
		db.cache[slot] = ch;
		ch->refs++;				/* the cache's */
		if (old && old != ch && --old->refs == 0)
		{
			wh_signer_free(old->signer);
			free(old);
		}
	}
	pthread_mutex_unlock(&db.lock);
	*out = ch;
	return INDB_OK;
}

/* ---- receiving ------------------------------------------------------------ */

/*
 * The receiving statement, prepared once per connection: inbox_receive_apply()
 * (0.8.0), or inbox_receive() with a constant state where the extension has
 * no inbox_receive_apply() yet.  NULL when it cannot be prepared (the
 * connection's error says why).
 */
static PGresult *
receive_prepared(struct pooled *p)
{
	PGresult   *r;

	if (p->prepared)
		return NULL;
	for (;;)
	{
		bool		only = atomic_load(&db.receive_only);

		r = PQprepare(p->conn, "receive", only ?
					  "SELECT ordersync.inbox_receive($1, $2, $3, $4::jsonb, $5), 'received'" :
					  "SELECT inbox_id, state FROM ordersync.inbox_receive_apply($1, $2, $3, $4::jsonb, $5)",
					  5, NULL);
		if (PQresultStatus(r) == PGRES_COMMAND_OK)
		{
			PQclear(r);
			p->prepared = true;
			return NULL;
		}
		if (only || !PQresultErrorField(r, PG_DIAG_SQLSTATE) ||
			strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE), "42883") != 0)
			return r;
		PQclear(r);
		if (!atomic_exchange(&db.receive_only, true))
			log_warning("inbound: the extension has no ordersync.inbox_receive_apply() (before 0.8.0): "
						"webhooks are received, then applied in a transaction of their own; "
						"ALTER EXTENSION ordersync UPDATE, then a restart of ordersyncd, applies them "
						"as they are received");
	}
}

enum inbound_db_rc
inbound_receive(const char *channel, const char *kind, const char *event_id,
				const char *payload, size_t len, const char *topic,
				int64_t *inbox_id, char *row_state, size_t statelen, char *why, size_t whylen)
{
	const char *params[5] = {channel, kind, event_id, payload, topic};
	int			lengths[5] = {0, 0, 0, (int) len, 0};
	struct pooled *p = borrow();
	PGresult   *r;
	enum inbound_db_rc rc;

	why[0] = '\0';
	if (p == NULL || !ensure_connected(p))
	{
		if (p)
			give_back(p);
		snprintf(why, whylen, p ? "the database is not reachable" : "every database connection is busy");
		return INDB_UNAVAILABLE;
	}
	r = receive_prepared(p);
	if (r == NULL)
		r = PQexecPrepared(p->conn, "receive", 5, params, lengths, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
	{
		if (PQgetisnull(r, 0, 0))
			rc = INDB_DUPLICATE;
		else
		{
			*inbox_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
			snprintf(row_state, statelen, "%s", PQgetvalue(r, 0, 1));
			rc = INDB_OK;
		}
	}
	else
	{
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
		const char *detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);

		if (PQstatus(p->conn) != CONNECTION_OK || unavailable(state))
		{
			rc = INDB_UNAVAILABLE;
			snprintf(why, whylen, "the database could not take it now");
		}
		else if (state && (strcmp(state, "OS004") == 0 || strncmp(state, "22", 2) == 0))
		{
			/* the payload: invalid JSON, not UTF-8, not what the format needs */
			rc = INDB_REFUSED;
			snprintf(why, whylen, "%s%s%s", msg ? msg : "refused", detail ? ": " : "",
					 detail ? detail : "");
		}
		else
		{
			rc = INDB_ERROR;
			snprintf(why, whylen, "the relay could not keep the webhook");
			log_error("inbound: receiving a webhook failed for channel \"%s\": %s%s", channel,
					  PQresultErrorMessage(r),
					  state && strcmp(state, "42501") == 0 ?
					  "  Grant the relay's role ordersync_relay (extension 0.4.0 or later)." : "");
		}
	}
	PQclear(r);
	give_back(p);
	return rc;
}

/* ---- applying --------------------------------------------------------------- */

void
inbound_apply_soon(void)
{
	pthread_mutex_lock(&db.lock);
	db.generation++;
	pthread_cond_broadcast(&db.wake);
	pthread_mutex_unlock(&db.lock);
}

/* one inbox_apply() call for part of the orders; the rows it took, or -1 */
static int
apply_once(PGconn **c, int part)
{
	char		err[512];
	PGresult   *r;
	int			processed = -1;
	char		batch[16],
				part_s[16],
				parts_s[16];
	const char *params[3] = {batch, part_s, parts_s};
	static int64_t last_log;

	if (*c == NULL && (*c = connect_db(err, sizeof(err))) != NULL)
	{
		/*
		 * Applying needs no flush to be safe: the order and its inbox row's
		 * outcome commit together, and a commit a crash takes back leaves
		 * the row received, to be applied again. Receiving does (2xx).
		 */
		PQclear(PQexec(*c, "SET synchronous_commit = off"));
	}
	if (*c == NULL)
	{
		if (now_ms() - last_log > 30000)
		{
			last_log = now_ms();
			log_warning("inbound: the applier cannot connect (received webhooks wait in "
						"ordersync.inbox, nothing is lost): %s", err);
		}
		return -1;
	}
	snprintf(batch, sizeof(batch), "%d", APPLY_BATCH);
	snprintf(part_s, sizeof(part_s), "%d", part);
	snprintf(parts_s, sizeof(parts_s), "%d", db.nappliers);
	r = PQexecParams(*c, "SELECT processed, applied, stale, parked, failed"
					 " FROM ordersync.inbox_apply($1, $2, $3)", 3, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
	{
		processed = atoi(PQgetvalue(r, 0, 0));
		metrics_inbound_applied((uint64_t) atoi(PQgetvalue(r, 0, 1)),
								(uint64_t) atoi(PQgetvalue(r, 0, 2)),
								(uint64_t) atoi(PQgetvalue(r, 0, 3)),
								(uint64_t) atoi(PQgetvalue(r, 0, 4)));
	}
	else
	{
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

		if (now_ms() - last_log > 30000)
		{
			last_log = now_ms();
			log_warning("inbound: ordersync.inbox_apply() failed (received webhooks wait in "
						"ordersync.inbox; the background worker applies them too): %s%s",
						PQresultErrorMessage(r),
						state && strcmp(state, "42501") == 0 ?
						"  Grant the relay's role ordersync_relay (extension 0.4.0 or later)." : "");
		}
		if (PQstatus(*c) != CONNECTION_OK)
		{
			PQfinish(*c);
			*c = NULL;
		}
	}
	PQclear(r);
	return processed;
}

static void *
applier_main(void *arg)
{
	PGconn	   *c = NULL;
	int			part = (int) (intptr_t) arg;
	uint64_t	seen = 0;

	for (;;)
	{
		struct timespec until;
		int			n;

		pthread_mutex_lock(&db.lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += APPLY_IDLE_MS / 1000;
		while (db.generation == seen && !db.stopping &&
			   pthread_cond_timedwait(&db.wake, &db.lock, &until) != ETIMEDOUT)
			;
		seen = db.generation;
		if (db.stopping)
		{
			pthread_mutex_unlock(&db.lock);
			break;
		}
		pthread_mutex_unlock(&db.lock);

		/*
		 * Until a call finds nothing: a call may stop early (the database
		 * keeps each batch's transaction short), so a short batch does not
		 * mean it caught up.
		 */
		while ((n = apply_once(&c, part)) > 0)
			;
		if (n < 0)
		{
			struct timespec pause = {1, 0};

			nanosleep(&pause, NULL);
		}
	}
	if (c)
		PQfinish(c);
	return NULL;
}

int
inbound_applier_start(int appliers)
{
	if (appliers > MAX_APPLIERS)
		appliers = MAX_APPLIERS;
	/* inbox_apply()'s parts: set before any thread reads it */
	db.nappliers = appliers;
	for (int i = 0; i < appliers; i++)
		if (pthread_create(&db.appliers[i], NULL, applier_main, (void *) (intptr_t) i) != 0)
		{
			db.nappliers = i;	/* their parts leave orders to the worker */
			return i > 0 ? 0 : -1;
		}
	inbound_apply_soon();		/* whatever a crash left received */
	return 0;
}

void
inbound_db_stop(void)
{
	pthread_mutex_lock(&db.lock);
	db.stopping = true;
	pthread_cond_broadcast(&db.wake);
	pthread_cond_broadcast(&db.freed);
	pthread_mutex_unlock(&db.lock);
	for (int i = 0; i < db.nappliers; i++)
		pthread_join(db.appliers[i], NULL);
	db.nappliers = 0;
	for (int i = 0; i < db.n; i++)
		if (db.conns[i].conn)
			PQfinish(db.conns[i].conn);
	free(db.conns);
	db.conns = NULL;
	db.n = 0;
	for (int i = 0; i < db.ncache; i++)
		inbound_channel_release(db.cache[i]);
	db.ncache = 0;
	free(db.conninfo);
	db.conninfo = NULL;
}
