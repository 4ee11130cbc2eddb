/*-------------------------------------------------------------------------
 *
 * refusal.c
 *	  Demand turned away: OS001 refusals (insufficient stock) counted per
 *	  SKU without a write in the refused transaction.
 *
 *	  A refused order rolls back, so anything it wrote is gone; and a row
 *	  written per refusal would be a hot row in the very flash sale that
 *	  refuses thousands of buyers a second.  So the refusal adds to a
 *	  counter in shared memory (a small hash keyed by database and SKU: a
 *	  shared lock and two atomic additions once the SKU has an entry), and
 *	  ordersync.flush_refusals(), which the background worker calls every
 *	  ordersync.rollup_interval, adds what was counted since the last flush
 *	  to ordersync.demand_refused.
 *
 *	  Exact: each entry keeps, beside its counters, what has been flushed
 *	  of them.  A flush locks demand_refused against other flushes (SHARE
 *	  ROW EXCLUSIVE conflicts with itself), reads counters minus flushed,
 *	  adds that to the table, and only when its transaction commits (a
 *	  transaction callback, before the lock is released) moves "flushed"
 *	  up by what it wrote; a flush that rolls back leaves it for the next.
 *	  Entries whose counts are all flushed are removed then, so the hash
 *	  holds only the SKUs refused since the last flush.  When it is full,
 *	  refusals go to one overflow entry per database, flushed as SKU ''.
 *	  Counts are lost only when the server restarts (shared memory is
 *	  reset), never counted twice.
 *
 *	  Without ordersync in shared_preload_libraries there is no shared
 *	  memory: refusals are not counted and a flush adds nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "ordersync.h"

#define REFUSAL_KEYLEN	128		/* longer SKUs (bytes) go to the overflow */
#define REFUSAL_ENTRIES 1024

typedef struct RefusalKey
{
	Oid			dboid;
	char		sku[REFUSAL_KEYLEN];	/* "" for the overflow entry */
} RefusalKey;

typedef struct RefusalEntry
{
	RefusalKey	key;
	pg_atomic_uint64 refusals;
	pg_atomic_uint64 units;
	/* written only by a committing flush, under the exclusive lock */
	uint64		flushed_refusals;
	uint64		flushed_units;
} RefusalEntry;

/* what a flush wrote of one entry, applied when its transaction commits */
typedef struct Flushed
{
	RefusalKey	key;
	uint64		refusals;		/* the counters as read */
	uint64		units;
	uint64		new_refusals;	/* what was added to the table */
	uint64		new_units;
} Flushed;

static HTAB *refusal_hash = NULL;
static LWLock *refusal_lock = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* the flush of this transaction, in TopTransactionContext */
static Flushed *pending = NULL;
static int	npending = 0;
static int	pending_level = 0;	/* the (sub)transaction level that flushed */
static bool callback_registered = false;

static void
refusal_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	/* one more entry than counted SKUs: the overflow always has room */
	RequestAddinShmemSpace(hash_estimate_size(REFUSAL_ENTRIES + 64, sizeof(RefusalEntry)));
	RequestNamedLWLockTranche("ordersync_refusals", 1);
}

static void
refusal_shmem_startup(void)
{
	HASHCTL		info;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(RefusalKey);
	info.entrysize = sizeof(RefusalEntry);
	refusal_hash = ShmemInitHash("ordersync refusals", REFUSAL_ENTRIES + 64,
								 REFUSAL_ENTRIES + 64, &info, HASH_ELEM | HASH_BLOBS);
	refusal_lock = &(GetNamedLWLockTranche("ordersync_refusals"))->lock;
	LWLockRelease(AddinShmemInitLock);
}

void
os_refusal_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = refusal_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = refusal_shmem_startup;
}

static void
make_key(RefusalKey *key, const char *sku)
{
	memset(key, 0, sizeof(*key));
	key->dboid = MyDatabaseId;
	if (sku != NULL && strlen(sku) < REFUSAL_KEYLEN)
		strlcpy(key->sku, sku, REFUSAL_KEYLEN);
}

/*
 * Called where OS001 is raised for a SKU (allocate.c), before the error:
 * counts one refusal of requested units when available falls short of
 * them.  Never errors and never writes: it runs in a transaction that is
 * about to fail.
 */
void
os_refusal_count(const char *sku, int64 requested, int64 available)
{
	RefusalKey	key;
	RefusalEntry *e;
	bool		found;

	if (refusal_hash == NULL || available >= requested || requested <= 0)
		return;
	make_key(&key, sku);

	LWLockAcquire(refusal_lock, LW_SHARED);
	e = hash_search(refusal_hash, &key, HASH_FIND, NULL);
	if (e != NULL)
	{
		pg_atomic_fetch_add_u64(&e->refusals, 1);
		pg_atomic_fetch_add_u64(&e->units, (uint64) requested);
		LWLockRelease(refusal_lock);
		return;
	}
	LWLockRelease(refusal_lock);

	LWLockAcquire(refusal_lock, LW_EXCLUSIVE);
	e = hash_search(refusal_hash, &key, HASH_FIND, NULL);
	found = e != NULL;
	if (e == NULL && hash_get_num_entries(refusal_hash) < REFUSAL_ENTRIES)
		e = hash_search(refusal_hash, &key, HASH_ENTER_NULL, &found);
	if (e == NULL)
	{
		/* no room for the SKU: the database's overflow entry */
		make_key(&key, NULL);
		e = hash_search(refusal_hash, &key, HASH_ENTER_NULL, &found);
	}
	if (e != NULL)
	{
		if (!found)
		{
			pg_atomic_init_u64(&e->refusals, 0);
			pg_atomic_init_u64(&e->units, 0);
			e->flushed_refusals = 0;
			e->flushed_units = 0;
		}
		pg_atomic_fetch_add_u64(&e->refusals, 1);
		pg_atomic_fetch_add_u64(&e->units, (uint64) requested);
	}
	LWLockRelease(refusal_lock);
}

/* a committed flush moves "flushed" up; entries with nothing left go */
static void
refusal_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (npending > 0)
				ereport(ERROR,
						(errcode(ERRCODE_OS_FLUSH_NOT_PREPARABLE),
						 errmsg("cannot prepare a transaction that flushed refusal counters"),
						 errdetail("flush_refusals() moves its shared-memory counters on at commit, which a prepared transaction cannot tell."),
						 errhint("Call ordersync.flush_refusals() in a transaction of its own.")));
			break;
		case XACT_EVENT_COMMIT:
			if (npending > 0)
			{
				LWLockAcquire(refusal_lock, LW_EXCLUSIVE);
				for (int i = 0; i < npending; i++)
				{
					RefusalEntry *e = hash_search(refusal_hash, &pending[i].key,
												  HASH_FIND, NULL);

					if (e == NULL)
						continue;	/* cannot happen: only we remove them */
					e->flushed_refusals = pending[i].refusals;
					e->flushed_units = pending[i].units;
					if (pg_atomic_read_u64(&e->refusals) == e->flushed_refusals)
						(void) hash_search(refusal_hash, &pending[i].key, HASH_REMOVE, NULL);
				}
				LWLockRelease(refusal_lock);
			}
			pending = NULL;
			npending = 0;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			pending = NULL;
			npending = 0;
			break;
		default:
			break;
	}
}

/* a flush in a subtransaction that rolls back wrote nothing: forget it */
static void
refusal_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && npending > 0 &&
		GetCurrentTransactionNestLevel() <= pending_level)
	{
		pending = NULL;
		npending = 0;
	}
}

/*
 * flush_refusals() -> refusals added to ordersync.demand_refused
 *
 * Adds what this database's counters hold beyond what was flushed, under
 * today's UTC date; see the top of the file.
 */
PG_FUNCTION_INFO_V1(ordersync_flush_refusals);

Datum
ordersync_flush_refusals(PG_FUNCTION_ARGS)
{
	static OsPlan lock = {
		"LOCK TABLE ordersync.demand_refused IN SHARE ROW EXCLUSIVE MODE",
		0, {InvalidOid}
	};
	static OsPlan add = {
		"INSERT INTO ordersync.demand_refused AS t (day, sku, refusals, units)"
		" VALUES ((pg_catalog.now() AT TIME ZONE 'UTC')::pg_catalog.date, $1, $2, $3)"
		" ON CONFLICT (day, sku) DO UPDATE"
		"    SET refusals = t.refusals + excluded.refusals, units = t.units + excluded.units",
		3, {TEXTOID, INT8OID, INT8OID}
	};
	HASH_SEQ_STATUS scan;
	RefusalEntry *e;
	Flushed    *mine;
	int			n = 0;
	int64		total = 0;

	if (refusal_hash == NULL)
		PG_RETURN_INT64(0);
	if (npending > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OS_FLUSH_NOT_PREPARABLE),
				 errmsg("refusal counters were already flushed in this transaction"),
				 errdetail("A second flush before the first commits would add the same refusals again."),
				 errhint("Commit, then call ordersync.flush_refusals() again.")));

	SPI_connect();
	(void) os_execute(&lock, NULL, NULL, false, 0);

	/*
	 * flushed_* change only when a flush commits, before it releases the
	 * lock we now hold: they are stable until we commit.
	 */
	mine = MemoryContextAllocZero(TopTransactionContext,
								  sizeof(Flushed) * (REFUSAL_ENTRIES + 64));
	LWLockAcquire(refusal_lock, LW_SHARED);
	hash_seq_init(&scan, refusal_hash);
	while ((e = hash_seq_search(&scan)) != NULL)
	{
		uint64		r = pg_atomic_read_u64(&e->refusals);

		if (e->key.dboid != MyDatabaseId || r == e->flushed_refusals ||
			n >= REFUSAL_ENTRIES + 64)
			continue;
		mine[n].key = e->key;
		mine[n].refusals = r;
		mine[n].units = pg_atomic_read_u64(&e->units);
		mine[n].new_refusals = r - e->flushed_refusals;
		mine[n].new_units = mine[n].units - e->flushed_units;
		n++;
	}
	LWLockRelease(refusal_lock);

	for (int i = 0; i < n; i++)
	{
		Datum		v[3];

		v[0] = CStringGetTextDatum(mine[i].key.sku);
		v[1] = Int64GetDatum((int64) mine[i].new_refusals);
		v[2] = Int64GetDatum((int64) mine[i].new_units);
		(void) os_execute(&add, v, NULL, false, 0);
		total += (int64) mine[i].new_refusals;
	}
	SPI_finish();

	if (!callback_registered)
	{
		RegisterXactCallback(refusal_xact_callback, NULL);
		RegisterSubXactCallback(refusal_subxact_callback, NULL);
		callback_registered = true;
	}
	pending = mine;
	npending = n;
	pending_level = GetCurrentTransactionNestLevel();

	PG_RETURN_INT64(total);
}

/* the worker's flush, in a transaction of its own (os_worker_step) */
static void
flush_step(void *arg)
{
	if (SPI_execute("SELECT 1 WHERE pg_catalog.to_regclass('ordersync.demand_refused') IS NOT NULL",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "ordersync: cannot look up ordersync.demand_refused");
	if (SPI_processed == 0)
		return;
	(void) SPI_execute("SELECT ordersync.flush_refusals()", false, 0);
}

void
os_refusal_tick(void)
{
	if (refusal_hash != NULL)
		(void) os_worker_step("ordersync: flushing refusal counters", flush_step, NULL);
}
