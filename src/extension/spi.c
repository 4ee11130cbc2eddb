/*-------------------------------------------------------------------------
 *
 * spi.c
 *	  Prepared statements kept for the life of the backend, and accessors
 *	  for the current SPI result.  The C paths run the same few statements
 *	  for every order, so planning them once is most of what makes them
 *	  faster than the same logic in PL/pgSQL.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"

#include "ordersync.h"

/*
 * Runs a kept plan, preparing it on first use; returns SPI_processed.
 * Statements are fully schema-qualified, so the plan does not depend on the
 * caller's search_path.
 */
/*
 * Prepare p and keep it for the life of the backend, on first use.
 *
 * Always a generic plan: every statement here is a keyed OLTP lookup or
 * write whose best plan does not depend on the values. Left to choose, the
 * plan cache kept building custom plans for some of them on every call
 * (their generic cost estimate came out higher), and planning was 10% of
 * place_order's CPU time in bench/hot_sku.
 */
void
os_prepare(OsPlan *p)
{
	SPIPlanPtr	plan;

	if (p->plan != NULL)
		return;
	plan = SPI_prepare_cursor(p->sql, p->nargs, p->argtypes, CURSOR_OPT_GENERIC_PLAN);
	if (plan == NULL)
		elog(ERROR, "ordersync: SPI_prepare failed for \"%s\": %s",
			 p->sql, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "ordersync: SPI_keepplan failed");
	p->plan = plan;
}

int
os_execute(OsPlan *p, Datum *values, const char *nulls, bool read_only, long count)
{
	int			rc;

	os_prepare(p);
	rc = SPI_execute_plan(p->plan, values, nulls, read_only, count);
	if (rc < 0)
		elog(ERROR, "ordersync: SPI_execute_plan failed for \"%s\": %s",
			 p->sql, SPI_result_code_string(rc));
	return (int) SPI_processed;
}

Datum
os_getdatum(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
						 col, isnull);
}

bool
os_getbool(int row, int col)
{
	bool		isnull;
	Datum		d = os_getdatum(row, col, &isnull);

	return isnull ? false : DatumGetBool(d);
}

int64
os_getint64(int row, int col)
{
	bool		isnull;
	Datum		d = os_getdatum(row, col, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

/* text column as a palloc'd C string in the current context; NULL for NULL */
char *
os_gettext(int row, int col)
{
	bool		isnull;
	Datum		d = os_getdatum(row, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}
