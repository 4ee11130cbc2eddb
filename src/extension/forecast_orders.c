/*-------------------------------------------------------------------------
 *
 * forecast_orders.c
 *	  ordersync.forecast_orders(bucket, horizon, channel): the orders to
 *	  come per bucket of time, forecast from ordersync.rollup_hourly (one
 *	  channel, or all of them) by fc_forecast(), the machinery of
 *	  ordersync.forecast().
 *
 *	  Buckets are a whole number of hours that divides a day, or whole
 *	  days, laid out from Monday 2000-01-03 00:00 UTC (so days start at
 *	  midnight UTC and weeks on Monday, like the rollups).  The history is
 *	  every complete bucket from the first one with an order up to the
 *	  current one, which is still filling and is the first forecast; empty
 *	  buckets count as 0.  The season follows from the bucket: a week of
 *	  buckets when the history holds two weeks, else a day of them (for
 *	  buckets shorter than a day) when it holds two days; 52 for weekly
 *	  buckets with two years of history; none otherwise.  At most 20 of
 *	  the season preferred for the bucket (a week, or 52 weeks), or 500
 *	  buckets, are read: older ones hardly change a forecast.
 *	  Orders cannot be negative: forecasts and lower bounds are at least 0.
 *
 *	  prepare_peak() (peak.c) reads the hourly profile of the next day
 *	  from the same forecast.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "ordersync.h"
#include "forecast.h"
#include "outlook.h"

PG_FUNCTION_INFO_V1(ordersync_forecast_orders);

#define ORDERS_MAX_HORIZON	10000
#define ORDERS_MAX_DAYS		91
#define ORDERS_LEVEL		0.95
/* the fewest values kept without a season */
#define ORDERS_MIN_KEPT		500

/* Monday 2000-01-03 00:00 UTC, in microseconds since 2000-01-01 */
#define ORDERS_ORIGIN		(2 * USECS_PER_DAY)

static int64
floor_div(int64 a, int64 b)
{
	int64		q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* the season of a bucket when the history has n of them */
static int
season_for(int64 bucket_us, int n, int *preferred)
{
	int			candidates[2] = {0, 0};

	if (bucket_us < USECS_PER_DAY)
	{
		candidates[0] = (int) (7 * USECS_PER_DAY / bucket_us);
		candidates[1] = (int) (USECS_PER_DAY / bucket_us);
	}
	else if (bucket_us == USECS_PER_DAY)
		candidates[0] = 7;
	else if (bucket_us == 7 * USECS_PER_DAY)
		candidates[0] = 52;

	*preferred = candidates[0];
	for (int i = 0; i < 2; i++)
		if (candidates[i] > 1 && n >= 2 * candidates[i])
			return candidates[i];
	return 0;
}

/*
 * The forecast of orders per bucket for the next horizon buckets, the
 * current one first; false (and nothing forecast) when the rollup holds
 * fewer than FC_MIN_HISTORY complete buckets.  Connected to SPI.
 */
bool
os_orders_forecast(int64 bucket_us, const char *channel, int horizon,
				   OrdersForecast *out)
{
	static OsPlan history = {
		"SELECT (extract(epoch FROM pg_catalog.date_bin($1, hour, $2) - $2) * 1000000)::bigint,"
		"       pg_catalog.sum(orders)::float8"
		"  FROM ordersync.rollup_hourly"
		" WHERE ($3::text IS NULL OR channel = $3) AND hour >= $4 AND hour < $5"
		" GROUP BY 1 ORDER BY 1",
		5, {INTERVALOID, TIMESTAMPTZOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID}
	};
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	TimestampTz current;
	TimestampTz earliest;
	Interval	iv;
	Datum		args[5];
	char		nulls[5] = {' ', ' ', channel ? ' ' : 'n', ' ', ' '};
	int			preferred;
	int			keep;
	int			rows;
	int			n;
	double	   *y;
	FcResult	res;

	current = ORDERS_ORIGIN + floor_div(now - ORDERS_ORIGIN, bucket_us) * bucket_us;
	(void) season_for(bucket_us, INT_MAX, &preferred);
	keep = Max(FC_MAX_FIT_SEASONS * preferred, ORDERS_MIN_KEPT);
	earliest = current - keep * bucket_us;

	memset(&iv, 0, sizeof(iv));
	iv.time = bucket_us;
	args[0] = IntervalPGetDatum(&iv);
	args[1] = TimestampTzGetDatum(ORDERS_ORIGIN);
	args[2] = channel ? CStringGetTextDatum(channel) : (Datum) 0;
	args[3] = TimestampTzGetDatum(earliest);
	args[4] = TimestampTzGetDatum(current);
	rows = os_execute(&history, args, nulls, true, 0);
	if (rows == 0)
		n = 0;
	else
		n = (int) ((current - ORDERS_ORIGIN - os_getint64(0, 1)) / bucket_us);

	memset(out, 0, sizeof(OrdersForecast));
	out->first = current;
	out->bucket_us = bucket_us;
	out->history = n;
	if (n < FC_MIN_HISTORY)
		return false;

	y = palloc0(sizeof(double) * n);
	for (int i = 0; i < rows; i++)
	{
		int64		at = (current - ORDERS_ORIGIN - os_getint64(i, 1)) / bucket_us;
		bool		isnull;

		y[n - at] = DatumGetFloat8(os_getdatum(i, 2, &isnull));
	}

	out->season = season_for(bucket_us, n, &preferred);
	fc_forecast(y, n, out->season, horizon, ORDERS_LEVEL, &res);
	ereport(DEBUG1,
			(errmsg_internal("forecast_orders: %s from %d buckets, season %d",
							 res.model, n, out->season)));
	out->h = horizon;
	out->value = res.mean;
	out->lower = res.lower;
	out->upper = res.upper;
	for (int j = 0; j < horizon; j++)
	{
		out->value[j] = Max(out->value[j], 0.0);
		out->lower[j] = Max(out->lower[j], 0.0);
		out->upper[j] = Max(out->upper[j], out->value[j]);
	}
	pfree(y);
	return true;
}

static void
pg_attribute_noreturn()
bad_bucket(Interval *iv, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_OS_BAD_BUCKET),
			 errmsg("bucket must be a whole number of hours that divides a day, or whole days up to %d",
					ORDERS_MAX_DAYS),
			 errdetail("forecast_orders() was called with bucket => '%s', %s.",
					   DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(iv))),
					   why),
			 errhint("Pass '1 hour', '2 hours', '3 hours', '4 hours', '6 hours', '8 hours', "
					 "'12 hours', '1 day' or '7 days', for instance.")));
}

/* the bucket's length in microseconds, or an error */
static int64
bucket_length(Interval *iv)
{
	int64		us;

	if (iv->month != 0)
		bad_bucket(iv, "which has months (months differ in length)");
	if (iv->day < 0 || iv->day > ORDERS_MAX_DAYS || iv->time < 0 ||
		iv->time > (int64) ORDERS_MAX_DAYS * USECS_PER_DAY)
		bad_bucket(iv, "which is out of range");
	us = iv->day * USECS_PER_DAY + iv->time;
	if (us <= 0 || us > (int64) ORDERS_MAX_DAYS * USECS_PER_DAY)
		bad_bucket(iv, "which is out of range");
	if (us % USECS_PER_HOUR != 0)
		bad_bucket(iv, "which is not a whole number of hours");
	if (us < USECS_PER_DAY && USECS_PER_DAY % us != 0)
		bad_bucket(iv, "which does not divide a day");
	if (us > USECS_PER_DAY && us % USECS_PER_DAY != 0)
		bad_bucket(iv, "which is longer than a day but not whole days");
	return us;
}

Datum
ordersync_forecast_orders(PG_FUNCTION_ARGS)
{
	static OsPlan known = {
		"SELECT 1 FROM ordersync.channel WHERE id = $1",
		1, {TEXTOID}
	};
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		bucket_us;
	int			horizon;
	char	   *channel = NULL;
	OrdersForecast fc;

	if (PG_ARGISNULL(0))
		os_null_argument("forecast_orders", "bucket",
						 "Pass the length of a bucket, such as '1 hour' or '1 day', or leave the argument out.");
	if (PG_ARGISNULL(1))
		os_null_argument("forecast_orders", "horizon",
						 "Pass how many buckets to forecast, or leave the argument out.");
	bucket_us = bucket_length(PG_GETARG_INTERVAL_P(0));
	horizon = PG_GETARG_INT32(1);
	if (horizon < 1 || horizon > ORDERS_MAX_HORIZON)
		ereport(ERROR,
				(errcode(ERRCODE_OS_BAD_HORIZON),
				 errmsg("horizon must be between 1 and %d", ORDERS_MAX_HORIZON),
				 errdetail("forecast_orders() was called with horizon => %d.", horizon),
				 errhint("Pass how many buckets to forecast, the current one first.")));
	if (!PG_ARGISNULL(2))
		channel = text_to_cstring(PG_GETARG_TEXT_PP(2));

	/* the rows go to the tuplestore before SPI_finish() frees the forecast */
	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	if (channel)
	{
		Datum		v = CStringGetTextDatum(channel);

		if (os_execute(&known, &v, NULL, true, 1) == 0)
			os_unknown_channel(channel);
	}
	if (!os_orders_forecast(bucket_us, channel, horizon, &fc))
		ereport(ERROR,
				(errcode(ERRCODE_OS_TOO_LITTLE_HISTORY),
				 errmsg("too little order history to forecast"),
				 errdetail("ordersync.rollup_hourly holds %d complete bucket%s of orders%s%s%s; a forecast needs %d.",
						   fc.history, fc.history == 1 ? "" : "s",
						   channel ? " in channel \"" : "", channel ? channel : "",
						   channel ? "\"" : "", FC_MIN_HISTORY),
				 errhint("Pass a shorter bucket, wait for more orders, or run ordersync.refresh_rollups() "
						 "if the background worker does not keep the rollups.")));
	for (int j = 0; j < horizon; j++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = TimestampTzGetDatum(fc.first + j * bucket_us);
		values[1] = Float8GetDatum(fc.value[j]);
		values[2] = Float8GetDatum(fc.lower[j]);
		values[3] = Float8GetDatum(fc.upper[j]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}
