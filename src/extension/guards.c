/*-------------------------------------------------------------------------
 *
 * guards.c
 *	  Small triggers that protect ordersync's tables: history is append-only,
 *	  and a change of the state machine reaches every backend's cache.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/inval.h"
#include "utils/rel.h"

#include "ordersync.h"

PG_FUNCTION_INFO_V1(ordersync_append_only_trigger);
PG_FUNCTION_INFO_V1(ordersync_transition_changed_trigger);

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
