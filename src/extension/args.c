/*-------------------------------------------------------------------------
 *
 * args.c
 *	  Checks of API arguments, and the refusals several API functions
 *	  share, so that one mistake reads the same wherever it is made.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "ordersync.h"

void
os_null_argument(const char *func, const char *arg, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_OS_INVALID_INPUT),
			 errmsg("%s must not be null", arg),
			 errdetail("%s() was called with %s => NULL.", func, arg),
			 errhint("%s", hint)));
}

/* a non-empty text argument, as a C string */
char *
os_required_text_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	const char *func = get_func_name(fcinfo->flinfo->fn_oid);
	char	   *s;

	if (PG_ARGISNULL(n))
		os_null_argument(func, name, psprintf("Pass a non-empty %s.", name));
	s = text_to_cstring(PG_GETARG_TEXT_PP(n));
	if (s[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("%s must not be empty", name),
				 errdetail("%s() was called with %s => ''.", func, name),
				 errhint("Pass a non-empty %s.", name)));
	return s;
}

/* the qty argument, at least min */
int64
os_required_qty_arg(FunctionCallInfo fcinfo, int n, int64 min)
{
	const char *func = get_func_name(fcinfo->flinfo->fn_oid);
	char	   *hint = psprintf("Pass a quantity of at least " INT64_FORMAT ".", min);
	int64		qty;

	if (PG_ARGISNULL(n))
		os_null_argument(func, "qty", hint);
	qty = PG_GETARG_INT64(n);
	if (qty < min)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("qty must be at least " INT64_FORMAT, min),
				 errdetail("%s() was called with qty => " INT64_FORMAT ".", func, qty),
				 errhint("%s", hint)));
	return qty;
}

void
os_unknown_sku(const char *sku)
{
	ereport(ERROR,
			(errcode(ERRCODE_OS_INVALID_INPUT),
			 errmsg("unknown SKU \"%s\"", sku),
			 errdetail("ordersync.sku has no SKU \"%s\".", sku),
			 errhint("SKUs are created by ordersync.receive_stock().")));
}

void
os_unknown_channel(const char *channel)
{
	ereport(ERROR,
			(errcode(ERRCODE_OS_INVALID_INPUT),
			 errmsg("unknown channel \"%s\"", channel),
			 errdetail("ordersync.channel has no channel with id \"%s\".", channel),
			 errhint("Add it first: SELECT ordersync.add_channel('%s');", channel)));
}
