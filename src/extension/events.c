/*-------------------------------------------------------------------------
 *
 * events.c
 *	  How ordersync records a change besides making it: one row in the
 *	  append-only ordersync.history, and one domain event written as a
 *	  transactional logical message (prefix "ordersync") in the same
 *	  transaction.  The message format is described in doc/events.md.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "replication/message.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

#include "ordersync.h"

#define OS_MESSAGE_PREFIX "ordersync"

/* ---- small JSON writer: callers open and close the braces ---- */

void
json_add_key(StringInfo buf, bool *first, const char *key)
{
	if (!*first)
		appendStringInfoChar(buf, ',');
	*first = false;
	escape_json(buf, key);
	appendStringInfoChar(buf, ':');
}

void
json_add_text(StringInfo buf, bool *first, const char *key, const char *val)
{
	json_add_key(buf, first, key);
	if (val == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, val);
}

void
json_add_int64(StringInfo buf, bool *first, const char *key, int64 val)
{
	json_add_key(buf, first, key);
	appendStringInfo(buf, INT64_FORMAT, val);
}

void
json_add_null_or_int64(StringInfo buf, bool *first, const char *key,
					   int64 val, bool isnull)
{
	if (isnull)
	{
		json_add_key(buf, first, key);
		appendStringInfoString(buf, "null");
	}
	else
		json_add_int64(buf, first, key, val);
}

void
json_add_jsonb(StringInfo buf, bool *first, const char *key, Jsonb *val)
{
	json_add_key(buf, first, key);
	if (val == NULL)
		appendStringInfoString(buf, "null");
	else
		(void) JsonbToCString(buf, &val->root, VARSIZE(val));
}

/* ISO 8601 with offset, whatever the session's DateStyle */
void
json_add_timestamptz(StringInfo buf, bool *first, const char *key,
					 Datum val, bool isnull)
{
	char		tsbuf[MAXDATELEN + 1];

	json_add_key(buf, first, key);
	if (isnull)
		appendStringInfoString(buf, "null");
	else
	{
		JsonEncodeDateTime(tsbuf, val, TIMESTAMPTZOID, NULL);
		appendStringInfoChar(buf, '"');
		appendStringInfoString(buf, tsbuf);
		appendStringInfoChar(buf, '"');
	}
}

/*
 * Writes {"type":..,"subject":"<kind>/<id>","data":<data>} as a transactional
 * logical message.  Without wal_level=logical nothing can ever decode it, so
 * we save the WAL.
 */
void
os_emit_event(const char *type, const char *subject_kind,
			  const char *subject_id, StringInfo data)
{
	StringInfoData msg;
	char	   *subject;

	if (!XLogLogicalInfoActive())
		return;

	subject = psprintf("%s/%s", subject_kind, subject_id);
	initStringInfo(&msg);
	appendStringInfoString(&msg, "{\"type\":");
	escape_json(&msg, type);
	appendStringInfoString(&msg, ",\"subject\":");
	escape_json(&msg, subject);
	appendStringInfoString(&msg, ",\"data\":");
	appendBinaryStringInfo(&msg, data->data, data->len);
	appendStringInfoChar(&msg, '}');

	(void) LogLogicalMessage(OS_MESSAGE_PREFIX, msg.data, msg.len, true);

	pfree(msg.data);
	pfree(subject);
}

/* the database role behind the change, even inside SECURITY DEFINER */
static char *
os_role_name(void)
{
	return GetUserNameFromId(GetOuterUserId(), false);
}

void
os_write_history(const char *action, int64 order_id, bool has_order,
				 const char *from_status, const char *to_status,
				 const char *sku, const char *location, int64 qty,
				 bool has_qty, const char *reason)
{
	static OsPlan p = {
		"INSERT INTO ordersync.history (action, order_id, from_status, to_status,"
		" sku, location, qty, actor, role, reason)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
		10, {TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT8OID,
		TEXTOID, TEXTOID, TEXTOID}
	};
	Datum		values[10];
	char		nulls[10];
	char	   *role = os_role_name();
	const char *actor = (ordersync_actor && ordersync_actor[0]) ? ordersync_actor : role;

	if (!has_order)
		os_history_chain_lock(sku);	/* before the id is drawn: history_chain.c */
	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(action);
	values[1] = Int64GetDatum(order_id);
	nulls[1] = has_order ? ' ' : 'n';
#define TEXT_OR_NULL(i, s) \
	do { \
		if (s) values[i] = CStringGetTextDatum(s); \
		else { values[i] = (Datum) 0; nulls[i] = 'n'; } \
	} while (0)
	TEXT_OR_NULL(2, from_status);
	TEXT_OR_NULL(3, to_status);
	TEXT_OR_NULL(4, sku);
	TEXT_OR_NULL(5, location);
	values[6] = Int64GetDatum(qty);
	nulls[6] = has_qty ? ' ' : 'n';
	values[7] = CStringGetTextDatum(actor);
	values[8] = CStringGetTextDatum(role);
	TEXT_OR_NULL(9, reason);
#undef TEXT_OR_NULL

	(void) os_execute(&p, values, nulls, false, 0);
}

/*
 * The order snapshot every order event carries, read from a tuple of
 * ordersync.orders (the trigger's NEW row, or place_order's RETURNING *).
 */
void
os_emit_order_event(const char *type, HeapTuple order, TupleDesc desc,
					const char *previous_status, const char *reason)
{
	StringInfoData data;
	bool		first = true;
	bool		isnull;
	int64		id;
	char		idbuf[32];
	Datum		d;

	if (!XLogLogicalInfoActive())
		return;

#define COL(name) SPI_getbinval(order, desc, SPI_fnumber(desc, name), &isnull)

	initStringInfo(&data);
	appendStringInfoChar(&data, '{');
	id = DatumGetInt64(COL("id"));
	json_add_int64(&data, &first, "order_id", id);
	d = COL("channel");
	json_add_text(&data, &first, "channel", TextDatumGetCString(d));
	d = COL("external_id");
	json_add_text(&data, &first, "external_id", TextDatumGetCString(d));
	d = COL("status");
	json_add_text(&data, &first, "status", TextDatumGetCString(d));
	json_add_text(&data, &first, "previous_status", previous_status);
	json_add_text(&data, &first, "reason", reason);
	d = COL("total");
	json_add_text(&data, &first, "total",
				  DatumGetCString(DirectFunctionCall1(numeric_out, d)));
	d = COL("lines");
	json_add_jsonb(&data, &first, "lines", DatumGetJsonbP(d));
	d = COL("customer");
	json_add_jsonb(&data, &first, "customer", isnull ? NULL : DatumGetJsonbP(d));
	d = COL("created_at");
	json_add_timestamptz(&data, &first, "created_at", d, isnull);
	d = COL("expires_at");
	json_add_timestamptz(&data, &first, "expires_at", d, isnull);
	appendStringInfoChar(&data, '}');
#undef COL

	snprintf(idbuf, sizeof(idbuf), INT64_FORMAT, id);
	os_emit_event(type, "order", idbuf, &data);
	pfree(data.data);
}
