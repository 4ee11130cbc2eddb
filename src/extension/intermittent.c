/*-------------------------------------------------------------------------
 *
 * intermittent.c
 *	  ordersync.forecast_intermittent(history, method): the SQL face of the
 *	  intermittent demand forecasts (forecast_intermittent.c).  Checks the
 *	  history (non-negative finite values, at least one) and the method
 *	  ('auto', 'croston', 'sba', 'tsb'), and returns one row: the method,
 *	  the demand forecast per period, the fitted parameters and the
 *	  in-sample mean squared one-step error.
 *
 *	  Like ordersync.forecast(), IMMUTABLE and PARALLEL SAFE (it reads no
 *	  table), not STRICT (NULL arguments are refused with OS004).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/tuplestore.h"

#include "ordersync.h"
#include "outlook.h"

PG_FUNCTION_INFO_V1(ordersync_forecast_intermittent);

static void
pg_attribute_noreturn()
bad_demand(const char *problem, int subscript, int position, int n)
{
	ereport(ERROR,
			(errcode(ERRCODE_OS_BAD_DEMAND),
			 errmsg("demand history must not contain %s", problem),
			 errdetail("history[%d] (value %d of %d) is %s.",
					   subscript, position, n, problem),
			 errhint("Pass units demanded per period, 0 for a period without demand.")));
}

Datum
ordersync_forecast_intermittent(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ArrayType  *arr;
	char	   *name;
	FiMethod	method = FI_NONE;
	bool		automatic;
	const double *y;
	bits8	   *bitmap;
	int			n;
	int			lbound;
	FiResult	res;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	if (PG_ARGISNULL(0))
		os_null_argument("forecast_intermittent", "history",
						 "Pass the units demanded per period as a float8[], oldest first.");
	if (PG_ARGISNULL(1))
		os_null_argument("forecast_intermittent", "method",
						 "Pass 'auto', 'croston', 'sba' or 'tsb', or leave the argument out.");

	arr = PG_GETARG_ARRAYTYPE_P(0);
	name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (!fi_method_from_name(name, &method, &automatic))
		ereport(ERROR,
				(errcode(ERRCODE_OS_BAD_METHOD),
				 errmsg("unknown intermittent demand method \"%s\"", name),
				 errdetail("forecast_intermittent() was called with method => '%s'.", name),
				 errhint("Pass 'auto', 'croston', 'sba' or 'tsb'.")));

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_OS_BAD_DEMAND),
				 errmsg("demand history must be a one-dimensional array"),
				 errdetail("forecast_intermittent() was called with a history of %d dimensions.",
						   ARR_NDIM(arr)),
				 errhint("Pass the units per period in time order as one float8[], oldest first.")));
	n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	if (n < 1)
		ereport(ERROR,
				(errcode(ERRCODE_OS_BAD_DEMAND),
				 errmsg("demand history must have at least one value"),
				 errdetail("forecast_intermittent() was called with an empty history."),
				 errhint("Pass the units demanded per period, 0 for a period without demand.")));
	lbound = ARR_LBOUND(arr)[0];
	bitmap = ARR_NULLBITMAP(arr);
	y = (const double *) ARR_DATA_PTR(arr);
	for (int i = 0; bitmap != NULL && i < n; i++)
	{
		if ((bitmap[i / 8] & (1 << (i % 8))) == 0)
			bad_demand("NULL", lbound + i, i + 1, n);
	}
	for (int i = 0; i < n; i++)
	{
		if (isnan(y[i]))
			bad_demand("NaN", lbound + i, i + 1, n);
		if (isinf(y[i]))
			bad_demand(y[i] > 0 ? "Infinity" : "-Infinity", lbound + i, i + 1, n);
		if (y[i] < 0.0)
			bad_demand("a negative value", lbound + i, i + 1, n);
	}

	if (automatic)
		fi_auto(y, n, &res);
	else
		fi_fit(y, n, method, &res);

	InitMaterializedSRF(fcinfo, 0);
	values[0] = CStringGetTextDatum(fi_method_name(res.method));
	values[1] = Float8GetDatum(res.value);
	values[2] = Float8GetDatum(res.alpha);
	values[3] = Float8GetDatum(res.beta);
	values[4] = Float8GetDatum(res.mse);
	nulls[2] = res.method == FI_NONE;
	nulls[3] = res.method != FI_TSB;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
