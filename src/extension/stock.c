/*-------------------------------------------------------------------------
 *
 * stock.c
 *	  Stock: receiving, safety stock, availability, and the movements a
 *	  status change makes to an order's reservations.
 *
 *	  Every movement goes through os_stock_move(), which updates one stock
 *	  row, writes one history row and emits one inventory.* event.  Rows are
 *	  always locked in (sku, location) order with the "C" collation, the
 *	  same order place_order() uses, so two transactions touching the same
 *	  SKUs never deadlock on stock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "ordersync.h"

PG_FUNCTION_INFO_V1(ordersync_receive_stock);
PG_FUNCTION_INFO_V1(ordersync_set_safety_stock);
PG_FUNCTION_INFO_V1(ordersync_available);
PG_FUNCTION_INFO_V1(ordersync_add_location);

/*
 * Changes one stock row by the given deltas (it must exist and the caller
 * must be allowed to make the change: CHECK constraints are the last line of
 * defence, not the first), then records the movement.
 */
void
os_stock_move(const char *action, const char *event_type, int64 order_id,
			  bool has_order, const char *sku, const char *location,
			  int64 qty, int64 d_on_hand, int64 d_reserved, const char *reason)
{
	static OsPlan p = {
		"UPDATE ordersync.stock SET on_hand = on_hand + $3, reserved = reserved + $4"
		" WHERE sku = $1 AND location = $2 RETURNING on_hand, reserved, safety",
		4, {TEXTOID, TEXTOID, INT8OID, INT8OID}
	};
	Datum		values[4];
	int64		on_hand,
				reserved,
				safety;
	StringInfoData data;
	bool		first = true;

	values[0] = CStringGetTextDatum(sku);
	values[1] = CStringGetTextDatum(location);
	values[2] = Int64GetDatum(d_on_hand);
	values[3] = Int64GetDatum(d_reserved);
	if (os_execute(&p, values, NULL, false, 0) != 1)
		elog(ERROR, "ordersync: no stock row for SKU \"%s\" at \"%s\"", sku, location);
	on_hand = os_getint64(0, 1);
	reserved = os_getint64(0, 2);
	safety = os_getint64(0, 3);

	os_write_history(action, order_id, has_order, NULL, NULL, sku, location,
					 qty, true, reason);

	initStringInfo(&data);
	appendStringInfoChar(&data, '{');
	json_add_text(&data, &first, "sku", sku);
	json_add_text(&data, &first, "location", location);
	json_add_int64(&data, &first, "qty", qty);
	json_add_null_or_int64(&data, &first, "order_id", order_id, !has_order);
	json_add_int64(&data, &first, "on_hand", on_hand);
	json_add_int64(&data, &first, "reserved", reserved);
	json_add_int64(&data, &first, "available", Max(on_hand - reserved - safety, 0));
	appendStringInfoChar(&data, '}');
	os_emit_event(event_type, "sku", sku, &data);
	pfree(data.data);
}

/*
 * The stock side of a status change (see ordersync.transition.effect):
 * moves every reservation of the order in one state to the next.
 */
void
os_apply_effect(const char *effect, int64 order_id, const char *reason)
{
	static OsPlan sel = {
		"SELECT line_no, sku, location, qty FROM ordersync.reservation"
		" WHERE order_id = $1 AND state = $2"
		" ORDER BY sku COLLATE \"C\", location COLLATE \"C\", line_no",
		2, {INT8OID, TEXTOID}
	};
	static OsPlan upd = {
		"UPDATE ordersync.reservation SET state = $3 WHERE order_id = $1 AND state = $2",
		3, {INT8OID, TEXTOID, TEXTOID}
	};
	const char *from_state;
	const char *to_state;
	const char *action;
	const char *event_type;
	int			sign_on_hand;
	int			sign_reserved;
	Datum		values[3];
	SPITupleTable *tuptable;
	uint64		n;

	if (strcmp(effect, "release") == 0)
	{
		from_state = "held", to_state = "released";
		action = "release", event_type = "inventory.released";
		sign_on_hand = 0, sign_reserved = -1;
	}
	else if (strcmp(effect, "consume") == 0)
	{
		from_state = "held", to_state = "consumed";
		action = "consume", event_type = "inventory.consumed";
		sign_on_hand = -1, sign_reserved = -1;
	}
	else if (strcmp(effect, "restock") == 0)
	{
		from_state = "consumed", to_state = "restocked";
		action = "restock", event_type = "inventory.restocked";
		sign_on_hand = 1, sign_reserved = 0;
	}
	else
		return;					/* none, firm: no stock moves */

	values[0] = Int64GetDatum(order_id);
	values[1] = CStringGetTextDatum(from_state);
	values[2] = CStringGetTextDatum(to_state);
	n = os_execute(&sel, values, NULL, false, 0);
	/* os_stock_move runs statements of its own: keep our result */
	tuptable = SPI_tuptable;

	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = tuptable->vals[i];
		TupleDesc	desc = tuptable->tupdesc;
		char	   *sku = SPI_getvalue(tup, desc, 2);
		char	   *location = SPI_getvalue(tup, desc, 3);
		bool		isnull;
		int64		qty = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));

		os_stock_move(action, event_type, order_id, true, sku, location, qty,
					  sign_on_hand * qty, sign_reserved * qty, reason);
	}
	if (n > 0)
		(void) os_execute(&upd, values, NULL, false, 0);
}

void
os_require_location(const char *location)
{
	static OsPlan p = {
		"SELECT 1 FROM ordersync.location WHERE id = $1",
		1, {TEXTOID}
	};
	Datum		v = CStringGetTextDatum(location);

	if (os_execute(&p, &v, NULL, true, 1) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("unknown location \"%s\"", location),
				 errdetail("ordersync.location has no location with id \"%s\".", location),
				 errhint("Add it first: SELECT ordersync.add_location('%s');", location)));
}

static char *
required_text_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	char	   *s;

	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("%s must not be null", name),
				 errdetail("%s() was called with %s => NULL.",
						   get_func_name(fcinfo->flinfo->fn_oid), name),
				 errhint("Pass a non-empty %s.", name)));
	s = text_to_cstring(PG_GETARG_TEXT_PP(n));
	if (s[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("%s must not be empty", name),
				 errdetail("%s() was called with %s => ''.",
						   get_func_name(fcinfo->flinfo->fn_oid), name),
				 errhint("Pass a non-empty %s.", name)));
	return s;
}

static int64
required_qty_arg(FunctionCallInfo fcinfo, int n, int64 min)
{
	int64		qty;

	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("qty must not be null"),
				 errdetail("%s() was called with qty => NULL.",
						   get_func_name(fcinfo->flinfo->fn_oid)),
				 errhint("Pass a quantity of at least " INT64_FORMAT ".", min)));
	qty = PG_GETARG_INT64(n);
	if (qty < min)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("qty must be at least " INT64_FORMAT, min),
				 errdetail("%s() was called with qty => " INT64_FORMAT ".",
						   get_func_name(fcinfo->flinfo->fn_oid), qty),
				 errhint("Pass a quantity of at least " INT64_FORMAT ".", min)));
	return qty;
}

/*
 * receive_stock(sku, location, qty) -> new on_hand at that location
 */
Datum
ordersync_receive_stock(PG_FUNCTION_ARGS)
{
	static OsPlan ins_sku = {
		"INSERT INTO ordersync.sku (sku) VALUES ($1) ON CONFLICT DO NOTHING",
		1, {TEXTOID}
	};
	static OsPlan ins_stock = {
		"INSERT INTO ordersync.stock (sku, location) VALUES ($1, $2) ON CONFLICT DO NOTHING",
		2, {TEXTOID, TEXTOID}
	};
	static OsPlan get = {
		"SELECT on_hand FROM ordersync.stock WHERE sku = $1 AND location = $2",
		2, {TEXTOID, TEXTOID}
	};
	char	   *sku = required_text_arg(fcinfo, 0, "sku");
	char	   *location = required_text_arg(fcinfo, 1, "location");
	int64		qty = required_qty_arg(fcinfo, 2, 1);
	Datum		values[2];
	int64		on_hand;

	if (strlen(sku) > 100)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("SKU is too long"),
				 errdetail("The SKU has %zu characters; at most 100 are allowed.", strlen(sku)),
				 errhint("Use a shorter SKU.")));

	SPI_connect();
	os_require_location(location);
	values[0] = CStringGetTextDatum(sku);
	values[1] = CStringGetTextDatum(location);
	(void) os_execute(&ins_sku, values, NULL, false, 0);
	(void) os_execute(&ins_stock, values, NULL, false, 0);
	os_stock_move("receive", "inventory.received", 0, false, sku, location,
				  qty, qty, 0, NULL);
	(void) os_execute(&get, values, NULL, false, 1);
	on_hand = os_getint64(0, 1);
	SPI_finish();

	PG_RETURN_INT64(on_hand);
}

/*
 * set_safety_stock(sku, location, qty): units at a location never sold
 */
Datum
ordersync_set_safety_stock(PG_FUNCTION_ARGS)
{
	static OsPlan p = {
		"UPDATE ordersync.stock SET safety = $3 WHERE sku = $1 AND location = $2"
		" RETURNING on_hand, reserved",
		3, {TEXTOID, TEXTOID, INT8OID}
	};
	char	   *sku = required_text_arg(fcinfo, 0, "sku");
	char	   *location = required_text_arg(fcinfo, 1, "location");
	int64		qty = required_qty_arg(fcinfo, 2, 0);
	Datum		values[3];

	SPI_connect();
	values[0] = CStringGetTextDatum(sku);
	values[1] = CStringGetTextDatum(location);
	values[2] = Int64GetDatum(qty);
	if (os_execute(&p, values, NULL, false, 0) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("no stock of SKU \"%s\" at location \"%s\"", sku, location),
				 errdetail("ordersync.stock has no row for (%s, %s).", sku, location),
				 errhint("Receive stock there first with ordersync.receive_stock().")));
	os_write_history("safety", 0, false, NULL, NULL, sku, location, qty, true, NULL);
	SPI_finish();

	PG_RETURN_VOID();
}

/*
 * available(sku): sellable now over all locations.  Locations where safety
 * stock exceeds what is free count as zero, not negative.
 */
Datum
ordersync_available(PG_FUNCTION_ARGS)
{
	static OsPlan sum = {
		"SELECT coalesce(sum(greatest(on_hand - reserved - safety, 0)), 0)::bigint,"
		" count(*) > 0 FROM ordersync.stock WHERE sku = $1",
		1, {TEXTOID}
	};
	static OsPlan exists = {
		"SELECT 1 FROM ordersync.sku WHERE sku = $1",
		1, {TEXTOID}
	};
	Datum		v = PointerGetDatum(PG_GETARG_TEXT_PP(0));
	int64		result;

	SPI_connect();
	(void) os_execute(&sum, &v, NULL, true, 1);
	result = os_getint64(0, 1);
	if (!os_getbool(0, 2) && os_execute(&exists, &v, NULL, true, 1) == 0)
	{
		char	   *sku = text_to_cstring(PG_GETARG_TEXT_PP(0));

		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("unknown SKU \"%s\"", sku),
				 errdetail("ordersync.sku has no SKU \"%s\".", sku),
				 errhint("SKUs are created by ordersync.receive_stock().")));
	}
	SPI_finish();

	PG_RETURN_INT64(result);
}

/*
 * add_location(id, priority): new location, or new priority of an old one
 */
Datum
ordersync_add_location(PG_FUNCTION_ARGS)
{
	static OsPlan p = {
		"INSERT INTO ordersync.location (id, priority) VALUES ($1, $2)"
		" ON CONFLICT (id) DO UPDATE SET priority = EXCLUDED.priority",
		2, {TEXTOID, INT4OID}
	};
	char	   *id = required_text_arg(fcinfo, 0, "id");
	Datum		values[2];

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("priority must not be null"),
				 errdetail("add_location() was called with priority => NULL."),
				 errhint("Pass an integer; higher priorities are allocated first.")));
	if (strlen(id) > 63 || strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-") != strlen(id) ||
		strchr("_.:-", id[0]) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("invalid location id \"%s\"", id),
				 errdetail("A location id has 1 to 63 characters: letters, digits, '_', '.', ':' or '-', starting with a letter or digit."),
				 errhint("Choose an id such as 'berlin-1'.")));

	SPI_connect();
	values[0] = CStringGetTextDatum(id);
	values[1] = PG_GETARG_DATUM(1);
	(void) os_execute(&p, values, NULL, false, 0);
	SPI_finish();

	PG_RETURN_VOID();
}
