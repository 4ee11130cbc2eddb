/*
 * trust.h — what the relay checks before it believes the stream.
 *
 * The relay acts on ordersync's logical messages (a warehouse ships on
 * order.paid), but a message's prefix proves nothing by itself: whoever may
 * execute pg_logical_emit_message can write any message with any prefix.
 * ordersync 0.3.0 revokes that function from PUBLIC (its own C code calls
 * LogLogicalMessage directly), so only superusers, who could change the
 * extension itself anyway, can write one. trust_check_emitters() verifies
 * that this still holds in the database the relay reads, every time it
 * connects.
 *
 * Sink and route changes are read from the row changes of ordersync.sink,
 * ordersync.route and ordersync.redelivery, which only their owner (and
 * the admin functions running as the owner) can write; roles that can
 * write them directly are reported as a warning.
 */
#ifndef ORDERSYNCD_TRUST_H
#define ORDERSYNCD_TRUST_H

#include <stdbool.h>

#include <libpq-fe.h>

enum trust_rc
{
	TRUST_OK = 0,
	TRUST_REFUSED = 1,			/* someone can forge events and that is not allowed */
	TRUST_UNKNOWN = 2			/* the check itself failed (connection, query) */
};

/*
 * Refuse (or, with allow_forgeable, warn) when a role other than the
 * superusers can execute pg_logical_emit_message. Logs what it found and
 * the REVOKE that fixes it.
 */
enum trust_rc trust_check_emitters(PGconn *conn, bool allow_forgeable);

/* Warn about roles other than superusers that may write the control tables. */
void		trust_warn_writers(PGconn *conn);

#endif
