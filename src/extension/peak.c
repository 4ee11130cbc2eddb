/*-------------------------------------------------------------------------
 *
 * peak.c
 *	  Ready before the peak: a SKU forecast to sell ordersync.
 *	  peak_units_per_hour or more in the next hour is split into
 *	  ordersync.peak_buckets buckets ahead of time (os_rebucket(), as
 *	  set_hot() and auto-hot do), so its first buyers do not queue on one
 *	  row lock while auto-hot (autohot.c) is still measuring the queue.
 *
 *	  A SKU's units per hour: its demand per day (stock_outlook.c, summed
 *	  over its locations) times the share of the day's orders that the
 *	  order forecast puts in the coming hour: the larger of the current
 *	  hour's and the next one's forecast (forecast_orders.c, hourly, all
 *	  channels) over the next 24 hours' total, or 1/24 when orders cannot
 *	  be forecast yet.  The SKU rollup is daily; the hourly shape of the
 *	  shop's orders is the best guess of when in the day a SKU sells.
 *
 *	  The SKUs split this way are marked sku.hot_source = 'forecast' and
 *	  merged back into one row once their forecast falls below half the
 *	  threshold (half, so a SKU near it does not flip every check), or
 *	  once the threshold is set to 0 (off).  A SKU
 *	  the operator set (set_hot(), 'operator') or auto-hot split ('auto')
 *	  is never touched; auto-hot may grow a 'forecast' SKU whose buyers
 *	  queue anyway, and then owns it.  Each change is one history row
 *	  (set_hot, reason "forecast: ...") and one inventory.hot_changed event
 *	  with source "forecast", like auto-hot's.
 *
 *	  Run by the background worker every ordersync.outlook_interval
 *	  (outlook.c) and by ordersync.prepare_peak().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "ordersync.h"
#include "outlook.h"

PG_FUNCTION_INFO_V1(ordersync_prepare_peak);

typedef struct SkuRate
{
	char	   *sku;
	double		rate;			/* units per hour expected */
} SkuRate;

typedef struct PeakChange
{
	char	   *sku;
	int			buckets;
	int			previous;
	double		rate;
} PeakChange;

/* the share of the next day's orders expected in the coming hour */
static double
coming_hour_share(void)
{
	OrdersForecast fc;
	double		day = 0.0;

	if (!os_orders_forecast(USECS_PER_HOUR, NULL, 24, &fc))
		return 1.0 / 24;
	for (int j = 0; j < 24; j++)
		day += fc.value[j];
	if (!(day > 0.0))
		return 1.0 / 24;
	return Max(fc.value[0], fc.value[1]) / day;
}

/* the units per hour of every SKU with stock, in C order of SKU */
static int
sku_rates(SkuRate **out)
{
	OutlookRow *rows;
	int			n;
	int			k = 0;
	double		share = coming_hour_share();
	SkuRate    *r;

	n = os_stock_outlook(ordersync_outlook_lead_time / 86400.0,
						 ordersync_outlook_service_level, &rows);
	r = palloc(sizeof(SkuRate) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		if (k == 0 || strcmp(r[k - 1].sku, rows[i].sku) != 0)
		{
			r[k].sku = rows[i].sku;
			r[k].rate = 0.0;
			k++;
		}
		r[k - 1].rate += rows[i].daily_demand * share;
	}
	*out = r;
	return k;
}

static int
rate_cmp(const void *a, const void *b)
{
	return strcmp(((const SkuRate *) a)->sku, ((const SkuRate *) b)->sku);
}

/*
 * Splits (want > 1) or merges back (want == 1) one SKU, in the caller's
 * transaction, unless someone else owns it or it is already so.  Returns
 * the buckets it had, or 0 when nothing changed.
 */
static int
change(const char *sku, int want, double rate, bool off)
{
	int			cur;
	char	   *source;
	char		reason[200];

	if (!os_hot_lock(sku, &cur, &source))
		return 0;
	if (want > 1)
	{
		if (source != NULL || cur >= want)
			return 0;			/* the operator's, auto-hot's, or split already */
		snprintf(reason, sizeof(reason),
				 "forecast: %.2f units expected in the next hour", rate);
	}
	else
	{
		if (source == NULL || strcmp(source, "forecast") != 0 || cur == 1)
			return 0;
		if (off)
			snprintf(reason, sizeof(reason), "forecast: peak preparation turned off");
		else
			snprintf(reason, sizeof(reason),
					 "forecast: %.2f units expected in the next hour, the peak is over", rate);
	}
	os_hot_change(sku, cur, want, "forecast", reason);
	return cur;
}

/*
 * One pass in the caller's transaction, connected to SPI: returns the
 * changes made (*changes, until SPI_finish()).
 */
static int
prepare_peak(PeakChange **changes)
{
	static OsPlan marked = {
		"SELECT sku FROM ordersync.sku WHERE hot_source = 'forecast' ORDER BY sku COLLATE \"C\"",
		0, {0}
	};
	double		threshold = ordersync_peak_units_per_hour;
	SkuRate    *rates = NULL;
	int			nrates;
	int			nmarked;
	char	  **merge;
	PeakChange *out;
	int			k = 0;
	bool		off = !(threshold > 0.0);	/* then every 'forecast' SKU merges */

	*changes = NULL;
	nmarked = os_execute(&marked, NULL, NULL, true, 0);
	if (off && nmarked == 0)
		return 0;
	merge = palloc(sizeof(char *) * Max(nmarked, 1));
	for (int i = 0; i < nmarked; i++)
		merge[i] = os_gettext(i, 1);
	nrates = off ? 0 : sku_rates(&rates);
	out = palloc(sizeof(PeakChange) * Max(nrates + nmarked, 1));

	for (int i = 0; i < nrates; i++)
	{
		int			prev;

		if (rates[i].rate < threshold)
			continue;
		prev = change(rates[i].sku, ordersync_peak_buckets, rates[i].rate, false);
		if (prev > 0)
		{
			out[k].sku = rates[i].sku;
			out[k].buckets = ordersync_peak_buckets;
			out[k].previous = prev;
			out[k].rate = rates[i].rate;
			k++;
		}
	}
	for (int i = 0; i < nmarked; i++)
	{
		SkuRate		key = {merge[i], 0.0};
		SkuRate    *found = nrates > 0 ?
			bsearch(&key, rates, nrates, sizeof(SkuRate), rate_cmp) : NULL;
		double		rate = found ? found->rate : 0.0;
		int			prev;

		if (!off && rate >= threshold / 2)
			continue;
		prev = change(merge[i], 1, rate, off);
		if (prev > 0)
		{
			out[k].sku = merge[i];
			out[k].buckets = 1;
			out[k].previous = prev;
			out[k].rate = rate;
			k++;
		}
	}
	*changes = out;
	return k;
}

/* the worker's pass (outlook.c): returns how many SKUs changed */
int
os_prepare_peak(void)
{
	PeakChange *changes;

	return prepare_peak(&changes);
}

/* prepare_peak() -> the SKUs split or merged back */
Datum
ordersync_prepare_peak(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PeakChange *changes;
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	n = prepare_peak(&changes);
	for (int i = 0; i < n; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = CStringGetTextDatum(changes[i].sku);
		values[1] = Int32GetDatum(changes[i].buckets);
		values[2] = Int32GetDatum(changes[i].previous);
		values[3] = Float8GetDatum(changes[i].rate);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}
