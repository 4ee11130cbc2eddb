/*-------------------------------------------------------------------------
 *
 * inbox.c
 *	  Orders and status updates that channels push (issue 12): keeping them
 *	  (inbox_receive), applying them once and in order (inbox_apply and the
 *	  background worker's tick), both in one transaction where it can
 *	  (inbox_receive_apply), and pruning them (prune_inbox).
 *
 *	  Receiving is one short transaction that writes one ordersync.inbox row,
 *	  or nothing for an event id the channel sent before, and answers only
 *	  what the payload is about (external id, version): the sender gets its
 *	  2xx after that commit, so a crash anywhere later loses nothing.
 *	  inbox_receive_apply() also applies the row in that transaction when
 *	  no other applier holds its order (see apply_on_receipt()): one commit
 *	  per webhook instead of two.  Both hold a lock per channel and event
 *	  id (INBOX_EVENT_LOCK_CLASS) to the end, so a repeat arriving meanwhile
 *	  is a repeat, never a second row or a second order.
 *
 *	  Applying takes the received rows of a batch of channel orders, sorted
 *	  per order: the order first, then its status updates by version.  Each
 *	  row is applied in a subtransaction of its own and its outcome is
 *	  written to the row in the same transaction as the change, so a row is
 *	  either applied and marked, or neither: applied exactly once.  Orders
 *	  go through place_order() (idempotent by channel and external id), status
 *	  updates through the channel's status map and set_status() (the state
 *	  machine), compared first with the last applied version of the order
 *	  (ordersync.inbox_version): older or equal is "stale".  An update the
 *	  state machine cannot take yet (OS002), or one for an order not
 *	  imported yet, is "parked" and tried again as soon as the inbox moves
 *	  that order, and otherwise with exponential backoff, until
 *	  ordersync.inbox_max_attempts; then it is "failed".
 *
 *	  One applier per order at a time: an advisory lock per channel order
 *	  (INBOX_LOCK_CLASS, hashtext(channel || '/' || external_id)), held to
 *	  the end of the transaction.  An applier skips an order another one
 *	  holds, and reads the order's rows again once it holds the lock, so it
 *	  never applies what the other one just committed.  Without it two
 *	  appliers could both find an update newer than the last applied one
 *	  and apply them in the wrong order.  reconcile() takes the same lock
 *	  and waits for it.  Appliers (the relay's threads, the worker) may run
 *	  at once on different orders; inbox_apply()'s part and parts spread
 *	  them over the orders, the lock alone keeps them apart.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "ordersync.h"
#include "inbox.h"

PG_FUNCTION_INFO_V1(ordersync_inbox_receive);
PG_FUNCTION_INFO_V1(ordersync_inbox_receive_apply);
PG_FUNCTION_INFO_V1(ordersync_inbox_apply);
PG_FUNCTION_INFO_V1(ordersync_prune_inbox);

/* the first key of the per-order advisory locks: "osyn" */
#define INBOX_LOCK_CLASS 1869838702

/* the first key of the per-event advisory locks of receiving: "osye" */
#define INBOX_EVENT_LOCK_CLASS 1869838693

/*
 * Applying while receiving waits at most this long for a lock (each): the
 * sender waits for the answer, and a row that cannot be applied now is
 * kept received for the appliers instead.
 */
#define INBOX_RECEIPT_LOCK_TIMEOUT_MS 1000

/* a batch stops taking new orders after this long: it holds their locks */
#define INBOX_BATCH_MS 100

/* a parked update waits 2^attempts seconds, at most this long */
#define INBOX_BACKOFF_MAX_S 3600

/* largest payload kept, as jsonb (ordersyncd bounds the body before) */
#define INBOX_MAX_PAYLOAD (4 * 1024 * 1024)

/* GUCs */
static int	inbox_interval = 1;		/* seconds; 0: the worker does not apply */
static int	inbox_max_attempts = 20;
static int	inbox_retention = 7 * 24 * 3600;	/* seconds */

typedef enum InboxOutcome
{
	IN_APPLIED,
	IN_STALE,
	IN_PARKED,
	IN_FAILED,
	IN_RETRY					/* transient: stays received, tried again */
} InboxOutcome;

static const char *const outcome_state[] = {"applied", "stale", "parked", "failed", "received"};

typedef struct InboxCounts
{
	int			processed;
	int			applied;
	int			stale;
	int			parked;
	int			failed;
} InboxCounts;

/* one row to apply; the payload stays in the table */
typedef struct InboxRow
{
	int64		id;
	char	   *channel;
	char	   *event_id;
	char	   *kind;
	char	   *format;
	char	   *external_id;
	Datum		version;		/* numeric */
	bool		has_version;
	int			attempts;
	bool		was_received;	/* not parked before */
	Datum		payload;		/* jsonb */
} InboxRow;

/* a webhook being received: the arguments, checked, and what it is about */
typedef struct Receipt
{
	char	   *channel;
	char	   *kind;
	char	   *event_id;
	char	   *topic;			/* or NULL */
	Jsonb	   *payload;
	char	   *format;			/* the channel's */
	char	   *external_id;
	Datum		version;		/* numeric, if has_version */
	bool		has_version;
} Receipt;

static bool inbox_lock(uint32 class, const char *a, const char *b, bool wait);
static const char *apply_on_receipt(const Receipt *rc, int64 *id);

void
os_inbox_init(void)
{
	DefineCustomIntVariable("ordersync.inbox_interval",
							"How often the background worker applies received inbox rows and retries parked ones.",
							"0 leaves it to ordersyncd and ordersync.inbox_apply().",
							&inbox_interval, 1, 0, 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("ordersync.inbox_max_attempts",
							"How often a parked or failing inbox row is tried before it is failed.",
							NULL,
							&inbox_max_attempts, 20, 1, 1000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("ordersync.inbox_retention",
							"How long inbox rows are kept before the background worker prunes them.",
							"Keep it longer than the longest retry window of any sender, or a late retry is applied again as new.",
							&inbox_retention, 7 * 24 * 3600, 3600, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
}

/* ---- receiving --------------------------------------------------------- */

/* the value of key in an object container, or NULL */
static JsonbValue *
jb_get(Jsonb *jb, const char *key)
{
	if (!JB_ROOT_IS_OBJECT(jb))
		return NULL;
	return getKeyJsonValueFromContainer(&jb->root, key, strlen(key), NULL);
}

static void
pg_attribute_noreturn()
bad_payload(const char *channel, const char *kind, const char *what, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_OS_INVALID_INPUT),
			 errmsg("invalid %s payload from channel \"%s\"", kind, channel),
			 errdetail("%s", what),
			 errhint("%s", hint)));
}

/* a JSON string, or a JSON integer (platform ids), as text */
static char *
id_text(JsonbValue *v)
{
	if (v == NULL)
		return NULL;
	if (v->type == jbvString)
		return pnstrdup(v->val.string.val, v->val.string.len);
	if (v->type == jbvNumeric)
	{
		char	   *s = DatumGetCString(DirectFunctionCall1(numeric_out,
															NumericGetDatum(v->val.numeric)));

		if (strspn(s, "0123456789") == strlen(s))
			return s;
	}
	return NULL;
}

/* ordersync.channel_version() of v: the version as numeric, or not */
static bool
version_of(JsonbValue *v, const char *suffix, Datum *out)
{
	static OsPlan p = {
		"SELECT ordersync.channel_version($1)", 1, {JSONBOID}
	};
	Datum		arg;
	bool		isnull;

	if (v == NULL || (v->type != jbvString && v->type != jbvNumeric))
		return false;
	if (v->type == jbvString && suffix)
	{
		/* WooCommerce's *_gmt times are UTC without saying so */
		JsonbValue	s = *v;
		char	   *t = psprintf("%.*s%s", v->val.string.len, v->val.string.val, suffix);

		s.val.string.val = t;
		s.val.string.len = strlen(t);
		arg = JsonbPGetDatum(JsonbValueToJsonb(&s));
	}
	else
		arg = JsonbPGetDatum(JsonbValueToJsonb(v));
	(void) os_execute(&p, &arg, NULL, true, 1);
	*out = os_getdatum(0, 1, &isnull);
	if (isnull)
		return false;
	*out = datumCopy(*out, false, -1);
	return true;
}

/* an object's keys must all be in allowed (NULL-terminated) */
static void
only_keys(Jsonb *jb, const char *channel, const char *kind,
		  const char *const *allowed, const char *hint)
{
	JsonbIterator *it = JsonbIteratorInit(&jb->root);
	JsonbIteratorToken tok;
	JsonbValue	v;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		bool		ok = false;

		if (tok != WJB_KEY)
			continue;
		for (const char *const *a = allowed; *a; a++)
			if ((int) strlen(*a) == v.val.string.len &&
				memcmp(*a, v.val.string.val, v.val.string.len) == 0)
				ok = true;
		if (!ok)
			bad_payload(channel, kind,
						psprintf("The payload has an unknown key \"%.*s\".",
								 Min(v.val.string.len, 64), v.val.string.val),
						hint);
	}
}

#define OS_ORDER_HINT "An order is {\"external_id\": \"W-1\", \"lines\": [{\"sku\": \"A-1\", \"qty\": 1, \"price\": \"9.90\"}], \"customer\": {...}}."
#define OS_STATUS_HINT "A status update is {\"external_id\": \"W-1\", \"status\": \"<the channel's word>\", \"version\": <integer or RFC 3339 time>}."

/*
 * What a payload is about, by the channel's format: the external id and,
 * for status updates, the version.  Everything else is checked when the
 * row is applied, where a failure is kept in the row.
 */
static void
payload_facts(const char *channel, const char *format, const char *kind,
			  Jsonb *payload, char **external_id, Datum *version, bool *has_version)
{
	bool		is_order = strcmp(kind, "order") == 0;
	bool		os_format = strcmp(format, "ordersync") == 0;
	const char *hint;
	JsonbValue *v;

	if (strcmp(format, "shopify") == 0)
		hint = "Send Shopify's order webhook payload: an object with \"id\", \"updated_at\" and \"line_items\".";
	else if (strcmp(format, "woocommerce") == 0)
		hint = "Send WooCommerce's order webhook payload: an object with \"id\", \"date_modified_gmt\", \"status\" and \"line_items\".";
	else
		hint = is_order ? OS_ORDER_HINT : OS_STATUS_HINT;

	if (!JB_ROOT_IS_OBJECT(payload) || JB_ROOT_IS_SCALAR(payload))
		bad_payload(channel, kind, "The payload is not a JSON object.", hint);

	if (os_format)
	{
		static const char *const order_keys[] = {"external_id", "lines", "customer", NULL};
		static const char *const status_keys[] = {"external_id", "status", "version", NULL};

		only_keys(payload, channel, kind, is_order ? order_keys : status_keys, hint);
		v = jb_get(payload, "external_id");
		if (v == NULL || v->type != jbvString)
			bad_payload(channel, kind, "\"external_id\" is missing or not a string.", hint);
	}
	else
	{
		v = jb_get(payload, "id");
		if (id_text(v) == NULL)
			bad_payload(channel, kind, "\"id\" is missing or not a whole number.", hint);
	}
	*external_id = id_text(v);
	if ((*external_id)[0] == '\0' || strlen(*external_id) > 200)
		bad_payload(channel, kind,
					psprintf("The order id has %zu bytes; 1 to 200 are allowed.", strlen(*external_id)),
					hint);
	os_check_text("inbox_receive", "external_id", *external_id);

	if (is_order)
	{
		const char *key = os_format ? "lines" : "line_items";
		JsonbValue *lines = jb_get(payload, key);

		if (lines == NULL || lines->type != jbvBinary || !JsonContainerIsArray(lines->val.binary.data))
			bad_payload(channel, kind, psprintf("\"%s\" is missing or not an array.", key), hint);
		*has_version = false;
		return;
	}

	/* a status update: which status, and its version */
	if (os_format || strcmp(format, "woocommerce") == 0)
	{
		v = jb_get(payload, "status");
		if (v == NULL || v->type != jbvString || v->val.string.len == 0)
			bad_payload(channel, kind, "\"status\" is missing or not a string.", hint);
	}
	if (os_format)
		v = jb_get(payload, "version");
	else if (strcmp(format, "shopify") == 0)
		v = jb_get(payload, "updated_at");
	else
		v = jb_get(payload, "date_modified_gmt");
	*has_version = version_of(v, strcmp(format, "woocommerce") == 0 ? "Z" : NULL, version);
	if (!*has_version)
		bad_payload(channel, kind,
					psprintf("The %s is missing, or neither a non-negative integer nor an RFC 3339 time.",
							 os_format ? "\"version\"" : strcmp(format, "shopify") == 0 ?
							 "\"updated_at\" time" : "\"date_modified_gmt\" time"),
					hint);
}

/*
 * The arguments of inbox_receive() and inbox_receive_apply(), checked, and
 * the channel's format.  False for an event id the channel sent before:
 * nothing is to be written, not even a sequence number.  A repeat arriving
 * while the first is being received waits for it (the event's lock, held
 * to the end of the transaction), so it is a repeat, never a second row or
 * a second order.  Caller is connected to SPI.
 */
static bool
receipt_open(FunctionCallInfo fcinfo, Receipt *rc)
{
	static OsPlan cfg = {
		"SELECT format FROM ordersync.channel_inbound WHERE channel = $1",
		1, {TEXTOID}
	};
	static OsPlan seen = {
		"SELECT 1 FROM ordersync.inbox WHERE channel = $1 AND event_id = $2",
		2, {TEXTOID, TEXTOID}
	};
	Datum		values[2];

	memset(rc, 0, sizeof(*rc));
	rc->channel = os_required_text_arg(fcinfo, 0, "channel");
	rc->kind = os_required_text_arg(fcinfo, 1, "kind");
	rc->event_id = os_required_text_arg(fcinfo, 2, "event_id");
	if (PG_ARGISNULL(3))
		os_null_argument("inbox_receive", "payload", "Pass the webhook's body.");
	rc->payload = PG_GETARG_JSONB_P(3);
	if (!PG_ARGISNULL(4))
	{
		rc->topic = text_to_cstring(PG_GETARG_TEXT_PP(4));
		if (strlen(rc->topic) > 100)
			ereport(ERROR,
					(errcode(ERRCODE_OS_INVALID_INPUT),
					 errmsg("topic is too long"),
					 errdetail("The topic has %zu bytes; at most 100 are allowed.", strlen(rc->topic)),
					 errhint("Pass the sender's topic header as it is, such as \"orders/create\".")));
		os_check_text("inbox_receive", "topic", rc->topic);
	}
	os_check_text("inbox_receive", "channel", rc->channel);
	if (strcmp(rc->kind, "order") != 0 && strcmp(rc->kind, "status") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("kind must be \"order\" or \"status\""),
				 errdetail("inbox_receive() got kind \"%s\".", rc->kind),
				 errhint("POST /channels/<channel>/orders is \"order\", /status is \"status\".")));
	if (rc->event_id[0] == '\0' || strlen(rc->event_id) > 200)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("event_id must have 1 to 200 bytes"),
				 errdetail("inbox_receive() got an event_id of %zu bytes.", strlen(rc->event_id)),
				 errhint("Pass the sender's webhook id, which it repeats when it retries.")));
	os_check_text("inbox_receive", "event_id", rc->event_id);
	if (VARSIZE(rc->payload) > INBOX_MAX_PAYLOAD)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("payload is too large"),
				 errdetail("The payload takes %zu bytes as jsonb; at most %d are kept.",
						   (size_t) VARSIZE(rc->payload), INBOX_MAX_PAYLOAD),
				 errhint("Send one order per webhook.")));

	values[0] = CStringGetTextDatum(rc->channel);
	if (os_execute(&cfg, values, NULL, true, 1) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("channel \"%s\" does not push webhooks", rc->channel),
				 errdetail("ordersync.channel_inbound has no row for channel \"%s\".", rc->channel),
				 errhint("An admin enables it with ordersync.set_channel_inbound('%s', ...).", rc->channel)));
	rc->format = os_gettext(0, 1);

	(void) inbox_lock(INBOX_EVENT_LOCK_CLASS, rc->channel, rc->event_id, true);
	/* not read-only: a new snapshot, which sees a first receipt we waited for */
	values[1] = CStringGetTextDatum(rc->event_id);
	if (os_execute(&seen, values, NULL, false, 1) > 0)
		return false;

	payload_facts(rc->channel, rc->format, rc->kind, rc->payload, &rc->external_id,
				  &rc->version, &rc->has_version);
	return true;
}

/* nextval('ordersync.inbox_id_seq'): the id of a new inbox row */
static int64
inbox_next_id(void)
{
	Oid			seq = get_relname_relid("inbox_id_seq", get_namespace_oid("ordersync", false));

	if (!OidIsValid(seq))
		elog(ERROR, "ordersync: sequence ordersync.inbox_id_seq is missing");
	return nextval_internal(seq, true);
}

/*
 * The row: received (state NULL), or applied already, with its outcome.
 * id 0 takes the next one; applying before the row is written takes it
 * before (inbox_next_id()), for the events of applying.  Its id, or 0 when
 * the same event was written meanwhile by a writer that does not take the
 * event's lock.
 */
static int64
receipt_write(const Receipt *rc, int64 id, const char *state, const char *why, int64 order_id)
{
	static OsPlan ins = {
		"INSERT INTO ordersync.inbox (id, channel, event_id, kind, topic, format, external_id,"
		" version, payload, state, error, order_id, attempts, attempted_at, applied_at)"
		" OVERRIDING SYSTEM VALUE VALUES"
		" ($1, $2, $3, $4, $5, $6, $7, $8, $9, COALESCE($10, 'received'), $11, $12,"
		"  CASE WHEN $10 IS NULL THEN 0 ELSE 1 END, CASE WHEN $10 IS NOT NULL THEN pg_catalog.now() END,"
		"  CASE WHEN $10 = 'applied' THEN pg_catalog.now() END)"
		" ON CONFLICT (channel, event_id) DO NOTHING RETURNING id",
		12, {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, NUMERICOID, JSONBOID,
			TEXTOID, TEXTOID, INT8OID}
	};
	Datum		values[12];
	char		nulls[12];

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(id ? id : inbox_next_id());
	values[1] = CStringGetTextDatum(rc->channel);
	values[2] = CStringGetTextDatum(rc->event_id);
	values[3] = CStringGetTextDatum(rc->kind);
	values[4] = rc->topic ? CStringGetTextDatum(rc->topic) : (Datum) 0;
	nulls[4] = rc->topic ? ' ' : 'n';
	values[5] = CStringGetTextDatum(rc->format);
	values[6] = CStringGetTextDatum(rc->external_id);
	values[7] = rc->version;
	nulls[7] = rc->has_version ? ' ' : 'n';
	values[8] = JsonbPGetDatum(rc->payload);
	values[9] = state ? CStringGetTextDatum(state) : (Datum) 0;
	nulls[9] = state ? ' ' : 'n';
	values[10] = why ? CStringGetTextDatum(why) : (Datum) 0;
	nulls[10] = why ? ' ' : 'n';
	values[11] = Int64GetDatum(order_id);
	nulls[11] = order_id ? ' ' : 'n';
	if (os_execute(&ins, values, nulls, false, 1) == 0)
		return 0;
	return os_getint64(0, 1);
}

/*
 * inbox_receive(channel, kind, event_id, payload, topic) -> inbox id, or
 * NULL when the channel sent this event id before (nothing is written).
 */
Datum
ordersync_inbox_receive(PG_FUNCTION_ARGS)
{
	Receipt		rc;
	int64		id = 0;

	SPI_connect();
	if (receipt_open(fcinfo, &rc))
		id = receipt_write(&rc, 0, NULL, NULL, 0);
	SPI_finish();
	if (id == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(id);
}

/*
 * inbox_receive_apply(channel, kind, event_id, payload, topic)
 *	-> (inbox_id, state): the row is kept as inbox_receive() keeps it and,
 * in the same transaction, applied as inbox_apply() applies it, when no
 * other applier holds its order; state is what became of it ("received"
 * when it was left to the appliers).  Both NULL for a repeat.
 */
Datum
ordersync_inbox_receive_apply(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Receipt		rc;
	int64		id = 0;
	const char *state = NULL;
	Datum		values[2] = {0, 0};
	bool		nulls[2] = {true, true};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "ordersync: inbox_receive_apply must return a record");
	SPI_connect();
	if (receipt_open(fcinfo, &rc))
		state = apply_on_receipt(&rc, &id);
	SPI_finish();
	if (state)
	{
		values[0] = Int64GetDatum(id);
		values[1] = CStringGetTextDatum(state);
		nulls[0] = nulls[1] = false;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/* ---- applying ------------------------------------------------------------ */

static bool
transient(int sqlerrcode)
{
	char		class0 = PGUNSIXBIT(sqlerrcode),
				class1 = PGUNSIXBIT(sqlerrcode >> 6);

	/* serialization, deadlock, resources, lock not available, operator, system */
	return (class0 == '4' && class1 == '0') ||
		(class0 == '5' && (class1 == '3' || class1 == '5' || class1 == '7' || class1 == '8')) ||
		(class0 == '0' && class1 == '8');
}

static char *
error_text(ErrorData *e)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfo(&s, "%s: %s", unpack_sql_state(e->sqlerrcode), e->message);
	if (e->detail)
		appendStringInfo(&s, " (%s)", e->detail);
	if (e->hint)
		appendStringInfo(&s, " %s", e->hint);
	return s.data;
}

/*
 * order.import_failed: the channel integration learns that an order it
 * pushed will not be there, with the facts.  Written in the batch's
 * transaction after the failed subtransaction rolled back.
 */
static void
emit_import_failed(const InboxRow *r, ErrorData *e)
{
	StringInfoData data;
	bool		first = true;

	initStringInfo(&data);
	appendStringInfoChar(&data, '{');
	json_add_text(&data, &first, "channel", r->channel);
	json_add_text(&data, &first, "external_id", r->external_id);
	json_add_text(&data, &first, "event_id", r->event_id);
	json_add_int64(&data, &first, "inbox_id", r->id);
	json_add_text(&data, &first, "sqlstate", unpack_sql_state(e->sqlerrcode));
	json_add_text(&data, &first, "error", e->message);
	json_add_text(&data, &first, "detail", e->detail);
	json_add_text(&data, &first, "hint", e->hint);
	appendStringInfoChar(&data, '}');
	os_emit_event("order.import_failed", "channel", r->channel, &data);
}

/* jb -> key: the field as jsonb, or 0 when jb is not an object or lacks it */
static Datum
object_field(Jsonb *jb, const char *key)
{
	JsonbValue *v;

	if (!JB_ROOT_IS_OBJECT(jb))
		return (Datum) 0;
	v = getKeyJsonValueFromContainer(&jb->root, key, strlen(key), NULL);
	return v ? JsonbPGetDatum(JsonbValueToJsonb(v)) : (Datum) 0;
}

/*
 * An order: mapped from the channel's format, through place_order().  The
 * payload is the row's (receiving may apply before it writes the row).
 */
static InboxOutcome
apply_order(const InboxRow *r, int64 *order_id, bool *moved)
{
	/* line_items -> lines; the buyer's name, contact and shipping address */
	static OsPlan map_shopify = {
		"SELECT (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('sku', li -> 'sku',"
		"               'qty', li -> 'quantity', 'price', li -> 'price') ORDER BY n)"
		"          FROM pg_catalog.jsonb_array_elements(i.payload -> 'line_items')"
		"               WITH ORDINALITY e(li, n)),"
		"       NULLIF(pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object("
		"           'name', NULLIF(pg_catalog.concat_ws(' ', i.payload #>> '{customer,first_name}',"
		"                                               i.payload #>> '{customer,last_name}'), ''),"
		"           'email', COALESCE(i.payload ->> 'email', i.payload #>> '{customer,email}'),"
		"           'phone', COALESCE(i.payload ->> 'phone', i.payload #>> '{customer,phone}'),"
		"           'shipping_address', i.payload -> 'shipping_address')), '{}')"
		"  FROM (SELECT $1 AS payload) i",
		1, {JSONBOID}
	};
	/* WooCommerce prices are numbers, possibly with more than two decimals */
	static OsPlan map_woocommerce = {
		"SELECT (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('sku', li -> 'sku',"
		"               'qty', li -> 'quantity', 'price',"
		"               CASE WHEN pg_catalog.jsonb_typeof(li -> 'price') = 'number'"
		"                    THEN pg_catalog.to_jsonb(pg_catalog.round((li ->> 'price')::numeric, 2)::text)"
		"                    ELSE li -> 'price' END) ORDER BY n)"
		"          FROM pg_catalog.jsonb_array_elements(i.payload -> 'line_items')"
		"               WITH ORDINALITY e(li, n)),"
		"       NULLIF(pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object("
		"           'name', NULLIF(pg_catalog.concat_ws(' ', i.payload #>> '{billing,first_name}',"
		"                                               i.payload #>> '{billing,last_name}'), ''),"
		"           'email', i.payload #>> '{billing,email}',"
		"           'phone', i.payload #>> '{billing,phone}',"
		"           'shipping_address', i.payload -> 'shipping')), '{}')"
		"  FROM (SELECT $1 AS payload) i",
		1, {JSONBOID}
	};
	static OsPlan existed = {
		"SELECT id FROM ordersync.orders WHERE channel = $1 AND external_id = $2",
		2, {TEXTOID, TEXTOID}
	};
	static OsPlan place = {
		"SELECT ordersync.place_order($1, $2, $3, $4)",
		4, {TEXTOID, TEXTOID, JSONBOID, JSONBOID}
	};
	Datum		payload = r->payload;

	/*
	 * Every query here is run as not read-only: a read-only one would not
	 * see what this batch applied before it.
	 */
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	bool		isnull;
	bool		had;

	if (strcmp(r->format, "shopify") == 0 || strcmp(r->format, "woocommerce") == 0)
	{
		(void) os_execute(strcmp(r->format, "shopify") == 0 ? &map_shopify : &map_woocommerce,
						  &payload, NULL, false, 1);
		values[2] = os_getdatum(0, 1, &isnull);
		values[2] = isnull ? (Datum) 0 : datumCopy(values[2], false, -1);
		values[3] = os_getdatum(0, 2, &isnull);
		if (!isnull)
			values[3] = datumCopy(values[3], false, -1);
	}
	else
	{
		/* the payload's own lines and customer ($1 -> 'lines'), no query */
		values[2] = object_field(DatumGetJsonbP(payload), "lines");
		values[3] = object_field(DatumGetJsonbP(payload), "customer");
		isnull = values[3] == (Datum) 0;
	}
	if (values[2] == (Datum) 0)
		values[2] = DirectFunctionCall1(jsonb_in, CStringGetDatum("[]"));	/* place_order says why */
	if (!isnull)
	{
		Jsonb	   *c = DatumGetJsonbP(values[3]);

		/* JSON null is no customer */
		isnull = JB_ROOT_IS_SCALAR(c) && JB_ROOT_COUNT(c) == 1 &&
			getIthJsonbValueFromContainer(&c->root, 0)->type == jbvNull;
	}
	nulls[3] = isnull ? 'n' : ' ';

	values[0] = CStringGetTextDatum(r->channel);
	values[1] = CStringGetTextDatum(r->external_id);
	had = os_execute(&existed, values, NULL, false, 1) > 0;
	(void) os_execute(&place, values, nulls, false, 1);
	*order_id = DatumGetInt64(os_getdatum(0, 1, &isnull));
	*moved = !had;
	return IN_APPLIED;
}

/*
 * The channel's own status word: ordersync and WooCommerce send it;
 * Shopify's order has a financial and a fulfilment status and a
 * cancellation time, made into one word here: "cancelled", "fulfilled" or
 * the financial status ("paid", "refunded"...).
 */
static char *
status_word(const InboxRow *r)
{
	static OsPlan word = {
		"SELECT CASE WHEN $2 = 'shopify' THEN"
		"         CASE WHEN i.topic = 'orders/cancelled'"
		"                   OR pg_catalog.jsonb_typeof(i.payload -> 'cancelled_at') = 'string'"
		"              THEN 'cancelled'"
		"              WHEN i.payload ->> 'fulfillment_status' = 'fulfilled' THEN 'fulfilled'"
		"              ELSE i.payload ->> 'financial_status' END"
		"       ELSE i.payload ->> 'status' END"
		"  FROM ordersync.inbox i WHERE i.id = $1",
		2, {INT8OID, TEXTOID}
	};
	Datum		values[2];

	values[0] = Int64GetDatum(r->id);
	values[1] = CStringGetTextDatum(r->format);
	if (os_execute(&word, values, NULL, false, 1) != 1)
		elog(ERROR, "ordersync: inbox row " INT64_FORMAT " disappeared", r->id);
	return os_gettext(0, 1);
}

/*
 * A status update: mapped by the channel's status map, compared with the
 * last applied version, then one step of the state machine.  *why says why
 * it is parked, failed or stale.
 */
static InboxOutcome
apply_status(const InboxRow *r, int64 *order_id, bool *moved, char **why)
{
	static OsPlan look = {
		"SELECT c.status_map ->> $3, o.id, o.status, v.version >= $4, v.version"
		"  FROM ordersync.channel c"
		"  LEFT JOIN ordersync.orders o ON o.channel = c.id AND o.external_id = $2"
		"  LEFT JOIN ordersync.inbox_version v ON v.channel = c.id AND v.external_id = $2"
		" WHERE c.id = $1",
		4, {TEXTOID, TEXTOID, TEXTOID, NUMERICOID}
	};
	static OsPlan set = {
		"SELECT ordersync.set_status($1, $2, $3)",
		3, {INT8OID, TEXTOID, TEXTOID}
	};
	static OsPlan record = {
		"INSERT INTO ordersync.inbox_version AS v (channel, external_id, version)"
		" VALUES ($1, $2, $3) ON CONFLICT (channel, external_id) DO UPDATE"
		" SET version = GREATEST(v.version, EXCLUDED.version)",
		3, {TEXTOID, TEXTOID, NUMERICOID}
	};
	char	   *word = status_word(r);
	char	   *mapped;
	char	   *current;
	bool		isnull;
	Datum		values[4];

	if (word == NULL)
	{
		*why = pstrdup("the payload has no status");
		return IN_FAILED;
	}
	values[0] = CStringGetTextDatum(r->channel);
	values[1] = CStringGetTextDatum(r->external_id);
	values[2] = CStringGetTextDatum(word);
	values[3] = r->version;
	if (os_execute(&look, values, NULL, false, 1) != 1)
	{
		*why = psprintf("channel \"%s\" does not exist any more", r->channel);
		return IN_FAILED;
	}
	mapped = os_gettext(0, 1);
	*order_id = DatumGetInt64(os_getdatum(0, 2, &isnull));
	if (isnull)
	{
		*order_id = 0;
		*why = psprintf("order \"%s\" of channel \"%s\" is not imported yet", r->external_id, r->channel);
		return IN_PARKED;
	}
	current = os_gettext(0, 3);
	if (os_getbool(0, 4))
	{
		*why = psprintf("version %s is not newer than version %s, the last applied",
						DatumGetCString(DirectFunctionCall1(numeric_out, r->version)),
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5));
		return IN_STALE;
	}
	if (mapped == NULL)
	{
		*why = psprintf("the status map of channel \"%s\" has no key \"%s\"; add it with ordersync.add_channel()",
						r->channel, word);
		return IN_FAILED;
	}
	if (strcmp(mapped, current) != 0)
	{
		Datum		sv[3];

		sv[0] = Int64GetDatum(*order_id);
		sv[1] = CStringGetTextDatum(mapped);
		sv[2] = CStringGetTextDatum(psprintf("channel %s: %s (event %s, inbox %lld)", r->channel,
											 word, r->event_id, (long long) r->id));
		(void) os_execute(&set, sv, NULL, false, 1);
		*moved = true;
	}
	values[2] = r->version;
	(void) os_execute(&record, values, NULL, false, 0);
	return IN_APPLIED;
}

/*
 * Apply one row in a subtransaction; its outcome is written to the row in
 * the caller's transaction.  Errors the row causes become its outcome;
 * a cancel or anything transient goes on as usual or is tried again.
 */
static InboxOutcome
apply_row(const InboxRow *r, int64 *order_id, bool *moved, char **why)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile InboxOutcome outcome = IN_FAILED;

	*order_id = 0;
	*moved = false;
	*why = NULL;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		if (strcmp(r->kind, "order") == 0)
			outcome = apply_order(r, order_id, moved);
		else
			outcome = apply_status(r, order_id, moved, why);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(cxt);
		e = CopyErrorData();
		if (e->sqlerrcode == ERRCODE_QUERY_CANCELED)
			PG_RE_THROW();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;

		*why = error_text(e);
		*moved = false;
		if (e->sqlerrcode == ERRCODE_OS_ILLEGAL_TRANSITION && strcmp(r->kind, "status") == 0)
			outcome = IN_PARKED;
		else if (transient(e->sqlerrcode))
			outcome = IN_RETRY;
		else
		{
			outcome = IN_FAILED;
			if (strcmp(r->kind, "order") == 0)
				emit_import_failed(r, e);
		}
		FreeErrorData(e);
	}
	PG_END_TRY();
	return outcome;
}

/* the outcome a row is kept with: one out of attempts fails */
static InboxOutcome
settle(const InboxRow *r, InboxOutcome outcome, char **why)
{
	if ((outcome == IN_PARKED || outcome == IN_RETRY) && r->attempts + 1 >= inbox_max_attempts)
	{
		*why = psprintf("gave up after %d attempts (ordersync.inbox_max_attempts): %s",
						r->attempts + 1, *why ? *why : "");
		outcome = IN_FAILED;
		if (strcmp(r->kind, "order") == 0)
			ereport(LOG,
					(errmsg("ordersync: inbox row " INT64_FORMAT " of channel \"%s\" failed: %s",
							r->id, r->channel, *why)));
	}
	return outcome;
}

/* write what became of the row; a row out of attempts fails */
static InboxOutcome
record_outcome(const InboxRow *r, InboxOutcome outcome, int64 order_id, char *why)
{
	static OsPlan upd = {
		"UPDATE ordersync.inbox SET state = $2, error = $3, order_id = $4,"
		" attempts = attempts + 1, attempted_at = pg_catalog.now(),"
		" applied_at = CASE WHEN $2 = 'applied' THEN pg_catalog.now() END"
		" WHERE id = $1",
		4, {INT8OID, TEXTOID, TEXTOID, INT8OID}
	};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	outcome = settle(r, outcome, &why);
	values[0] = Int64GetDatum(r->id);
	values[1] = CStringGetTextDatum(outcome_state[outcome]);
	values[2] = why ? CStringGetTextDatum(why) : (Datum) 0;
	nulls[2] = why ? ' ' : 'n';
	values[3] = Int64GetDatum(order_id);
	nulls[3] = order_id ? ' ' : 'n';
	(void) os_execute(&upd, values, nulls, false, 0);
	return outcome;
}

static void
count(InboxCounts *c, InboxOutcome o)
{
	switch (o)
	{
		case IN_APPLIED:
			c->applied++;
			break;
		case IN_STALE:
			c->stale++;
			break;
		case IN_PARKED:
			c->parked++;
			break;
		case IN_FAILED:
			c->failed++;
			break;
		case IN_RETRY:
			break;
	}
}

/* rows of the current SPI result (columns as in ROW_COLUMNS) */
#define ROW_COLUMNS "id, channel, event_id, kind, format, external_id, version, attempts, state, payload"

static InboxRow *
fetch_rows(uint64 n)
{
	InboxRow   *rows = palloc0(sizeof(InboxRow) * Max(n, 1));

	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;

		rows[i].id = os_getint64(i, 1);
		rows[i].channel = os_gettext(i, 2);
		rows[i].event_id = os_gettext(i, 3);
		rows[i].kind = os_gettext(i, 4);
		rows[i].format = os_gettext(i, 5);
		rows[i].external_id = os_gettext(i, 6);
		rows[i].version = os_getdatum(i, 7, &isnull);
		rows[i].has_version = !isnull;
		if (!isnull)
			rows[i].version = datumCopy(rows[i].version, false, -1);
		rows[i].attempts = DatumGetInt32(os_getdatum(i, 8, &isnull));
		rows[i].was_received = strcmp(os_gettext(i, 9), "received") == 0;
		rows[i].payload = datumCopy(os_getdatum(i, 10, &isnull), false, -1);
	}
	return rows;
}

/*
 * The order moved: its parked updates may fit now.  Tried in version order
 * until a round moves nothing.
 */
static void
retry_parked(const char *channel, const char *external_id, InboxCounts *c)
{
	static OsPlan parked = {
		"SELECT " ROW_COLUMNS " FROM ordersync.inbox"
		" WHERE channel = $1 AND external_id = $2 AND state = 'parked'"
		" ORDER BY version, id",
		2, {TEXTOID, TEXTOID}
	};
	Datum		values[2];
	bool		progress = true;

	values[0] = CStringGetTextDatum(channel);
	values[1] = CStringGetTextDatum(external_id);
	while (progress)
	{
		uint64		n = os_execute(&parked, values, NULL, false, 0);
		InboxRow   *rows = fetch_rows(n);

		progress = false;
		for (uint64 i = 0; i < n; i++)
		{
			int64		order_id;
			bool		moved;
			char	   *why;
			InboxOutcome o = apply_row(&rows[i], &order_id, &moved, &why);

			o = record_outcome(&rows[i], o, order_id, why);
			count(c, o);
			if (o == IN_PARKED)
				c->parked--;	/* still parked: not a new outcome */
			if (o != IN_PARKED)
				progress = true;
			CHECK_FOR_INTERRUPTS();
		}
	}
}

/*
 * A transaction-level advisory lock of class on hashtext(a || '/' || b),
 * as SQL's pg_advisory_xact_lock(class, hashtext(...)) in reconcile().
 * Without wait, false when another transaction holds it.
 */
static bool
inbox_lock(uint32 class, const char *a, const char *b, bool wait)
{
	LOCKTAG		tag;
	int32		h;

	h = DatumGetInt32(DirectFunctionCall1Coll(hashtext, DEFAULT_COLLATION_OID,
											  CStringGetTextDatum(psprintf("%s/%s", a, b))));
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, class, (uint32) h, 2);
	return LockAcquire(&tag, ExclusiveLock, false, !wait) != LOCKACQUIRE_NOT_AVAIL;
}

/* the order's lock, if no other applier holds it; held until commit */
static bool
order_lock(const char *channel, const char *external_id)
{
	return inbox_lock(INBOX_LOCK_CLASS, channel, external_id, false);
}

/*
 * Apply one order's open rows (received and parked) in version order,
 * under its lock: read after the lock is held, so what another applier
 * committed meanwhile is seen.  When the order moved, its parked rows are
 * tried again after its last row.
 */
static void
apply_order_rows(const char *channel, const char *external_id, InboxCounts *c)
{
	static OsPlan open_rows = {
		"SELECT " ROW_COLUMNS " FROM ordersync.inbox"
		" WHERE channel = $1 AND external_id = $2 AND state IN ('received', 'parked')"
		" ORDER BY kind = 'status', version NULLS FIRST, id",
		2, {TEXTOID, TEXTOID}
	};
	Datum		values[2];
	uint64		n;
	InboxRow   *rows;
	bool		moved_order = false;

	values[0] = CStringGetTextDatum(channel);
	values[1] = CStringGetTextDatum(external_id);
	n = os_execute(&open_rows, values, NULL, false, 0);
	rows = fetch_rows(n);
	for (uint64 i = 0; i < n; i++)
	{
		InboxRow   *r = &rows[i];
		int64		order_id;
		bool		moved;
		char	   *why;
		InboxOutcome o;

		o = apply_row(r, &order_id, &moved, &why);
		o = record_outcome(r, o, order_id, why);
		count(c, o);
		if (r->was_received)
			c->processed++;
		moved_order |= moved;
		CHECK_FOR_INTERRUPTS();
	}
	if (moved_order)
		retry_parked(channel, external_id, c);
}

/*
 * Apply up to max_orders of the orders (of this part) with the oldest
 * received rows, each whole and in version order (so a batch never
 * applies a version of an order while an older one waits outside it),
 * skipping orders another applier holds; then parked rows that are due.
 * Caller is connected to SPI.
 *
 * ordersyncd and the worker apply one order per transaction: place_order()
 * locks an order's stock rows in a fixed order, but two transactions of
 * several orders each could lock them in opposite orders (a deadlock), and
 * would hold the stock rows of all their orders until commit.
 */
static void
apply_batch(int max_orders, int part, int parts, InboxCounts *c)
{
	/*
	 * Both walk a partial index (inbox_received_idx, inbox_parked_idx), so
	 * they cost what is open, never what the inbox keeps; an order with
	 * several open rows may come twice (apply_order_rows finds it done).
	 */
	static OsPlan batch = {
		"SELECT channel, external_id FROM ordersync.inbox"
		" WHERE state = 'received'"
		"   AND ($3 = 1 OR (pg_catalog.hashtext(channel || '/' || external_id)::bigint + 2147483648) % $3 = $2)"
		" ORDER BY id LIMIT $1",
		3, {INT4OID, INT4OID, INT4OID}
	};
	static OsPlan due = {
		"SELECT channel, external_id FROM ordersync.inbox"
		" WHERE state = 'parked' AND attempted_at <= pg_catalog.now() - interval '2 seconds'"
		"   AND attempted_at + pg_catalog.make_interval(secs =>"
		"       LEAST(pg_catalog.power(2, LEAST(attempts, 30)), $2)) <= pg_catalog.now()"
		"   AND ($4 = 1 OR (pg_catalog.hashtext(channel || '/' || external_id)::bigint + 2147483648) % $4 = $3)"
		" ORDER BY attempted_at LIMIT $1",
		4, {INT4OID, FLOAT8OID, INT4OID, INT4OID}
	};
	static TimestampTz last_due = 0;	/* parked rows wait 2 s at least */
	TimestampTz start = GetCurrentTimestamp();
	Datum		v[4];
	uint64		n;
	char	  **keys;
	int			done = 0;

	for (int pass = 0; pass < 2; pass++)
	{
		if (pass == 1)
		{
			if (!TimestampDifferenceExceeds(last_due, start, 1000))
				break;
			last_due = start;
		}
		/* a few more than needed: some may be held by another applier */
		v[0] = Int32GetDatum(max_orders + 8);
		if (pass == 0)
		{
			v[1] = Int32GetDatum(part);
			v[2] = Int32GetDatum(parts);
			n = os_execute(&batch, v, NULL, false, 0);
		}
		else
		{
			v[1] = Float8GetDatum((double) INBOX_BACKOFF_MAX_S);
			v[2] = Int32GetDatum(part);
			v[3] = Int32GetDatum(parts);
			n = os_execute(&due, v, NULL, false, 0);
		}
		keys = palloc(sizeof(char *) * 2 * Max(n, 1));
		for (uint64 i = 0; i < n; i++)
		{
			keys[2 * i] = os_gettext(i, 1);
			keys[2 * i + 1] = os_gettext(i, 2);
		}
		for (uint64 i = 0; i < n; i++)
		{
			if ((i > 0 && strcmp(keys[2 * i], keys[2 * i - 2]) == 0 &&
				 strcmp(keys[2 * i + 1], keys[2 * i - 1]) == 0) ||
				!order_lock(keys[2 * i], keys[2 * i + 1]))
				continue;		/* just done, or another applier has it */
			if (pass == 0)
				apply_order_rows(keys[2 * i], keys[2 * i + 1], c);
			else
				retry_parked(keys[2 * i], keys[2 * i + 1], c);

			/* the locks of every order placed are held until commit: keep it short */
			if (++done >= max_orders ||
				TimestampDifferenceExceeds(start, GetCurrentTimestamp(), INBOX_BATCH_MS))
				return;
		}
	}
}

/*
 * Receiving applies what it keeps, in its own transaction, when no other
 * applier holds the order.  A new order with nothing else of it open is
 * applied first and its row written once, with the outcome: the common
 * case, and the cheapest (one row version, no entries in the indexes of
 * open rows).  Otherwise the row is written received and the order's open
 * rows are applied as inbox_apply() applies them.  Lock waits are bounded
 * here (INBOX_RECEIPT_LOCK_TIMEOUT_MS, or the caller's shorter lock_timeout):
 * what cannot be applied now stays received, for the appliers.  Returns
 * the row's state (*id its id), or NULL when the same event was written
 * meanwhile by a writer that does not take the event's lock.
 */
static const char *
apply_on_receipt(const Receipt *rc, int64 *id)
{
	static OsPlan open_rows = {
		"SELECT 1 FROM ordersync.inbox WHERE channel = $1 AND external_id = $2"
		" AND state IN ('received', 'parked') LIMIT 1",
		2, {TEXTOID, TEXTOID}
	};
	static OsPlan state_of = {
		"SELECT state FROM ordersync.inbox WHERE id = $1", 1, {INT8OID}
	};
	Datum		values[2];
	const char *state = NULL;
	int			nest;

	if (!order_lock(rc->channel, rc->external_id))
	{
		*id = receipt_write(rc, 0, NULL, NULL, 0);
		return *id ? outcome_state[IN_RETRY] : NULL;
	}
	nest = NewGUCNestLevel();
	if (LockTimeout == 0 || LockTimeout > INBOX_RECEIPT_LOCK_TIMEOUT_MS)
		(void) set_config_option("lock_timeout", CppAsString2(INBOX_RECEIPT_LOCK_TIMEOUT_MS),
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);

	values[0] = CStringGetTextDatum(rc->channel);
	values[1] = CStringGetTextDatum(rc->external_id);
	if (strcmp(rc->kind, "order") == 0 && os_execute(&open_rows, values, NULL, false, 1) == 0)
	{
		InboxRow	r;
		int64		order_id;
		bool		moved;
		char	   *why;
		InboxOutcome o;

		memset(&r, 0, sizeof(r));
		r.id = inbox_next_id();
		r.channel = rc->channel;
		r.event_id = rc->event_id;
		r.kind = rc->kind;
		r.format = rc->format;
		r.external_id = rc->external_id;
		r.was_received = true;
		r.payload = JsonbPGetDatum(rc->payload);
		o = settle(&r, apply_row(&r, &order_id, &moved, &why), &why);
		if (receipt_write(rc, r.id, outcome_state[o], why, order_id) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("event \"%s\" of channel \"%s\" was written while it was being applied",
							rc->event_id, rc->channel),
					 errdetail("Something wrote ordersync.inbox without ordersync's receiving functions."),
					 errhint("Send it again: it is then a repeat.")));
		*id = r.id;
		state = outcome_state[o];
	}
	else if ((*id = receipt_write(rc, 0, NULL, NULL, 0)) != 0)
	{
		InboxCounts c = {0};
		char	   *s;

		apply_order_rows(rc->channel, rc->external_id, &c);
		values[0] = Int64GetDatum(*id);
		(void) os_execute(&state_of, values, NULL, false, 1);
		s = os_gettext(0, 1);
		/* a constant: the caller reads it after SPI_finish() */
		for (int i = 0; i < lengthof(outcome_state); i++)
			if (strcmp(s, outcome_state[i]) == 0)
				state = outcome_state[i];
	}
	AtEOXact_GUC(true, nest);
	return state;
}

/*
 * inbox_apply(max_orders, part, parts) -> (processed, applied, stale, parked, failed)
 */
Datum
ordersync_inbox_apply(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	InboxCounts c = {0};
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	int			max_orders = PG_ARGISNULL(0) ? 1 : PG_GETARG_INT32(0);
	int			part = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1);
	int			parts = PG_ARGISNULL(2) ? 1 : PG_GETARG_INT32(2);

	if (max_orders < 1 || max_orders > 100000)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("max_orders must be between 1 and 100000"),
				 errdetail("inbox_apply() got %d.", max_orders),
				 errhint("Call it again for more; each call is one transaction.")));
	if (parts < 1 || parts > 1024 || part < 0 || part >= parts)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("part must be between 0 and parts - 1, and parts between 1 and 1024"),
				 errdetail("inbox_apply() got part %d of %d.", part, parts),
				 errhint("Run one applier per part, 0 to parts - 1, or leave both out.")));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "ordersync: inbox_apply must return a record");

	SPI_connect();
	apply_batch(max_orders, part, parts, &c);
	SPI_finish();

	values[0] = Int32GetDatum(c.processed);
	values[1] = Int32GetDatum(c.applied);
	values[2] = Int32GetDatum(c.stale);
	values[3] = Int32GetDatum(c.parked);
	values[4] = Int32GetDatum(c.failed);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/* ---- pruning --------------------------------------------------------------- */

/* returns the rows deleted; caller is connected to SPI */
static int64
prune(void)
{
	static OsPlan give_up = {
		"UPDATE ordersync.inbox SET state = 'failed', attempted_at = pg_catalog.now(),"
		" error = 'parked for longer than ordersync.inbox_retention: ' || COALESCE(error, '')"
		" WHERE state = 'parked' AND received_at < pg_catalog.now() - pg_catalog.make_interval(secs => $1)",
		1, {FLOAT8OID}
	};
	static OsPlan del = {
		"DELETE FROM ordersync.inbox WHERE id IN (SELECT id FROM ordersync.inbox"
		" WHERE received_at < pg_catalog.now() - pg_catalog.make_interval(secs => $1)"
		"   AND state IN ('applied', 'stale', 'failed') LIMIT 10000)",
		1, {FLOAT8OID}
	};
	Datum		v = Float8GetDatum((double) inbox_retention);
	int64		total = 0;
	int			n;

	(void) os_execute(&give_up, &v, NULL, false, 0);
	do
	{
		n = os_execute(&del, &v, NULL, false, 0);
		total += n;
		CHECK_FOR_INTERRUPTS();
	} while (n == 10000);
	return total;
}

/*
 * prune_inbox() -> rows deleted
 */
Datum
ordersync_prune_inbox(PG_FUNCTION_ARGS)
{
	int64		n;

	SPI_connect();
	n = prune();
	SPI_finish();
	PG_RETURN_INT64(n);
}

/* ---- the background worker's tick ------------------------------------------ */

/* whether this database has ordersync at a version with the inbox */
static bool
inbox_installed(void)
{
	if (SPI_execute("SELECT 1 WHERE pg_catalog.to_regclass('ordersync.inbox') IS NOT NULL",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "ordersync: cannot look up ordersync.inbox");
	return SPI_processed > 0;
}

/* what one step of the worker does, and whether there may be more */
typedef struct InboxStep
{
	bool		pruning;
	bool		more;
} InboxStep;

static void
inbox_step(void *arg)
{
	InboxStep  *st = (InboxStep *) arg;

	if (!inbox_installed())
		return;
	(void) SPI_execute("SET LOCAL search_path = pg_catalog, pg_temp", false, 0);
	if (st->pruning)
		(void) prune();
	else
	{
		InboxCounts c = {0};

		/*
		 * One order per transaction (see apply_batch), committed without
		 * waiting for the disk: the order and its inbox row's outcome are
		 * one transaction, so a crash that loses it leaves the row
		 * received, and it is applied again.
		 */
		(void) SPI_execute("SET LOCAL synchronous_commit = off", false, 0);
		apply_batch(1, 0, 1, &c);
		st->more = c.processed > 0 || c.applied + c.stale + c.failed > 0;
	}
}

/*
 * One step in a transaction of its own: a batch, or the prune.  Returns
 * whether there may be more; never raises (logged, and the next tick tries
 * again).
 */
static bool
tick_step(bool pruning)
{
	InboxStep	st = {pruning, false};

	return os_worker_step(pruning ? "ordersync: pruning the inbox" : "ordersync: applying the inbox",
						  inbox_step, &st) && st.more;
}

long
os_inbox_tick(void)
{
	static TimestampTz last_apply = 0;
	static TimestampTz last_prune = 0;
	TimestampTz now = GetCurrentTimestamp();

	if (inbox_interval <= 0)
		return 3600 * 1000L;
	if (last_apply == 0 || TimestampDifferenceExceeds(last_apply, now, inbox_interval * 1000))
	{
		last_apply = now;
		while (tick_step(false))
			CHECK_FOR_INTERRUPTS();
	}
	if (last_prune == 0 || TimestampDifferenceExceeds(last_prune, now, 60 * 1000))
	{
		last_prune = now;
		(void) tick_step(true);
	}
	return inbox_interval * 1000L;
}
