/*-------------------------------------------------------------------------
 *
 * place_order.c
 *	  ordersync.place_order(): validate and normalize a channel's order,
 *	  import it at most once per (channel, external_id), and reserve every
 *	  line or nothing (allocate.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "ordersync.h"

PG_FUNCTION_INFO_V1(ordersync_place_order);
PG_FUNCTION_INFO_V1(ordersync_add_channel);

/* numeric(14,2), the type of prices and totals */
#define MONEY_TYPMOD (((14) << 16 | (2)) + VARHDRSZ)
#define MAX_LINES 1000

static void
pg_attribute_noreturn()
bad_line(int line_no, const char *what, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_OS_INVALID_INPUT),
			 errmsg("invalid order line %d", line_no),
			 errdetail("%s", what),
			 errhint("%s", hint)));
}

#define LINE_HINT "Each line is an object {\"sku\": \"A-1\", \"qty\": 2, \"price\": \"19.90\"}."

/*
 * A price is a decimal with at most 12 digits before the point and 2 after,
 * as a JSON string ("19.90") or number (19.9); it is stored with 2 decimals.
 */
static char *
normalize_price(int line_no, JsonbValue *v)
{
	const char *s;
	const char *p;
	int			intdigits = 0,
				fracdigits = 0;
	Datum		num;

	if (v->type == jbvString)
		s = pnstrdup(v->val.string.val, v->val.string.len);
	else if (v->type == jbvNumeric)
		s = DatumGetCString(DirectFunctionCall1(numeric_out,
												NumericGetDatum(v->val.numeric)));
	else
		bad_line(line_no, "\"price\" is not a string or a number.", LINE_HINT);

	p = s;
	while (*p >= '0' && *p <= '9')
		p++, intdigits++;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			fracdigits++;
	if (*p != '\0' || intdigits == 0 || intdigits > 12 || fracdigits > 2 ||
		(strchr(s, '.') && fracdigits == 0))
		bad_line(line_no,
				 psprintf("\"price\" is \"%s\", not a decimal amount with at most 12 digits before the point and 2 after.", s),
				 "Write prices as non-negative decimal strings, for example \"19.90\".");

	num = DirectFunctionCall3(numeric_in, CStringGetDatum(s),
							  ObjectIdGetDatum(InvalidOid),
							  Int32GetDatum(MONEY_TYPMOD));
	return DatumGetCString(DirectFunctionCall1(numeric_out, num));
}

static int64
parse_qty(int line_no, JsonbValue *v)
{
	char	   *s;
	int64		qty;
	char	   *end;

	if (v->type != jbvNumeric)
		bad_line(line_no, "\"qty\" is not a number.", LINE_HINT);
	s = DatumGetCString(DirectFunctionCall1(numeric_out,
											NumericGetDatum(v->val.numeric)));
	errno = 0;
	qty = strtoll(s, &end, 10);
	if (*end != '\0' || errno != 0 || qty <= 0)
		bad_line(line_no,
				 psprintf("\"qty\" is %s, not a positive whole number.", s),
				 "Order at least one unit per line.");
	return qty;
}

/*
 * Parses the lines argument into an array; returns the count.  Unknown keys
 * are refused rather than dropped, so nothing a channel sends is lost
 * silently.
 */
static int
parse_lines(Jsonb *jb, OrderLine **out)
{
	int			n;
	OrderLine  *lines;

	if (!JB_ROOT_IS_ARRAY(jb) || JB_ROOT_IS_SCALAR(jb))
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("order lines must be a JSON array"),
				 errdetail("place_order() got lines that are a JSON %s.",
						   JB_ROOT_IS_OBJECT(jb) ? "object" : "scalar"),
				 errhint(LINE_HINT)));
	n = JB_ROOT_COUNT(jb);
	if (n == 0 || n > MAX_LINES)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("an order needs between 1 and %d lines", MAX_LINES),
				 errdetail("place_order() got %d lines.", n),
				 errhint(LINE_HINT)));

	lines = palloc0(sizeof(OrderLine) * n);
	for (int i = 0; i < n; i++)
	{
		JsonbValue *elem = getIthJsonbValueFromContainer(&jb->root, i);
		JsonbIterator *it;
		JsonbIteratorToken tok;
		JsonbValue	k,
					v;
		OrderLine  *l = &lines[i];
		bool		has_price = false;

		l->line_no = i + 1;
		if (elem->type != jbvBinary || !JsonContainerIsObject(elem->val.binary.data))
			bad_line(l->line_no, "The line is not a JSON object.", LINE_HINT);

		it = JsonbIteratorInit(elem->val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			char	   *key;

			if (tok != WJB_KEY)
				continue;
			key = pnstrdup(k.val.string.val, k.val.string.len);
			tok = JsonbIteratorNext(&it, &v, true);
			if (strcmp(key, "sku") == 0)
			{
				if (v.type != jbvString || v.val.string.len == 0 ||
					pg_mbstrlen_with_len(v.val.string.val, v.val.string.len) > 100)
					bad_line(l->line_no, "\"sku\" is not a string of 1 to 100 characters.", LINE_HINT);
				l->sku = pnstrdup(v.val.string.val, v.val.string.len);
				os_check_text("place_order", psprintf("sku of line %d", l->line_no), l->sku);
			}
			else if (strcmp(key, "qty") == 0)
				l->qty = parse_qty(l->line_no, &v);
			else if (strcmp(key, "price") == 0)
			{
				l->price = normalize_price(l->line_no, &v);
				has_price = true;
			}
			else
				bad_line(l->line_no, psprintf("The line has an unknown key \"%s\".", key),
						 LINE_HINT);
		}
		if (l->sku == NULL || l->qty == 0 || !has_price)
			bad_line(l->line_no,
					 psprintf("The line has no \"%s\".",
							  l->sku == NULL ? "sku" : l->qty == 0 ? "qty" : "price"),
					 LINE_HINT);
	}
	*out = lines;
	return n;
}

/* the normalized lines, stored in orders.lines and compared on re-import */
static Datum
lines_to_jsonb(OrderLine *lines, int n)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	for (int i = 0; i < n; i++)
	{
		bool		first = true;

		if (i > 0)
			appendStringInfoChar(&buf, ',');
		appendStringInfoChar(&buf, '{');
		json_add_int64(&buf, &first, "line_no", lines[i].line_no);
		json_add_text(&buf, &first, "sku", lines[i].sku);
		json_add_int64(&buf, &first, "qty", lines[i].qty);
		json_add_text(&buf, &first, "price", lines[i].price);
		appendStringInfoChar(&buf, '}');
	}
	appendStringInfoChar(&buf, ']');
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data));
}

static Datum
lines_total(OrderLine *lines, int n)
{
	Datum		total = DirectFunctionCall3(numeric_in, CStringGetDatum("0"),
											ObjectIdGetDatum(InvalidOid),
											Int32GetDatum(-1));
	Datum		max = DirectFunctionCall3(numeric_in, CStringGetDatum("999999999999.99"),
										  ObjectIdGetDatum(InvalidOid),
										  Int32GetDatum(-1));

	for (int i = 0; i < n; i++)
	{
		Datum		price = DirectFunctionCall3(numeric_in, CStringGetDatum(lines[i].price),
												ObjectIdGetDatum(InvalidOid),
												Int32GetDatum(-1));
		Datum		qty = DirectFunctionCall1(int8_numeric, Int64GetDatum(lines[i].qty));

		total = DirectFunctionCall2(numeric_add, total,
									DirectFunctionCall2(numeric_mul, price, qty));
	}
	if (DatumGetBool(DirectFunctionCall2(numeric_gt, total, max)))
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("order total is too large"),
				 errdetail("The lines add up to %s; at most 999999999999.99 is allowed.",
						   DatumGetCString(DirectFunctionCall1(numeric_out, total))),
				 errhint("Split the order.")));
	return total;
}

/*
 * The customer object is stored with the order and copied into every event
 * of it, through the relay to every sink: its size, as jsonb text, and its
 * nesting are bounded by ordersync.max_customer_bytes and
 * ordersync.max_customer_depth (the object itself is level 1).
 */
static void
check_customer(Jsonb *customer)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;
	int			depth = 0;
	int			deepest = 0;
	size_t		bytes;

	bytes = strlen(JsonbToCString(NULL, &customer->root, VARSIZE(customer)));
	if (bytes > (size_t) ordersync_max_customer_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("customer is too large"),
				 errdetail("The customer object is %zu bytes as JSON text; ordersync.max_customer_bytes allows %d.",
						   bytes, ordersync_max_customer_bytes),
				 errhint("Send only what the order needs (name, contact, addresses); a superuser can raise ordersync.max_customer_bytes.")));

	it = JsonbIteratorInit(&customer->root);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		if (tok == WJB_BEGIN_OBJECT || tok == WJB_BEGIN_ARRAY)
		{
			depth++;
			deepest = Max(deepest, depth);
		}
		else if (tok == WJB_END_OBJECT || tok == WJB_END_ARRAY)
			depth--;
	}
	if (deepest > ordersync_max_customer_depth)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("customer is nested too deeply"),
				 errdetail("The customer object has %d levels of objects and arrays; ordersync.max_customer_depth allows %d.",
						   deepest, ordersync_max_customer_depth),
				 errhint("Flatten the customer object; a superuser can raise ordersync.max_customer_depth.")));
}

static void
require_channel(const char *channel)
{
	static OsPlan p = {
		"SELECT 1 FROM ordersync.channel WHERE id = $1",
		1, {TEXTOID}
	};
	Datum		v = CStringGetTextDatum(channel);

	if (os_execute(&p, &v, NULL, true, 1) == 0)
		os_unknown_channel(channel);
}

/*
 * On a duplicate (channel, external_id): the first order's id when the
 * content is the same, an error when it differs.
 */
static int64
existing_order(const char *channel, const char *external_id,
			   Datum lines, Jsonb *customer)
{
	static OsPlan p = {
		"SELECT id, lines = $3, customer IS NOT DISTINCT FROM $4"
		" FROM ordersync.orders WHERE channel = $1 AND external_id = $2",
		4, {TEXTOID, TEXTOID, JSONBOID, JSONBOID}
	};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', customer ? ' ' : 'n'};
	int64		id;

	values[0] = CStringGetTextDatum(channel);
	values[1] = CStringGetTextDatum(external_id);
	values[2] = lines;
	values[3] = PointerGetDatum(customer);
	if (os_execute(&p, values, nulls, false, 1) != 1)
		elog(ERROR, "ordersync: order (%s, %s) conflicted but cannot be read",
			 channel, external_id);
	id = os_getint64(0, 1);
	if (!os_getbool(0, 2) || !os_getbool(0, 3))
		ereport(ERROR,
				(errcode(ERRCODE_OS_IMPORT_CONFLICT),
				 errmsg("order \"%s\" from channel \"%s\" was already imported with different content",
						external_id, channel),
				 errdetail("Order " INT64_FORMAT " has the same channel and external id but different %s.",
						   id, !os_getbool(0, 2) ? "lines" : "customer"),
				 errhint("Use a new external id for a new order; to change order " INT64_FORMAT
						 ", cancel it and place a new one.", id)));
	return id;
}

/*
 * place_order(channel, external_id, lines, customer, allow_split) -> order id
 */
Datum
ordersync_place_order(PG_FUNCTION_ARGS)
{
	static OsPlan ins = {
		"INSERT INTO ordersync.orders (channel, external_id, lines, customer, total, expires_at)"
		" VALUES ($1, $2, $3, $4, $5, pg_catalog.now() + pg_catalog.make_interval(secs => $6))"
		" ON CONFLICT (channel, external_id) DO NOTHING RETURNING *",
		6, {TEXTOID, TEXTOID, JSONBOID, JSONBOID, NUMERICOID, FLOAT8OID}
	};
	char	   *channel;
	char	   *external_id;
	Jsonb	   *customer = NULL;
	OrderLine  *lines;
	int			n;
	Datum		lines_jb;
	Datum		total;
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	int64		order_id;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("%s must not be null",
						PG_ARGISNULL(0) ? "channel" : PG_ARGISNULL(1) ? "external_id" : "lines"),
				 errdetail("place_order() needs a channel, the channel's own order id and the lines."),
				 errhint("Call ordersync.place_order('web', 'W-1001', '[{\"sku\":\"A-1\",\"qty\":1,\"price\":\"9.90\"}]').")));
	channel = text_to_cstring(PG_GETARG_TEXT_PP(0));
	external_id = text_to_cstring(PG_GETARG_TEXT_PP(1));
	os_check_text("place_order", "channel", channel);
	if (external_id[0] == '\0' || pg_mbstrlen(external_id) > 200)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("external_id must have 1 to 200 characters"),
				 errdetail("place_order() got an external_id of %d characters.", pg_mbstrlen(external_id)),
				 errhint("Pass the channel's own order number.")));
	os_check_text("place_order", "external_id", external_id);
	if (!PG_ARGISNULL(3))
	{
		customer = PG_GETARG_JSONB_P(3);
		if (JB_ROOT_IS_SCALAR(customer))
		{
			JsonbValue	v;

			if (!JsonbExtractScalar(&customer->root, &v) || v.type != jbvNull)
				ereport(ERROR,
						(errcode(ERRCODE_OS_INVALID_INPUT),
						 errmsg("customer must be a JSON object"),
						 errdetail("place_order() got a JSON scalar as customer."),
						 errhint("Pass an object such as {\"name\": \"Ada\"}, or NULL.")));
			customer = NULL;	/* JSON null is no customer */
		}
		else if (!JB_ROOT_IS_OBJECT(customer))
			ereport(ERROR,
					(errcode(ERRCODE_OS_INVALID_INPUT),
					 errmsg("customer must be a JSON object"),
					 errdetail("place_order() got a JSON array as customer."),
					 errhint("Pass an object such as {\"name\": \"Ada\"}, or NULL.")));
		else
			check_customer(customer);
	}

	n = parse_lines(PG_GETARG_JSONB_P(2), &lines);
	lines_jb = lines_to_jsonb(lines, n);
	total = lines_total(lines, n);

	SPI_connect();
	require_channel(channel);

	values[0] = CStringGetTextDatum(channel);
	values[1] = CStringGetTextDatum(external_id);
	values[2] = lines_jb;
	values[3] = PointerGetDatum(customer);
	nulls[3] = customer ? ' ' : 'n';
	values[4] = total;
	values[5] = Float8GetDatum((double) ordersync_reservation_ttl);
	if (os_execute(&ins, values, nulls, false, 0) == 0)
	{
		order_id = existing_order(channel, external_id, lines_jb, customer);
		SPI_finish();
		PG_RETURN_INT64(order_id);
	}

	order_id = os_getint64(0, SPI_fnumber(SPI_tuptable->tupdesc, "id"));
	os_emit_order_event("order.created", SPI_tuptable->vals[0],
						SPI_tuptable->tupdesc, NULL, NULL);
	os_write_history("created", order_id, true, NULL, "pending", NULL, NULL,
					 0, false, NULL);

	os_reserve_lines(order_id, lines, n, !PG_ARGISNULL(4) && PG_GETARG_BOOL(4));

	SPI_finish();
	PG_RETURN_INT64(order_id);
}

/*
 * The channel's own status words (keys) are shown in errors and kept; the
 * values must be our status names: both are checked like identifiers.
 */
static void
check_status_map(Jsonb *map)
{
	JsonbIterator *it = JsonbIteratorInit(&map->root);
	JsonbIteratorToken tok;
	JsonbValue	v;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if ((tok == WJB_KEY || tok == WJB_VALUE) && v.type == jbvString)
			os_check_text("add_channel", tok == WJB_KEY ? "channel status" : "status",
						  pnstrdup(v.val.string.val, v.val.string.len));
	}
}

/*
 * add_channel(id, status_map): new channel, or new status map of an old one
 */
Datum
ordersync_add_channel(PG_FUNCTION_ARGS)
{
	static OsPlan p = {
		"INSERT INTO ordersync.channel (id, status_map) VALUES ($1, $2)"
		" ON CONFLICT (id) DO UPDATE SET status_map = EXCLUDED.status_map",
		2, {TEXTOID, JSONBOID}
	};
	static OsPlan bad_status = {
		"SELECT e.value FROM pg_catalog.jsonb_each($1) e"
		" WHERE pg_catalog.jsonb_typeof(e.value) <> 'string'"
		"    OR NOT EXISTS (SELECT 1 FROM ordersync.status s WHERE s.name = e.value #>> '{}')"
		" LIMIT 1",
		1, {JSONBOID}
	};
	char	   *id;
	Jsonb	   *map;
	Datum		values[2];
	size_t		len;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("%s must not be null", PG_ARGISNULL(0) ? "id" : "status_map"),
				 errdetail("add_channel() needs a channel id and a status map."),
				 errhint("Call ordersync.add_channel('shop-x', '{\"PAID\": \"paid\"}').")));
	id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	map = PG_GETARG_JSONB_P(1);
	os_check_text("add_channel", "id", id);
	len = strlen(id);
	if (len == 0 || len > 63 ||
		strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789_.-") != len ||
		strchr("_.-", id[0]) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("invalid channel id \"%s\"", id),
				 errdetail("A channel id has 1 to 63 characters: lower-case letters, digits, '_', '.' or '-', starting with a letter or digit."),
				 errhint("Choose an id such as 'marketplace-1'.")));
	if (!JB_ROOT_IS_OBJECT(map))
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("status_map must be a JSON object"),
				 errdetail("add_channel() got a status map that is not an object."),
				 errhint("Map the channel's status names to ordersync statuses: {\"PAID\": \"paid\"}.")));

	check_status_map(map);

	SPI_connect();
	values[0] = CStringGetTextDatum(id);
	values[1] = JsonbPGetDatum(map);
	if (os_execute(&bad_status, &values[1], NULL, true, 1) > 0)
	{
		bool		isnull;
		Jsonb	   *bad = DatumGetJsonbP(os_getdatum(0, 1, &isnull));

		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("status map of channel \"%s\" names an unknown status", id),
				 errdetail("The map has the value %s, which is not a status in ordersync.status.",
						   JsonbToCString(NULL, &bad->root, VARSIZE(bad))),
				 errhint("Map every channel status to one of the names in ordersync.status.")));
	}
	(void) os_execute(&p, values, NULL, false, 0);
	SPI_finish();

	PG_RETURN_VOID();
}
