/*-------------------------------------------------------------------------
 *
 * stock.c
 *	  Stock: receiving, safety stock, availability, and the movements a
 *	  status change makes to an order's reservations.
 *
 *	  A movement updates stock rows with os_stock_update() and is recorded
 *	  once per (SKU, location) with os_stock_record(): one history row, one
 *	  inventory.* event.  Rows are always locked in (sku, location, bucket)
 *	  order with the "C" collation, the order place_order() waits in, so two
 *	  transactions touching the same SKUs never deadlock on stock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/int.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "ordersync.h"

PG_FUNCTION_INFO_V1(ordersync_receive_stock);
PG_FUNCTION_INFO_V1(ordersync_set_safety_stock);
PG_FUNCTION_INFO_V1(ordersync_available);
PG_FUNCTION_INFO_V1(ordersync_add_location);

/*
 * Stock figures are bigints, and every sum of them is checked: a figure
 * that would not fit is refused with OS004 naming the SKU, the location and
 * the numbers, never left to signed overflow (undefined behaviour in C),
 * to PostgreSQL's "bigint out of range" (22003) or to a CHECK constraint
 * (23514).  The invariant kept is that a location's on-hand units, summed
 * over the buckets of a hot SKU, fit in a bigint; reserved units and units
 * available at a location are at most that.  Sums over locations (what
 * available() returns) may exceed it and are computed as numeric.
 */
void
os_stock_overflow(const char *sku, const char *location, const char *figure,
				  int64 have, int64 add)
{
	ereport(ERROR,
			(errcode(ERRCODE_OS_INVALID_INPUT),
			 errmsg("stock of SKU \"%s\" at \"%s\" would be out of range", sku, location),
			 errdetail("SKU \"%s\" at \"%s\": %s " INT64_FORMAT " + " INT64_FORMAT
					   " would exceed " INT64_FORMAT ".",
					   sku, location, figure, have, add, PG_INT64_MAX),
			 errhint("Stock figures are whole units up to " INT64_FORMAT
					 "; check the quantity, which is almost certainly a mistake.",
					 PG_INT64_MAX)));
}

/*
 * A sum that is already too large, from rows stored before 0.3.0 checked
 * it: "<what> add up to <value>, more than ..."; value may be NULL.
 */
void
os_stock_out_of_range(const char *sku, const char *location,
					  const char *what, const char *value)
{
	ereport(ERROR,
			(errcode(ERRCODE_OS_INVALID_INPUT),
			 errmsg("stock of SKU \"%s\" at \"%s\" is out of range", sku, location),
			 value ?
			 errdetail("SKU \"%s\" at \"%s\": %s add up to %s, more than " INT64_FORMAT ".",
					   sku, location, what, value, PG_INT64_MAX) :
			 errdetail("SKU \"%s\" at \"%s\": %s add up to more than " INT64_FORMAT ".",
					   sku, location, what, PG_INT64_MAX),
			 errhint("Correct the stock rows of the SKU at that location (as the owner of "
					 "ordersync.stock); such figures cannot be real stock.")));
}

/*
 * Changes one stock row by the given deltas and returns its new figures.
 * The caller holds the row lock or takes it here, in the global order; the
 * CHECK constraints are the last line of defence, not the first.  A delta
 * that would take on_hand or reserved past the largest bigint updates
 * nothing and is refused with OS004 (only a restock adds to on_hand here,
 * and os_apply_effect() checks the location's total before).
 */
void
os_stock_update(const char *sku, const char *location, int bucket,
				int64 d_on_hand, int64 d_reserved, StockFigures *row)
{
	static OsPlan p = {
		"UPDATE ordersync.stock SET on_hand = on_hand + $4, reserved = reserved + $5"
		" WHERE sku = $1 AND location = $2 AND bucket = $3"
		" AND on_hand <= 9223372036854775807 - greatest($4, 0)"
		" AND reserved <= 9223372036854775807 - greatest($5, 0)"
		" RETURNING on_hand, reserved, greatest(on_hand - reserved - safety, 0)",
		5, {TEXTOID, TEXTOID, INT4OID, INT8OID, INT8OID}
	};
	static OsPlan get = {
		"SELECT on_hand, reserved FROM ordersync.stock"
		" WHERE sku = $1 AND location = $2 AND bucket = $3",
		3, {TEXTOID, TEXTOID, INT4OID}
	};
	Datum		values[5];

	values[0] = CStringGetTextDatum(sku);
	values[1] = CStringGetTextDatum(location);
	values[2] = Int32GetDatum(bucket);
	values[3] = Int64GetDatum(d_on_hand);
	values[4] = Int64GetDatum(d_reserved);
	if (os_execute(&p, values, NULL, false, 0) != 1)
	{
		int64		on_hand;
		int64		reserved;

		if (os_execute(&get, values, NULL, false, 1) != 1)
			elog(ERROR, "ordersync: no stock row for SKU \"%s\" at \"%s\" bucket %d",
				 sku, location, bucket);
		on_hand = os_getint64(0, 1);
		reserved = os_getint64(0, 2);
		if (d_on_hand > 0 && on_hand > PG_INT64_MAX - d_on_hand)
			os_stock_overflow(sku, location, "on hand", on_hand, d_on_hand);
		if (d_reserved > 0 && reserved > PG_INT64_MAX - d_reserved)
			os_stock_overflow(sku, location, "reserved", reserved, d_reserved);
		elog(ERROR, "ordersync: stock row for SKU \"%s\" at \"%s\" bucket %d was not updated",
			 sku, location, bucket);
	}
	row->on_hand = os_getint64(0, 1);
	row->reserved = os_getint64(0, 2);
	row->available = os_getint64(0, 3);
}

/*
 * A location's figures summed over the buckets of a hot SKU.  The sums are
 * numeric; on hand is checked to fit, and reserved and available are at
 * most on hand.
 */
void
os_location_figures(const char *sku, const char *location, StockFigures *out)
{
	static OsPlan p = {
		"SELECT CASE WHEN o <= 9223372036854775807 THEN o::bigint END,"
		" CASE WHEN o <= 9223372036854775807 THEN r::bigint END,"
		" CASE WHEN o <= 9223372036854775807 THEN a::bigint END, o::text"
		" FROM (SELECT sum(on_hand) o, sum(reserved) r,"
		"  sum(greatest(on_hand - reserved - safety, 0)) a"
		"  FROM ordersync.stock WHERE sku = $1 AND location = $2) s",
		2, {TEXTOID, TEXTOID}
	};
	Datum		values[2];
	bool		isnull;

	values[0] = CStringGetTextDatum(sku);
	values[1] = CStringGetTextDatum(location);
	(void) os_execute(&p, values, NULL, false, 1);
	(void) os_getdatum(0, 1, &isnull);
	if (isnull && os_gettext(0, 4) != NULL)
		os_stock_out_of_range(sku, location, "the on-hand units of its buckets",
							  os_gettext(0, 4));
	out->on_hand = os_getint64(0, 1);
	out->reserved = os_getint64(0, 2);
	out->available = os_getint64(0, 3);
	os_hot_figures_keep(sku, location, out);
}

/* one movement at one location: a history row and an inventory.* event */
void
os_stock_record(const char *action, const char *event_type, int64 order_id,
				bool has_order, const char *sku, const char *location,
				int64 qty, const StockFigures *fig, const char *reason)
{
	StringInfoData data;
	bool		first = true;

	os_write_history(action, order_id, has_order, NULL, NULL, sku, location,
					 qty, true, reason);

	initStringInfo(&data);
	appendStringInfoChar(&data, '{');
	json_add_text(&data, &first, "sku", sku);
	json_add_text(&data, &first, "location", location);
	json_add_int64(&data, &first, "qty", qty);
	json_add_null_or_int64(&data, &first, "order_id", order_id, !has_order);
	json_add_int64(&data, &first, "on_hand", fig->on_hand);
	json_add_int64(&data, &first, "reserved", fig->reserved);
	json_add_int64(&data, &first, "available", fig->available);
	appendStringInfoChar(&data, '}');
	os_emit_event(event_type, "sku", sku, &data);
	pfree(data.data);
}

/*
 * What available() returns, as this transaction sees it; false (and no
 * figure) when the sum over the SKU's locations does not fit in a bigint.
 */
bool
os_sku_available(const char *sku, int64 *available)
{
	static OsPlan p = {
		"SELECT CASE WHEN a <= 9223372036854775807 THEN a::bigint END"
		" FROM (SELECT coalesce(sum(greatest(on_hand - reserved - safety, 0)), 0) a"
		"  FROM ordersync.stock WHERE sku = $1) s",
		1, {TEXTOID}
	};
	Datum		v = CStringGetTextDatum(sku);
	bool		isnull;
	Datum		d;

	(void) os_execute(&p, &v, NULL, false, 1);
	d = os_getdatum(0, 1, &isnull);
	if (isnull)
		return false;
	*available = DatumGetInt64(d);
	return true;
}

static void
emit_level_event(const char *type, const char *sku, int64 available,
				 int64 threshold, bool has_threshold)
{
	StringInfoData data;
	bool		first = true;

	initStringInfo(&data);
	appendStringInfoChar(&data, '{');
	json_add_text(&data, &first, "sku", sku);
	json_add_int64(&data, &first, "available", available);
	json_add_null_or_int64(&data, &first, "threshold", threshold, !has_threshold);
	appendStringInfoChar(&data, '}');
	os_emit_event(type, "sku", sku, &data);
	pfree(data.data);
}

/*
 * inventory.low_stock when available stock falls to the SKU's threshold or
 * below, inventory.out_of_stock when it reaches zero: once per crossing.
 * The caller passes what is available after a movement and the units it
 * took; the figure before, after + taken, is never computed, as it may not
 * fit in a bigint (both comparisons below are exact without it).
 */
void
os_stock_thresholds(const char *sku, int64 after, int64 taken,
					int64 threshold, bool has_threshold)
{
	/* before > threshold, with after <= threshold so the difference fits */
	if (has_threshold && after <= threshold && taken > threshold - after)
		emit_level_event("inventory.low_stock", sku, after, threshold, true);
	if (after == 0 && taken > 0)
		emit_level_event("inventory.out_of_stock", sku, after, threshold, has_threshold);
}

static void check_restock_room(SPITupleTable *tuptable, uint64 first,
							   uint64 n, const char *sku, const char *location);

/*
 * The stock side of a status change (see ordersync.transition.effect):
 * moves every reservation of the order in one state to the next.  Rows are
 * updated bucket by bucket in the global lock order; history and events
 * are written once per (SKU, location).
 */
void
os_apply_effect(const char *effect, int64 order_id, const char *reason)
{
	static OsPlan sel = {
		"SELECT r.sku, r.location, r.bucket, r.qty, k.buckets"
		" FROM ordersync.reservation r JOIN ordersync.sku k ON k.sku = r.sku"
		" WHERE r.order_id = $1 AND r.state = $2"
		" ORDER BY r.sku COLLATE \"C\", r.location COLLATE \"C\", r.bucket, r.line_no",
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
	int64		group_qty = 0;
	StockFigures fig;

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
	/* the calls below run statements of their own: keep our result */
	tuptable = SPI_tuptable;

	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = tuptable->vals[i];
		TupleDesc	desc = tuptable->tupdesc;
		bool		isnull;
		char	   *sku = SPI_getvalue(tup, desc, 1);
		char	   *location = SPI_getvalue(tup, desc, 2);
		int			bucket = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		int64		qty = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
		int			buckets = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
		bool		last_of_group;

		/*
		 * Units coming back on hand must fit beside what the location has
		 * received since they left: check the group's total against the
		 * location's, with its rows locked, before the first row changes.
		 */
		if (sign_on_hand > 0 && group_qty == 0)
			check_restock_room(tuptable, i, n, sku, location);

		os_stock_update(sku, location, bucket, sign_on_hand * qty,
						sign_reserved * qty, &fig);
		if (pg_add_s64_overflow(group_qty, qty, &group_qty))
			os_stock_overflow(sku, location, "the order's units", group_qty, qty);

		last_of_group = (i + 1 == n);
		if (!last_of_group)
		{
			char	   *next_sku = SPI_getvalue(tuptable->vals[i + 1], desc, 1);
			char	   *next_loc = SPI_getvalue(tuptable->vals[i + 1], desc, 2);

			last_of_group = strcmp(sku, next_sku) != 0 || strcmp(location, next_loc) != 0;
		}
		if (last_of_group)
		{
			/* one row per location unless the SKU is bucketed */
			if (buckets > 1)
				os_location_figures(sku, location, &fig);
			os_stock_record(action, event_type, order_id, true, sku, location,
							group_qty, &fig, reason);
			group_qty = 0;
		}
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

/*
 * The bucket rows of a SKU at one location, locked in bucket order.
 *
 * Safety stock of a hot SKU lives in its first bucket, and that bucket
 * always keeps at least min(safety, unreserved units at the location) of
 * its units unreserved: allocation never takes it below its safety, and the
 * functions below move units into it.  Then the per-bucket figures add up
 * to exactly what the location may sell, whatever the other buckets hold.
 */
typedef struct Buckets
{
	int			n;
	int		   *bucket;
	int64	   *on_hand;
	int64	   *reserved;
	int64		safety;			/* of the first bucket */
} Buckets;

static void
lock_buckets(const char *sku, const char *location, bool create, Buckets *b)
{
	static OsPlan make = {
		"INSERT INTO ordersync.stock (sku, location, bucket)"
		" SELECT $1, $2, b FROM pg_catalog.generate_series(0,"
		"  (SELECT buckets - 1 FROM ordersync.sku WHERE sku = $1)) b"
		" WHERE NOT EXISTS (SELECT 1 FROM ordersync.stock WHERE sku = $1 AND location = $2)"
		" ON CONFLICT DO NOTHING",
		2, {TEXTOID, TEXTOID}
	};
	static OsPlan lock = {
		"SELECT bucket, on_hand, reserved, safety FROM ordersync.stock"
		" WHERE sku = $1 AND location = $2 ORDER BY bucket FOR UPDATE",
		2, {TEXTOID, TEXTOID}
	};
	Datum		values[2];
	bool		isnull;

	values[0] = CStringGetTextDatum(sku);
	values[1] = CStringGetTextDatum(location);
	if (create)
		(void) os_execute(&make, values, NULL, false, 0);
	b->n = os_execute(&lock, values, NULL, false, 0);
	if (b->n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("no stock of SKU \"%s\" at location \"%s\"", sku, location),
				 errdetail("ordersync.stock has no row for (%s, %s).", sku, location),
				 errhint("Receive stock there first with ordersync.receive_stock().")));
	b->bucket = palloc(sizeof(int) * b->n);
	b->on_hand = palloc(sizeof(int64) * b->n);
	b->reserved = palloc(sizeof(int64) * b->n);
	for (int i = 0; i < b->n; i++)
	{
		b->bucket[i] = DatumGetInt32(os_getdatum(i, 1, &isnull));
		b->on_hand[i] = os_getint64(i, 2);
		b->reserved[i] = os_getint64(i, 3);
	}
	b->safety = os_getint64(0, 4);
}

/* writes back the on_hand of every bucket, and the safety of the first */
static void
store_buckets(const char *sku, const char *location, Buckets *b)
{
	static OsPlan put = {
		"UPDATE ordersync.stock SET on_hand = $4, safety = $5"
		" WHERE sku = $1 AND location = $2 AND bucket = $3",
		5, {TEXTOID, TEXTOID, INT4OID, INT8OID, INT8OID}
	};
	Datum		values[5];

	values[0] = CStringGetTextDatum(sku);
	values[1] = CStringGetTextDatum(location);
	for (int i = 0; i < b->n; i++)
	{
		values[2] = Int32GetDatum(b->bucket[i]);
		values[3] = Int64GetDatum(b->on_hand[i]);
		values[4] = Int64GetDatum(i == 0 ? b->safety : 0);
		(void) os_execute(&put, values, NULL, false, 0);
	}
}

/*
 * The on-hand units of a location over its buckets (locked), refused when
 * the sum does not fit or adding more would not.
 */
static int64
buckets_on_hand(const char *sku, const char *location, const Buckets *b,
				int64 more)
{
	int64		total = 0;

	for (int i = 0; i < b->n; i++)
		if (pg_add_s64_overflow(total, b->on_hand[i], &total))
			os_stock_out_of_range(sku, location, "the on-hand units of its buckets",
								  NULL);
	if (more > 0 && total > PG_INT64_MAX - more)
		os_stock_overflow(sku, location, "on hand", total, more);
	return total;
}

/* restock: the group of reservation rows from first on is one (sku, location) */
static void
check_restock_room(SPITupleTable *tuptable, uint64 first, uint64 n,
				   const char *sku, const char *location)
{
	Buckets		b;
	int64		qty = 0;

	for (uint64 j = first; j < n; j++)
	{
		bool		isnull;

		if (strcmp(SPI_getvalue(tuptable->vals[j], tuptable->tupdesc, 1), sku) != 0 ||
			strcmp(SPI_getvalue(tuptable->vals[j], tuptable->tupdesc, 2), location) != 0)
			break;
		if (pg_add_s64_overflow(qty, DatumGetInt64(SPI_getbinval(tuptable->vals[j],
																 tuptable->tupdesc, 4,
																 &isnull)),
								&qty))
			os_stock_out_of_range(sku, location, "the order's units", NULL);
	}
	lock_buckets(sku, location, false, &b);
	(void) buckets_on_hand(sku, location, &b, qty);
}

/*
 * new units: first what the first bucket lacks of its safety, then evenly
 * over the buckets (not the leases, which come last: allocate.c)
 */
static void
receive_into_buckets(const char *sku, const char *location, int64 qty)
{
	Buckets		b;
	int64		lack;
	int			n = 0;

	lock_buckets(sku, location, true, &b);
	(void) buckets_on_hand(sku, location, &b, qty);
	lack = Max(b.safety - (b.on_hand[0] - b.reserved[0]), 0);
	lack = Min(lack, qty);
	b.on_hand[0] += lack;
	qty -= lack;
	while (n < b.n && b.bucket[n] < LEASE_BASE)
		n++;
	n = Max(n, 1);
	for (int i = 0; i < n; i++)
		b.on_hand[i] += qty / n + (i < qty % n ? 1 : 0);
	store_buckets(sku, location, &b);
}

/* new safety stock: into the first bucket, with units moved there to cover it */
static void
set_bucket_safety(const char *sku, const char *location, int64 safety)
{
	Buckets		b;
	int64		unreserved = 0;
	int64		lack;

	lock_buckets(sku, location, false, &b);
	(void) buckets_on_hand(sku, location, &b, 0);
	/* reserved <= on_hand in every bucket: fits, as their on-hand sum does */
	for (int i = 0; i < b.n; i++)
		unreserved += b.on_hand[i] - b.reserved[i];
	lack = Min(safety, unreserved) - (b.on_hand[0] - b.reserved[0]);
	for (int i = 1; i < b.n && lack > 0; i++)
	{
		int64		move = Min(lack, b.on_hand[i] - b.reserved[i]);

		b.on_hand[i] -= move;
		b.on_hand[0] += move;
		lack -= move;
	}
	b.safety = safety;
	store_buckets(sku, location, &b);
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
	char	   *sku = os_required_text_arg(fcinfo, 0, "sku");
	char	   *location = os_required_text_arg(fcinfo, 1, "location");
	int64		qty = os_required_qty_arg(fcinfo, 2, 1);
	Datum		v;
	StockFigures fig;

	if (pg_mbstrlen(sku) > 100)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("SKU is too long"),
				 errdetail("The SKU has %d characters; at most 100 are allowed.", pg_mbstrlen(sku)),
				 errhint("Use a shorter SKU.")));

	SPI_connect();
	os_require_location(location);
	v = CStringGetTextDatum(sku);
	(void) os_execute(&ins_sku, &v, NULL, false, 0);
	receive_into_buckets(sku, location, qty);
	os_location_figures(sku, location, &fig);
	os_stock_record("receive", "inventory.received", 0, false, sku, location,
					qty, &fig, NULL);
	SPI_finish();

	PG_RETURN_INT64(fig.on_hand);
}

/*
 * set_safety_stock(sku, location, qty): units at a location never sold
 */
Datum
ordersync_set_safety_stock(PG_FUNCTION_ARGS)
{
	char	   *sku = os_required_text_arg(fcinfo, 0, "sku");
	char	   *location = os_required_text_arg(fcinfo, 1, "location");
	int64		qty = os_required_qty_arg(fcinfo, 2, 0);

	SPI_connect();
	set_bucket_safety(sku, location, qty);
	os_write_history("safety", 0, false, NULL, NULL, sku, location, qty, true, NULL);
	SPI_finish();

	PG_RETURN_VOID();
}

/*
 * available(sku): sellable now over all locations.  Locations where safety
 * stock exceeds what is free count as zero, not negative.
 *
 * Each location's figure fits in a bigint, but their sum may not: it is
 * summed as numeric, and a total above the largest bigint is refused with
 * OS004 rather than returned wrong or as PostgreSQL's 22003.
 */
Datum
ordersync_available(PG_FUNCTION_ARGS)
{
	static OsPlan sum = {
		"SELECT CASE WHEN a <= 9223372036854775807 THEN a::bigint END, n > 0, a::text"
		" FROM (SELECT coalesce(sum(greatest(on_hand - reserved - safety, 0)), 0) a, count(*) n"
		"  FROM ordersync.stock WHERE sku = $1) s",
		1, {TEXTOID}
	};
	static OsPlan exists = {
		"SELECT 1 FROM ordersync.sku WHERE sku = $1",
		1, {TEXTOID}
	};
	Datum		v = PointerGetDatum(PG_GETARG_TEXT_PP(0));
	int64		result;
	bool		isnull;

	SPI_connect();
	(void) os_execute(&sum, &v, NULL, true, 1);
	result = DatumGetInt64(os_getdatum(0, 1, &isnull));
	if (isnull)
	{
		char	   *sku = text_to_cstring(PG_GETARG_TEXT_PP(0));

		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("available stock of SKU \"%s\" is out of range", sku),
				 errdetail("SKU \"%s\": its locations have %s units available together, more than "
						   INT64_FORMAT ".", sku, os_gettext(0, 3), PG_INT64_MAX),
				 errhint("available() returns a bigint; see the locations one by one: "
						 "SELECT location, sum(on_hand - reserved - safety) FROM ordersync.stock "
						 "WHERE sku = %s GROUP BY location;", quote_literal_cstr(sku))));
	}
	if (!os_getbool(0, 2) && os_execute(&exists, &v, NULL, true, 1) == 0)
		os_unknown_sku(text_to_cstring(PG_GETARG_TEXT_PP(0)));
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
	char	   *id = os_required_text_arg(fcinfo, 0, "id");
	Datum		values[2];

	if (PG_ARGISNULL(1))
		os_null_argument("add_location", "priority",
						 "Pass an integer; higher priorities are allocated first.");
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
