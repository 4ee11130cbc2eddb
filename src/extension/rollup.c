/*-------------------------------------------------------------------------
 *
 * rollup.c
 *	  Rollups of ordersync.history, kept incrementally and exactly, at no
 *	  cost to the order path.
 *
 *	  Two tables, defined by the views that recount them from scratch
 *	  (ordersync.rollup_hourly_recount, ordersync.rollup_daily_sku_recount;
 *	  the statement below applies the same expressions to new rows only):
 *
 *	  - rollup_hourly: per UTC hour of the order's "created" history row and
 *		channel, the orders placed, their units (the sum of their lines'
 *		quantities) and their revenue (orders.total), as placed: a later
 *		cancellation does not take them back (rollup_daily_sku shows what
 *		was released).
 *	  - rollup_daily_sku: per UTC day, SKU and location, the units reserved,
 *		released (cancelled or expired), shipped ("consume": they left the
 *		warehouse) and returned ("restock"), and units_sold = shipped -
 *		returned, by the day each movement happened.
 *
 *	  Since 0.5.0 the same statement keeps the analytics (doc/analytics.md):
 *	  a histogram of the time spent in each status per day, transition,
 *	  location and channel (rollup_status_time), the funnel per creation day
 *	  and channel (rollup_funnel), and stock levels and stock-out spans per
 *	  SKU and location (rollup_stock_level, rollup_stockout), each with a
 *	  *_recount view that defines it.
 *
 *	  They are written by ordersync.refresh_rollups() and, with ordersync
 *	  preloaded, by the background worker every ordersync.rollup_interval,
 *	  never by place_order() or a status change: one counter row per hour
 *	  and channel written by every buyer is the hot row a flash sale must
 *	  not have.
 *
 *	  Which rows a refresh counts.  History ids are taken at insert, but
 *	  transactions commit in another order, so "ids above the last one
 *	  seen" misses a row with a small id that commits after a refresh saw a
 *	  larger one.  Transaction ids do not bound it either: a row written in
 *	  a subtransaction carries the subtransaction's xid, which a stored
 *	  pg_snapshot cannot place, and a transaction may take its history id
 *	  before it has an xid at all.  So the state is kept in history ids
 *	  only, one row of ordersync.rollup_state:
 *
 *		H	high_id: every id up to H has been looked at;
 *		G	gaps: the ids up to H that were not visible when looked at
 *			(in flight, aborted, or skipped by the sequence);
 *		F,V	the fence: F, the last id the history sequence handed out,
 *			read first, then V, the virtual transaction ids of every other
 *			transaction in the database at that moment.
 *
 *	  The rows counted are those with an id in D = (0, H] \ G, and the
 *	  invariant is: the rollups are the sums over the rows with an id in D,
 *	  and each of them is committed (or is the refreshing transaction's own
 *	  and commits or aborts with the rollups).  One refresh step, in one
 *	  transaction that holds the state row's lock (refreshes serialize):
 *
 *		1. The fence has passed if every transaction of V has ended.
 *		2. One statement, hence one snapshot S taken after 1: R = the rows
 *		   visible to S with an id in G, plus the visible rows above H,
 *		   smallest ids first, up to a batch; H' = the largest id taken, so
 *		   every visible id in (H, H'] is in R.  R is added to the rollups,
 *		   and G' = (G u (H, H']) \ ids(R).
 *		3. If the fence has passed, the ids up to F leave G' and a new
 *		   fence is read; else the fence stays.
 *		4. H', G' and the fence are written with the rollups.
 *
 *	  No row is counted twice: the ids of R lie in G or above H, outside D,
 *	  and D' = (0, H'] \ G' = D u ids(R), so the invariant holds again.
 *	  No committed row is missed: a row committed before a step's S is
 *	  visible to it, so if its id is in G or above H then, R takes it (or,
 *	  above the batch, a later step does).  Its id leaves G unread only by
 *	  the trim in 3, for ids up to F.  The sequence hands ids out in order
 *	  (CACHE 1), so an id up to F was handed out before F was read, to a
 *	  transaction that had either ended by then or was still running when
 *	  V was read right after, and is in V; the fence passed, so it has
 *	  ended before S too.  Either way, if it committed, its row was visible
 *	  to S and R took it before the trim: what the trim drops will never
 *	  commit.  A crash loses at most the uncommitted step, whose rollups and
 *	  state go together: the worker resumes from the state last committed.
 *	  Hence after a refresh that started once the last writer committed,
 *	  the rollups are exactly the recount.
 *
 *	  Cost: an index range scan above H, one per range of G, and the rows
 *	  found.  G holds the ids of transactions in flight at the last refresh
 *	  and, until the next fence passes, those of aborted ones; a long
 *	  transaction in the database (even an idle one) only holds back that
 *	  trim.  At REPEATABLE READ or SERIALIZABLE the snapshot may predate
 *	  the fence check, so the trim waits for a refresh at READ COMMITTED.
 *	  With a cache of more than one id on the history sequence, ids are not
 *	  handed out in order: the refresh warns and never trims (still exact).
 *	  Every history row takes its id from that sequence (the identity
 *	  column is GENERATED ALWAYS), which never goes back; a row written
 *	  with an explicit id, or after the sequence was set back, which only
 *	  a superuser can do, may be missed.
 *
 *	  The state holds ids, not transaction ids, so it stays right in a
 *	  restored dump: the tables are dumped with the data, in one snapshot,
 *	  and a restore need not recount the whole history.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/array.h"
#include "utils/snapmgr.h"

#include "ordersync.h"
#include "rollup.h"

PG_FUNCTION_INFO_V1(ordersync_refresh_rollups);

/* history rows above high_id taken per statement */
#define ROLLUP_BATCH 50000

/*
 * Locks the state row, creating it on first use (it is not created by the
 * extension script: the table is dumped, and a restore must not meet a
 * row of its own).  Returns false when another refresh holds it and
 * skip_locked is set.
 */
static bool
lock_state(bool skip_locked)
{
	static OsPlan lock_wait = {
		"SELECT high_id, gaps, fence_id, fence_xacts FROM ordersync.rollup_state FOR UPDATE",
		0, {InvalidOid}
	};
	static OsPlan lock_skip = {
		"SELECT high_id, gaps, fence_id, fence_xacts FROM ordersync.rollup_state"
		" FOR UPDATE SKIP LOCKED",
		0, {InvalidOid}
	};
	static OsPlan create = {
		"INSERT INTO ordersync.rollup_state DEFAULT VALUES ON CONFLICT DO NOTHING"
		" RETURNING high_id, gaps, fence_id, fence_xacts",
		0, {InvalidOid}
	};

	if (os_execute(skip_locked ? &lock_skip : &lock_wait, NULL, NULL, false, 0) > 0)
		return true;
	if (os_execute(&create, NULL, NULL, false, 0) > 0)
		return true;
	/* it exists: either locked (skip) or created meanwhile (wait for it) */
	if (skip_locked)
		return false;
	return os_execute(&lock_wait, NULL, NULL, false, 0) > 0;
}

/* a virtual transaction id as one bigint, and back */
static int64
vxid_pack(VirtualTransactionId vxid)
{
	return (int64) (((uint64) (uint32) vxid.backendId << 32) |
					(uint64) vxid.localTransactionId);
}

static VirtualTransactionId
vxid_unpack(int64 v)
{
	VirtualTransactionId vxid;

	vxid.backendId = (BackendId) (int32) (uint32) ((uint64) v >> 32);
	vxid.localTransactionId = (LocalTransactionId) ((uint64) v & 0xFFFFFFFF);
	return vxid;
}

/* whether every transaction of the fence has ended */
static bool
fence_passed(Datum xacts)
{
	ArrayType  *arr = DatumGetArrayTypeP(xacts);
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	deconstruct_array(arr, INT8OID, sizeof(int64), FLOAT8PASSBYVAL,
					  TYPALIGN_DOUBLE, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		VirtualTransactionId vxid;

		if (nulls[i])
			continue;
		vxid = vxid_unpack(DatumGetInt64(elems[i]));
		if (VirtualTransactionIdIsValid(vxid) && !VirtualXactLock(vxid, false))
			return false;
	}
	return true;
}

/*
 * A new fence: the last id the history sequence handed out (before the
 * first, last_value is the next one), then every other transaction of
 * this database (but vacuum and autovacuum, which never write history).
 * Sets *fence_id to 0, a fence that trims nothing, when the sequence
 * caches ids, which it then hands out out of order.
 */
static void
read_fence(int64 *fence_id, Datum *xacts)
{
	static OsPlan seq = {
		"SELECT CASE WHEN s.is_called THEN s.last_value ELSE s.last_value - 1 END, q.seqcache"
		"  FROM ordersync.history_id_seq s, pg_catalog.pg_sequence q"
		" WHERE q.seqrelid = 'ordersync.history_id_seq'::pg_catalog.regclass",
		0, {InvalidOid}
	};
	static bool warned = false;
	VirtualTransactionId *vxids;
	Datum	   *elems;
	int			n;
	int64		cache;

	if (os_execute(&seq, NULL, NULL, false, 0) != 1)
		elog(ERROR, "ordersync: cannot read ordersync.history_id_seq");
	*fence_id = os_getint64(0, 1);
	cache = os_getint64(0, 2);
	if (cache != 1)
	{
		if (!warned)
			ereport(WARNING,
					(errmsg("rollups keep the ids of aborted history rows while ordersync.history_id_seq caches ids"),
					 errdetail("ordersync.history_id_seq has CACHE " INT64_FORMAT
							   ", so history ids are not handed out in order and the refresh cannot tell when an id will never commit.",
							   cache),
					 errhint("Run ALTER SEQUENCE ordersync.history_id_seq CACHE 1; the rollups stay exact either way.")));
		warned = true;
		*fence_id = 0;
	}

	vxids = GetCurrentVirtualXIDs(InvalidTransactionId, false, false,
								  PROC_IN_VACUUM | PROC_IS_AUTOVACUUM, &n);
	elems = palloc(sizeof(Datum) * Max(n, 1));
	for (int i = 0; i < n; i++)
		elems[i] = Int64GetDatum(vxid_pack(vxids[i]));
	*xacts = PointerGetDatum(construct_array(elems, n, INT8OID, sizeof(int64),
											 FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * Whether this database has the extension at 0.5.0 or later, whose
 * refresh also keeps the analytics rollups (the library may be newer than
 * the extension installed here).
 */
static bool
analytics_installed(void)
{
	static OsPlan p = {
		"SELECT pg_catalog.to_regclass('ordersync.rollup_stockout') IS NOT NULL",
		0, {InvalidOid}
	};

	(void) os_execute(&p, NULL, NULL, true, 1);
	return os_getbool(0, 1);
}

/*
 * The order of each new history row, looked up by its primary key (OFFSET 0
 * keeps the lateral subquery a parameterized index scan).  As a plain join,
 * the generic plan hashed every order of the shop for each batch: 1M
 * orders made a from-scratch refresh of 10M history rows take 30 minutes.
 */
#define ORDER_OF(n) \
		" CROSS JOIN LATERAL (SELECT o.id, o.channel, o.total, o.created_at" \
		"                       FROM ordersync.orders o WHERE o.id = " #n ".order_id OFFSET 0) o"

/* the new rows, and the 0.4.0 rollups of them ($1 high_id, $2 gaps, $3 the batch) */
#define ROLLUP_NEW_AND_COUNTS \
		"WITH above AS (" \
		"  SELECT h.id, h.at, h.action, h.order_id, h.sku, h.location, h.qty," \
		"         h.from_status, h.to_status" \
		"    FROM ordersync.history h WHERE h.id > $1 ORDER BY h.id LIMIT $3" \
		"), late AS (" \
		"  SELECT h.id, h.at, h.action, h.order_id, h.sku, h.location, h.qty," \
		"         h.from_status, h.to_status" \
		"    FROM pg_catalog.unnest($2) g(r)" \
		"    JOIN ordersync.history h" \
		"      ON h.id >= pg_catalog.lower(g.r) AND h.id < pg_catalog.upper(g.r)" \
		"), new AS (" \
		"  SELECT * FROM above UNION ALL SELECT * FROM late" \
		"), hourly AS (" \
		"  INSERT INTO ordersync.rollup_hourly AS t (hour, channel, orders, units, revenue)" \
		"  SELECT pg_catalog.date_trunc('hour', n.at, 'UTC'), o.channel," \
		"         pg_catalog.count(*), pg_catalog.sum(l.units), pg_catalog.sum(o.total)" \
		"    FROM new n" ORDER_OF(n) \
		"    CROSS JOIN LATERAL (SELECT coalesce(pg_catalog.sum(ol.qty), 0) AS units" \
		"                          FROM ordersync.order_line ol WHERE ol.order_id = o.id) l" \
		"   WHERE n.action = 'created'" \
		"   GROUP BY 1, 2" \
		"  ON CONFLICT (hour, channel) DO UPDATE" \
		"     SET orders = t.orders + excluded.orders, units = t.units + excluded.units," \
		"         revenue = t.revenue + excluded.revenue" \
		"  RETURNING 1" \
		"), daily AS (" \
		"  INSERT INTO ordersync.rollup_daily_sku AS t" \
		"         (day, sku, location, reserved, released, shipped, returned)" \
		"  SELECT (n.at AT TIME ZONE 'UTC')::pg_catalog.date, n.sku, n.location," \
		"         coalesce(pg_catalog.sum(n.qty) FILTER (WHERE n.action = 'reserve'), 0)," \
		"         coalesce(pg_catalog.sum(n.qty) FILTER (WHERE n.action = 'release'), 0)," \
		"         coalesce(pg_catalog.sum(n.qty) FILTER (WHERE n.action = 'consume'), 0)," \
		"         coalesce(pg_catalog.sum(n.qty) FILTER (WHERE n.action = 'restock'), 0)" \
		"    FROM new n" \
		"   WHERE n.action IN ('reserve', 'release', 'consume', 'restock')" \
		"   GROUP BY 1, 2, 3" \
		"  ON CONFLICT (day, sku, location) DO UPDATE" \
		"     SET reserved = t.reserved + excluded.reserved," \
		"         released = t.released + excluded.released," \
		"         shipped = t.shipped + excluded.shipped," \
		"         returned = t.returned + excluded.returned" \
		"  RETURNING 1"

/* since 0.5.0: time in status, the funnel, stock levels and stock-outs (doc/analytics.md) */
#define ROLLUP_ANALYTICS \
		"), st AS (" \
		"  SELECT n.at, n.from_status, n.to_status, o.channel, p.location, p.ms" \
		"    FROM new n" ORDER_OF(n) \
		"    CROSS JOIN LATERAL (" \
		"      SELECT pg_catalog.min(e.location) FILTER (WHERE e.action = 'reserve') AS location," \
		"             pg_catalog.round(extract(epoch FROM n.at - (pg_catalog.array_agg(e.at ORDER BY e.id DESC)" \
		"                  FILTER (WHERE e.action IN ('created', 'status')))[1]) * 1000)::bigint AS ms" \
		"        FROM ordersync.history e WHERE e.order_id = n.order_id AND e.id < n.id) p" \
		"   WHERE n.action = 'status'" \
		"), status_time AS (" \
		"  INSERT INTO ordersync.rollup_status_time AS t" \
		"         (day, from_status, to_status, location, channel, bin, transitions, total_ms)" \
		"  SELECT (s.at AT TIME ZONE 'UTC')::pg_catalog.date, s.from_status, s.to_status," \
		"         coalesce(s.location, ''), s.channel," \
		"         CASE WHEN s.ms < 1 THEN 0" \
		"              ELSE pg_catalog.floor(8 * pg_catalog.ln(s.ms::float8) / pg_catalog.ln(2::float8))::integer END," \
		"         pg_catalog.count(*), pg_catalog.sum(s.ms)" \
		"    FROM st s WHERE s.ms IS NOT NULL" \
		"   GROUP BY 1, 2, 3, 4, 5, 6" \
		"  ON CONFLICT (day, from_status, to_status, location, channel, bin) DO UPDATE" \
		"     SET transitions = t.transitions + excluded.transitions," \
		"         total_ms = t.total_ms + excluded.total_ms" \
		"  RETURNING 1" \
		"), funnel AS (" \
		"  INSERT INTO ordersync.rollup_funnel AS t" \
		"         (day, channel, created, paid, shipped, delivered, cancelled, expired)" \
		"  SELECT (o.created_at AT TIME ZONE 'UTC')::pg_catalog.date, o.channel," \
		"         pg_catalog.count(*) FILTER (WHERE n.action = 'created')," \
		"         pg_catalog.count(*) FILTER (WHERE n.action = 'status' AND n.to_status = 'paid')," \
		"         pg_catalog.count(*) FILTER (WHERE n.action = 'status' AND n.to_status = 'shipped')," \
		"         pg_catalog.count(*) FILTER (WHERE n.action = 'status' AND n.to_status = 'delivered')," \
		"         pg_catalog.count(*) FILTER (WHERE n.action = 'status' AND n.to_status = 'cancelled')," \
		"         pg_catalog.count(*) FILTER (WHERE n.action = 'status' AND n.to_status = 'expired')" \
		"    FROM new n" ORDER_OF(n) \
		"   WHERE n.action = 'created'" \
		"      OR (n.action = 'status' AND n.to_status IN ('paid', 'shipped', 'delivered', 'cancelled', 'expired'))" \
		"   GROUP BY 1, 2" \
		"  ON CONFLICT (day, channel) DO UPDATE" \
		"     SET created = t.created + excluded.created, paid = t.paid + excluded.paid," \
		"         shipped = t.shipped + excluded.shipped, delivered = t.delivered + excluded.delivered," \
		"         cancelled = t.cancelled + excluded.cancelled, expired = t.expired + excluded.expired" \
		"  RETURNING 1" \
		"), mv AS (" \
		"  SELECT n.id, n.at, n.action, n.sku, n.location, n.qty," \
		"         CASE WHEN n.action IN ('receive', 'release', 'restock') THEN n.qty" \
		"              WHEN n.action = 'reserve' THEN -n.qty ELSE 0 END AS d," \
		"         coalesce(l.unreserved, 0) AS u0, coalesce(l.safety, 0) AS s0" \
		"    FROM new n LEFT JOIN ordersync.rollup_stock_level l" \
		"      ON l.sku = n.sku AND l.location = n.location" \
		"   WHERE n.action IN ('receive', 'reserve', 'release', 'consume', 'restock', 'safety')" \
		"     AND n.sku IS NOT NULL AND n.location IS NOT NULL" \
		"), run AS (" \
		"  SELECT m.*, m.u0 + pg_catalog.sum(m.d) OVER w AS u," \
		"         pg_catalog.count(*) FILTER (WHERE m.action = 'safety') OVER w AS sg" \
		"    FROM mv m WINDOW w AS (PARTITION BY m.sku, m.location ORDER BY m.id)" \
		"), lvl AS (" \
		"  SELECT r.*, CASE WHEN r.sg = 0 THEN r.s0 ELSE pg_catalog.max(r.qty)" \
		"              FILTER (WHERE r.action = 'safety') OVER (PARTITION BY r.sku, r.location, r.sg) END AS s" \
		"    FROM run r" \
		"), flip AS (" \
		"  SELECT v.sku, v.location, v.id, v.at, v.u - v.s > 0 AS avail," \
		"         coalesce(pg_catalog.lag(v.u - v.s > 0) OVER w, v.u0 - v.s0 > 0) AS before" \
		"    FROM lvl v WINDOW w AS (PARTITION BY v.sku, v.location ORDER BY v.id)" \
		"), edge AS (" \
		"  SELECT f.sku, f.location, f.id, f.at, f.avail," \
		"         pg_catalog.lead(f.at) OVER w AS next_at, pg_catalog.row_number() OVER w AS k" \
		"    FROM flip f WHERE f.avail <> f.before" \
		"  WINDOW w AS (PARTITION BY f.sku, f.location ORDER BY f.id)" \
		"), outs AS (" \
		"  INSERT INTO ordersync.rollup_stockout (sku, location, started_id, started_at, ended_at)" \
		"  SELECT e.sku, e.location, e.id, e.at, e.next_at FROM edge e WHERE NOT e.avail" \
		"  RETURNING 1" \
		"), backs AS (" \
		"  UPDATE ordersync.rollup_stockout t SET ended_at = e.at FROM edge e" \
		"   WHERE e.avail AND e.k = 1 AND t.sku = e.sku AND t.location = e.location" \
		"     AND t.ended_at IS NULL" \
		"  RETURNING 1" \
		"), levels AS (" \
		"  INSERT INTO ordersync.rollup_stock_level AS t (sku, location, unreserved, safety)" \
		"  SELECT DISTINCT ON (v.sku, v.location) v.sku, v.location, v.u, v.s" \
		"    FROM lvl v ORDER BY v.sku, v.location, v.id DESC" \
		"  ON CONFLICT (sku, location) DO UPDATE" \
		"     SET unreserved = excluded.unreserved, safety = excluded.safety" \
		"  RETURNING 1"

/* rows added, rows above high_id, the new high_id and the new gaps */
#define ROLLUP_RESULT \
		" SELECT (SELECT pg_catalog.count(*) FROM new)," \
		"        (SELECT pg_catalog.count(*) FROM above)," \
		"        coalesce((SELECT pg_catalog.max(id) FROM above), $1)," \
		"        ($2 - coalesce((SELECT pg_catalog.range_agg(pg_catalog.int8range(id, id, '[]'))" \
		"                          FROM late), '{}'))" \
		"        + coalesce((SELECT pg_catalog.range_agg(s.r) FROM" \
		"                    (SELECT pg_catalog.int8range(coalesce(pg_catalog.lag(id) OVER (ORDER BY id), $1) + 1, id) AS r" \
		"                       FROM above) s WHERE NOT pg_catalog.isempty(s.r)), '{}')"

/*
 * One refresh step (see the top of the file) in the caller's transaction
 * and SPI connection.  Returns the number of history rows added, or -1
 * when skip_locked is set and another refresh holds the state; *more says
 * whether the batch was full.
 */
static int64
refresh_step(bool skip_locked, bool *more)
{
	/*
	 * $1 high_id, $2 gaps, $3 the batch.  One statement, so one snapshot
	 * for the rows taken, the rollups and the new gaps.
	 */
	static OsPlan add04 = {
		ROLLUP_NEW_AND_COUNTS ")" ROLLUP_RESULT,
		3, {INT8OID, INT8MULTIRANGEOID, INT8OID}
	};
	static OsPlan add05 = {
		ROLLUP_NEW_AND_COUNTS ROLLUP_ANALYTICS ")" ROLLUP_RESULT,
		3, {INT8OID, INT8MULTIRANGEOID, INT8OID}
	};
	static OsPlan save = {
		"UPDATE ordersync.rollup_state"
		"   SET high_id = $1,"
		"       gaps = $2 - pg_catalog.int8multirange(pg_catalog.int8range(NULL, $3, '(]')),"
		"       fence_id = $4, fence_xacts = $5,"
		"       rows_processed = rows_processed + $6, refreshed_at = pg_catalog.now()",
		6, {INT8OID, INT8MULTIRANGEOID, INT8OID, INT8OID, INT8ARRAYOID, INT8OID}
	};
	bool		isnull;
	int64		high;
	Datum		gaps;
	int64		fence_id;
	Datum		fence_xacts;
	bool		passed;
	Datum		args[6];
	int64		added;
	int64		above;

	if (!lock_state(skip_locked))
		return -1;
	high = os_getint64(0, 1);
	gaps = os_getdatum(0, 2, &isnull);
	fence_id = os_getint64(0, 3);
	fence_xacts = os_getdatum(0, 4, &isnull);

	/* before the statement below takes its snapshot */
	passed = !IsolationUsesXactSnapshot() && fence_passed(fence_xacts);

	args[0] = Int64GetDatum(high);
	args[1] = gaps;
	args[2] = Int64GetDatum(ROLLUP_BATCH);
	if (os_execute(analytics_installed() ? &add05 : &add04, args, NULL, false, 0) != 1)
		elog(ERROR, "ordersync: the rollup statement returned no row");
	added = os_getint64(0, 1);
	above = os_getint64(0, 2);
	args[0] = Int64GetDatum(os_getint64(0, 3));
	args[1] = os_getdatum(0, 4, &isnull);

	if (passed)
	{
		args[2] = Int64GetDatum(fence_id);
		read_fence(&fence_id, &fence_xacts);
	}
	else
		args[2] = Int64GetDatum(0);
	args[3] = Int64GetDatum(fence_id);
	args[4] = fence_xacts;
	args[5] = Int64GetDatum(added);
	(void) os_execute(&save, args, NULL, false, 0);

	*more = above == ROLLUP_BATCH;
	return added;
}

/*
 * refresh_rollups() -> history rows added to the rollups
 *
 * Waits for a refresh running elsewhere, then adds everything committed
 * since, in this transaction: all of the history the first time.
 */
Datum
ordersync_refresh_rollups(PG_FUNCTION_ARGS)
{
	int64		total = 0;
	bool		more = true;

	SPI_connect();
	while (more)
		total += refresh_step(false, &more);
	SPI_finish();

	PG_RETURN_INT64(total);
}

/* whether this database has ordersync at a version with rollups */
static bool
rollups_installed(void)
{
	if (SPI_execute("SELECT 1 WHERE pg_catalog.to_regclass('ordersync.rollup_state') IS NOT NULL",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "ordersync: cannot look up ordersync.rollup_state");
	return SPI_processed > 0;
}

static void
rollup_step(void *arg)
{
	bool	   *more = (bool *) arg;
	bool		full = false;

	if (!rollups_installed())
		return;
	/* our statements name their schemas; operators follow the path */
	(void) SPI_execute("SET LOCAL search_path = pg_catalog, pg_temp", false, 0);
	/* seconds of JIT compilation for a statement that runs in less */
	(void) SPI_execute("SET LOCAL jit = off", false, 0);
	if (refresh_step(true, &full) >= 0)
		*more = full;
}

/*
 * One step in a transaction of its own; false when there is nothing more
 * to do now: the batch was not full, another refresh holds the state, the
 * extension has no rollups here, or the step failed (logged; the next
 * tick tries again from the state last committed).
 */
static bool
tick_step(void)
{
	bool		more = false;

	return os_worker_step("ordersync: refreshing rollups", rollup_step, &more) && more;
}

/*
 * The worker's refresh, called outside a transaction: batch after batch,
 * each committed on its own, until it has caught up.
 */
void
os_rollup_tick(void)
{
	while (tick_step())
		CHECK_FOR_INTERRUPTS();
}
