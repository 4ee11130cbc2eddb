/*-------------------------------------------------------------------------
 *
 * hot_figures.c
 *	  A hot SKU's figures at a location (on hand, reserved, available), as
 *	  its stock events report them, without summing every row per order.
 *
 *	  A hot SKU's location is many stock rows: its buckets and a lease per
 *	  buying session (allocate.c).  Summing them for every order's
 *	  inventory.reserved event made each order read as many rows as there
 *	  were buyers, each against a snapshot as long as the list of buyers
 *	  (with 272 rows, 1.96 ms an order against 1.36 ms without the sum, in
 *	  one backend; under 256 buyers XidInMVCCSnapshot alone took 11%).
 *
 *	  So the last sum of each (database, SKU, location) is kept in shared
 *	  memory with the time it was taken, and a reservation within
 *	  ordersync.hot_figures_age of that sum adds its units to the kept
 *	  figures instead of reading the rows: reserved goes up and available
 *	  down by what the order took, under a spinlock, so the figures count
 *	  every reservation since the sum, in the order they were made.  An
 *	  older sum is summed again by one session while the others go on
 *	  adding to it, so a kept sum serves at most about twice that long.  What a
 *	  reservation's event reports then differs from a fresh sum only by
 *	  what moved without a reservation in that window at the same
 *	  location: units received, released, shipped or restocked by other
 *	  transactions (those movements sum afresh, and their sum replaces the
 *	  kept one), and reservations that rolled back in other sessions after
 *	  the sum was taken.  A transaction that rolls back takes its own
 *	  additions back out (or drops a sum it published), so in one session
 *	  the figures are exact.  (A sum also misses reservations
 *	  committed between its statement's snapshot and its publication, for
 *	  the same short while.)  No stock decision reads these figures:
 *	  OS001, the lock paths and low_stock/out_of_stock all read the rows.
 *
 *	  Without ordersync in shared_preload_libraries, or with
 *	  ordersync.hot_figures_age = 0, every event sums the rows as before.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "ordersync.h"

#define HOTFIG_SLOTS	512		/* direct-mapped: a clash only costs a sum */
#define HOTFIG_KEYLEN	232		/* SKU, NUL, location; longer keys sum */

typedef struct HotFigSlot
{
	slock_t		mutex;
	Oid			dboid;
	TimestampTz at;				/* when summed; 0: empty */
	TimestampTz claimed;		/* when a session went to sum it again */
	StockFigures fig;			/* the sum plus reservations since */
	char		key[HOTFIG_KEYLEN];
} HotFigSlot;

/* what this transaction did to a slot, undone if it rolls back */
typedef struct HotFigUndo
{
	int			slot;
	TimestampTz at;				/* the sum it belongs to */
	int64		qty;			/* units added to reserved; -1: a published sum */
	int			level;			/* (sub)transaction nesting level */
} HotFigUndo;

int			ordersync_hot_figures_age = 100;

static HotFigSlot *slots = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static HotFigUndo *undo = NULL;		/* in TopTransactionContext */
static int	nundo = 0;
static int	maxundo = 0;
static bool callbacks_registered = false;

static void
hotfig_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(mul_size(HOTFIG_SLOTS, sizeof(HotFigSlot)));
}

static void
hotfig_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	slots = ShmemInitStruct("ordersync hot figures",
							mul_size(HOTFIG_SLOTS, sizeof(HotFigSlot)), &found);
	if (!found)
	{
		memset(slots, 0, mul_size(HOTFIG_SLOTS, sizeof(HotFigSlot)));
		for (int i = 0; i < HOTFIG_SLOTS; i++)
			SpinLockInit(&slots[i].mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

void
os_hot_figures_init(void)
{
	DefineCustomIntVariable("ordersync.hot_figures_age",
							"How long a hot SKU's summed stock figures serve its reservation events.",
							"Reservations within this time of the last sum add to it instead of reading every bucket and lease; 0 sums for every event.",
							&ordersync_hot_figures_age,
							100, 0, 10000,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = hotfig_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = hotfig_shmem_startup;
}

/* the key "sku\0location" and its slot; false if too long to keep */
static bool
make_key(const char *sku, const char *location, char *key, int *slot)
{
	size_t		ls = strlen(sku);
	size_t		ll = strlen(location);

	if (ls + 1 + ll + 1 > HOTFIG_KEYLEN)
		return false;
	memset(key, 0, HOTFIG_KEYLEN);
	memcpy(key, sku, ls);
	memcpy(key + ls + 1, location, ll);
	*slot = (int) ((hash_bytes((const unsigned char *) key, (int) (ls + 1 + ll)) ^
					MyDatabaseId) % HOTFIG_SLOTS);
	return true;
}

static void
undo_figures(int level)
{
	for (int i = nundo - 1; i >= 0 && undo[i].level >= level; i--)
	{
		HotFigSlot *s = &slots[undo[i].slot];

		SpinLockAcquire(&s->mutex);
		if (s->at == undo[i].at)
		{
			if (undo[i].qty < 0)
				s->at = 0;		/* a sum that saw what is now undone */
			else
			{
				s->fig.reserved -= undo[i].qty;
				s->fig.available = Min(s->fig.available + undo[i].qty,
									   s->fig.on_hand - s->fig.reserved);
			}
		}
		SpinLockRelease(&s->mutex);
		nundo = i;
	}
}

static void
hotfig_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		undo_figures(0);
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_ABORT)
	{
		undo = NULL;			/* TopTransactionContext goes */
		nundo = maxundo = 0;
	}
}

static void
hotfig_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		undo_figures(GetCurrentTransactionNestLevel());
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		/* what the committed level did now belongs to its parent */
		int			level = GetCurrentTransactionNestLevel();

		for (int i = nundo - 1; i >= 0 && undo[i].level >= level; i--)
			undo[i].level = level - 1;
	}
}

/* room for one more undo record, so that filling it in cannot fail */
static HotFigUndo *
next_undo(void)
{
	if (!callbacks_registered)
	{
		RegisterXactCallback(hotfig_xact_callback, NULL);
		RegisterSubXactCallback(hotfig_subxact_callback, NULL);
		callbacks_registered = true;
	}
	if (nundo == maxundo)
	{
		int			n = Max(8, maxundo * 2);

		undo = undo == NULL ?
			MemoryContextAlloc(TopTransactionContext, n * sizeof(HotFigUndo)) :
			repalloc(undo, n * sizeof(HotFigUndo));
		maxundo = n;
	}
	undo[nundo].level = GetCurrentTransactionNestLevel();
	return &undo[nundo];
}

/*
 * A reservation of qty units at a hot SKU's location: true, with the
 * figures after it in *out, if a sum within ordersync.hot_figures_age is
 * kept; then the units are added to it.  False: sum the rows
 * (os_location_figures(), which keeps the sum).
 */
bool
os_hot_figures_reserve(const char *sku, const char *location, int64 qty,
					   StockFigures *out)
{
	char		key[HOTFIG_KEYLEN];
	int			slot;
	HotFigSlot *s;
	HotFigUndo *u;
	TimestampTz now;
	int64		age;
	bool		hit = false;

	if (slots == NULL || ordersync_hot_figures_age == 0 ||
		!make_key(sku, location, key, &slot))
		return false;

	u = next_undo();
	now = GetCurrentTimestamp();
	age = (int64) ordersync_hot_figures_age * 1000;
	s = &slots[slot];
	SpinLockAcquire(&s->mutex);
	if (s->at != 0 && s->dboid == MyDatabaseId &&
		memcmp(s->key, key, HOTFIG_KEYLEN) == 0 &&
		s->fig.reserved <= s->fig.on_hand - qty)
	{
		/*
		 * An old sum is summed again by one session; the others go on
		 * adding to it meanwhile.  Under a storm a sum reads a row per
		 * buyer, slowly: if every session that found the sum old read
		 * the rows too, they would all be summing.
		 */
		if (now - s->at < age ||
			(s->claimed > s->at && now - s->claimed < age))
			hit = true;
		else
			s->claimed = now;
	}
	if (hit)
	{
		s->fig.reserved += qty;
		s->fig.available = Max(s->fig.available - qty, 0);
		*out = s->fig;
		u->slot = slot;
		u->at = s->at;
		u->qty = qty;
	}
	SpinLockRelease(&s->mutex);
	if (hit)
		nundo++;
	return hit;
}

/* keeps a location's figures just summed by this transaction */
void
os_hot_figures_keep(const char *sku, const char *location,
					const StockFigures *fig)
{
	char		key[HOTFIG_KEYLEN];
	int			slot;
	HotFigSlot *s;
	HotFigUndo *u;
	TimestampTz now;

	if (slots == NULL || ordersync_hot_figures_age == 0 ||
		!make_key(sku, location, key, &slot))
		return;

	u = next_undo();
	now = GetCurrentTimestamp();
	u->slot = slot;
	u->at = now;
	u->qty = -1;
	nundo++;
	s = &slots[slot];
	SpinLockAcquire(&s->mutex);
	s->dboid = MyDatabaseId;
	memcpy(s->key, key, HOTFIG_KEYLEN);
	s->fig = *fig;
	s->at = now;
	SpinLockRelease(&s->mutex);
}
