/*-------------------------------------------------------------------------
 *
 * compliance.c
 *	  The C side of erasure and retention (the rules themselves are SQL in
 *	  the 0.5.0 script: forget_customer, apply_retention, ...):
 *
 *	  - ordersync.compliance_record(): the history row and the domain event
 *		of one compliance action on one order, written like every other
 *		change (os_write_history, os_emit_event).  Events are logical
 *		messages only C code writes (pg_logical_emit_message is revoked
 *		from PUBLIC), so the SQL functions come here; nobody but the
 *		extension's own SECURITY DEFINER functions may call it.
 *	  - the worker's retention tick: ordersync.apply_retention() every
 *		ordersync.retention_interval, in batches of
 *		ordersync.retention_batch orders, each batch its own transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "ordersync.h"

PG_FUNCTION_INFO_V1(ordersync_compliance_record);

static int	retention_interval = 60;	/* seconds; 0: off */
static int	retention_batch = 100;

/* batches per tick at most, so expiry and the inbox are not starved */
#define RETENTION_BATCHES_PER_TICK 10

void
os_compliance_init(void)
{
	DefineCustomIntVariable("ordersync.retention_interval",
							"How often the background worker applies the retention rules of each market.",
							"0 turns it off; ordersync.apply_retention() does the same on demand.",
							&retention_interval, 60, 0, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("ordersync.retention_batch",
							"How many orders the background worker erases or removes per transaction.",
							"Small batches keep row locks short beside the order traffic.",
							&retention_batch, 100, 1, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
}

/*
 * compliance_record(action, order_id, reason, event_type, event_data):
 * one history row for the order and, when event_type is given, one event
 * with subject order/<id>.
 */
Datum
ordersync_compliance_record(PG_FUNCTION_ARGS)
{
	char	   *action;
	int64		order_id;
	char	   *reason = NULL;
	char		idbuf[32];

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		elog(ERROR, "ordersync: compliance_record needs an action and an order");
	action = text_to_cstring(PG_GETARG_TEXT_PP(0));
	order_id = PG_GETARG_INT64(1);
	if (!PG_ARGISNULL(2))
		reason = text_to_cstring(PG_GETARG_TEXT_PP(2));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ordersync: SPI_connect failed");
	os_write_history(action, order_id, true, NULL, NULL, NULL, NULL, 0, false, reason);
	SPI_finish();

	if (!PG_ARGISNULL(3))
	{
		Jsonb	   *data = PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4);
		StringInfoData buf;

		initStringInfo(&buf);
		if (data)
			(void) JsonbToCString(&buf, &data->root, VARSIZE(data));
		else
			appendStringInfoString(&buf, "{}");
		snprintf(idbuf, sizeof(idbuf), INT64_FORMAT, order_id);
		os_emit_event(text_to_cstring(PG_GETARG_TEXT_PP(3)), "order", idbuf, &buf);
		pfree(buf.data);
	}
	PG_RETURN_VOID();
}

typedef struct RetentionStep
{
	int			done;			/* orders handled by this batch */
} RetentionStep;

static void
retention_step(void *arg)
{
	RetentionStep *st = (RetentionStep *) arg;
	static OsPlan p = {
		"SELECT ordersync.apply_retention($1)", 1, {INT4OID}
	};
	Datum		v = Int32GetDatum(retention_batch);

	st->done = 0;
	/* the extension in this database may be older than the library */
	if (SPI_execute("SELECT 1 FROM pg_catalog.pg_proc p"
					" JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
					" WHERE n.nspname = 'ordersync' AND p.proname = 'apply_retention'",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "ordersync: cannot read pg_proc");
	if (SPI_processed == 0)
		return;
	if (os_execute(&p, &v, NULL, false, 1) == 1)
		st->done = (int) os_getint64(0, 1);
}

/*
 * The worker's retention duty, called outside a transaction on every
 * loop.  Returns how many milliseconds until it is due again.
 */
long
os_retention_tick(void)
{
	static TimestampTz last = 0;
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	if (retention_interval <= 0)
		return 3600 * 1000L;
	if (last != 0 &&
		!TimestampDifferenceExceeds(last, now, retention_interval * 1000))
	{
		long		secs;
		int			usecs;

		TimestampDifference(now, TimestampTzPlusMilliseconds(last, retention_interval * 1000L),
							&secs, &usecs);
		return secs * 1000L + usecs / 1000 + 1;
	}
	last = now;
	for (i = 0; i < RETENTION_BATCHES_PER_TICK; i++)
	{
		RetentionStep st = {0};

		if (!os_worker_step("ordersync: applying retention", retention_step, &st) ||
			st.done < retention_batch)
			break;
		CHECK_FOR_INTERRUPTS();
	}
	return retention_interval * 1000L;
}
