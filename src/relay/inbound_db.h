/*
 * inbound_db.h — what the inbound endpoint asks the database: which
 * channels push webhooks and how they sign them (cached a few seconds),
 * keeping a webhook and applying it at once where it can
 * (ordersync.inbox_receive_apply), and applying what was left (threads of
 * their own calling ordersync.inbox_apply).
 *
 * Request threads share a small pool of libpq connections; a request that
 * finds none free within a second, or a database that does not answer,
 * gets "unavailable" so the sender retries: nothing is answered 2xx before
 * its row is committed.
 */
#ifndef ORDERSYNCD_INBOUND_DB_H
#define ORDERSYNCD_INBOUND_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inbound_verify.h"
#include "sink.h"

/* A channel's inbound settings as the relay uses them; shared, counted. */
struct inbound_channel
{
	char		name[64];
	enum inbound_scheme scheme;
	char		format[16];
	int			tolerance;		/* seconds (Standard Webhooks) */
	struct wh_signer *signer;	/* NULL: the secret cannot be read (why) */
	char		why[512];
	int64_t		fetched_ms;
	int			refs;
};

enum inbound_db_rc
{
	INDB_OK,
	INDB_DUPLICATE,				/* receive: the channel sent this event id before */
	INDB_NOT_FOUND,				/* channel: no inbound settings */
	INDB_REFUSED,				/* the database refused the payload (why: its message) */
	INDB_UNAVAILABLE,			/* down, busy or timed out: the sender should retry */
	INDB_ERROR					/* anything else (logged): a 500 */
};

int			inbound_db_start(const char *conninfo, int pool_size,
							 const struct sink_policy *policy, char *err, size_t errlen);
void		inbound_db_stop(void);

/* The channel's settings (*out, release it), from the cache or the database. */
enum inbound_db_rc inbound_channel_get(const char *name, struct inbound_channel **out);
void		inbound_channel_release(struct inbound_channel *ch);

/*
 * Keep one verified webhook, and apply it in the same transaction when the
 * database can (ordersync.inbox_receive_apply): on INDB_OK *inbox_id, and
 * state is the row's ("received": left to the appliers). why (on
 * INDB_REFUSED) holds the database's message and detail, fit for the sender.
 */
enum inbound_db_rc inbound_receive(const char *channel, const char *kind, const char *event_id,
								   const char *payload, size_t len, const char *topic,
								   int64_t *inbox_id, char *state, size_t statelen,
								   char *why, size_t whylen);

/*
 * The applier threads, each on its part of the orders; they run once at
 * start for what a crash left. 0, or -1 when no thread could start.
 */
int			inbound_applier_start(int appliers);

/* Something was received: the applier should run soon. */
void		inbound_apply_soon(void);

#endif
