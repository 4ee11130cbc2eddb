/*-------------------------------------------------------------------------
 *
 * guards.c
 *	  Small triggers that protect ordersync's tables: history is append-only,
 *	  a status that orders have cannot disappear, and a change of the state
 *	  machine reaches every backend's cache.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/rel.h"

#include "ordersync.h"

PG_FUNCTION_INFO_V1(ordersync_append_only_trigger);
PG_FUNCTION_INFO_V1(ordersync_transition_changed_trigger);
PG_FUNCTION_INFO_V1(ordersync_status_in_use_trigger);

Datum
ordersync_append_only_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *what;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("ordersync_append_only_trigger must be called as a trigger")));

	what = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? "UPDATE" :
		TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ? "DELETE" : "TRUNCATE";
	ereport(ERROR,
			(errcode(ERRCODE_OS_APPEND_ONLY),
			 errmsg("%s is append-only", RelationGetRelationName(trigdata->tg_relation)),
			 errdetail("%s of ordersync.%s rows is not allowed: it is the record of what happened.",
					   what, RelationGetRelationName(trigdata->tg_relation)),
			 errhint("Record a correction as a new change through the ordersync API.")));
	return PointerGetDatum(NULL);	/* a NULL pointer, not an SQL NULL */
}

Datum
ordersync_transition_changed_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("ordersync_transition_changed_trigger must be called as a trigger")));

	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);	/* a NULL pointer, not an SQL NULL */
}

/*
 * BEFORE DELETE OR UPDATE OF name ON ordersync.status: orders keep their
 * status by name (no foreign key, see the install script), so a status in
 * use cannot be deleted or renamed.
 */
Datum
ordersync_status_in_use_trigger(PG_FUNCTION_ARGS)
{
	static OsPlan p = {
		"SELECT count(*) FROM ordersync.orders WHERE status = $1",
		1, {TEXTOID}
	};
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	char	   *name;
	Datum		v;
	int64		n;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("ordersync_status_in_use_trigger must be fired FOR EACH ROW")));

	desc = trigdata->tg_relation->rd_att;
	name = SPI_getvalue(trigdata->tg_trigtuple, desc, SPI_fnumber(desc, "name"));
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		char	   *newname = SPI_getvalue(trigdata->tg_newtuple, desc,
										   SPI_fnumber(desc, "name"));

		if (strcmp(name, newname) == 0)
			return PointerGetDatum(trigdata->tg_newtuple);
	}

	SPI_connect();
	v = CStringGetTextDatum(name);
	(void) os_execute(&p, &v, NULL, true, 1);
	n = os_getint64(0, 1);
	SPI_finish();
	if (n > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("status \"%s\" is in use", name),
				 errdetail(INT64_FORMAT " order(s) have status \"%s\".", n, name),
				 errhint("Move those orders to another status first.")));

	return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
						   trigdata->tg_newtuple : trigdata->tg_trigtuple);
}
