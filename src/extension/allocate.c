/*-------------------------------------------------------------------------
 *
 * allocate.c
 *	  Reserving an order's lines: lock stock rows, choose locations and
 *	  buckets, write reservations, and report low or sold-out stock.
 *
 *	  Two ways to lock a SKU's rows:
 *
 *	  - waiting: every row of the SKU, in (location, bucket) order, with
 *		FOR UPDATE.  SKUs are taken in "C" order, so the global lock order
 *		is (sku, location, bucket) and no two orders deadlock.  Exact: what
 *		we see once we hold the locks is all the stock there is.
 *
 *	  - skipping: for a hot SKU (one split into buckets, see hot_sku.c), only
 *		as many rows with free units as the order needs, starting at a bucket
 *		chosen per backend and skipping rows other buyers hold (SKIP LOCKED),
 *		so buyers of one SKU do not queue behind each other.  Each location
 *		is read as two index ranges (from the start bucket up, then the
 *		buckets below it) that stop as soon as the need is covered: a buyer
 *		touches a few buckets, not every one (64 buckets: 0.76 -> 0.95 of
 *		the throughput of the same load spread over 10,000 SKUs).
 *
 *	  - waiting for one: when the free buckets a buyer can skip to are not
 *		enough (more buyers than buckets: every bucket is held), it waits for
 *		ONE bucket that has units, chosen by its start so waiters spread over
 *		the buckets, and takes its units when the holder commits or rolls
 *		back.  Before the first wait (and the following ones) it reads the
 *		SKU's committed free units: if they might not cover the order, it
 *		does not wait for one but takes the exact view below.  With every
 *		bucket waiting for all of them, 128 buyers on 16 buckets were
 *		serialized behind each other (0.22 of spread throughput).
 *
 *	  - leasing: each backend keeps a stock row of its own per hot SKU and
 *		location (bucket LEASE_BASE + its PGPROC number).  An order first
 *		takes from it, skipping it if someone else holds it; when it runs
 *		short, the order takes from the buckets as above and moves up to
 *		ordersync.hot_lease more units (at most half of what the bucket has
 *		left) into its lease.  No other buyer waits for a lease, so buyers
 *		no longer queue when they outnumber the buckets: a bucket's lock is
 *		held through its commit flush (on 2 cores, for several ms), and 32
 *		buyers on 16 buckets reached 0.65 of spread throughput.  Now only
 *		one order in ordersync.hot_lease locks a bucket.  A lease's units
 *		are stock like any other: the exact view below locks the leases
 *		too, receive_stock() fills only the buckets, and re-bucketing
 *		merges the leases back.  Leasing never waits (SKIP LOCKED, and a
 *		lease row is created only when the SKU and location rows can be
 *		share-locked at once), so it adds no edge to any wait cycle.
 *
 *	  An order with a hot SKU first tries with leasing, skipping (and
 *	  waiting for one), inside a subtransaction.  If the rows it could get
 *	  are not enough, the subtransaction is rolled back, releasing them, and
 *	  the order tries again waiting for every row, in a subtransaction of
 *	  its own too: if that falls short while the SKUs have gained rows since
 *	  its snapshot (a new lease), it is rolled back and made again rather
 *	  than locking the new rows out of order.  "Sold out" is only ever
 *	  reported from that exact view, never because other buyers held the
 *	  rows at that moment.
 *
 *	  Why waiting for one bucket cannot deadlock: a buyer only ever waits for
 *	  a row that comes after every row it holds in the global order
 *	  (sku, location, bucket).  Waiting for every row does that by
 *	  construction.  Skipping does not wait: where PostgreSQL would (see
 *	  lock_some_bounded), it gives up after 10 ms and the attempt goes to
 *	  the exact view.  Waiting for one picks its bucket among those after
 *	  the greatest (location, bucket) of the SKU that the buyer holds
 *	  (every row it locked, including those a skipping query locked and
 *	  then left out: see wait_for_one) or has waited for, and the SKUs
 *	  before it are all it holds of other SKUs (SKUs are taken in order).
 *	  In a cycle of waits T1 -> T2 -> ... -> T1, each transaction would
 *	  wait for a row greater than the one the previous waits for and it
 *	  holds: the rows would have to increase all the way around, which
 *	  they cannot.  So a buyer waiting for one bucket and a buyer waiting
 *	  for every bucket (or for a plain SKU's rows, or a re-bucketing
 *	  set_hot(), which locks in the same order) never wait for each other
 *	  in a circle.
 *
 *	  At READ COMMITTED each statement sees the latest committed stock once
 *	  it holds the lock, so exactly the available units are sold; at
 *	  REPEATABLE READ or SERIALIZABLE a row changed since the snapshot makes
 *	  the lock fail with a serialization error that the caller retries.
 *
 *	  Location choice: by default the whole order ships from one location,
 *	  the highest-priority one that has every line; with allow_split, each
 *	  line takes units by location priority and may span locations.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "ordersync.h"

/* one locked stock row */
typedef struct Row
{
	char	   *location;
	int			bucket;
	int			priority;
	int64		free;			/* on_hand - reserved - safety, at least 0 */
} Row;

/* units of one line taken from one row */
typedef struct Take
{
	int			line;			/* index into the lines array */
	int			row;
	int64		qty;
} Take;

/* everything the order needs of one SKU */
typedef struct Need
{
	const char *sku;
	int			buckets;
	int64		threshold;
	bool		has_threshold;
	int64		requested;
	int			first_line;		/* lines[first_line .. end_line) */
	int			end_line;
	bool		all_rows;		/* rows holds every row of the SKU */
	bool		changed;		/* a plain SKU's row changed since the call began */
	Row		   *rows;
	int			nrows;
	int			rowcap;
	Take	   *takes;
	int			ntakes;
} Need;

static int
line_cmp_sku(const void *a, const void *b)
{
	const OrderLine *la = (const OrderLine *) a;
	const OrderLine *lb = (const OrderLine *) b;
	int			c = strcmp(la->sku, lb->sku);

	return c != 0 ? c : la->line_no - lb->line_no;
}

/*
 * One Need per SKU (lines sorted by SKU), with its bucket count and low
 * stock threshold; an unknown SKU is refused before anything is locked.
 * The SKUs are looked up one by one in the index (OFFSET 0 keeps the
 * lateral subquery a parameterized index scan): the generic plan of a plain
 * join hashed a sequential scan of every SKU of the shop, per order (1,000
 * SKUs: a fifth of place_order's instructions).
 */
static Need *
build_needs(OrderLine *lines, int n, int *nneeds)
{
	static OsPlan p = {
		"SELECT l.ord::integer, k.buckets, k.low_stock_threshold"
		" FROM pg_catalog.unnest($1::text[]) WITH ORDINALITY AS l(sku, ord)"
		" LEFT JOIN LATERAL (SELECT k.buckets, k.low_stock_threshold FROM ordersync.sku k"
		"  WHERE k.sku = l.sku OFFSET 0) k ON true ORDER BY l.ord",
		1, {TEXTARRAYOID}
	};
	Datum	   *skus = palloc(sizeof(Datum) * n);
	Datum		arr;
	Need	   *needs = palloc0(sizeof(Need) * n);
	int			k = -1;
	int64		result;

	qsort(lines, n, sizeof(OrderLine), line_cmp_sku);
	for (int i = 0; i < n; i++)
		skus[i] = CStringGetTextDatum(lines[i].sku);
	arr = PointerGetDatum(construct_array(skus, n, TEXTOID, -1, false, TYPALIGN_INT));
	(void) os_execute(&p, &arr, NULL, true, 0);

	for (int i = 0; i < n; i++)
	{
		bool		isnull;
		Datum		buckets = os_getdatum(i, 2, &isnull);
		Datum		threshold;

		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_OS_INVALID_INPUT),
					 errmsg("unknown SKU \"%s\"", lines[i].sku),
					 errdetail("Order line %d names SKU \"%s\", which ordersync.sku does not have.",
							   lines[i].line_no, lines[i].sku),
					 errhint("Check the SKU; SKUs are created by ordersync.receive_stock().")));
		if (k < 0 || strcmp(needs[k].sku, lines[i].sku) != 0)
		{
			k++;
			needs[k].sku = lines[i].sku;
			needs[k].buckets = DatumGetInt32(buckets);
			threshold = os_getdatum(i, 3, &isnull);
			needs[k].has_threshold = !isnull;
			needs[k].threshold = isnull ? 0 : DatumGetInt64(threshold);
			needs[k].first_line = i;
		}
		needs[k].end_line = i + 1;
		if (pg_add_s64_overflow(needs[k].requested, lines[i].qty, &result))
			ereport(ERROR,
					(errcode(ERRCODE_OS_INVALID_INPUT),
					 errmsg("quantity of SKU \"%s\" is too large", lines[i].sku),
					 errdetail("The lines of SKU \"%s\" add up to more than " INT64_FORMAT
							   " units: " INT64_FORMAT " + " INT64_FORMAT " (line %d).",
							   lines[i].sku, PG_INT64_MAX, needs[k].requested,
							   lines[i].qty, lines[i].line_no),
					 errhint("Order a realistic quantity, with one line per SKU.")));
		needs[k].requested = result;
	}
	*nneeds = k + 1;
	return needs;
}

/*
 * Free units summed over rows, to compare with what an order needs: a sum
 * past the largest bigint covers any need, so it stops there.
 */
static int64
add_saturating(int64 a, int64 b)
{
	int64		sum;

	return pg_add_s64_overflow(a, b, &sum) ? PG_INT64_MAX : sum;
}

static void
add_row(Need *need, HeapTuple tup, TupleDesc desc)
{
	Row		   *r;
	bool		isnull;

	if (need->nrows == need->rowcap)
	{
		need->rowcap = need->rowcap ? need->rowcap * 2 : 8;
		need->rows = need->rows ? repalloc(need->rows, sizeof(Row) * need->rowcap)
			: palloc(sizeof(Row) * need->rowcap);
	}
	r = &need->rows[need->nrows++];
	r->location = SPI_getvalue(tup, desc, 1);
	r->bucket = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
	r->priority = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
	r->free = Max(DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull)), 0);
}

/* waiting: every row of the SKU, in the global lock order */
static void
lock_all(Need *need)
{
	static OsPlan p = {
		"SELECT s.location, s.bucket, l.priority, s.on_hand - s.reserved - s.safety, s.xmin"
		" FROM ordersync.stock s JOIN ordersync.location l ON l.id = s.location"
		" WHERE s.sku = $1 ORDER BY s.location COLLATE \"C\", s.bucket FOR UPDATE OF s",
		1, {TEXTOID}
	};
	Datum		v = CStringGetTextDatum(need->sku);
	Snapshot	call = GetActiveSnapshot();

	/*
	 * A plain SKU's queue is what auto-hot looks for.  A hot SKU's buyers
	 * come here only when its units may be gone (or to find new buckets):
	 * more buckets would not help them.
	 */
	TimestampTz started = need->buckets == 1 ? os_autohot_clock(need->sku) : 0;
	int			n = os_execute(&p, &v, NULL, false, 0);

	os_autohot_waited(need->sku, started);
	need->nrows = 0;
	need->changed = false;
	for (int i = 0; i < n; i++)
	{
		bool		isnull;
		TransactionId xmin = DatumGetTransactionId(os_getdatum(i, 5, &isnull));

		add_row(need, SPI_tuptable->vals[i], SPI_tuptable->tupdesc);

		/*
		 * A row version the call's snapshot does not see was written while
		 * we waited for it: by another buyer, or by a re-bucketing that
		 * made the SKU hot, whose new buckets this statement cannot see.
		 * apply() then looks whether the location is one row still.
		 */
		if (TransactionIdIsNormal(xmin) && !TransactionIdIsCurrentTransactionId(xmin) &&
			XidInMVCCSnapshot(xmin, call))
			need->changed = true;
	}
	need->all_rows = true;
}

/*
 * skipping, one location and one range of buckets: rows with free units in
 * bucket order, locked as the cursor reaches them (rows other buyers hold
 * are skipped), until the need is covered.  An index range scan stops at
 * the first rows that do: a buyer reads a few buckets, not all of them.
 */
static bool
lock_range(Need *need, const char *location, int priority, int from, int to,
		   bool allow_split, int64 *total, int64 *at_location)
{
	static OsPlan p = {
		"SELECT s.location, s.bucket, $3, s.on_hand - s.reserved - s.safety"
		" FROM ordersync.stock s"
		" WHERE s.sku = $1 AND s.location = $2 AND s.bucket >= $4 AND s.bucket < $5"
		" AND s.on_hand - s.reserved - s.safety > 0"
		" ORDER BY s.bucket FOR UPDATE OF s SKIP LOCKED",
		5, {TEXTOID, TEXTOID, INT4OID, INT4OID, INT4OID}
	};
	Datum		values[5];
	Portal		portal;
	bool		covered = false;

	/* make the plan, then run it as a cursor */
	os_prepare(&p);
	values[0] = CStringGetTextDatum(need->sku);
	values[1] = CStringGetTextDatum(location);
	values[2] = Int32GetDatum(priority);
	values[3] = Int32GetDatum(from);
	values[4] = Int32GetDatum(to);
	portal = SPI_cursor_open(NULL, p.plan, values, NULL, false);
	while (!covered)
	{
		SPI_cursor_fetch(portal, true, 1);
		if (SPI_processed == 0)
			break;
		add_row(need, SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
		*total = add_saturating(*total, need->rows[need->nrows - 1].free);
		*at_location = add_saturating(*at_location, need->rows[need->nrows - 1].free);
		covered = (allow_split ? *total : *at_location) >= need->requested;
	}
	SPI_cursor_close(portal);
	return covered;
}

/* this backend's lease row of a hot SKU at each location */
static int
lease_bucket(void)
{
	return LEASE_BASE + MyProc->pgprocno;
}

/*
 * leasing, one location: this backend's lease, locked unless another
 * transaction holds it, if it has what the order still needs (or anything,
 * when the order may be split).
 */
static void
lock_lease(Need *need, const char *location, int priority, bool allow_split,
		   int64 *total, int64 *at_location)
{
	static OsPlan p = {
		"SELECT s.location, s.bucket, $3, s.on_hand - s.reserved - s.safety"
		" FROM ordersync.stock s"
		" WHERE s.sku = $1 AND s.location = $2 AND s.bucket = $4"
		" AND s.on_hand - s.reserved - s.safety >= $5"
		" FOR UPDATE OF s SKIP LOCKED",
		5, {TEXTOID, TEXTOID, INT4OID, INT4OID, INT8OID}
	};
	Datum		values[5];

	values[0] = CStringGetTextDatum(need->sku);
	values[1] = CStringGetTextDatum(location);
	values[2] = Int32GetDatum(priority);
	values[3] = Int32GetDatum(lease_bucket());
	values[4] = Int64GetDatum(allow_split ? 1 : need->requested);
	if (os_execute(&p, values, NULL, false, 1) == 1)
	{
		add_row(need, SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
		*total = add_saturating(*total, need->rows[need->nrows - 1].free);
		*at_location = add_saturating(*at_location, need->rows[need->nrows - 1].free);
	}
}

/*
 * skipping: rows with free units, best location first, from this backend's
 * start bucket on and then the buckets before it, until they cover the need
 * (at one location unless the order may be split).  Returns whether they do.
 */
static bool
lock_some(Need *need, bool allow_split)
{
	static OsPlan locations = {
		"SELECT id, priority FROM ordersync.location ORDER BY priority DESC, id COLLATE \"C\"",
		0, {InvalidOid}
	};
	int			start = MyProcPid % need->buckets;
	int			n = os_execute(&locations, NULL, NULL, true, 0);
	char	  **ids = palloc(sizeof(char *) * Max(n, 1));
	int		   *prio = palloc(sizeof(int) * Max(n, 1));
	int64		total = 0;
	bool		covered = false;

	/* the next queries reuse SPI_tuptable */
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		ids[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		prio[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	need->nrows = 0;
	for (int i = 0; i < n; i++)
	{
		int64		at_location = 0;

		if (ordersync_hot_lease > 0)
		{
			lock_lease(need, ids[i], prio[i], allow_split, &total, &at_location);
			covered = (allow_split ? total : at_location) >= need->requested;
			if (covered)
				break;
		}
		covered = lock_range(need, ids[i], prio[i], start, LEASE_BASE, allow_split, &total, &at_location) ||
			lock_range(need, ids[i], prio[i], 0, start, allow_split, &total, &at_location);
		if (covered)
			break;
	}
	need->all_rows = false;

	/*
	 * Another buyer had our start bucket (or it is empty), or we bought
	 * from our lease, which only a storm makes: the SKU is still busy.
	 */
	if (need->nrows == 0 || need->rows[0].bucket != start)
		os_autohot_busy(need->sku);
	return covered;
}

/* (location, bucket) order of the rows of one SKU, as the locks are taken */
static int
key_cmp(const char *loc_a, int bucket_a, const char *loc_b, int bucket_b)
{
	int			c = strcmp(loc_a, loc_b);

	if (c != 0)
		return c;
	return bucket_a < bucket_b ? -1 : bucket_a > bucket_b ? 1 : 0;
}

/*
 * How many of the SKU's committed free units we could possibly get, with
 * the rows we hold: over every location when the order may be split, else
 * at its best location.  Rows other buyers hold count with their committed
 * units, which they may be taking right now: an upper bound.
 */
static int64
visible_units(int ncand, char **loc, int64 *free, bool allow_split)
{
	int64		best = 0;
	int64		sum = 0;

	for (int i = 0; i < ncand; i++)
	{
		if (!allow_split && i > 0 && strcmp(loc[i], loc[i - 1]) != 0)
			sum = 0;
		sum = add_saturating(sum, Max(free[i], 0));
		best = Max(best, sum);
	}
	return best;
}

/*
 * waiting for one: waits for one bucket with free units that comes after
 * *held_loc / *held_bucket (the greatest key of the SKU we hold or have
 * waited for, raised here to any row we hold that the caller did not see:
 * see the header comment for why that order matters), chosen by
 * this backend's start so that waiters spread.  Returns false, without
 * waiting, when the committed free units might not cover the need or no
 * such bucket exists: then only the exact view can tell.  On return the
 * bucket is locked; need->rows holds it alone if it covers the need.
 */
static bool
wait_for_one(Need *need, bool allow_split, char **held_loc, int *held_bucket,
			 bool *covered)
{
	static OsPlan scan = {
		"SELECT location, bucket, on_hand - reserved - safety, xmax FROM ordersync.stock"
		" WHERE sku = $1 ORDER BY location COLLATE \"C\", bucket",
		1, {TEXTOID}
	};
	static OsPlan lock = {
		"SELECT s.location, s.bucket, l.priority, s.on_hand - s.reserved - s.safety"
		" FROM ordersync.stock s JOIN ordersync.location l ON l.id = s.location"
		" WHERE s.sku = $1 AND s.location = $2 AND s.bucket = $3 FOR UPDATE OF s",
		3, {TEXTOID, TEXTOID, INT4OID}
	};
	Datum		v = CStringGetTextDatum(need->sku);
	int			n = os_execute(&scan, &v, NULL, false, 0);
	char	  **loc = palloc(sizeof(char *) * Max(n, 1));
	int		   *bucket = palloc(sizeof(int) * Max(n, 1));
	int64	   *free = palloc(sizeof(int64) * Max(n, 1));
	int		   *cand = palloc(sizeof(int) * Max(n, 1));
	int			nbuckets = 0;
	int			ncand = 0;
	int			pick;
	Datum		values[3];
	TimestampTz started;

	/*
	 * The rows we hold are more than the skipping queries returned: a row
	 * another buyer emptied and committed after such a query's snapshot is
	 * locked (its latest version) before the query sees it no longer has
	 * units and leaves it out, and so is our own lease when an exact-view
	 * buyer emptied it.  Such a row stays locked, unseen, to the end of the
	 * attempt; waiting for a bucket below it could close a cycle with an
	 * exact-view buyer that holds that bucket and waits for the row (64
	 * buyers on 16 buckets: one deadlock in 15 storms).  A row we lock
	 * carries our (sub)transaction id as xmax, and this statement, at READ
	 * COMMITTED, sees the version we locked: count every such row as held.
	 * (At REPEATABLE READ a row changed since the snapshot cannot be locked
	 * at all.)
	 */
	for (int i = 0; i < n; i++)
	{
		bool		isnull;
		char	   *l = os_gettext(i, 1);
		int			b = DatumGetInt32(os_getdatum(i, 2, &isnull));
		TransactionId xmax = DatumGetTransactionId(os_getdatum(i, 4, &isnull));

		if (TransactionIdIsNormal(xmax) && TransactionIdIsCurrentTransactionId(xmax) &&
			key_cmp(l, b, *held_loc, *held_bucket) > 0)
		{
			*held_loc = l;
			*held_bucket = b;
		}
		if (b >= LEASE_BASE)
			continue;			/* a lease: nobody waits for one */
		loc[nbuckets] = l;
		bucket[nbuckets] = b;
		free[nbuckets] = os_getint64(i, 3);
		nbuckets++;
	}
	for (int i = 0; i < nbuckets; i++)
		if (free[i] > 0 &&
			key_cmp(loc[i], bucket[i], *held_loc, *held_bucket) > 0)
			cand[ncand++] = i;
	if (ncand == 0 || visible_units(nbuckets, loc, free, allow_split) < need->requested)
		return false;

	pick = cand[MyProcPid % ncand];
	values[0] = v;
	values[1] = CStringGetTextDatum(loc[pick]);
	values[2] = Int32GetDatum(bucket[pick]);
	started = os_autohot_clock(need->sku);
	n = os_execute(&lock, values, NULL, false, 0);
	os_autohot_waited(need->sku, started);

	/* held from now on, even if it was emptied or dropped meanwhile */
	*held_loc = loc[pick];
	*held_bucket = bucket[pick];

	need->nrows = 0;
	*covered = false;
	if (n == 1)
	{
		add_row(need, SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
		*covered = need->rows[0].free >= need->requested;
	}
	return true;
}

/*
 * Skipping is not quite wait-free in PostgreSQL: when the version a
 * SKIP LOCKED scan read was updated by a transaction that has committed
 * since, the lock follows the update chain, and a newer version another
 * transaction holds is waited for (heap_lock_updated_tuple), SKIP LOCKED
 * or not.  A skipping buyer may then wait for a bucket below rows it holds
 * (its range wraps around to bucket 0, and locations go by priority), and
 * close a cycle with an exact-view buyer.  So skipping runs with a lock
 * timeout of SKIP_WAIT_MAX: a wait there means the bucket is busy, and the
 * optimistic attempt gives way to the exact view (in_subtransaction()).
 */
#define SKIP_WAIT_MAX "10ms"

static bool skipping_now = false;

static bool
lock_some_bounded(Need *need, bool allow_split)
{
	int			nest = NewGUCNestLevel();
	bool		covered;

	(void) set_config_option("lock_timeout", SKIP_WAIT_MAX, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	skipping_now = true;
	covered = lock_some(need, allow_split);
	skipping_now = false;
	AtEOXact_GUC(true, nest);
	return covered;
}

/*
 * A hot SKU's rows for the optimistic pass: skipping, then waiting for one
 * bucket at a time while the committed units might still cover the need.
 * Returns whether the rows locked cover it; false sends the order to the
 * exact view.
 */
#define MAX_SINGLE_WAITS 4

static bool
lock_hot(Need *need, bool allow_split)
{
	char	   *held_loc = "";
	int			held_bucket = -1;

	for (int waits = 0;; waits++)
	{
		bool		covered = false;

		if (lock_some_bounded(need, allow_split))
			return true;
		for (int r = 0; r < need->nrows; r++)
			if (key_cmp(need->rows[r].location, need->rows[r].bucket,
						held_loc, held_bucket) > 0)
			{
				held_loc = need->rows[r].location;
				held_bucket = need->rows[r].bucket;
			}
		if (waits == MAX_SINGLE_WAITS ||
			!wait_for_one(need, allow_split, &held_loc, &held_bucket, &covered))
			return false;
		if (covered)
			return true;
	}
}

/* allocation preference: priority, location, then the rows' own order */
static int
row_cmp(const void *a, const void *b)
{
	const Row  *ra = (const Row *) a;
	const Row  *rb = (const Row *) b;

	if (ra->priority != rb->priority)
		return ra->priority > rb->priority ? -1 : 1;
	return strcmp(ra->location, rb->location);
}

static void
add_take(Need *need, int line, int row, int64 qty)
{
	need->takes[need->ntakes].line = line;
	need->takes[need->ntakes].row = row;
	need->takes[need->ntakes].qty = qty;
	need->ntakes++;
}

/* takes the need's lines from its rows, at one location or any */
static bool
take_lines(Need *need, OrderLine *lines, const char *location)
{
	int64	   *left = palloc(sizeof(int64) * need->nrows);
	int64		have = 0;

	for (int r = 0; r < need->nrows; r++)
	{
		left[r] = (location == NULL || strcmp(need->rows[r].location, location) == 0)
			? need->rows[r].free : 0;
		have = add_saturating(have, left[r]);
	}
	need->ntakes = 0;
	if (have < need->requested)
		return false;
	/* a line takes from each row at most once */
	need->takes = palloc(sizeof(Take) * need->nrows * (need->end_line - need->first_line));

	for (int i = need->first_line; i < need->end_line; i++)
	{
		int64		want = lines[i].qty;

		for (int r = 0; r < need->nrows && want > 0; r++)
		{
			int64		q = Min(want, left[r]);

			if (q == 0)
				continue;
			add_take(need, i, r, q);
			left[r] -= q;
			want -= q;
		}
	}
	return true;
}

/*
 * Chooses where every line comes from, with the rows locked so far.
 * Without allow_split: the first location, by priority then name, that has
 * every SKU of the order in full.
 */
static bool
allocate(Need *needs, int nneeds, OrderLine *lines, bool allow_split)
{
	for (int k = 0; k < nneeds; k++)
		qsort(needs[k].rows, needs[k].nrows, sizeof(Row), row_cmp);

	if (allow_split)
	{
		for (int k = 0; k < nneeds; k++)
			if (!take_lines(&needs[k], lines, NULL))
				return false;
		return true;
	}

	/* candidates in preference order: the rows of all needs, sorted */
	{
		int			ncand = 0;
		Row		   *cand;

		for (int k = 0; k < nneeds; k++)
			ncand += needs[k].nrows;
		cand = palloc(sizeof(Row) * Max(ncand, 1));
		ncand = 0;
		for (int k = 0; k < nneeds; k++)
			for (int r = 0; r < needs[k].nrows; r++)
				cand[ncand++] = needs[k].rows[r];
		qsort(cand, ncand, sizeof(Row), row_cmp);

		for (int c = 0; c < ncand; c++)
		{
			bool		all = true;

			if (c > 0 && strcmp(cand[c].location, cand[c - 1].location) == 0)
				continue;
			for (int k = 0; k < nneeds && all; k++)
				all = take_lines(&needs[k], lines, cand[c].location);
			if (all)
				return true;
		}
	}
	return false;
}

/* the exact refusal, from the rows of every SKU */
static void
pg_attribute_noreturn()
refuse(Need *needs, int nneeds)
{
	StringInfoData wanted;

	for (int k = 0; k < nneeds; k++)
	{
		int64		available = 0;

		for (int r = 0; r < needs[k].nrows; r++)
			available = add_saturating(available, needs[k].rows[r].free);
		os_refusal_count(needs[k].sku, needs[k].requested, available);
		if (available < needs[k].requested)
			ereport(ERROR,
					(errcode(ERRCODE_OS_INSUFFICIENT_STOCK),
					 errmsg("insufficient stock for SKU \"%s\"", needs[k].sku),
					 errdetail("SKU \"%s\": requested " INT64_FORMAT ", available " INT64_FORMAT ".",
							   needs[k].sku, needs[k].requested, available),
					 available > 0 ?
					 errhint("Reduce the quantity of \"%s\" to at most " INT64_FORMAT ", or receive more stock.",
							 needs[k].sku, available) :
					 errhint("\"%s\" is sold out: receive more stock, or remove it from the order.",
							 needs[k].sku)));
	}

	initStringInfo(&wanted);
	for (int k = 0; k < nneeds; k++)
		appendStringInfo(&wanted, "%s%s x " INT64_FORMAT, k ? ", " : "",
						 needs[k].sku, needs[k].requested);
	ereport(ERROR,
			(errcode(ERRCODE_OS_INSUFFICIENT_STOCK),
			 errmsg("no single location has the whole order"),
			 errdetail("The order needs %s; the locations have enough together but none alone.",
					   wanted.data),
			 errhint("Pass allow_split => true to ship from several locations, or receive more stock.")));
}

/*
 * leasing: after an order took units from the buckets, up to
 * ordersync.hot_lease more (at most half of what the bucket it took from
 * keeps free) go into this backend's lease at that location, so that its
 * next orders need no bucket.  Returns the row they come from, or -1, and
 * sets *extra; the caller moves them, in the same update as the row's
 * reservation.  (An update of a row its own transaction already changed
 * re-runs the foreign key checks, which share-lock the SKU row; set_hot()
 * holds that row while it waits for the stock rows we hold.  So every
 * stock row is updated once, and the SKU and location rows are
 * share-locked first, skipping the refill if they cannot be.)
 *
 * Never waits: a lease another transaction holds is left as it is.  A new
 * lease row is made here with its units; *update_lease tells whether an
 * existing one needs them added.
 */
static int
plan_lease(Need *need, const int64 *row_qty, int64 *extra, bool *update_lease)
{
	static OsPlan keys = {
		"SELECT 1 FROM ordersync.sku k, ordersync.location l WHERE k.sku = $1 AND l.id = $2"
		" FOR KEY SHARE SKIP LOCKED",
		2, {TEXTOID, TEXTOID}
	};
	static OsPlan lock = {
		"SELECT 1 FROM ordersync.stock WHERE sku = $1 AND location = $2 AND bucket = $3"
		" FOR UPDATE SKIP LOCKED",
		3, {TEXTOID, TEXTOID, INT4OID}
	};
	static OsPlan exists = {
		"SELECT 1 FROM ordersync.stock WHERE sku = $1 AND location = $2 AND bucket = $3",
		3, {TEXTOID, TEXTOID, INT4OID}
	};
	static OsPlan make = {
		"INSERT INTO ordersync.stock (sku, location, bucket, on_hand) VALUES ($1, $2, $3, $4)"
		" ON CONFLICT DO NOTHING",
		4, {TEXTOID, TEXTOID, INT4OID, INT8OID}
	};
	int			from = -1;
	int64		spare = 0;
	Datum		values[4];

	for (int r = 0; r < need->nrows; r++)
	{
		if (row_qty[r] == 0)
			continue;
		if (need->rows[r].bucket >= LEASE_BASE)
			return -1;			/* the lease had units: no refill yet */
		if (need->rows[r].free - row_qty[r] > spare)
		{
			from = r;
			spare = need->rows[r].free - row_qty[r];
		}
	}
	*extra = Min((int64) ordersync_hot_lease, spare / 2);
	if (from < 0 || *extra <= 0)
		return -1;

	values[0] = CStringGetTextDatum(need->sku);
	values[1] = CStringGetTextDatum(need->rows[from].location);
	values[2] = Int32GetDatum(lease_bucket());
	values[3] = Int64GetDatum(*extra);
	if (os_execute(&keys, values, NULL, false, 1) == 0)
		return -1;
	*update_lease = os_execute(&lock, values, NULL, false, 1) == 1;
	if (!*update_lease &&
		(os_execute(&exists, values, NULL, false, 1) == 1 ||
		 os_execute(&make, values, NULL, false, 0) == 0))
		return -1;
	return from;
}

/*
 * Whether a SKU we found as one row at a location has more rows there now:
 * split into buckets while we waited for the row, when the row's figures
 * are one bucket's, not the location's.
 */
static bool
rebucketed(const char *sku, const char *location)
{
	static OsPlan p = {
		"SELECT 1 FROM ordersync.stock WHERE sku = $1 AND location = $2 AND bucket <> 0 LIMIT 1",
		2, {TEXTOID, TEXTOID}
	};
	Datum		values[2];

	values[0] = CStringGetTextDatum(sku);
	values[1] = CStringGetTextDatum(location);
	return os_execute(&p, values, NULL, false, 1) == 1;
}

/* writes the reservations, moves the stock and records it all */
static void
apply(int64 order_id, Need *need, OrderLine *lines)
{
	static OsPlan ins = {
		"INSERT INTO ordersync.reservation (order_id, line_no, sku, location, bucket, qty)"
		" VALUES ($1, $2, $3, $4, $5, $6)",
		6, {INT8OID, INT4OID, TEXTOID, TEXTOID, INT4OID, INT8OID}
	};
	int64	   *row_qty = palloc0(sizeof(int64) * Max(need->nrows, 1));
	int64		after;
	StockFigures fig;
	int			lease_from = -1;
	int64		lease_extra = 0;
	bool		update_lease = false;

	for (int t = 0; t < need->ntakes; t++)
	{
		Take	   *tk = &need->takes[t];
		Row		   *row = &need->rows[tk->row];
		Datum		values[6];

		values[0] = Int64GetDatum(order_id);
		values[1] = Int32GetDatum(lines[tk->line].line_no);
		values[2] = CStringGetTextDatum(need->sku);
		values[3] = CStringGetTextDatum(row->location);
		values[4] = Int32GetDatum(row->bucket);
		values[5] = Int64GetDatum(tk->qty);
		(void) os_execute(&ins, values, NULL, false, 0);
		row_qty[tk->row] += tk->qty;
	}

	if (!need->all_rows && need->buckets > 1 && ordersync_hot_lease > 0)
		lease_from = plan_lease(need, row_qty, &lease_extra, &update_lease);

	/* rows are sorted by location: one record per location */
	for (int r = 0; r < need->nrows;)
	{
		int64		qty = 0;
		int			end = r;

		while (end < need->nrows &&
			   strcmp(need->rows[end].location, need->rows[r].location) == 0)
		{
			if (row_qty[end] > 0)
				os_stock_update(need->sku, need->rows[end].location,
								need->rows[end].bucket,
								end == lease_from ? -lease_extra : 0, row_qty[end], &fig);
			if (end == lease_from && update_lease)
				os_stock_update(need->sku, need->rows[end].location, lease_bucket(),
								lease_extra, 0, &fig);
			/* at most what the location has free: fits, unless stored too large */
			if (pg_add_s64_overflow(qty, row_qty[end], &qty))
				os_stock_out_of_range(need->sku, need->rows[r].location,
									  "the units reserved at its buckets", NULL);
			end++;
		}
		if (qty > 0)
		{
			if (need->buckets > 1 ?
				!os_hot_figures_reserve(need->sku, need->rows[r].location, qty, &fig) :
				need->changed && rebucketed(need->sku, need->rows[r].location))
				os_location_figures(need->sku, need->rows[r].location, &fig);
			os_stock_record("reserve", "inventory.reserved", order_id, true,
							need->sku, need->rows[r].location, qty, &fig, NULL);
		}
		r = end;
	}


	/*
	 * Holding every row, we know the SKU's availability exactly: what the
	 * rows had free less what the order took.  Holding some buckets only,
	 * what they keep free is a lower bound: above the threshold (and zero)
	 * nothing can have been crossed, and only below it are the other
	 * buckets read, as committed.  The sum starts from minus the order, so
	 * it only overflows when more than the largest bigint is left (stock at
	 * several locations near the maximum), and then nothing was crossed
	 * either.
	 */
	after = -need->requested;
	for (int r = 0; r < need->nrows; r++)
		if (pg_add_s64_overflow(after, need->rows[r].free, &after))
			return;
	if (!need->all_rows)
	{
		if (after > 0 && !(need->has_threshold && after <= need->threshold))
			return;
		if (!os_sku_available(need->sku, &after))
			return;
	}
	os_stock_thresholds(need->sku, after, need->requested, need->threshold,
						need->has_threshold);
}

/* one try at reserving an order's lines, run in a subtransaction */
typedef struct Attempt
{
	int64		order_id;
	Need	   *needs;
	int			nneeds;
	OrderLine  *lines;
	bool		allow_split;
	bool		last;			/* exact: refuse even if rows appeared */
} Attempt;

/*
 * Runs an attempt in a subtransaction that is rolled back (releasing every
 * row it locked) when the attempt returns false.  A successful attempt
 * writes the reservations inside it too: rows locked by a subtransaction
 * and then updated by its parent would each need a MultiXact, which at
 * flash-sale rates costs more than the queue we avoid.  Errors roll the
 * subtransaction back and propagate.
 */
static bool
in_subtransaction(bool (*attempt) (Attempt *), Attempt *a)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	bool		ok = false;
	bool		busy = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		ok = attempt(a);
	}
	PG_CATCH();
	{
		busy = skipping_now && geterrcode() == ERRCODE_LOCK_NOT_AVAILABLE;
		skipping_now = false;
		MemoryContextSwitchTo(oldcxt);
		if (busy)
			FlushErrorState();	/* a bucket was busy: not an error */
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		if (!busy)
			PG_RE_THROW();
	}
	PG_END_TRY();

	/* the attempt gave way to the next one; its subtransaction is gone */
	if (busy)
		return false;
	if (ok)
		ReleaseCurrentSubTransaction();
	else
		RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
	return ok;
}

/* the optimistic pass for orders with a hot SKU: leases, skipping, waiting for one */
static bool
attempt_optimistic(Attempt *a)
{
	bool		ok = true;

	for (int k = 0; k < a->nneeds && ok; k++)
	{
		if (a->needs[k].buckets > 1)
			ok = lock_hot(&a->needs[k], a->allow_split);
		else
			lock_all(&a->needs[k]);
	}
	ok = ok && allocate(a->needs, a->nneeds, a->lines, a->allow_split);
	if (ok)
		for (int k = 0; k < a->nneeds; k++)
			apply(a->order_id, &a->needs[k], a->lines);
	return ok;
}

/* the stock rows of the order's SKUs now, as committed */
static int64
rows_now(Need *needs, int nneeds)
{
	static OsPlan p = {
		"SELECT count(*) FROM ordersync.stock WHERE sku = ANY ($1)",
		1, {TEXTARRAYOID}
	};
	Datum	   *skus = palloc(sizeof(Datum) * nneeds);
	Datum		arr;

	for (int k = 0; k < nneeds; k++)
		skus[k] = CStringGetTextDatum(needs[k].sku);
	arr = PointerGetDatum(construct_array(skus, nneeds, TEXTOID, -1, false, TYPALIGN_INT));
	(void) os_execute(&p, &arr, NULL, true, 1);
	return os_getint64(0, 1);
}

/*
 * The exact view: every row of every SKU, in the global lock order.  Rows
 * made after the locking statement's snapshot (a lease, or buckets of a
 * re-bucketing) are not in it; locking them now would take a lock out of
 * order.  So when the order cannot be served and the SKUs have other rows
 * now, the attempt is rolled back and made again.  Holding every bucket,
 * no new lease can appear meanwhile (a lease is filled from a bucket the
 * buyer holds), so the count read after the locks tells.
 */
static bool
attempt_exact(Attempt *a)
{
	int64		seen = 0;

	for (int k = 0; k < a->nneeds; k++)
	{
		lock_all(&a->needs[k]);
		seen += a->needs[k].nrows;
	}
	if (!allocate(a->needs, a->nneeds, a->lines, a->allow_split))
	{
		if (!a->last && rows_now(a->needs, a->nneeds) != seen)
			return false;
		refuse(a->needs, a->nneeds);
	}
	for (int k = 0; k < a->nneeds; k++)
		apply(a->order_id, &a->needs[k], a->lines);
	return true;
}

#define MAX_EXACT_ATTEMPTS 5

/*
 * Writes the lines of a new order and reserves every one of them, or raises
 * OS001 (or OS004 for an unknown SKU) and reserves nothing.  Sorts lines by
 * SKU.  Caller is connected to SPI.
 */
void
os_reserve_lines(int64 order_id, OrderLine *lines, int n, bool allow_split)
{
	static OsPlan ins_line = {
		"INSERT INTO ordersync.order_line (order_id, line_no, sku, qty, price)"
		" VALUES ($1, $2, $3, $4, $5::numeric)",
		5, {INT8OID, INT4OID, TEXTOID, INT8OID, TEXTOID}
	};
	int			nneeds;
	Need	   *needs = build_needs(lines, n, &nneeds);
	bool		hot = false;
	bool		ok;
	int			seen = 0;
	Attempt		a;

	for (int i = 0; i < n; i++)
	{
		Datum		lv[5];

		lv[0] = Int64GetDatum(order_id);
		lv[1] = Int32GetDatum(lines[i].line_no);
		lv[2] = CStringGetTextDatum(lines[i].sku);
		lv[3] = Int64GetDatum(lines[i].qty);
		lv[4] = CStringGetTextDatum(lines[i].price);
		(void) os_execute(&ins_line, lv, NULL, false, 0);
	}

	for (int k = 0; k < nneeds; k++)
		hot |= needs[k].buckets > 1;
	a.order_id = order_id;
	a.needs = needs;
	a.nneeds = nneeds;
	a.lines = lines;
	a.allow_split = allow_split;
	a.last = false;
	if (hot)
	{
		if (in_subtransaction(attempt_optimistic, &a))
			return;
		for (int i = 1; !in_subtransaction(attempt_exact, &a); i++)
			a.last = i + 1 == MAX_EXACT_ATTEMPTS;
		return;
	}

	/*
	 * Plain SKUs only (no leases): no subtransaction.  Rows another
	 * transaction added while we waited (a SKU split into buckets) are not
	 * in the snapshot we locked with: look again with a new one before
	 * saying no.  That locks the new rows out of order, but only a
	 * re-bucketing makes them, and it holds every row it would wait for.
	 */
	for (int k = 0; k < nneeds; k++)
	{
		lock_all(&needs[k]);
		seen += needs[k].nrows;
	}
	ok = allocate(needs, nneeds, lines, allow_split);
	if (!ok)
	{
		int			now = 0;

		for (int k = 0; k < nneeds; k++)
		{
			lock_all(&needs[k]);
			now += needs[k].nrows;
		}
		if (now != seen)
			ok = allocate(needs, nneeds, lines, allow_split);
		if (!ok)
			refuse(needs, nneeds);
	}

	for (int k = 0; k < nneeds; k++)
		apply(order_id, &needs[k], lines);
}
