/*-------------------------------------------------------------------------
 *
 * stockout.c
 *	  Stock-out predictions: inventory.stockout_predicted, once per
 *	  crossing, when the projected stock-out of a SKU at a location (see
 *	  stock_outlook.c) comes within ordersync.outlook_lead_time, so that
 *	  purchasing can reorder in time.
 *
 *	  The crossing state is ordersync.stockout_watch: a pair is in it while
 *	  its stock-out is projected within the lead time.  A check inserts the
 *	  pairs that entered, each insert with its event in the same
 *	  transaction, and deletes those that left (no event), so a pair that
 *	  stays inside fires once, and fires again only after it left and came
 *	  back.  Checks serialize on the table's lock; readers are not blocked.
 *
 *	  Run by the background worker every ordersync.outlook_interval
 *	  (outlook.c) and by ordersync.check_stockouts().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/float.h"
#include "utils/json.h"

#include "ordersync.h"
#include "outlook.h"

PG_FUNCTION_INFO_V1(ordersync_check_stockouts);

static void
json_add_float8(StringInfo buf, bool *first, const char *key, double val)
{
	json_add_key(buf, first, key);
	if (isnan(val) || isinf(val))
		appendStringInfoString(buf, "null");
	else
		appendStringInfoString(buf, float8out_internal(val));
}

static void
emit_predicted(const OutlookRow *r, double lead_days)
{
	StringInfoData data;
	bool		first = true;

	initStringInfo(&data);
	appendStringInfoChar(&data, '{');
	json_add_text(&data, &first, "sku", r->sku);
	json_add_text(&data, &first, "location", r->location);
	json_add_int64(&data, &first, "on_hand", r->on_hand);
	json_add_int64(&data, &first, "available", r->available);
	json_add_float8(&data, &first, "daily_demand", r->daily_demand);
	json_add_text(&data, &first, "method", fi_method_name(r->method));
	json_add_float8(&data, &first, "days_of_cover", r->days_of_cover);
	json_add_key(&data, &first, "projected_stockout");
	if (r->has_stockout)
	{
		char		buf[MAXDATELEN + 1];

		/* ISO 8601 whatever the session's DateStyle */
		JsonEncodeDateTime(buf, DateADTGetDatum(r->stockout), DATEOID, NULL);
		appendStringInfo(&data, "\"%s\"", buf);
	}
	else
		appendStringInfoString(&data, "null");
	json_add_float8(&data, &first, "lead_time_days", lead_days);
	json_add_int64(&data, &first, "safety_stock", r->safety_stock);
	json_add_int64(&data, &first, "reorder_point", r->reorder_point);
	json_add_int64(&data, &first, "suggested_reorder", r->suggested);
	appendStringInfoChar(&data, '}');
	os_emit_event("inventory.stockout_predicted", "sku", r->sku, &data);
	pfree(data.data);
}

/*
 * One check in the caller's transaction, connected to SPI: returns how many
 * events it emitted.
 */
int
os_check_stockouts(void)
{
	static OsPlan enter = {
		"INSERT INTO ordersync.stockout_watch (sku, location, projected_stockout, days_of_cover)"
		" VALUES ($1, $2, $3, $4) ON CONFLICT (sku, location) DO NOTHING RETURNING 1",
		4, {TEXTOID, TEXTOID, DATEOID, FLOAT8OID}
	};
	static OsPlan leave = {
		"DELETE FROM ordersync.stockout_watch WHERE sku = $1 AND location = $2",
		2, {TEXTOID, TEXTOID}
	};
	static OsPlan gone = {
		"DELETE FROM ordersync.stockout_watch w WHERE NOT EXISTS"
		" (SELECT FROM ordersync.stock s WHERE s.sku = w.sku AND s.location = w.location)",
		0, {0}
	};
	double		lead_days = ordersync_outlook_lead_time / 86400.0;
	OutlookRow *rows;
	int			n;
	int			emitted = 0;

	/* one check at a time; SELECT still reads the table */
	if (SPI_execute("LOCK TABLE ordersync.stockout_watch IN EXCLUSIVE MODE", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "ordersync: cannot lock ordersync.stockout_watch");

	n = os_stock_outlook(lead_days, ordersync_outlook_service_level, &rows);
	for (int i = 0; i < n; i++)
	{
		OutlookRow *r = &rows[i];
		Datum		values[4];
		char		nulls[4] = {' ', ' ', r->has_stockout ? ' ' : 'n', ' '};

		values[0] = CStringGetTextDatum(r->sku);
		values[1] = CStringGetTextDatum(r->location);
		if (r->daily_demand > 0.0 && r->days_of_cover < lead_days)
		{
			values[2] = DateADTGetDatum(r->stockout);
			values[3] = Float8GetDatum(r->days_of_cover);
			if (os_execute(&enter, values, nulls, false, 0) > 0)
			{
				emit_predicted(r, lead_days);
				emitted++;
			}
		}
		else
			(void) os_execute(&leave, values, NULL, false, 0);
	}
	(void) os_execute(&gone, NULL, NULL, false, 0);
	return emitted;
}

/* check_stockouts() -> events emitted */
Datum
ordersync_check_stockouts(PG_FUNCTION_ARGS)
{
	int			n;

	SPI_connect();
	n = os_check_stockouts();
	SPI_finish();
	PG_RETURN_INT32(n);
}
