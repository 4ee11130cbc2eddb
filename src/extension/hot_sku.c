/*-------------------------------------------------------------------------
 *
 * hot_sku.c
 *	  Flash-sale settings of a SKU: set_hot() splits its stock at each
 *	  location into buckets (rows) that buyers lock independently, and
 *	  set_low_stock() sets the level below which inventory.low_stock fires.
 *
 *	  Re-bucketing locks every row of the SKU for one short transaction: it
 *	  merges all buckets into bucket 0 (reservations and safety stock too),
 *	  then spreads the units free to sell evenly over the new buckets.
 *	  Buyers waiting meanwhile see the result when it commits (allocate.c
 *	  looks again for new rows).  The auto-hot worker (autohot.c) re-buckets
 *	  the same way; set_hot() marks the SKU as the operator's, which the
 *	  worker then leaves alone.  Automatic changes (auto-hot, and peak
 *	  preparation in peak.c) lock and record themselves through
 *	  os_hot_lock() and os_hot_change() below.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "ordersync.h"

PG_FUNCTION_INFO_V1(ordersync_set_hot);
PG_FUNCTION_INFO_V1(ordersync_set_low_stock);

#define MAX_BUCKETS 1024

static void
require_sku_locked(const char *sku)
{
	static OsPlan p = {
		"SELECT 1 FROM ordersync.sku WHERE sku = $1 FOR UPDATE",
		1, {TEXTOID}
	};
	Datum		v = CStringGetTextDatum(sku);

	if (os_execute(&p, &v, NULL, false, 1) == 0)
		os_unknown_sku(sku);
}

/*
 * Splits the SKU's stock at each location into buckets (1: one plain row
 * again) and records the count.  The caller holds the sku row lock and is
 * connected to SPI; set_hot() and the auto-hot worker (autohot.c) share it.
 */
void
os_rebucket(const char *sku, int buckets)
{
	static OsPlan lock = {
		"SELECT 1 FROM ordersync.stock WHERE sku = $1"
		" ORDER BY location COLLATE \"C\", bucket FOR UPDATE",
		1, {TEXTOID}
	};
	static OsPlan merge_reservations = {
		"WITH moved AS (DELETE FROM ordersync.reservation WHERE sku = $1 AND bucket <> 0"
		"  RETURNING order_id, line_no, sku, location, qty, state)"
		" INSERT INTO ordersync.reservation AS r (order_id, line_no, sku, location, bucket, qty, state)"
		" SELECT order_id, line_no, sku, location, 0, sum(qty), state FROM moved"
		" GROUP BY order_id, line_no, sku, location, state"
		" ON CONFLICT (order_id, line_no, location, bucket) DO UPDATE SET qty = r.qty + EXCLUDED.qty",
		1, {TEXTOID}
	};
	/*
	 * A location's totals, summed as numeric: on hand must fit in a bigint
	 * (then reserved, at most on hand, does too); safety stock beyond it
	 * holds back every unit anyway, so it is capped there.
	 */
	static OsPlan totals = {
		"SELECT location, CASE WHEN o <= 9223372036854775807 THEN o::bigint END,"
		" CASE WHEN o <= 9223372036854775807 THEN r::bigint END,"
		" least(f, 9223372036854775807)::bigint, o::text"
		" FROM (SELECT location, sum(on_hand) o, sum(reserved) r, sum(safety) f"
		"  FROM ordersync.stock WHERE sku = $1 GROUP BY location) t"
		" ORDER BY location COLLATE \"C\"",
		1, {TEXTOID}
	};
	static OsPlan drop_buckets = {
		"DELETE FROM ordersync.stock WHERE sku = $1 AND bucket <> 0",
		1, {TEXTOID}
	};
	static OsPlan put = {
		"INSERT INTO ordersync.stock AS s (sku, location, bucket, on_hand, reserved, safety)"
		" VALUES ($1, $2, $3, $4, $5, $6)"
		" ON CONFLICT (sku, location, bucket) DO UPDATE"
		" SET on_hand = EXCLUDED.on_hand, reserved = EXCLUDED.reserved, safety = EXCLUDED.safety",
		6, {TEXTOID, TEXTOID, INT4OID, INT8OID, INT8OID, INT8OID}
	};
	static OsPlan set_buckets = {
		"UPDATE ordersync.sku SET buckets = $2 WHERE sku = $1",
		2, {TEXTOID, INT4OID}
	};
	Datum		v;
	Datum		values[6];
	int			nloc;
	char	  **loc;
	int64	   *on_hand,
			   *reserved,
			   *safety;

	v = CStringGetTextDatum(sku);
	(void) os_execute(&lock, &v, NULL, false, 0);
	(void) os_execute(&merge_reservations, &v, NULL, false, 0);

	nloc = os_execute(&totals, &v, NULL, false, 0);
	loc = palloc(sizeof(char *) * Max(nloc, 1));
	on_hand = palloc(sizeof(int64) * Max(nloc, 1));
	reserved = palloc(sizeof(int64) * Max(nloc, 1));
	safety = palloc(sizeof(int64) * Max(nloc, 1));
	for (int i = 0; i < nloc; i++)
	{
		bool		isnull;

		loc[i] = os_gettext(i, 1);
		(void) os_getdatum(i, 2, &isnull);
		if (isnull)
			os_stock_out_of_range(sku, loc[i], "the on-hand units of its buckets",
								  os_gettext(i, 5));
		on_hand[i] = os_getint64(i, 2);
		reserved[i] = os_getint64(i, 3);
		safety[i] = os_getint64(i, 4);
	}
	(void) os_execute(&drop_buckets, &v, NULL, false, 0);

	/*
	 * Held units stay with their reservations in bucket 0, and so does the
	 * safety stock with the units that cover it (see stock.c); the units
	 * free to sell are spread evenly.  Every figure below is part of the
	 * location's on hand, which fits: no sum can overflow.
	 */
	for (int i = 0; i < nloc; i++)
	{
		int64		unreserved = on_hand[i] - reserved[i];
		int64		kept = Min(safety[i], unreserved);
		int64		spread = unreserved - kept;

		for (int b = 0; b < buckets; b++)
		{
			int64		share = spread / buckets + (b < spread % buckets ? 1 : 0);

			values[0] = v;
			values[1] = CStringGetTextDatum(loc[i]);
			values[2] = Int32GetDatum(b);
			values[3] = Int64GetDatum(b == 0 ? reserved[i] + kept + share : share);
			values[4] = Int64GetDatum(b == 0 ? reserved[i] : 0);
			values[5] = Int64GetDatum(b == 0 ? safety[i] : 0);
			(void) os_execute(&put, values, NULL, false, 0);
		}
	}

	values[0] = v;
	values[1] = Int32GetDatum(buckets);
	(void) os_execute(&set_buckets, values, NULL, false, 0);
}

/*
 * set_hot(sku, buckets): the operator's choice, which auto-hot never
 * overrides (sku.hot_source = 'operator', 1 bucket included).
 */
Datum
ordersync_set_hot(PG_FUNCTION_ARGS)
{
	static OsPlan mark = {
		"UPDATE ordersync.sku SET hot_source = 'operator' WHERE sku = $1",
		1, {TEXTOID}
	};
	char	   *sku = os_required_text_arg(fcinfo, 0, "sku");
	int			buckets;
	Datum		v;

	if (PG_ARGISNULL(1) || PG_GETARG_INT32(1) < 1 || PG_GETARG_INT32(1) > MAX_BUCKETS)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("buckets must be between 1 and %d", MAX_BUCKETS),
				 PG_ARGISNULL(1) ? errdetail("set_hot() was called with buckets => NULL.") :
				 errdetail("set_hot() was called with buckets => %d.", PG_GETARG_INT32(1)),
				 errhint("About as many buckets as buyers at once is plenty; 1 makes the SKU plain again.")));
	buckets = PG_GETARG_INT32(1);

	SPI_connect();
	require_sku_locked(sku);
	os_rebucket(sku, buckets);
	v = CStringGetTextDatum(sku);
	(void) os_execute(&mark, &v, NULL, false, 0);
	os_write_history("set_hot", 0, false, NULL, NULL, sku, NULL, buckets, true, NULL);
	SPI_finish();

	PG_RETURN_VOID();
}

/*
 * set_low_stock(sku, threshold): NULL turns low-stock events off
 */
Datum
ordersync_set_low_stock(PG_FUNCTION_ARGS)
{
	static OsPlan p = {
		"UPDATE ordersync.sku SET low_stock_threshold = $2 WHERE sku = $1",
		2, {TEXTOID, INT8OID}
	};
	char	   *sku = os_required_text_arg(fcinfo, 0, "sku");
	Datum		values[2];
	char		nulls[2] = {' ', PG_ARGISNULL(1) ? 'n' : ' '};

	if (!PG_ARGISNULL(1) && PG_GETARG_INT64(1) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("threshold must not be negative"),
				 errdetail("set_low_stock() was called with threshold => " INT64_FORMAT ".",
						   PG_GETARG_INT64(1)),
				 errhint("Pass 0 or more, or NULL for no low-stock events.")));

	SPI_connect();
	require_sku_locked(sku);
	values[0] = CStringGetTextDatum(sku);
	values[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	(void) os_execute(&p, values, nulls, false, 0);
	SPI_finish();

	PG_RETURN_VOID();
}

/*
 * Locks a SKU's row before an automatic change of its buckets and reads its
 * bucket count and who set it (*source NULL: nobody).  False when the SKU
 * is gone.  Caller is connected to SPI.
 */
bool
os_hot_lock(const char *sku, int *buckets, char **source)
{
	static OsPlan lock = {
		"SELECT buckets, hot_source FROM ordersync.sku WHERE sku = $1 FOR UPDATE",
		1, {TEXTOID}
	};
	Datum		v = CStringGetTextDatum(sku);
	bool		isnull;

	if (os_execute(&lock, &v, NULL, false, 1) == 0)
		return false;
	*buckets = DatumGetInt32(os_getdatum(0, 1, &isnull));
	(void) os_getdatum(0, 2, &isnull);
	*source = isnull ? NULL : os_gettext(0, 2);
	return true;
}

/*
 * An automatic change of a SKU locked by os_hot_lock(), from buckets "from"
 * to "to": re-buckets it, marks it as source's (nobody's once back to one
 * bucket), and records it with a history row and an inventory.hot_changed
 * event carrying the reason.
 */
void
os_hot_change(const char *sku, int from, int to, const char *source, const char *reason)
{
	static OsPlan mark = {
		"UPDATE ordersync.sku SET hot_source = $2 WHERE sku = $1",
		2, {TEXTOID, TEXTOID}
	};
	Datum		values[2];
	char		nulls[2] = {' ', to > 1 ? ' ' : 'n'};
	StringInfoData data;
	bool		first = true;

	os_rebucket(sku, to);
	values[0] = CStringGetTextDatum(sku);
	values[1] = CStringGetTextDatum(source);
	(void) os_execute(&mark, values, nulls, false, 0);
	os_write_history("set_hot", 0, false, NULL, NULL, sku, NULL, to, true, reason);

	initStringInfo(&data);
	appendStringInfoChar(&data, '{');
	json_add_text(&data, &first, "sku", sku);
	json_add_int64(&data, &first, "buckets", to);
	json_add_int64(&data, &first, "previous_buckets", from);
	json_add_text(&data, &first, "source", source);
	json_add_text(&data, &first, "reason", reason);
	appendStringInfoChar(&data, '}');
	os_emit_event("inventory.hot_changed", "sku", sku, &data);
	pfree(data.data);
}
