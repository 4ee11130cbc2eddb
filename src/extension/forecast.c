/*-------------------------------------------------------------------------
 *
 * forecast.c
 *	  ordersync.forecast(history, season, horizon, level): the SQL face of
 *	  the forecasts.  Checks the arguments, hands the history to
 *	  fc_forecast() (forecast_select.c), says in a notice when the history
 *	  was too short for what was asked, and returns one row per step:
 *	  (step, value, lower, upper), the interval holding the value with
 *	  probability level.
 *
 *	  The function reads no table and depends on nothing but its arguments
 *	  (its simulations are seeded with a constant): IMMUTABLE and PARALLEL
 *	  SAFE.  It is not STRICT: a NULL argument is refused with OS004 like
 *	  everywhere else in ordersync.
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
#include "utils/float.h"
#include "utils/tuplestore.h"

#include "ordersync.h"
#include "forecast.h"

PG_FUNCTION_INFO_V1(ordersync_forecast);

static void
pg_attribute_noreturn()
bad_value(const char *problem, int subscript, int position, int n,
		  const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_OS_INVALID_INPUT),
			 errmsg("history must not contain %s", problem),
			 errdetail("history[%d] (value %d of %d) is %s.",
					   subscript, position, n, problem),
			 errhint("%s", hint)));
}

/*
 * The history as a C array of n values, refused with the position of the
 * first element that is NULL, NaN or infinite.  The array's own storage is
 * returned when it can be read in place.
 */
static const double *
history_values(ArrayType *arr, int *n)
{
	int			lbound;
	const double *values;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("history must be a one-dimensional array"),
				 errdetail("forecast() was called with a history of %d dimensions.",
						   ARR_NDIM(arr)),
				 errhint("Pass the values in time order as one float8[], oldest first.")));

	*n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	lbound = ARR_NDIM(arr) == 1 ? ARR_LBOUND(arr)[0] : 1;
	if (ARR_HASNULL(arr))
	{
		bits8	   *bitmap = ARR_NULLBITMAP(arr);

		for (int i = 0; i < *n; i++)
		{
			if ((bitmap[i / 8] & (1 << (i % 8))) == 0)
				bad_value("NULL", lbound + i, i + 1, *n,
						  "Fill the gap (with 0 for a period without demand, or an "
						  "interpolated value), or forecast from the values after it.");
		}
	}
	values = (const double *) ARR_DATA_PTR(arr);
	for (int i = 0; i < *n; i++)
	{
		if (isnan(values[i]))
			bad_value("NaN", lbound + i, i + 1, *n,
					  "Replace it with a number, or forecast from the values after it.");
		if (isinf(values[i]))
			bad_value(values[i] > 0 ? "Infinity" : "-Infinity", lbound + i, i + 1, *n,
					  "Replace it with a finite number, or forecast from the values after it.");
	}
	return values;
}

static void
pg_attribute_noreturn()
out_of_range(const char *arg, const char *value, const char *range,
			 const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_OS_INVALID_INPUT),
			 errmsg("%s must be %s", arg, range),
			 errdetail("forecast() was called with %s => %s.", arg, value),
			 errhint("%s", hint)));
}

Datum
ordersync_forecast(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ArrayType  *arr;
	const double *y;
	int			n;
	int			season;
	int			horizon;
	double		level;
	FcResult	res;

	if (PG_ARGISNULL(0))
		os_null_argument("forecast", "history",
						 "Pass the values to forecast from as a float8[], oldest first.");
	if (PG_ARGISNULL(1))
		os_null_argument("forecast", "season",
						 "Pass the number of values in one season (7 for days of a week, "
						 "12 for months of a year), or 0 for none.");
	if (PG_ARGISNULL(2))
		os_null_argument("forecast", "horizon",
						 "Pass how many steps to forecast, at least 1.");
	if (PG_ARGISNULL(3))
		os_null_argument("forecast", "level",
						 "Pass the probability the intervals should have, such as 0.95, "
						 "or leave the argument out.");

	arr = PG_GETARG_ARRAYTYPE_P(0);
	season = PG_GETARG_INT32(1);
	horizon = PG_GETARG_INT32(2);
	level = PG_GETARG_FLOAT8(3);

	if (season < 0 || season > FC_MAX_SEASON)
		out_of_range("season", psprintf("%d", season),
					 psprintf("between 0 and %d", FC_MAX_SEASON),
					 "Pass the number of values in one season (7 for days of a week, "
					 "12 for months of a year), or 0 (or 1) for none.");
	if (horizon < 1 || horizon > FC_MAX_HORIZON)
		out_of_range("horizon", psprintf("%d", horizon),
					 psprintf("between 1 and %d", FC_MAX_HORIZON),
					 "Pass how many steps after the last value to forecast.");
	if (!(level > 0.0 && level < 1.0))
		out_of_range("level", float8out_internal(level), "between 0 and 1 (exclusive)",
					 "Pass the probability the intervals should have, such as 0.95 or 0.8.");

	y = history_values(arr, &n);
	if (n < FC_MIN_HISTORY)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("history must have at least %d values", FC_MIN_HISTORY),
				 errdetail("forecast() was called with a history of %d value%s.",
						   n, n == 1 ? "" : "s"),
				 errhint("A forecast needs a few past values to measure how much they vary.")));

	fc_forecast(y, n, season, horizon, level, &res);

	if (res.used < n)
		ereport(NOTICE,
				(errmsg("history has %d values: the models are fitted to the last %d", n, res.used),
				 errdetail("Values further back hardly change a forecast; fitting takes time in "
						   "proportion to the values."),
				 errhint("Pass only the recent history to silence this notice.")));
	if (res.season_dropped)
		ereport(NOTICE,
				(errmsg("history is shorter than two seasons: forecasting without a season"),
				 errdetail("The history has %d values; a season of %d needs at least %d.",
						   res.used, season, 2 * season),
				 errhint("Pass a longer history to forecast the season, or season => 0.")));
	if (res.too_short_for_ets)
		ereport(NOTICE,
				(errmsg("history is too short to fit a model: the forecast repeats the last %s",
						strcmp(res.model, "naive") == 0 ? "value" : "season"),
				 errdetail("The history has %d values; exponential smoothing needs at least %d.",
						   n, FC_MIN_ETS_HISTORY),
				 errhint("Pass a longer history for a forecast that follows trend and season.")));
	ereport(DEBUG1,
			(errmsg_internal("forecast: %s from %d values, season %d", res.model, n, season)));

	InitMaterializedSRF(fcinfo, 0);
	for (int j = 0; j < horizon; j++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = Int32GetDatum(j + 1);
		values[1] = Float8GetDatum(res.mean[j]);
		values[2] = Float8GetDatum(res.lower[j]);
		values[3] = Float8GetDatum(res.upper[j]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
