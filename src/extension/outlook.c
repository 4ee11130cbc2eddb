/*-------------------------------------------------------------------------
 *
 * outlook.c
 *	  Settings of the outlook (stock-out predictions, peak preparation),
 *	  and the background worker's tick that runs both every
 *	  ordersync.outlook_interval (worker.c calls it after the rollups are
 *	  brought up to date).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/guc.h"

#include "ordersync.h"
#include "outlook.h"

/* how often the worker checks (seconds); 0: never */
int			ordersync_outlook_interval = 300;

/* the lead time (seconds) and service level of stock-out predictions */
int			ordersync_outlook_lead_time = 7 * 86400;
double		ordersync_outlook_service_level = 0.95;

/* units per hour that make a SKU hot ahead of time (0: never), and how hot */
double		ordersync_peak_units_per_hour = 0.0;
int			ordersync_peak_buckets = 16;

void
os_outlook_init(void)
{
	DefineCustomIntVariable("ordersync.outlook_interval",
							"How often the background worker checks for stock-outs to come and SKUs to split before a peak.",
							"0 turns it off; ordersync.check_stockouts() and ordersync.prepare_peak() do the same on demand.",
							&ordersync_outlook_interval, 300, 0, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("ordersync.outlook_lead_time",
							"The lead time of inventory.stockout_predicted: a projected stock-out closer than this fires it.",
							"The time a reorder takes to arrive.",
							&ordersync_outlook_lead_time, 7 * 86400, 3600, 365 * 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomRealVariable("ordersync.outlook_service_level",
							 "The service level of the safety stock and reorder point that inventory.stockout_predicted carries.",
							 NULL,
							 &ordersync_outlook_service_level, 0.95, 0.5, 0.9999,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomRealVariable("ordersync.peak_units_per_hour",
							 "Units per hour a SKU is forecast to sell that make it hot (bucketed) ahead of time.",
							 "0 turns it off.  SKUs set with set_hot() or split by auto-hot are left alone.",
							 &ordersync_peak_units_per_hour, 0.0, 0.0, 1e12,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("ordersync.peak_buckets",
							"How many buckets a SKU gets ahead of a peak.",
							NULL,
							&ordersync_peak_buckets, 16, 2, 1024,
							PGC_SUSET, 0, NULL, NULL, NULL);
}

/* whether this database has ordersync at a version with the outlook */
static bool
outlook_installed(void)
{
	if (SPI_execute("SELECT 1 WHERE pg_catalog.to_regclass('ordersync.stockout_watch') IS NOT NULL",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "ordersync: cannot look up ordersync.stockout_watch");
	return SPI_processed > 0;
}

static void
stockout_step(void *arg)
{
	int		   *n = (int *) arg;

	if (!outlook_installed())
		return;
	(void) SPI_execute("SET LOCAL search_path = pg_catalog, pg_temp", false, 0);
	*n = os_check_stockouts();
}

static void
peak_step(void *arg)
{
	int		   *n = (int *) arg;

	if (!outlook_installed())
		return;
	(void) SPI_execute("SET LOCAL search_path = pg_catalog, pg_temp", false, 0);
	/* a SKU locked by a long transaction is tried again next time */
	(void) SPI_execute("SET LOCAL lock_timeout = '5s'", false, 0);
	*n = os_prepare_peak();
}

/*
 * Each check in a transaction of its own (os_worker_step): an error is
 * logged and the next tick tries again.
 */
void
os_outlook_tick(void)
{
	int			events = 0;
	int			changed = 0;

	if (os_worker_step("ordersync: predicting stock-outs", stockout_step, &events) && events > 0)
		ereport(LOG,
				(errmsg("ordersync: %d stock-out%s predicted within the lead time",
						events, events == 1 ? "" : "s")));
	if (os_worker_step("ordersync: preparing for the peak", peak_step, &changed) && changed > 0)
		ereport(LOG,
				(errmsg("ordersync: %d SKU%s bucketed or merged back ahead of the forecast",
						changed, changed == 1 ? "" : "s")));
}
