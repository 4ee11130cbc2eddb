/*-------------------------------------------------------------------------
 *
 * stuck.c
 *	  Orders stuck in a status past its SLA (ordersync.status.sla), flagged
 *	  once per order and status: a row in ordersync.order_stuck and the
 *	  event order.stuck, in one transaction.
 *
 *	  The background worker flags them every ordersync.stuck_interval;
 *	  ordersync.flag_stuck_orders() does the same for those who do not
 *	  preload.  An order is stuck when its last change (updated_at, which
 *	  the status trigger sets) is older than its status's SLA.  Each order
 *	  flagged is share-locked, skipping those being changed right now: a
 *	  status change that committed meanwhile is seen (the row is checked
 *	  again under the lock), one still running is left for the next round,
 *	  so an order that just left its status is not reported stuck in it.
 *	  The key (order_id, status) of order_stuck makes a second flagger,
 *	  concurrent or later, skip what the first flagged.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "ordersync.h"

#define STUCK_BATCH 1000

static int	stuck_interval = 60;	/* seconds; 0: off */

void
os_stuck_init(void)
{
	DefineCustomIntVariable("ordersync.stuck_interval",
							"How often the background worker flags orders stuck in a status past its SLA.",
							"0 turns it off; ordersync.flag_stuck_orders() does the same on demand.",
							&stuck_interval, 60, 0, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
}

/* flags up to STUCK_BATCH orders; caller is connected to SPI */
static int64
flag_batch(void)
{
	static OsPlan p = {
		"WITH due AS ("
		"  SELECT o.id, o.channel, o.external_id, o.status, o.updated_at, s.sla"
		"    FROM ordersync.orders o JOIN ordersync.status s ON s.name = o.status"
		"   WHERE s.sla IS NOT NULL AND o.updated_at < pg_catalog.now() - s.sla"
		"     AND NOT EXISTS (SELECT 1 FROM ordersync.order_stuck f"
		"                      WHERE f.order_id = o.id AND f.status = o.status)"
		"   ORDER BY o.id LIMIT $1"
		"   FOR SHARE OF o SKIP LOCKED"
		"), flagged AS ("
		"  INSERT INTO ordersync.order_stuck (order_id, status, since)"
		"  SELECT d.id, d.status, d.updated_at FROM due d"
		"  ON CONFLICT (order_id, status) DO NOTHING"
		"  RETURNING order_id, status"
		")"
		" SELECT d.id, d.channel, d.external_id, d.status, d.updated_at,"
		"        extract(epoch FROM d.sla)::bigint,"
		"        extract(epoch FROM pg_catalog.now() - d.updated_at)::bigint"
		"   FROM due d JOIN flagged f ON f.order_id = d.id AND f.status = d.status"
		"  ORDER BY d.id",
		1, {INT4OID}
	};
	Datum		arg = Int32GetDatum(STUCK_BATCH);
	int			n;

	n = os_execute(&p, &arg, NULL, false, 0);
	for (int i = 0; i < n; i++)
	{
		StringInfoData data;
		bool		first = true;
		bool		isnull;
		int64		id = os_getint64(i, 1);
		char		idbuf[32];

		snprintf(idbuf, sizeof(idbuf), INT64_FORMAT, id);
		initStringInfo(&data);
		appendStringInfoChar(&data, '{');
		json_add_int64(&data, &first, "order_id", id);
		json_add_text(&data, &first, "channel", os_gettext(i, 2));
		json_add_text(&data, &first, "external_id", os_gettext(i, 3));
		json_add_text(&data, &first, "status", os_gettext(i, 4));
		json_add_timestamptz(&data, &first, "since", os_getdatum(i, 5, &isnull), isnull);
		json_add_int64(&data, &first, "sla_seconds", os_getint64(i, 6));
		json_add_int64(&data, &first, "in_status_seconds", os_getint64(i, 7));
		appendStringInfoChar(&data, '}');
		os_emit_event("order.stuck", "order", idbuf, &data);
		pfree(data.data);
	}
	return n;
}

/*
 * flag_stuck_orders() -> orders flagged
 */
PG_FUNCTION_INFO_V1(ordersync_flag_stuck_orders);

Datum
ordersync_flag_stuck_orders(PG_FUNCTION_ARGS)
{
	int64		total = 0;
	int64		n;

	SPI_connect();
	do
	{
		n = flag_batch();
		total += n;
		CHECK_FOR_INTERRUPTS();
	} while (n == STUCK_BATCH);
	SPI_finish();

	PG_RETURN_INT64(total);
}

/* one batch in the worker's transaction; *more when it was full */
static void
stuck_step(void *arg)
{
	bool	   *more = (bool *) arg;

	if (SPI_execute("SELECT 1 WHERE pg_catalog.to_regclass('ordersync.order_stuck') IS NOT NULL",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "ordersync: cannot look up ordersync.order_stuck");
	if (SPI_processed == 0)
		return;
	/* our statements name their schemas; operators follow the path */
	(void) SPI_execute("SET LOCAL search_path = pg_catalog, pg_temp", false, 0);
	*more = flag_batch() == STUCK_BATCH;
}

/*
 * The worker's round, outside a transaction, every ordersync.stuck_interval
 * (*last: when the last one started).  Returns the milliseconds until the
 * next one is due, for the worker's sleep.
 */
long
os_stuck_tick(TimestampTz *last)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		more = true;

	if (stuck_interval <= 0)
		return 3600 * 1000L;
	if (*last != 0 && !TimestampDifferenceExceeds(*last, now, stuck_interval * 1000))
		return Max(1L, stuck_interval * 1000L -
				   (long) ((now - *last) / 1000));
	*last = now;
	while (more)
	{
		more = false;
		if (!os_worker_step("ordersync: flagging stuck orders", stuck_step, &more))
			break;
		CHECK_FOR_INTERRUPTS();
	}
	return stuck_interval * 1000L;
}
