/*
 * trust.c — who can write what the relay acts on (see trust.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "trust.h"

/*
 * Every role (and PUBLIC) that can execute either signature of
 * pg_logical_emit_message, superusers left out: they are trusted as the
 * owners of the extension. has_function_privilege follows role membership,
 * so a member of a granted role is listed too. Roles that cannot log in
 * are listed as well: a member may SET ROLE to them.
 */
static const char *const emitters_query =
	"WITH f(sig) AS (VALUES ('pg_catalog.pg_logical_emit_message(boolean,text,text)'),"
	" ('pg_catalog.pg_logical_emit_message(boolean,text,bytea)')),"
	" e AS (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE NOT r.rolsuper"
	"   AND r.rolname !~ '^pg_'"
	"   AND EXISTS (SELECT FROM f WHERE pg_catalog.has_function_privilege(r.oid, f.sig, 'EXECUTE')))"
	" SELECT EXISTS (SELECT FROM f WHERE pg_catalog.has_function_privilege('public', f.sig, 'EXECUTE')),"
	" (SELECT pg_catalog.count(*) FROM e),"
	" (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(x.rolname), ', ' ORDER BY x.rolname)"
	"  FROM (SELECT rolname FROM e ORDER BY rolname LIMIT 10) x)";

/* Roles other than superusers that may write the tables the relay obeys. */
static const char *const writers_query =
	"SELECT pg_catalog.string_agg(DISTINCT pg_catalog.quote_ident(r.rolname), ', ')"
	" FROM pg_catalog.pg_roles r,"
	"  (VALUES ('ordersync.sink'), ('ordersync.route'), ('ordersync.redelivery')) t(rel)"
	" WHERE NOT r.rolsuper AND r.rolname !~ '^pg_'"
	"  AND pg_catalog.to_regclass(t.rel) IS NOT NULL"
	"  AND pg_catalog.has_table_privilege(r.oid, t.rel, 'INSERT, UPDATE, DELETE, TRUNCATE')";

enum trust_rc
trust_check_emitters(PGconn *conn, bool allow_forgeable)
{
	PGresult   *res = PQexec(conn, emitters_query);
	bool		public_can;
	long		nroles;
	const char *roles;
	char		who[1024];

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		log_error("could not check who may write logical messages: %s",
				  PQresultErrorMessage(res));
		PQclear(res);
		return TRUST_UNKNOWN;
	}
	public_can = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	nroles = strtol(PQgetvalue(res, 0, 1), NULL, 10);
	roles = PQgetvalue(res, 0, 2);
	if (!public_can && nroles == 0)
	{
		PQclear(res);
		return TRUST_OK;
	}
	if (public_can)
		snprintf(who, sizeof(who), "PUBLIC (every role of the database)");
	else
		snprintf(who, sizeof(who), "%s%s", roles, nroles > 10 ? " and more" : "");
	if (allow_forgeable)
		log_warning("%s may execute pg_logical_emit_message, so they can forge ordersync "
					"events that this relay delivers as genuine (--allow-forgeable-events)\n"
					"HINT: REVOKE EXECUTE ON FUNCTION pg_catalog.pg_logical_emit_message(boolean, "
					"text, text), pg_catalog.pg_logical_emit_message(boolean, text, bytea) FROM %s",
					who, public_can ? "PUBLIC" : roles);
	else
		log_error("%s may execute pg_logical_emit_message, so they could forge ordersync "
				  "events (an order.paid that makes a warehouse ship); refusing to relay\n"
				  "HINT: ALTER EXTENSION ordersync UPDATE (0.3.0 revokes it from PUBLIC), or as a "
				  "superuser REVOKE EXECUTE ON FUNCTION pg_catalog.pg_logical_emit_message(boolean, "
				  "text, text), pg_catalog.pg_logical_emit_message(boolean, text, bytea) FROM %s; "
				  "--allow-forgeable-events runs anyway, with a warning",
				  who, public_can ? "PUBLIC" : roles);
	PQclear(res);
	return allow_forgeable ? TRUST_OK : TRUST_REFUSED;
}

void
trust_warn_writers(PGconn *conn)
{
	PGresult   *res = PQexec(conn, writers_query);

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
		!PQgetisnull(res, 0, 0))
		log_warning("roles %s can write ordersync.sink, ordersync.route or "
					"ordersync.redelivery directly, and so steer where this relay sends "
					"events\nHINT: unless that is intended, REVOKE INSERT, UPDATE, DELETE, "
					"TRUNCATE ON ordersync.sink, ordersync.route, ordersync.redelivery FROM "
					"them; admins change sinks through ordersync.add_sink() and friends",
					PQgetvalue(res, 0, 0));
	PQclear(res);
}
