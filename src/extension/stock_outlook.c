/*-------------------------------------------------------------------------
 *
 * stock_outlook.c
 *	  ordersync.stock_outlook(lead_time, service_level): per SKU and
 *	  location, the stock now and how long it lasts at the demand to come,
 *	  with the safety stock, reorder point and order size that cover the
 *	  lead time at the service level.  The formulas are in doc/forecast.md
 *	  ("Stock outlook"); check_stockouts() (stockout.c) reads the same rows.
 *
 *	  Demand per day is what the reservations took from the units available
 *	  that day and did not give back: reserved - released in
 *	  ordersync.rollup_daily_sku (at least 0), over the days from the first
 *	  one the pair has a row, up to yesterday (UTC; today is not over), at
 *	  most OUTLOOK_HISTORY_DAYS, days without a row counting as 0.  It is
 *	  forecast with the intermittent demand methods and their automatic
 *	  choice (forecast_intermittent.c), whose in-sample one-step error gives
 *	  the spread of a day's demand.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/float.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "ordersync.h"
#include "forecast.h"
#include "outlook.h"

PG_FUNCTION_INFO_V1(ordersync_stock_outlook);

/* days of demand history read per SKU and location */
#define OUTLOOK_HISTORY_DAYS	365
/* the longest lead time */
#define OUTLOOK_MAX_LEAD_DAYS	365
/* a stock-out further away than this is no date (about a century) */
#define OUTLOOK_MAX_COVER_DAYS	36500.0

/* units: rounded up, within a bigint */
static int64
units(double x)
{
	x = ceil(x - 1e-9);			/* 2.0000000001 of rounding error is 2 */
	if (!(x > 0.0))
		return 0;
	if (x >= 9.2e18)
		return PG_INT64_MAX;
	return (int64) x;
}

/*
 * A lead time as days, refused unless it is positive, has no months (whose
 * length varies) and is at most OUTLOOK_MAX_LEAD_DAYS.
 */
double
os_interval_days(Interval *iv, const char *func)
{
	double		days = iv->day + (double) iv->time / USECS_PER_DAY;

	if (iv->month != 0 || !(days > 0.0) || days > OUTLOOK_MAX_LEAD_DAYS)
		ereport(ERROR,
				(errcode(ERRCODE_OS_BAD_LEAD_TIME),
				 errmsg("lead_time must be positive, at most %d days, and without months",
						OUTLOOK_MAX_LEAD_DAYS),
				 errdetail("%s() was called with lead_time => '%s'.", func,
						   DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(iv)))),
				 errhint("Pass how long a reorder takes to arrive, such as '7 days' or '36 hours'.")));
	return days;
}

void
os_check_service_level(double level, const char *func)
{
	if (!(level >= 0.5 && level < 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_OS_BAD_SERVICE_LEVEL),
				 errmsg("service_level must be at least 0.5 and below 1"),
				 errdetail("%s() was called with service_level => %s.", func,
						   float8out_internal(level)),
				 errhint("Pass the probability that the stock covers the demand over the lead time, "
						 "such as 0.95 or 0.99.")));
}

/* the values of an int4[] or float8[] column, as doubles */
static double *
array_doubles(Datum d, Oid type, int *n)
{
	ArrayType  *arr = DatumGetArrayTypeP(d);
	Datum	   *elems;
	double	   *out;

	deconstruct_array(arr, type, type == INT4OID ? 4 : 8,
					  type == INT4OID ? true : FLOAT8PASSBYVAL,
					  type == INT4OID ? TYPALIGN_INT : TYPALIGN_DOUBLE,
					  &elems, NULL, n);
	out = palloc(sizeof(double) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		out[i] = type == INT4OID ? DatumGetInt32(elems[i]) : DatumGetFloat8(elems[i]);
	pfree(elems);
	return out;
}

/* the figures of one SKU and location from its stock and demand */
static void
outlook_row(OutlookRow *r, const double *y, int n, double lead_days, double z,
			TimestampTz now)
{
	FiResult	fit;
	double		sigma;
	double		lead_demand;

	fi_auto(y, n, &fit);
	r->method = fit.method;
	r->daily_demand = fit.value;
	sigma = sqrt(fit.mse);

	lead_demand = r->daily_demand * lead_days;
	r->safety_stock = units(z * sigma * sqrt(lead_days));
	r->reorder_point = units(lead_demand);
	if (r->reorder_point < PG_INT64_MAX - r->safety_stock)
		r->reorder_point += r->safety_stock;
	else
		r->reorder_point = PG_INT64_MAX;
	if (r->available <= r->reorder_point)
	{
		double		up_to = (double) r->reorder_point + ceil(lead_demand);

		r->suggested = units(up_to - (double) r->available);
	}
	else
		r->suggested = 0;

	r->has_stockout = false;
	if (r->daily_demand > 0.0)
	{
		r->days_of_cover = r->available / r->daily_demand;
		if (r->days_of_cover <= OUTLOOK_MAX_COVER_DAYS)
		{
			double		at = (double) now + r->days_of_cover * USECS_PER_DAY;

			r->stockout = (DateADT) floor(at / USECS_PER_DAY);
			r->has_stockout = true;
		}
	}
	else
		r->days_of_cover = get_float8_nan();
}

/*
 * Every SKU and location with a stock row, in order of SKU and location
 * (C collation).  Connected to SPI; *rows live until SPI_finish().  The
 * buckets of a location can hold more than a bigint in all (see
 * os_location_figures()): on hand and available are then the largest
 * bigint, which no forecast demand runs out of.
 */
int
os_stock_outlook(double lead_days, double service_level, OutlookRow **rows)
{
	/* one pass over the window of the rollup, hash-joined to the stock */
	static OsPlan p = {
		"SELECT s.sku, s.location, s.on_hand, s.available, d.days, d.qty"
		"  FROM (SELECT sku, location,"
		"               LEAST(pg_catalog.sum(on_hand), 9223372036854775807)::bigint AS on_hand,"
		"               LEAST(pg_catalog.sum(GREATEST(on_hand - reserved - safety, 0)),"
		"                     9223372036854775807)::bigint AS available"
		"          FROM ordersync.stock GROUP BY sku, location) s"
		"  LEFT JOIN (SELECT r.sku, r.location,"
		"                    pg_catalog.array_agg(r.day - $1 ORDER BY r.day) AS days,"
		"                    pg_catalog.array_agg(GREATEST(r.reserved - r.released, 0)::float8"
		"                                         ORDER BY r.day) AS qty"
		"               FROM ordersync.rollup_daily_sku r"
		"              WHERE r.day >= $1 - $2 AND r.day < $1"
		"              GROUP BY r.sku, r.location) d"
		"    ON d.sku = s.sku AND d.location = s.location"
		" ORDER BY s.sku COLLATE \"C\", s.location COLLATE \"C\"",
		2, {DATEOID, INT4OID}
	};
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	DateADT		today = (DateADT) floor((double) now / USECS_PER_DAY);
	double		z = fc_normal_quantile(service_level);
	Datum		args[2];
	int			nrows;
	OutlookRow *out;

	args[0] = DateADTGetDatum(today);
	args[1] = Int32GetDatum(OUTLOOK_HISTORY_DAYS);
	nrows = os_execute(&p, args, NULL, true, 0);
	out = palloc0(sizeof(OutlookRow) * Max(nrows, 1));
	for (int i = 0; i < nrows; i++)
	{
		OutlookRow *r = &out[i];
		bool		isnull;
		Datum		days;
		double	   *y = NULL;
		int			n = 0;

		r->sku = os_gettext(i, 1);
		r->location = os_gettext(i, 2);
		r->on_hand = os_getint64(i, 3);
		r->available = os_getint64(i, 4);
		days = os_getdatum(i, 5, &isnull);
		if (!isnull)
		{
			int			k;
			int			kq;
			double	   *at = array_doubles(days, INT4OID, &k);
			double	   *qty = array_doubles(os_getdatum(i, 6, &isnull), FLOAT8OID, &kq);

			/* at[0] is the first day with a row, -1 is yesterday */
			n = (int) -at[0];
			y = palloc0(sizeof(double) * n);
			for (int j = 0; j < k && j < kq; j++)
				y[n + (int) at[j]] = qty[j];
			pfree(at);
			pfree(qty);
		}
		outlook_row(r, y, n, lead_days, z, now);
		if (y)
			pfree(y);
	}
	*rows = out;
	return nrows;
}

Datum
ordersync_stock_outlook(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	double		lead_days;
	double		level;
	OutlookRow *rows;
	int			n;

	if (PG_ARGISNULL(0))
		os_null_argument("stock_outlook", "lead_time",
						 "Pass how long a reorder takes to arrive, such as '7 days', or leave the argument out.");
	if (PG_ARGISNULL(1))
		os_null_argument("stock_outlook", "service_level",
						 "Pass the probability of covering the demand, such as 0.95, or leave the argument out.");
	lead_days = os_interval_days(PG_GETARG_INTERVAL_P(0), "stock_outlook");
	level = PG_GETARG_FLOAT8(1);
	os_check_service_level(level, "stock_outlook");

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	n = os_stock_outlook(lead_days, level, &rows);
	for (int i = 0; i < n; i++)
	{
		OutlookRow *r = &rows[i];
		Datum		values[11];
		bool		nulls[11];

		memset(nulls, false, sizeof(nulls));
		values[0] = CStringGetTextDatum(r->sku);
		values[1] = CStringGetTextDatum(r->location);
		values[2] = Int64GetDatum(r->on_hand);
		values[3] = Int64GetDatum(r->available);
		values[4] = Float8GetDatum(r->daily_demand);
		values[5] = CStringGetTextDatum(fi_method_name(r->method));
		values[6] = Float8GetDatum(r->days_of_cover);
		nulls[6] = isnan(r->days_of_cover);
		values[7] = DateADTGetDatum(r->stockout);
		nulls[7] = !r->has_stockout;
		values[8] = Int64GetDatum(r->safety_stock);
		values[9] = Int64GetDatum(r->reorder_point);
		values[10] = Int64GetDatum(r->suggested);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}
