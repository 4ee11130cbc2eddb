/*-------------------------------------------------------------------------
 *
 * history_chain.c
 *	  Tamper evidence for ordersync.history: every row carries the SHA-256
 *	  of its content and of the previous row of its chain (prev_id, hash),
 *	  set by a BEFORE INSERT trigger, and ordersync.verify_history()
 *	  recomputes them all and names the rows that do not fit.
 *
 *	  A chain is the rows of one order, or, for rows without an order, of
 *	  one SKU (receive, safety, set_hot), or the rows with neither.  There
 *	  is no global chain on purpose: a single chain head would be a row
 *	  every buyer of a flash sale waits for.  The rows of one order are
 *	  already written one transaction at a time (each holds the order's row
 *	  lock, or created the order), so the previous row found at insert time
 *	  is the last one committed.  The other chains are rare admin and
 *	  worker writes; each has a row in ordersync.history_chain_lock (its
 *	  SKU, or '' for the rows with neither) that its writers lock until
 *	  they commit.  A row lock, unlike the transaction advisory lock of
 *	  releases before 0.7.0, takes no room in the shared lock table, so one
 *	  transaction may receive any number of SKUs (with advisory locks, some
 *	  6,400 at default settings ended in "out of shared memory").
 *
 *	  Within one transaction the last row written is remembered, and an
 *	  order's "created" row starts its chain, so place_order(), which
 *	  writes several rows of a new order, never looks a chain up; a status
 *	  change reads its order's few rows once (history_order_idx).
 *
 *	  Rows written before 0.5.0 carry no hash; ordersync.history_seal says
 *	  from which id on every row must have one.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/cryptohash.h"
#include "common/hashfn.h"
#include "common/sha2.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "ordersync.h"

PG_FUNCTION_INFO_V1(ordersync_history_chain_trigger);
PG_FUNCTION_INFO_V1(ordersync_verify_history);

/* the columns the hash covers, in this order; everything but the hash */
static const char *const chain_columns[] = {
	"id", "at", "action", "order_id", "from_status", "to_status", "sku",
	"location", "qty", "actor", "role", "reason", "prev_id"
};
#define N_CHAIN_COLUMNS lengthof(chain_columns)
/* which of them are int8 or timestamptz (8 bytes); the others are text */
static const bool chain_column_is_int8[] = {
	true, true, false, true, false, false, false,
	false, true, false, false, false, true
};
StaticAssertDecl(lengthof(chain_column_is_int8) == lengthof(chain_columns),
				 "one type per chain column");

/* attribute numbers of chain_columns and of hash, per backend */
static struct
{
	Oid			relid;
	int			natts;
	int			attno[lengthof(chain_columns) + 1];
} chain_atts;

/* a chain: an order, a SKU's rows without order, or the rest */
typedef struct ChainKey
{
	bool		has_order;
	int64		order_id;
	char	   *sku;			/* NULL with has_order, or for the rest */
} ChainKey;

/* a chain remembered until the end of its transaction (seen_is/seen_set) */
typedef struct SeenChain
{
	LocalTransactionId lxid;
	bool		valid;
	bool		has_order;
	int64		order_id;
	bool		sku_null;
	char		sku[256];		/* SKUs are at most 100 characters */
} SeenChain;

/* the last row written in this transaction, and its chain */
static struct
{
	SeenChain	chain;
	int64		id;
	uint8		hash[PG_SHA256_DIGEST_LENGTH];
} last_row;

/*
 * The last non-order chain locked in this transaction: os_write_history
 * locks it before its INSERT and the trigger would lock it again.
 */
static SeenChain locked_chain;

static bool callback_registered = false;

static void lock_chain(const ChainKey *k);

/*
 * A subtransaction that rolled back may have taken the remembered row
 * along, and released the row locks it took.
 */
static void
chain_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		last_row.chain.valid = false;
		locked_chain.valid = false;
	}
}

static void
register_callback(void)
{
	if (!callback_registered)
	{
		RegisterSubXactCallback(chain_subxact_callback, NULL);
		callback_registered = true;
	}
}

static void
put_uint64(pg_cryptohash_ctx *ctx, uint64 v)
{
	uint8		b[8];
	int			i;

	for (i = 7; i >= 0; i--)
	{
		b[i] = (uint8) (v & 0xff);
		v >>= 8;
	}
	if (pg_cryptohash_update(ctx, b, 8) < 0)
		elog(ERROR, "ordersync: sha256 update failed");
}

static void
put_bytes(pg_cryptohash_ctx *ctx, const uint8 *p, size_t n)
{
	if (n > 0 && pg_cryptohash_update(ctx, p, n) < 0)
		elog(ERROR, "ordersync: sha256 update failed");
}

/*
 * SHA-256 of "ordersync.history v1", the previous row's hash (nothing at
 * the start of a chain) and every column of chain_columns: a marker byte
 * (0 NULL, 1 value), then integers and times as 8 bytes big-endian, text
 * as its length in 8 bytes and its bytes.  values/nulls are in
 * chain_columns order.
 */
static void
row_digest(const Datum *values, const bool *nulls, const uint8 *prev_hash,
		   uint8 *out)
{
	static const char domain[] = "ordersync.history v1";
	pg_cryptohash_ctx *ctx;
	int			i;

	ctx = pg_cryptohash_create(PG_SHA256);
	if (ctx == NULL || pg_cryptohash_init(ctx) < 0)
		elog(ERROR, "ordersync: cannot start sha256");
	put_bytes(ctx, (const uint8 *) domain, sizeof(domain) - 1);
	if (prev_hash)
		put_bytes(ctx, prev_hash, PG_SHA256_DIGEST_LENGTH);
	for (i = 0; i < N_CHAIN_COLUMNS; i++)
	{
		uint8		marker = nulls[i] ? 0 : 1;

		put_bytes(ctx, &marker, 1);
		if (nulls[i])
			continue;
		if (chain_column_is_int8[i])
			put_uint64(ctx, (uint64) DatumGetInt64(values[i]));
		else
		{
			text	   *t = DatumGetTextPP(values[i]);

			put_uint64(ctx, (uint64) VARSIZE_ANY_EXHDR(t));
			put_bytes(ctx, (const uint8 *) VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
		}
	}
	if (pg_cryptohash_final(ctx, out, PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "ordersync: cannot finish sha256");
	pg_cryptohash_free(ctx);
}

/* is k the chain s remembers, in this transaction? */
static bool
seen_is(const SeenChain *s, const ChainKey *k)
{
	if (!s->valid || s->lxid != MyProc->lxid || s->has_order != k->has_order)
		return false;
	if (k->has_order)
		return s->order_id == k->order_id;
	if (k->sku == NULL)
		return s->sku_null;
	return !s->sku_null && strcmp(s->sku, k->sku) == 0;
}

/* remember k in s for this transaction (not a SKU too long to keep) */
static void
seen_set(SeenChain *s, const ChainKey *k)
{
	register_callback();
	s->valid = false;
	if (k->sku != NULL && strlen(k->sku) >= sizeof(s->sku))
		return;					/* not remembered: looked up next time */
	s->lxid = MyProc->lxid;
	s->has_order = k->has_order;
	s->order_id = k->order_id;
	s->sku_null = (k->sku == NULL);
	if (k->sku)
		strlcpy(s->sku, k->sku, sizeof(s->sku));
	s->valid = true;
}

static void
remember(const ChainKey *k, int64 id, const uint8 *hash)
{
	seen_set(&last_row.chain, k);
	last_row.id = id;
	memcpy(last_row.hash, hash, PG_SHA256_DIGEST_LENGTH);
}

/*
 * The last sealed row of the chain: its id and hash.  Returns false at the
 * start of a chain.
 */
static bool
chain_head(const ChainKey *k, int64 *id, uint8 *hash)
{
	/*
	 * All rows of the order (a handful) through history_order_idx, the
	 * highest id picked here: no ORDER BY ... LIMIT 1 that the planner
	 * could answer by walking the primary key backwards.
	 */
	static OsPlan by_order = {
		"SELECT id, hash FROM ordersync.history"
		" WHERE order_id = $1 AND hash IS NOT NULL",
		1, {INT8OID}
	};
	static OsPlan by_sku = {
		"SELECT id, hash FROM ordersync.history"
		" WHERE order_id IS NULL AND sku = $1 AND hash IS NOT NULL ORDER BY sku DESC, id DESC LIMIT 1",
		1, {TEXTOID}
	};
	static OsPlan rest = {
		"SELECT id, hash FROM ordersync.history"
		" WHERE order_id IS NULL AND sku IS NULL AND hash IS NOT NULL ORDER BY sku DESC, id DESC LIMIT 1",
		0, {InvalidOid}
	};
	OsPlan	   *p;
	Datum		v = (Datum) 0;
	bool		isnull;
	bytea	   *b;
	int			n;
	int			rc;

	if (seen_is(&last_row.chain, k))
	{
		*id = last_row.id;
		memcpy(hash, last_row.hash, PG_SHA256_DIGEST_LENGTH);
		return true;
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ordersync: SPI_connect failed");
	p = k->has_order ? &by_order : k->sku ? &by_sku : &rest;
	if (k->has_order)
		v = Int64GetDatum(k->order_id);
	else if (k->sku)
		v = CStringGetTextDatum(k->sku);
	os_prepare(p);

	/*
	 * The latest committed head, whatever the isolation level: the lock we
	 * hold on the chain means its last writer has committed, but a
	 * REPEATABLE READ snapshot may predate it (a writer that only locked
	 * the order row does not make our update fail).
	 */
	rc = SPI_execute_snapshot(p->plan, &v, NULL, GetLatestSnapshot(),
							  InvalidSnapshot, false, false, k->has_order ? 0 : 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "ordersync: cannot read the head of a history chain: %s",
			 SPI_result_code_string(rc));
	n = (int) SPI_processed;
	if (n > 0)
	{
		int			head = 0;
		int			i;

		for (i = 1; i < n; i++)
			if (os_getint64(i, 1) > os_getint64(head, 1))
				head = i;
		*id = os_getint64(head, 1);
		b = DatumGetByteaPP(os_getdatum(head, 2, &isnull));
		if (VARSIZE_ANY_EXHDR(b) != PG_SHA256_DIGEST_LENGTH)
			ereport(ERROR,
					(errcode(ERRCODE_OS_HISTORY_CHAIN),
					 errmsg("history row " INT64_FORMAT " has a malformed hash", *id),
					 errdetail("Its hash is %zu bytes long; a SHA-256 is %d.",
							   (size_t) VARSIZE_ANY_EXHDR(b), PG_SHA256_DIGEST_LENGTH),
					 errhint("Run ordersync.verify_history() and restore the history from a backup.")));
		memcpy(hash, VARDATA_ANY(b), PG_SHA256_DIGEST_LENGTH);
	}
	SPI_finish();
	return n > 0;
}

/*
 * The non-order chains are written under a lock of their own.  Taken
 * before the row's id is drawn (os_write_history calls it before its
 * INSERT), so ids grow along each chain; the trigger takes it again for
 * rows inserted any other way (its row is ours already then: no wait).
 */
void
os_history_chain_lock(const char *sku)
{
	ChainKey	k = {false, 0, (char *) sku};

	lock_chain(&k);
}

/*
 * The advisory lock of releases before 0.7.0, for a database whose
 * extension has not been updated yet (its schema has no
 * ordersync.history_chain_lock while this library is already installed).
 */
static void
lock_chain_advisory(const ChainKey *k, bool hold)
{
	LOCKTAG		tag;
	uint32		h = k->sku ? DatumGetUInt32(hash_any((const unsigned char *) k->sku,
													  strlen(k->sku))) : 0;

	/* class "osch" */
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, 0x6f736368, h, 2);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
	if (!hold)
		(void) LockRelease(&tag, ExclusiveLock, false);
}

static void
lock_chain(const ChainKey *k)
{
	static OsPlan lock = {
		"SELECT 1 FROM ordersync.history_chain_lock WHERE chain = $1 FOR UPDATE",
		1, {TEXTOID}
	};
	static OsPlan add = {
		"INSERT INTO ordersync.history_chain_lock (chain) VALUES ($1) ON CONFLICT DO NOTHING",
		1, {TEXTOID}
	};
	Datum		v;
	Oid			nsp;
	int			attempt;
	int			rc;

	if (seen_is(&locked_chain, k))
		return;					/* ours already, since os_write_history */
	nsp = get_namespace_oid("ordersync", true);
	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("history_chain_lock", nsp)))
	{
		lock_chain_advisory(k, true);
		return;
	}

	/*
	 * A writer that started before ALTER EXTENSION ... UPDATE may still hold
	 * the chain's advisory lock: wait for it, without keeping the lock (its
	 * slot in the shared lock table is what must not pile up).
	 */
	lock_chain_advisory(k, false);
	v = CStringGetTextDatum(k->sku ? k->sku : "");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ordersync: SPI_connect failed");
	os_prepare(&lock);
	for (attempt = 0; attempt < 2; attempt++)
	{
		/*
		 * The latest committed row, whatever the isolation level: a chain's
		 * row made by a transaction that committed after a REPEATABLE READ
		 * snapshot is locked all the same (as chain_head reads its head).
		 */
		rc = SPI_execute_snapshot(lock.plan, &v, NULL, GetLatestSnapshot(),
								  InvalidSnapshot, false, false, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "ordersync: cannot lock a history chain: %s",
				 SPI_result_code_string(rc));
		if (SPI_processed == 1)
			break;
		/* the chain's first row: ours until we commit (others wait on it) */
		if (os_execute(&add, &v, NULL, false, 0) == 1)
			break;
		/* another transaction made it meanwhile and has committed: lock it */
	}
	if (attempt == 2)
		elog(ERROR, "ordersync: the lock row of history chain \"%s\" disappeared",
			 k->sku ? k->sku : "");
	SPI_finish();
	seen_set(&locked_chain, k);
}

/* looks the chain columns (and hash, last) of history up once per backend */
static void
chain_attnos(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	if (chain_atts.relid == RelationGetRelid(rel) && chain_atts.natts == desc->natts)
		return;
	chain_atts.relid = InvalidOid;
	for (i = 0; i <= N_CHAIN_COLUMNS; i++)
	{
		const char *name = i < N_CHAIN_COLUMNS ? chain_columns[i] : "hash";
		int			attno = SPI_fnumber(desc, name);

		if (attno <= 0)
			elog(ERROR, "ordersync: ordersync.history has no column \"%s\"", name);
		chain_atts.attno[i] = attno;
	}
	chain_atts.natts = desc->natts;
	chain_atts.relid = RelationGetRelid(rel);
}

/* values/nulls of chain_columns from a history tuple */
static void
deform_chain(HeapTuple tup, TupleDesc desc, Datum *values, bool *nulls)
{
	int			i;

	for (i = 0; i < N_CHAIN_COLUMNS; i++)
		values[i] = heap_getattr(tup, chain_atts.attno[i], desc, &nulls[i]);
}

/*
 * BEFORE INSERT ON ordersync.history: sets prev_id and hash.  A row that
 * comes with a hash (pg_restore of a dump; only the owner and superusers
 * can insert into history at all) is kept as it is: verify_history()
 * checks it like any other.
 */
Datum
ordersync_history_chain_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	tup;
	Datum		values[N_CHAIN_COLUMNS];
	bool		nulls[N_CHAIN_COLUMNS];
	ChainKey	key;
	int64		prev_id = 0;
	uint8		prev_hash[PG_SHA256_DIGEST_LENGTH];
	uint8		hash[PG_SHA256_DIGEST_LENGTH];
	bool		has_prev;
	int			cols[2];
	Datum		newvals[2];
	bool		newnulls[2];
	bytea	   *hb;
	bool		isnull;
	int			hash_attno;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("ordersync_history_chain_trigger must be fired BEFORE INSERT FOR EACH ROW")));

	desc = trigdata->tg_relation->rd_att;
	tup = trigdata->tg_trigtuple;
	chain_attnos(trigdata->tg_relation);
	hash_attno = chain_atts.attno[N_CHAIN_COLUMNS];
	(void) heap_getattr(tup, hash_attno, desc, &isnull);
	if (!isnull)
		return PointerGetDatum(tup);

	deform_chain(tup, desc, values, nulls);
	/* chain_columns: 3 order_id, 6 sku */
	key.has_order = !nulls[3];
	key.order_id = key.has_order ? DatumGetInt64(values[3]) : 0;
	key.sku = (!key.has_order && !nulls[6]) ? TextDatumGetCString(values[6]) : NULL;
	if (!key.has_order)
		lock_chain(&key);

	/*
	 * An order's "created" row is written once, first (place_order), so it
	 * starts the chain without a lookup: new orders, the flash-sale path,
	 * never read history.
	 */
	if (key.has_order && !nulls[2] &&
		strcmp(TextDatumGetCString(values[2]), "created") == 0)
		has_prev = false;
	else
		has_prev = chain_head(&key, &prev_id, prev_hash);
	values[12] = Int64GetDatum(prev_id);
	nulls[12] = !has_prev;
	row_digest(values, nulls, has_prev ? prev_hash : NULL, hash);

	hb = (bytea *) palloc(VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	SET_VARSIZE(hb, VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	memcpy(VARDATA(hb), hash, PG_SHA256_DIGEST_LENGTH);
	cols[0] = chain_atts.attno[12];	/* prev_id */
	newvals[0] = values[12];
	newnulls[0] = nulls[12];
	cols[1] = hash_attno;
	newvals[1] = PointerGetDatum(hb);
	newnulls[1] = false;
	tup = heap_modify_tuple_by_cols(tup, desc, 2, cols, newvals, newnulls);

	remember(&key, DatumGetInt64(values[0]), hash);
	return PointerGetDatum(tup);
}

/* one problem found by verify_history() */
static void
report(Tuplestorestate *ts, TupleDesc desc, int64 id, const char *fmt,...)
	pg_attribute_printf(4, 5);

static void
report(Tuplestorestate *ts, TupleDesc desc, int64 id, const char *fmt,...)
{
	va_list		args;
	char		buf[512];
	Datum		v[2];
	bool		n[2] = {false, false};

	va_start(args, fmt);
	vsnprintf(buf, sizeof(buf), fmt, args);
	va_end(args);
	v[0] = Int64GetDatum(id);
	v[1] = CStringGetTextDatum(buf);
	tuplestore_putvalues(ts, desc, v, n);
}

/*
 * verify_history() -> (history_id, problem): no row when every chain is
 * intact.  Reads the history chain by chain in id order through a cursor,
 * recomputes each row's hash from its content and the hash stored in the
 * previous row of its chain, and checks that prev_id names that row.
 *
 * An edited row no longer matches its hash; a deleted or inserted row
 * breaks the prev_id of the row after it; a row written with the trigger
 * disabled has no hash.  Only the last row of a chain can be removed
 * without a trace here (see doc/compliance.md).
 */
Datum
ordersync_verify_history(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Portal		portal;
	int64		sealed_from;
	bool		have_prev = false;
	ChainKey	prev_key = {false, 0, NULL};
	int64		prev_id = 0;
	uint8		prev_hash[PG_SHA256_DIGEST_LENGTH];
	MemoryContext rowcxt;

	InitMaterializedSRF(fcinfo, 0);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ordersync: SPI_connect failed");
	if (SPI_execute("SELECT sealed_from FROM ordersync.history_seal", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "ordersync: cannot read ordersync.history_seal");
	sealed_from = SPI_processed > 0 ? os_getint64(0, 1) : 1;

	portal = SPI_cursor_open_with_args(NULL,
									   "SELECT id, at, action, order_id, from_status, to_status, sku,"
									   " location, qty, actor, role, reason, prev_id, hash"
									   "  FROM ordersync.history"
									   " ORDER BY order_id IS NULL, order_id,"
									   "  CASE WHEN order_id IS NULL THEN sku END, id",
									   0, NULL, NULL, NULL, true, 0);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "verify_history row",
								   ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, 1000);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			Datum		values[N_CHAIN_COLUMNS + 1];
			bool		nulls[N_CHAIN_COLUMNS + 1];
			ChainKey	key;
			int64		id;
			bool		same;
			uint8		hash[PG_SHA256_DIGEST_LENGTH];
			bytea	   *stored;
			MemoryContext old = MemoryContextSwitchTo(rowcxt);
			int			c;

			for (c = 0; c < N_CHAIN_COLUMNS + 1; c++)
				values[c] = heap_getattr(tup, c + 1, desc, &nulls[c]);
			id = DatumGetInt64(values[0]);
			key.has_order = !nulls[3];
			key.order_id = key.has_order ? DatumGetInt64(values[3]) : 0;
			key.sku = (!key.has_order && !nulls[6]) ? TextDatumGetCString(values[6]) : NULL;
			same = have_prev && key.has_order == prev_key.has_order &&
				(key.has_order ? key.order_id == prev_key.order_id :
				 (key.sku == NULL ? prev_key.sku == NULL :
				  prev_key.sku != NULL && strcmp(key.sku, prev_key.sku) == 0));

			if (nulls[N_CHAIN_COLUMNS])
			{
				if (id >= sealed_from)
					report(rsinfo->setResult, rsinfo->setDesc, id,
						   "no hash: the row was written around the chain trigger (written since 0.5.0, id >= " INT64_FORMAT ")",
						   sealed_from);
				MemoryContextSwitchTo(old);
				MemoryContextReset(rowcxt);
				continue;
			}

			stored = DatumGetByteaPP(values[N_CHAIN_COLUMNS]);
			if (!same && !nulls[12])
				report(rsinfo->setResult, rsinfo->setDesc, id,
					   "chain broken: prev_id is " INT64_FORMAT " but the row starts its chain (the rows before it are missing or were moved)",
					   DatumGetInt64(values[12]));
			else if (same && (nulls[12] || DatumGetInt64(values[12]) != prev_id))
				report(rsinfo->setResult, rsinfo->setDesc, id,
					   nulls[12] ?
					   "chain broken: the row claims to start its chain, but row " INT64_FORMAT " comes before it" :
					   "chain broken: the previous row of its chain is " INT64_FORMAT ", not prev_id",
					   prev_id);

			row_digest(values, nulls, same ? prev_hash : NULL, hash);
			if (VARSIZE_ANY_EXHDR(stored) != PG_SHA256_DIGEST_LENGTH ||
				memcmp(VARDATA_ANY(stored), hash, PG_SHA256_DIGEST_LENGTH) != 0)
				report(rsinfo->setResult, rsinfo->setDesc, id,
					   "hash mismatch: the row's content or the hash of the row before it was changed");

			/* the chain goes on from what is stored, so one edit is one report */
			MemoryContextSwitchTo(old);
			if (prev_key.sku)
				pfree(prev_key.sku);
			prev_key.has_order = key.has_order;
			prev_key.order_id = key.order_id;
			prev_key.sku = key.sku ? pstrdup(key.sku) : NULL;
			prev_id = id;
			if (VARSIZE_ANY_EXHDR(stored) == PG_SHA256_DIGEST_LENGTH)
				memcpy(prev_hash, VARDATA_ANY(stored), PG_SHA256_DIGEST_LENGTH);
			else
				memset(prev_hash, 0, PG_SHA256_DIGEST_LENGTH);
			have_prev = true;
			MemoryContextReset(rowcxt);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	SPI_finish();
	return (Datum) 0;
}
