/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The expiry background worker: when ordersync is in
 *	  shared_preload_libraries, it expires pending orders whose reservation
 *	  ran out, in one database, every ordersync.expire_interval, in batches
 *	  of ordersync.expire_batch orders per transaction.  No external cron.
 *	  Every ordersync.rollup_interval it brings the rollups of
 *	  ordersync.history up to date (rollup.c) and flushes the OS001 refusal
 *	  counters (refusal.c); every ordersync.stuck_interval it flags orders
 *	  stuck past their status's SLA (stuck.c); every
 *	  ordersync.outlook_interval it predicts stock-outs and prepares SKUs
 *	  for the peak (outlook.c); every ordersync.retention_interval it applies
 *	  the markets' retention rules in batches (compliance.c).
 *
 *	  Auto-hot (autohot.c) has a worker of its own, in the same database:
 *	  it must look at the queues every AUTOHOT_TICK_MS, and a flash sale is
 *	  when the expiry worker is busiest (thousands of abandoned orders
 *	  running out, batch after batch, a release stuck behind a buyer's row
 *	  lock, a rollup of a million history rows).  Sharing the loop, a bench
 *	  left running for 15 minutes saw auto-hot split nothing at all once
 *	  its first orders started to expire.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "ordersync.h"
#include "inbox.h"
#include "outlook.h"
#include "rollup.h"

PGDLLEXPORT void ordersync_worker_main(Datum arg);
PGDLLEXPORT void ordersync_autohot_main(Datum arg);

static int	expire_interval = 10;	/* seconds */
static int	expire_batch = 1000;
static int	rollup_interval = 10;	/* seconds; 0: off */
static char *worker_database = NULL;

static void
register_worker(const char *name, const char *function)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	strlcpy(worker.bgw_library_name, "ordersync", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, function, BGW_MAXLEN);
	strlcpy(worker.bgw_name, name, BGW_MAXLEN);
	strlcpy(worker.bgw_type, name, BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

void
os_worker_init(void)
{
	DefineCustomIntVariable("ordersync.expire_interval",
							"How often the background worker expires reservations that ran out.",
							NULL, &expire_interval, 10, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("ordersync.expire_batch",
							"How many orders the background worker expires per transaction.",
							NULL, &expire_batch, 1000, 1, 1000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("ordersync.rollup_interval",
							"How often the background worker adds new history rows to the rollups.",
							"0 turns it off; ordersync.refresh_rollups() does the same on demand.",
							&rollup_interval, 10, 0, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	os_inbox_init();			/* ordersync.inbox_* */

	/* the worker, and the database it works in, exist only when preloaded */
	if (!process_shared_preload_libraries_in_progress)
		return;

	DefineCustomStringVariable("ordersync.database",
							   "The database the background workers (expiry, auto-hot and the others) work in.",
							   NULL, &worker_database, "postgres",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);

	register_worker("ordersync expiry worker", "ordersync_worker_main");
	register_worker("ordersync auto-hot worker", "ordersync_autohot_main");
}

/* signals and the database connection, as every ordersync worker starts */
static void
worker_start(void)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(worker_database, NULL, 0);
}

/* the start of each round of a worker's loop */
static void
worker_round(void)
{
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

/* one batch in its own transaction; returns how many orders it expired */
/*
 * Runs step(arg) in a transaction of its own, connected to SPI, with a
 * snapshot and the activity shown in pg_stat_activity.  The step checks
 * that its tables exist (the extension in this database may be older than
 * the library) and leaves its results in arg.  Returns false when the step
 * failed: the error is logged and the transaction rolled back, and the
 * next tick tries again, so one bad row cannot stop the worker.
 */
bool
os_worker_step(const char *activity, void (*step) (void *arg), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, activity);
		step(arg);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_stat(false);
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

static int
expire_batch_once(bool *installed)
{
	int			n = 0;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "ordersync: expiring reservations");

	if (SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'ordersync'",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "ordersync: cannot read pg_extension");
	*installed = SPI_processed > 0;
	if (*installed)
		n = os_expire_due(expire_batch);

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return n;
}

void
ordersync_worker_main(Datum arg)
{
	bool		warned = false;
	TimestampTz last_expiry = 0;
	TimestampTz last_rollup = 0;
	TimestampTz last_outlook = 0;
	TimestampTz last_stuck = 0;

	worker_start();
	ereport(LOG,
			(errmsg("ordersync expiry worker started in database \"%s\", every %d s",
					worker_database, expire_interval)));

	for (;;)
	{
		bool		installed = true;
		int			n;
		long		timeout;

		worker_round();
		if (last_expiry == 0 ||
			TimestampDifferenceExceeds(last_expiry, GetCurrentTimestamp(),
									   expire_interval * 1000))
		{
			last_expiry = GetCurrentTimestamp();

			/* a full batch means there may be more due right now */
			do
				n = expire_batch_once(&installed);
			while (n == expire_batch);

			if (!installed && !warned)
				ereport(LOG,
						(errmsg("ordersync expiry worker: extension ordersync is not installed in database \"%s\"",
								worker_database),
						 errhint("Run CREATE EXTENSION ordersync there, or set ordersync.database to the database that has it.")));
			warned = !installed;
		}

		if (rollup_interval > 0 &&
			(last_rollup == 0 ||
			 TimestampDifferenceExceeds(last_rollup, GetCurrentTimestamp(),
										rollup_interval * 1000)))
		{
			last_rollup = GetCurrentTimestamp();
			os_rollup_tick();
			os_refusal_tick();	/* demand turned away (refusal.c) */
		}

		if (ordersync_outlook_interval > 0 &&
			(last_outlook == 0 ||
			 TimestampDifferenceExceeds(last_outlook, GetCurrentTimestamp(),
										ordersync_outlook_interval * 1000)))
		{
			last_outlook = GetCurrentTimestamp();
			os_outlook_tick();
		}

		timeout = expire_interval * 1000L;
		if (rollup_interval > 0)
			timeout = Min(timeout, rollup_interval * 1000L);
		if (ordersync_outlook_interval > 0)
			timeout = Min(timeout, ordersync_outlook_interval * 1000L);
		timeout = Min(timeout, os_inbox_tick());	/* channels' webhooks (inbox.c) */
		timeout = Min(timeout, os_retention_tick());	/* markets' rules (compliance.c) */
		timeout = Min(timeout, os_stuck_tick(&last_stuck));	/* stuck orders (stuck.c) */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * The auto-hot worker: a tick every AUTOHOT_TICK_MS, whatever the expiry
 * worker is doing.  With ordersync.auto_hot off it only waits (a reload
 * wakes it).
 */
void
ordersync_autohot_main(Datum arg)
{
	worker_start();
	for (;;)
	{
		worker_round();
		os_autohot_tick();		/* returns at once with auto_hot off */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ordersync_auto_hot ? AUTOHOT_TICK_MS : 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
