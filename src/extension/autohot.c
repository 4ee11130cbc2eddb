/*-------------------------------------------------------------------------
 *
 * autohot.c
 *	  Auto-hot: a SKU whose buyers queue on its stock rows is split into
 *	  buckets by the background worker, and merged back once quiet.
 *
 *	  Nobody can know beforehand which SKU a promotion will bring a storm
 *	  to, and a storm on one stock row serializes every buyer behind the
 *	  row lock of the one before (each holds it until its commit is
 *	  flushed).  So a buyer about to wait for a SKU's stock row locks notes
 *	  the SKU and the time in its own slot of a shared array, and clears
 *	  it when the locks are granted: an order pays a clock read and a copy
 *	  into memory no other backend writes.
 *
 *	  Every AUTOHOT_TICK_MS the auto-hot worker (worker.c) counts, per
 *	  SKU, the buyers that have been waiting for ordersync.auto_hot_wait or
 *	  longer: the queue at that moment.  Counting the waits that ended in
 *	  the tick instead (the first design) misread a storm: behind one row
 *	  at 256 buyers a wait lasts seconds, so the first ticks saw a handful
 *	  and split the SKU too small, and two buyers colliding on a SKU of a
 *	  loaded server looked like a queue.  A SKU with
 *	  ordersync.auto_hot_queue or more queued at two ticks in a row gets
 *	  about that many more buckets (a power of two, 8 to
 *	  ordersync.auto_hot_max_buckets).  A SKU split automatically is merged
 *	  back into one row once no buyer found its start bucket taken, bought
 *	  from its lease (allocate.c) or waited for ordersync.auto_hot_cooldown.
 *	  set_hot() records the operator's choice in sku.hot_source, and the
 *	  worker never changes a SKU the operator set.  Each automatic change is
 *	  one short transaction (history row, inventory.hot_changed event).
 *
 *	  Without ordersync in shared_preload_libraries there is no shared hash
 *	  and no worker: buyers measure nothing and SKUs stay as set.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "ordersync.h"

#define AUTOHOT_KEYLEN		128 /* longer SKUs (bytes) are not tracked */
#define AUTOHOT_ENTRIES		256
#define AUTOHOT_MIN_BUCKETS 8
#define AUTOHOT_BUSY_NOTE_MS 100	/* a backend notes a busy SKU this often */

/* GUCs */
bool		ordersync_auto_hot = true;
static int	auto_hot_wait_ms = 1;
static int	auto_hot_queue = 4;
static int	auto_hot_cooldown = 60;
static int	auto_hot_max_buckets = 256;

/* a SKU the worker saw a queue on, or split */
typedef struct AutoHotEntry
{
	char		sku[AUTOHOT_KEYLEN];	/* hash key */
	int32		queued;			/* buyers queued at the last tick */
	int32		queued_now;		/* and at this one */
	TimestampTz last_busy;		/* last queue seen or start bucket taken */
	TimestampTz changed_at;		/* last change by the worker */
	bool		split;			/* split by the worker, to merge back */
} AutoHotEntry;

/*
 * What one backend waits for: a SKU's stock row locks since "started" (0:
 * nothing).  Written by its backend only, read by the worker; the spinlock
 * keeps SKU and time together.
 */
typedef struct AutoHotWait
{
	slock_t		mutex;
	TimestampTz started;
	char		sku[AUTOHOT_KEYLEN];
} AutoHotWait;

/*
 * The database the worker works in (SKUs are named per database, so only
 * buyers there note their waits) and a wait slot per backend.
 */
typedef struct AutoHotShared
{
	pg_atomic_uint32 dboid;
	int			nwaits;
	AutoHotWait waits[FLEXIBLE_ARRAY_MEMBER];
} AutoHotShared;

static HTAB *autohot_hash = NULL;
static LWLock *autohot_lock = NULL;
static AutoHotShared *autohot_shared = NULL;
static AutoHotWait *my_wait = NULL;	/* this backend's slot, once noted in */

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
shared_size(void)
{
	return add_size(offsetof(AutoHotShared, waits),
					mul_size(MaxBackends, sizeof(AutoHotWait)));
}

static void
autohot_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(add_size(hash_estimate_size(AUTOHOT_ENTRIES, sizeof(AutoHotEntry)),
									MAXALIGN(shared_size())));
	RequestNamedLWLockTranche("ordersync_autohot", 1);
}

static void
autohot_shmem_startup(void)
{
	HASHCTL		info;
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	memset(&info, 0, sizeof(info));
	info.keysize = AUTOHOT_KEYLEN;
	info.entrysize = sizeof(AutoHotEntry);
	autohot_hash = ShmemInitHash("ordersync auto-hot", AUTOHOT_ENTRIES, AUTOHOT_ENTRIES,
								 &info, HASH_ELEM | HASH_STRINGS);
	autohot_lock = &(GetNamedLWLockTranche("ordersync_autohot"))->lock;
	autohot_shared = ShmemInitStruct("ordersync auto-hot waits", shared_size(), &found);
	if (!found)
	{
		pg_atomic_init_u32(&autohot_shared->dboid, InvalidOid);
		autohot_shared->nwaits = MaxBackends;
		for (int i = 0; i < MaxBackends; i++)
		{
			SpinLockInit(&autohot_shared->waits[i].mutex);
			autohot_shared->waits[i].started = 0;
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/* this backend waits for nothing (any more) */
static void
clear_wait(void)
{
	if (my_wait == NULL)
		return;
	SpinLockAcquire(&my_wait->mutex);
	my_wait->started = 0;
	SpinLockRelease(&my_wait->mutex);
}

/* an error during a wait: the slot must not count as a buyer queued forever */
static void
autohot_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		clear_wait();
}

static void
autohot_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		clear_wait();
}

/* GUCs always (so the prefix can be reserved), shared memory when preloaded */
void
os_autohot_init(void)
{
	DefineCustomBoolVariable("ordersync.auto_hot",
							 "Splits a SKU whose buyers queue on its stock row into buckets, and merges it back when quiet.",
							 "Needs ordersync in shared_preload_libraries; SKUs set with set_hot() are left alone.",
							 &ordersync_auto_hot, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("ordersync.auto_hot_wait",
							"How long a buyer must have waited for a SKU's stock row locks to count as queued on it.",
							NULL, &auto_hot_wait_ms, 1, 1, 60000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("ordersync.auto_hot_queue",
							"Number of buyers queued on a SKU's stock rows, at two ticks in a row, that makes auto-hot split it.",
							NULL, &auto_hot_queue, 4, 1, 100000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("ordersync.auto_hot_cooldown",
							"How long a SKU split by auto-hot must be quiet before it is merged back into one row.",
							NULL, &auto_hot_cooldown, 60, 1, 7 * 24 * 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("ordersync.auto_hot_max_buckets",
							"Most buckets auto-hot splits a SKU into.",
							NULL, &auto_hot_max_buckets, 256, AUTOHOT_MIN_BUCKETS, 1024,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = autohot_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = autohot_shmem_startup;
	RegisterXactCallback(autohot_xact_callback, NULL);
	RegisterSubXactCallback(autohot_subxact_callback, NULL);
}

static bool
autohot_active(void)
{
	return autohot_hash != NULL && ordersync_auto_hot &&
		pg_atomic_read_u32(&autohot_shared->dboid) == MyDatabaseId;
}

/*
 * A buyer is about to wait for a SKU's stock row locks: notes it in its
 * slot for the worker to count.  Returns the time, or 0 when nobody would
 * read it; os_autohot_waited() ends the wait.
 */
TimestampTz
os_autohot_clock(const char *sku)
{
	TimestampTz now;

	if (!autohot_active() || strlen(sku) >= AUTOHOT_KEYLEN ||
		MyBackendId < 1 || MyBackendId > autohot_shared->nwaits)
		return 0;
	my_wait = &autohot_shared->waits[MyBackendId - 1];
	now = GetCurrentTimestamp();
	SpinLockAcquire(&my_wait->mutex);
	strcpy(my_wait->sku, sku);
	my_wait->started = now;
	SpinLockRelease(&my_wait->mutex);
	return now;
}

/*
 * The wait that os_autohot_clock() started is over.  A long one keeps a
 * SKU the worker split from being merged back.
 */
void
os_autohot_waited(const char *sku, TimestampTz started)
{
	if (started == 0)
		return;
	clear_wait();
	if (TimestampDifferenceExceeds(started, GetCurrentTimestamp(), auto_hot_wait_ms))
		os_autohot_busy(sku);
}

/*
 * A buyer of a hot SKU found its start bucket taken, or waited long: the
 * SKU is still busy.  Only SKUs the worker split or saw a queue on are
 * tracked, and each backend notes a SKU at most every
 * AUTOHOT_BUSY_NOTE_MS, so a storm does not queue on our lock.
 */
void
os_autohot_busy(const char *sku)
{
	static char last_sku[AUTOHOT_KEYLEN];
	static TimestampTz last_at = 0;
	TimestampTz now;
	AutoHotEntry *e;

	if (!autohot_active() || strlen(sku) >= AUTOHOT_KEYLEN)
		return;
	now = GetCurrentTimestamp();
	if (strcmp(sku, last_sku) == 0 &&
		!TimestampDifferenceExceeds(last_at, now, AUTOHOT_BUSY_NOTE_MS))
		return;
	strlcpy(last_sku, sku, sizeof(last_sku));
	last_at = now;

	LWLockAcquire(autohot_lock, LW_EXCLUSIVE);
	e = hash_search(autohot_hash, sku, HASH_FIND, NULL);
	if (e != NULL)
		e->last_busy = now;
	LWLockRelease(autohot_lock);
}

/* what the worker read of one SKU */
typedef struct Seen
{
	char		sku[AUTOHOT_KEYLEN];
	int			queue;			/* buyers queued at two ticks in a row */
	TimestampTz last_busy;
} Seen;

/* the smallest power of two at least n, within the auto-hot limits */
static int
bucket_count(int n)
{
	int			b = AUTOHOT_MIN_BUCKETS;

	while (b < n && b < auto_hot_max_buckets)
		b *= 2;
	return Min(b, auto_hot_max_buckets);
}

/*
 * The entry of a SKU, made blank when new; NULL when the table is full
 * (the storm then waits for a free entry).  Caller holds autohot_lock.
 */
static AutoHotEntry *
enter(const char *sku)
{
	bool		found;
	AutoHotEntry *e = hash_search(autohot_hash, sku, HASH_ENTER_NULL, &found);

	if (e != NULL && !found)
		memset(&e->queued, 0, sizeof(AutoHotEntry) - offsetof(AutoHotEntry, queued));
	return e;
}

static void
set_split(const char *sku, bool split, TimestampTz now)
{
	AutoHotEntry *e;

	LWLockAcquire(autohot_lock, LW_EXCLUSIVE);
	e = split ? enter(sku) : hash_search(autohot_hash, sku, HASH_FIND, NULL);
	if (e != NULL)
	{
		e->split = split;
		e->last_busy = now;
		e->changed_at = now;
	}
	LWLockRelease(autohot_lock);
}

/*
 * One decision about one SKU, in the caller's transaction: split (or grow)
 * a SKU with a queue, merge back a quiet one the worker split.  Returns the
 * new bucket count, 0 when nothing changed, -1 when the operator set it.
 */
static int
decide(const Seen *s, TimestampTz now)
{
	int			cur;
	int			want;
	char	   *source;
	char		reason[200];

	if (!os_hot_lock(s->sku, &cur, &source))
		return 0;
	if (source != NULL && strcmp(source, "operator") == 0)
		return -1;				/* the operator's now: never ours again */

	/*
	 * A queue splits any SKU but the operator's further, one split ahead of
	 * its peak (peak.c) too; only what auto-hot split is merged back when
	 * quiet: a SKU bucketed before its peak is quiet until the peak comes.
	 */
	if (s->queue >= auto_hot_queue)
	{
		/*
		 * The first split is sized to the buyers queued.  A split SKU
		 * doubles only when as many buyers queue as it has buckets: a few
		 * waiting for one bucket each cost less than twice the rows (each
		 * a bucket, and a lease per buyer, to read and re-bucket).  Sized
		 * up on any queue, 128 buyers went on to 256 buckets and sold at
		 * 0.79 of spread throughput, where 64 buckets gave 1.0.
		 */
		if (cur > 1 && s->queue < cur)
			return 0;
		want = bucket_count(cur + s->queue);
		if (want <= cur)
			return 0;
		snprintf(reason, sizeof(reason), "auto: %d buyers queued", s->queue);
	}
	else if (cur > 1 && source != NULL && strcmp(source, "auto") == 0 &&
			 TimestampDifferenceExceeds(s->last_busy, now, auto_hot_cooldown * 1000))
	{
		want = 1;
		snprintf(reason, sizeof(reason), "auto: quiet for %d s", auto_hot_cooldown);
	}
	else
		return 0;

	os_hot_change(s->sku, cur, want, "auto", reason);
	return want;
}

/* whether this database has ordersync at a version with sku.hot_source */
static bool
schema_ready(void)
{
	if (SPI_execute("SELECT 1 FROM pg_catalog.pg_attribute"
					" WHERE attrelid = pg_catalog.to_regclass('ordersync.sku')"
					" AND attname = 'hot_source' AND NOT attisdropped", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "ordersync: cannot read pg_attribute");
	return SPI_processed > 0;
}

/* one decision, in the worker's transaction (os_worker_step) */
typedef struct Handling
{
	const Seen *seen;
	TimestampTz now;
	int			changed;
} Handling;

static void
handle_step(void *arg)
{
	Handling   *h = (Handling *) arg;

	if (!schema_ready())
		return;
	(void) SPI_execute("SET LOCAL lock_timeout = '5s'", false, 0);
	h->changed = decide(h->seen, h->now);
}

/*
 * One SKU in its own transaction, so a storm elsewhere does not hold it
 * up; a lock it cannot get within lock_timeout, or any other error, is
 * logged and the SKU is looked at again at a later tick.
 */
static void
handle(const Seen *s, TimestampTz now)
{
	Handling	h = {s, now, 0};

	if (!os_worker_step("ordersync: auto-hot", handle_step, &h))
		return;
	if (h.changed > 1)
		set_split(s->sku, true, now);
	else if (h.changed == 1 || h.changed < 0)
		set_split(s->sku, false, now);
}

/* after a restart: the SKUs split before it are to be merged back too */
static void
adopt_split_skus(TimestampTz now)
{
	int			n = 0;
	char	  **skus = NULL;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (schema_ready() &&
		SPI_execute("SELECT sku FROM ordersync.sku WHERE hot_source = 'auto'", true, 0) == SPI_OK_SELECT)
	{
		n = SPI_processed;
		skus = MemoryContextAlloc(TopMemoryContext, sizeof(char *) * Max(n, 1));
		for (int i = 0; i < n; i++)
			skus[i] = MemoryContextStrdup(TopMemoryContext, os_gettext(i, 1));
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	for (int i = 0; i < n; i++)
	{
		if (strlen(skus[i]) < AUTOHOT_KEYLEN)
			set_split(skus[i], true, now);
		pfree(skus[i]);
	}
	if (skus)
		pfree(skus);
}

/* one buyer's wait, as the worker read it */
typedef struct Waiting
{
	char		sku[AUTOHOT_KEYLEN];
	TimestampTz started;
} Waiting;

static int
waiting_cmp(const void *a, const void *b)
{
	return strcmp(((const Waiting *) a)->sku, ((const Waiting *) b)->sku);
}

/* the buyers waiting for a SKU's rows for auto_hot_wait or longer, by SKU */
static int
read_waits(Waiting *w, TimestampTz now)
{
	TimestampTz since = now - (TimestampTz) auto_hot_wait_ms * 1000;
	int			n = 0;

	for (int i = 0; i < autohot_shared->nwaits; i++)
	{
		AutoHotWait *slot = &autohot_shared->waits[i];

		SpinLockAcquire(&slot->mutex);
		if (slot->started != 0 && slot->started <= since)
		{
			strcpy(w[n].sku, slot->sku);
			w[n].started = slot->started;
			n++;
		}
		SpinLockRelease(&slot->mutex);
	}
	qsort(w, n, sizeof(Waiting), waiting_cmp);
	return n;
}

/*
 * Counts the queue of each SKU now into its entry (made for a SKU with a
 * queue of auto_hot_queue or more).  Caller holds autohot_lock.
 */
static void
count_queues(const Waiting *w, int n, TimestampTz now)
{
	int			j;

	for (int i = 0; i < n; i = j)
	{
		AutoHotEntry *e;
		int			count = 0;

		for (j = i; j < n && strcmp(w[j].sku, w[i].sku) == 0; j++)
			;
		e = hash_search(autohot_hash, w[i].sku, HASH_FIND, NULL);
		for (int k = i; k < j; k++)
		{
			/* a wait for the worker's own re-bucketing says nothing */
			if (e == NULL || w[k].started > e->changed_at)
				count++;
		}
		if (count == 0 || (e == NULL && count < auto_hot_queue))
			continue;
		if (e == NULL && (e = enter(w[i].sku)) == NULL)
			continue;
		e->queued_now = count;
		e->last_busy = now;
	}
}

/*
 * The worker's tick: count the queues, then act on the SKUs that need it.
 * Called outside a transaction.
 */
void
os_autohot_tick(void)
{
	static bool adopted = false;
	TimestampTz now = GetCurrentTimestamp();
	HASH_SEQ_STATUS seq;
	AutoHotEntry *e;
	Waiting    *waits;
	int			nwaits;
	Seen	   *seen;
	int			n = 0;

	if (autohot_hash == NULL)
		return;
	pg_atomic_write_u32(&autohot_shared->dboid, MyDatabaseId);
	if (!autohot_active())
		return;
	if (!adopted)
	{
		adopt_split_skus(now);
		adopted = true;
	}

	waits = palloc(sizeof(Waiting) * autohot_shared->nwaits);
	nwaits = read_waits(waits, now);
	seen = palloc(sizeof(Seen) * AUTOHOT_ENTRIES);
	LWLockAcquire(autohot_lock, LW_EXCLUSIVE);
	count_queues(waits, nwaits, now);
	hash_seq_init(&seq, autohot_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		/* two ticks in a row: a moment's crowd is not a queue */
		int			queue = Min(e->queued, e->queued_now);
		bool		quiet = TimestampDifferenceExceeds(e->last_busy, now,
													   auto_hot_cooldown * 1000);

		if (queue >= auto_hot_queue || (e->split && quiet))
		{
			strlcpy(seen[n].sku, e->sku, AUTOHOT_KEYLEN);
			seen[n].queue = queue;
			seen[n].last_busy = e->last_busy;
			n++;
		}
		e->queued = e->queued_now;
		e->queued_now = 0;

		/*
		 * Only the SKUs the worker split, or with a queue now, stay: the
		 * table is small, and the waits of a busy server spread over many
		 * SKUs must not fill it before a storm comes.
		 */
		if (!e->split && e->queued < auto_hot_queue)
			(void) hash_search(autohot_hash, e->sku, HASH_REMOVE, NULL);
	}
	LWLockRelease(autohot_lock);
	pfree(waits);

	for (int i = 0; i < n; i++)
		handle(&seen[i], now);
	pfree(seen);
}
