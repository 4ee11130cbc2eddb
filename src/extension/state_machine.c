/*-------------------------------------------------------------------------
 *
 * state_machine.c
 *	  The order state machine: the C trigger on ordersync.orders that lets a
 *	  status change through only along ordersync.transition and performs its
 *	  side effects in the same transaction, and the API functions that change
 *	  status (set_status, set_channel_status, expire_reservations).
 *
 *	  The transition graph is cached per backend and dropped whenever
 *	  ordersync.transition changes: its statement trigger sends a relcache
 *	  invalidation for the table, which reaches every backend at commit (and
 *	  our own at the next command).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "ordersync.h"

PG_FUNCTION_INFO_V1(ordersync_orders_status_trigger);
PG_FUNCTION_INFO_V1(ordersync_set_status);
PG_FUNCTION_INFO_V1(ordersync_set_channel_status);
PG_FUNCTION_INFO_V1(ordersync_expire_reservations);

/* status names are at most 31 characters (CHECK on ordersync.status) */
#define STATUS_KEYLEN 32

typedef struct TransitionKey
{
	char		from[STATUS_KEYLEN];
	char		to[STATUS_KEYLEN];
} TransitionKey;

typedef struct TransitionEntry
{
	TransitionKey key;
	char		effect[16];
} TransitionEntry;

static HTAB *transitions = NULL;
static bool transitions_valid = false;
static Oid	transition_relid = InvalidOid;

/* the reason set_status() passes to the trigger; NULL for a plain UPDATE */
static const char *status_reason = NULL;

static void
transition_cache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == transition_relid)
		transitions_valid = false;
}

void
os_transition_cache_init(void)
{
	CacheRegisterRelcacheCallback(transition_cache_callback, (Datum) 0);
}

static bool
make_key(TransitionKey *key, const char *from, const char *to)
{
	if (strlen(from) >= STATUS_KEYLEN || strlen(to) >= STATUS_KEYLEN)
		return false;
	memset(key, 0, sizeof(*key));
	strcpy(key->from, from);
	strcpy(key->to, to);
	return true;
}

static void
load_transitions(void)
{
	HASHCTL		ctl;
	Oid			nsp;
	int			n;

	if (transitions)
		hash_destroy(transitions);
	transitions = NULL;

	/* the relid may change when the extension is dropped and re-created */
	nsp = get_namespace_oid("ordersync", false);
	transition_relid = get_relname_relid("transition", nsp);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(TransitionKey);
	ctl.entrysize = sizeof(TransitionEntry);
	ctl.hcxt = TopMemoryContext;
	transitions = hash_create("ordersync transitions", 64, &ctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	SPI_connect();
	n = SPI_execute("SELECT from_status, to_status, effect FROM ordersync.transition",
					true, 0);
	if (n != SPI_OK_SELECT)
		elog(ERROR, "ordersync: cannot read ordersync.transition: %s",
			 SPI_result_code_string(n));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		TransitionKey key;
		TransitionEntry *e;

		if (!make_key(&key, os_gettext(i, 1), os_gettext(i, 2)))
			continue;
		e = hash_search(transitions, &key, HASH_ENTER, NULL);
		strlcpy(e->effect, os_gettext(i, 3), sizeof(e->effect));
	}
	SPI_finish();
	transitions_valid = true;
}

/* the allowed next statuses, for the hint of an illegal transition */
static char *
allowed_next(const char *from)
{
	static OsPlan p = {
		"SELECT pg_catalog.string_agg(to_status, ', ' ORDER BY to_status)"
		" FROM ordersync.transition WHERE from_status = $1",
		1, {TEXTOID}
	};
	Datum		v = CStringGetTextDatum(from);
	char	   *list;

	SPI_connect();
	(void) os_execute(&p, &v, NULL, true, 1);
	list = os_gettext(0, 1);
	if (list)
		list = strcpy(SPI_palloc(strlen(list) + 1), list);	/* outlives SPI */
	SPI_finish();
	return list;
}

/*
 * The effect of the transition from -> to, or an error that says which
 * statuses the order may move to instead.
 */
static const char *
transition_effect(int64 order_id, const char *from, const char *to)
{
	TransitionKey key;
	TransitionEntry *e = NULL;
	char	   *next;

	if (!transitions_valid)
		load_transitions();
	if (make_key(&key, from, to))
		e = hash_search(transitions, &key, HASH_FIND, NULL);
	if (e)
		return e->effect;

	next = allowed_next(from);
	ereport(ERROR,
			(errcode(ERRCODE_OS_ILLEGAL_TRANSITION),
			 errmsg("illegal status transition from \"%s\" to \"%s\"", from, to),
			 errdetail("Order " INT64_FORMAT " is \"%s\"; ordersync.transition has no transition (%s, %s).",
					   order_id, from, from, to),
			 next ? errhint("From \"%s\" the order may move to: %s.", from, next)
			 : errhint("\"%s\" is a final status: the order cannot change any more.", from)));
	return NULL;				/* keep compiler quiet */
}

/*
 * BEFORE UPDATE OF status trigger on ordersync.orders, fired only when the
 * status really changes.  Under concurrency the executor hands us the latest
 * locked version of the row as OLD, so two racing changes are checked one
 * after the other: the second sees the first's status.
 */
Datum
ordersync_orders_status_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	newtuple;
	int			status_col,
				updated_col,
				expires_col;
	char	   *from;
	char	   *to;
	int64		order_id;
	bool		isnull;
	const char *effect;
	int			cols[2];
	Datum		vals[2];
	bool		nulls[2] = {false, true};
	int			ncols = 1;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("ordersync_orders_status_trigger must be fired BEFORE UPDATE FOR EACH ROW")));

	desc = trigdata->tg_relation->rd_att;
	status_col = SPI_fnumber(desc, "status");
	updated_col = SPI_fnumber(desc, "updated_at");
	expires_col = SPI_fnumber(desc, "expires_at");
	order_id = DatumGetInt64(SPI_getbinval(trigdata->tg_trigtuple, desc,
										   SPI_fnumber(desc, "id"), &isnull));
	from = SPI_getvalue(trigdata->tg_trigtuple, desc, status_col);
	to = SPI_getvalue(trigdata->tg_newtuple, desc, status_col);
	if (to == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("status must not be null"),
				 errdetail("An UPDATE set the status of order " INT64_FORMAT " to NULL.", order_id),
				 errhint("Set one of the statuses in ordersync.status.")));
	if (from != NULL && strcmp(from, to) == 0)
		return PointerGetDatum(trigdata->tg_newtuple);
	/* any client's UPDATE: the new status is shown in the refusal below */
	os_check_text("orders_status_trigger", "status", to);

	effect = transition_effect(order_id, from ? from : "", to);

	/* the row as it will be stored: touched now, no expiry once firm */
	cols[0] = updated_col;
	vals[0] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	if (strcmp(effect, "none") != 0 && strcmp(effect, "restock") != 0)
	{
		cols[1] = expires_col;
		vals[1] = (Datum) 0;
		ncols = 2;
	}
	newtuple = heap_modify_tuple_by_cols(trigdata->tg_newtuple, desc, ncols,
										 cols, vals, nulls);

	/* the order event first, then the stock events it causes */
	os_emit_order_event(psprintf("order.%s", to), newtuple, desc, from,
						status_reason);

	SPI_connect();
	os_apply_effect(effect, order_id, status_reason);
	os_write_history("status", order_id, true, from, to, NULL, NULL, 0, false,
					 status_reason);
	SPI_finish();

	return PointerGetDatum(newtuple);
}

/*
 * Runs the UPDATE that the trigger checks, passing it the reason; returns
 * the number of orders updated (0 or 1).  Caller is connected to SPI.
 */
static int
change_status(int64 order_id, const char *status, const char *reason,
			  bool only_if_expired)
{
	static OsPlan upd = {
		"UPDATE ordersync.orders SET status = $2 WHERE id = $1",
		2, {INT8OID, TEXTOID}
	};
	/* re-checked on the locked row, in case it was paid meanwhile */
	static OsPlan expire = {
		"UPDATE ordersync.orders SET status = $2 WHERE id = $1"
		" AND status = 'pending' AND expires_at <= pg_catalog.now()",
		2, {INT8OID, TEXTOID}
	};
	Datum		values[2];
	int			n;

	values[0] = Int64GetDatum(order_id);
	values[1] = CStringGetTextDatum(status);
	status_reason = reason;
	PG_TRY();
	{
		n = os_execute(only_if_expired ? &expire : &upd, values, NULL, false, 0);
	}
	PG_FINALLY();
	{
		status_reason = NULL;
	}
	PG_END_TRY();
	return n;
}

/*
 * set_status(order_id, status, reason)
 */
Datum
ordersync_set_status(PG_FUNCTION_ARGS)
{
	int64		order_id;
	char	   *status;
	char	   *reason;

	if (PG_ARGISNULL(0))
		os_null_argument("set_status", "order_id", "Pass the id place_order() returned.");
	if (PG_ARGISNULL(1))
		os_null_argument("set_status", "status", "Pass one of the statuses in ordersync.status.");
	order_id = PG_GETARG_INT64(0);
	status = text_to_cstring(PG_GETARG_TEXT_PP(1));
	reason = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	os_check_text("set_status", "status", status);

	SPI_connect();
	if (change_status(order_id, status, reason, false) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("order " INT64_FORMAT " does not exist", order_id),
				 errdetail("ordersync.orders has no order with id " INT64_FORMAT ".", order_id),
				 errhint("Pass the id place_order() returned.")));
	SPI_finish();

	PG_RETURN_VOID();
}

/*
 * set_channel_status(channel, external_id, channel_status, reason) -> order id
 *
 * A channel reports status in its own words; its status map translates.
 */
Datum
ordersync_set_channel_status(PG_FUNCTION_ARGS)
{
	static OsPlan p = {
		"SELECT o.id, c.status_map ->> $3"
		" FROM ordersync.channel c"
		" LEFT JOIN ordersync.orders o ON o.channel = c.id AND o.external_id = $2"
		" WHERE c.id = $1",
		3, {TEXTOID, TEXTOID, TEXTOID}
	};
	Datum		values[3];
	char	   *channel,
			   *external_id,
			   *channel_status,
			   *reason;
	char	   *status;
	bool		isnull;
	int64		order_id;

	if (PG_ARGISNULL(0))
		os_null_argument("set_channel_status", "channel", "Pass the channel id.");
	if (PG_ARGISNULL(1))
		os_null_argument("set_channel_status", "external_id", "Pass the channel's order id.");
	if (PG_ARGISNULL(2))
		os_null_argument("set_channel_status", "channel_status", "Pass the status as the channel names it.");
	channel = text_to_cstring(PG_GETARG_TEXT_PP(0));
	external_id = text_to_cstring(PG_GETARG_TEXT_PP(1));
	channel_status = text_to_cstring(PG_GETARG_TEXT_PP(2));
	reason = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	os_check_text("set_channel_status", "channel", channel);
	os_check_text("set_channel_status", "external_id", external_id);
	os_check_text("set_channel_status", "channel_status", channel_status);

	SPI_connect();
	values[0] = PG_GETARG_DATUM(0);
	values[1] = PG_GETARG_DATUM(1);
	values[2] = PG_GETARG_DATUM(2);
	if (os_execute(&p, values, NULL, true, 1) == 0)
		os_unknown_channel(channel);
	status = os_gettext(0, 2);
	if (status == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("channel \"%s\" has no mapping for its status \"%s\"", channel, channel_status),
				 errdetail("The status map of channel \"%s\" has no key \"%s\".", channel, channel_status),
				 errhint("Add the mapping with ordersync.add_channel('%s', <status map>).", channel)));
	order_id = DatumGetInt64(os_getdatum(0, 1, &isnull));
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("order \"%s\" of channel \"%s\" does not exist", external_id, channel),
				 errdetail("ordersync.orders has no order (%s, %s).", channel, external_id),
				 errhint("Import the order first with ordersync.place_order().")));
	(void) change_status(order_id, status, reason, false);
	SPI_finish();

	PG_RETURN_INT64(order_id);
}

/*
 * Expires up to limit (0: all) pending orders whose reservation ran out;
 * returns how many.  Caller is connected to SPI.
 *
 * SKIP LOCKED: an order some session is paying right now is left alone; if
 * the payment commits the order is no longer pending, and if it rolls back
 * the next run expires it.
 */
int
os_expire_due(int limit)
{
	static OsPlan due = {
		"SELECT id FROM ordersync.orders"
		" WHERE status = 'pending' AND expires_at <= pg_catalog.now()"
		" ORDER BY expires_at, id LIMIT $1 FOR UPDATE SKIP LOCKED",
		1, {INT8OID}
	};
	SPITupleTable *tuptable;
	Datum		v = Int64GetDatum(limit);
	char		null = limit > 0 ? ' ' : 'n';	/* LIMIT NULL: no limit */
	uint64		n;
	int			expired = 0;

	n = os_execute(&due, &v, &null, false, 0);
	tuptable = SPI_tuptable;
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(tuptable->vals[i],
													 tuptable->tupdesc, 1, &isnull));

		expired += change_status(id, "expired", "reservation expired", true);
	}
	return expired;
}

/*
 * expire_reservations() -> number of orders expired
 */
Datum
ordersync_expire_reservations(PG_FUNCTION_ARGS)
{
	int			expired;

	SPI_connect();
	expired = os_expire_due(0);
	SPI_finish();

	PG_RETURN_INT32(expired);
}
