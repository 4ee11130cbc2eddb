/*
 * snapshot.c — emit order.snapshot events from the slot's exported
 * snapshot (see snapshot.h).
 *
 * The rows are read with SET TRANSACTION SNAPSHOT, i.e. exactly as of the
 * slot's consistent point: every change committed later arrives through the
 * stream, every earlier one is in the snapshot, so nothing is missed or
 * doubled. Rows are fetched in single-row mode so memory stays flat for
 * any number of open orders.
 */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include <libpq-fe.h>

#include "log.h"
#include "lsn.h"
#include "snapshot.h"
#include "w2j.h"

static const char *const snapshot_query =
	"SELECT o.id::text, pg_catalog.json_build_object("
	"'order_id', o.id, 'channel', o.channel, 'external_id', o.external_id, "
	"'status', o.status, 'total', pg_catalog.round(o.total, 2)::text, "
	"'lines', o.lines, 'customer', o.customer, "
	"'created_at', o.created_at, 'expires_at', o.expires_at)::text "
	"FROM ordersync.orders o "
	"WHERE NOT (o.status::text = ANY (pg_catalog.string_to_array($1, ','))) "
	"ORDER BY o.id";

static int
exec_ok(PGconn *c, const char *sql, char *err, size_t errlen)
{
	PGresult   *res = PQexec(c, sql);
	int			ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;

	if (!ok)
		snprintf(err, errlen, "%s: %s", sql, PQresultErrorMessage(res));
	PQclear(res);
	return ok ? 0 : -1;
}

int
snapshot_emit(const struct options *o, struct relay *r, const char *snapshot_name,
			  uint64_t consistent_point, char *err, size_t errlen)
{
	const char *keys[] = {"connect_timeout", "dbname", "fallback_application_name", NULL};
	const char *vals[] = {"10", o->dbname, "ordersyncd-snapshot", NULL};
	const char *params[1] = {o->terminal_statuses};
	PGconn	   *c = PQconnectdbParams(keys, vals, 1);
	PGresult   *res;
	struct txn_info txn = {0};
	struct timeval tv;
	uint32_t	n = 0;
	int			rc = SNAPSHOT_ERROR;
	char		sql[256];
	char	   *lit;

	if (PQstatus(c) != CONNECTION_OK)
	{
		snprintf(err, errlen, "cannot connect for the snapshot: %s", PQerrorMessage(c));
		PQfinish(c);
		return SNAPSHOT_ERROR;
	}
	if (exec_ok(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err, errlen) != 0)
		goto done;
	lit = PQescapeLiteral(c, snapshot_name, strlen(snapshot_name));
	snprintf(sql, sizeof(sql), "SET TRANSACTION SNAPSHOT %s", lit ? lit : "''");
	PQfreemem(lit);
	if (exec_ok(c, sql, err, errlen) != 0)
		goto done;

	res = PQexec(c, "SELECT pg_catalog.to_regclass('ordersync.orders') IS NOT NULL");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		snprintf(err, errlen, "cannot look for ordersync.orders: %s", PQresultErrorMessage(res));
		PQclear(res);
		goto done;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
	{
		PQclear(res);
		log_warning("--snapshot: table ordersync.orders does not exist (is the extension "
					"installed? CREATE EXTENSION ordersync); the snapshot is empty");
		rc = 0;
		goto done;
	}
	PQclear(res);

	/* one "transaction" for ids and time: the consistent point, taken now */
	gettimeofday(&tv, NULL);
	txn.commit_lsn = txn.end_lsn = consistent_point;
	txn.commit_usec = (int64_t) tv.tv_sec * 1000000 + tv.tv_usec;
	ts_format_usec(txn.commit_usec, txn.time);
	txn.id_tag = "S";

	if (!PQsendQueryParams(c, snapshot_query, 1, NULL, params, NULL, NULL, 0) ||
		!PQsetSingleRowMode(c))
	{
		snprintf(err, errlen, "cannot query ordersync.orders: %s", PQerrorMessage(c));
		goto done;
	}
	while ((res = PQgetResult(c)) != NULL)
	{
		ExecStatusType st = PQresultStatus(res);

		if (st == PGRES_SINGLE_TUPLE)
		{
			char		subject[64];
			char		perr[256];
			const char *text = PQgetvalue(res, 0, 1);
			json_object *data = w2j_parse_json(r->ctok, text, strlen(text), perr, sizeof(perr));

			if (data == NULL)
			{
				snprintf(err, errlen, "order %s: unreadable row JSON: %s", PQgetvalue(res, 0, 0), perr);
				PQclear(res);
				while ((res = PQgetResult(c)) != NULL)
					PQclear(res);
				goto done;
			}
			snprintf(subject, sizeof(subject), "order/%s", PQgetvalue(res, 0, 0));
			if (relay_emit(r, &txn, ++n, "order.snapshot", subject, data) != RELAY_OK)
			{
				json_object_put(data);
				snprintf(err, errlen, "%s", r->errmsg);
				PQclear(res);
				while ((res = PQgetResult(c)) != NULL)
					PQclear(res);
				rc = SNAPSHOT_SINK_ERROR;
				goto done;
			}
			json_object_put(data);
		}
		else if (st != PGRES_TUPLES_OK)
		{
			snprintf(err, errlen, "reading open orders failed: %s"
					 "HINT: --snapshot expects ordersync.orders(id, channel, external_id, status, "
					 "customer, lines, total, created_at, expires_at)", PQresultErrorMessage(res));
			PQclear(res);
			while ((res = PQgetResult(c)) != NULL)
				PQclear(res);
			goto done;
		}
		PQclear(res);
	}
	relay_commit_external(r, consistent_point);
	if (relay_sync(r) != RELAY_OK)
	{
		snprintf(err, errlen, "%s", r->errmsg);
		rc = SNAPSHOT_SINK_ERROR;
		goto done;
	}
	log_info("--snapshot: emitted %u open orders as of %X/%X", n,
			 (unsigned) (consistent_point >> 32), (unsigned) consistent_point);
	rc = 0;

done:
	PQclear(PQexec(c, "COMMIT"));
	PQfinish(c);
	return rc;
}
