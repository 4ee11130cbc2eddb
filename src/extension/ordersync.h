/*-------------------------------------------------------------------------
 *
 * ordersync.h
 *	  Declarations shared by the C parts of the ordersync extension: error
 *	  codes, GUCs, SPI plan cache, history and event writers, stock moves.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ORDERSYNC_H
#define ORDERSYNC_H

#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "datatype/timestamp.h"
#include "utils/jsonb.h"

/*
 * Our SQLSTATEs.  Class "OS" is not used by PostgreSQL, so a client can tell
 * ordersync's refusals from everything else by the first two characters.
 */
#define ERRCODE_OS_INSUFFICIENT_STOCK		MAKE_SQLSTATE('O','S','0','0','1')
#define ERRCODE_OS_ILLEGAL_TRANSITION		MAKE_SQLSTATE('O','S','0','0','2')
#define ERRCODE_OS_IMPORT_CONFLICT			MAKE_SQLSTATE('O','S','0','0','3')
#define ERRCODE_OS_INVALID_INPUT			MAKE_SQLSTATE('O','S','0','0','4')
#define ERRCODE_OS_APPEND_ONLY				MAKE_SQLSTATE('O','S','0','0','5')

/* the outlook: forecasts on the shop's own data (outlook.h) */
#define ERRCODE_OS_BAD_BUCKET				MAKE_SQLSTATE('O','S','0','1','0')
#define ERRCODE_OS_BAD_HORIZON				MAKE_SQLSTATE('O','S','0','1','1')
#define ERRCODE_OS_TOO_LITTLE_HISTORY		MAKE_SQLSTATE('O','S','0','1','2')
#define ERRCODE_OS_BAD_DEMAND				MAKE_SQLSTATE('O','S','0','1','3')
#define ERRCODE_OS_BAD_METHOD				MAKE_SQLSTATE('O','S','0','1','4')
#define ERRCODE_OS_BAD_LEAD_TIME			MAKE_SQLSTATE('O','S','0','1','5')
#define ERRCODE_OS_BAD_SERVICE_LEVEL		MAKE_SQLSTATE('O','S','0','1','6')

/* compliance (compliance.c, history_chain.c and the 0.5.0 SQL): OS030-OS039 */
#define ERRCODE_OS_ORDER_OPEN				MAKE_SQLSTATE('O','S','0','3','0')
#define ERRCODE_OS_BAD_SELECTOR				MAKE_SQLSTATE('O','S','0','3','1')
#define ERRCODE_OS_LEGAL_HOLD				MAKE_SQLSTATE('O','S','0','3','2')
#define ERRCODE_OS_UNKNOWN_ORDER			MAKE_SQLSTATE('O','S','0','3','3')
#define ERRCODE_OS_BAD_MARKET				MAKE_SQLSTATE('O','S','0','3','4')
#define ERRCODE_OS_REASON_REQUIRED			MAKE_SQLSTATE('O','S','0','3','5')
#define ERRCODE_OS_BAD_RETENTION			MAKE_SQLSTATE('O','S','0','3','6')
#define ERRCODE_OS_NOT_HELD					MAKE_SQLSTATE('O','S','0','3','7')
#define ERRCODE_OS_HISTORY_CHAIN			MAKE_SQLSTATE('O','S','0','3','8')

/* analytics (issue 13): OS020-OS029; OS020 and OS021 are raised in SQL */
#define ERRCODE_OS_UNKNOWN_STATUS			MAKE_SQLSTATE('O','S','0','2','0')
#define ERRCODE_OS_INVALID_SLA				MAKE_SQLSTATE('O','S','0','2','1')
#define ERRCODE_OS_FLUSH_NOT_PREPARABLE		MAKE_SQLSTATE('O','S','0','2','2')

/* GUCs (ordersync.c) */
extern int	ordersync_reservation_ttl;
extern char *ordersync_actor;
extern int	ordersync_max_customer_bytes;
extern int	ordersync_max_customer_depth;
extern int	ordersync_hot_lease;

/*
 * Stock rows of a hot SKU numbered from here on are leases, one per
 * backend (LEASE_BASE + its PGPROC number): see allocate.c.  Above the
 * largest bucket count (sku_buckets_range).
 */
#define LEASE_BASE 1024

/*
 * A prepared statement kept for the life of the backend.  Declare one per
 * call site as "static OsPlan p = {SQL, nargs, {types}}" and run it with
 * os_execute(); the plan is made on first use.
 */
#define OS_PLAN_MAX_ARGS 12
typedef struct OsPlan
{
	const char *sql;
	int			nargs;
	Oid			argtypes[OS_PLAN_MAX_ARGS];
	SPIPlanPtr	plan;
} OsPlan;

/* spi.c */
extern void os_prepare(OsPlan *p);
extern int	os_execute(OsPlan *p, Datum *values, const char *nulls,
					   bool read_only, long count);
extern bool os_getbool(int row, int col);
extern int64 os_getint64(int row, int col);
extern char *os_gettext(int row, int col);
extern Datum os_getdatum(int row, int col, bool *isnull);

/* events.c: JSON writing and the two ways a change is recorded */
extern void json_add_key(StringInfo buf, bool *first, const char *key);
extern void json_add_text(StringInfo buf, bool *first, const char *key, const char *val);
extern void json_add_int64(StringInfo buf, bool *first, const char *key, int64 val);
extern void json_add_null_or_int64(StringInfo buf, bool *first, const char *key,
								   int64 val, bool isnull);
extern void json_add_jsonb(StringInfo buf, bool *first, const char *key, Jsonb *val);
extern void json_add_timestamptz(StringInfo buf, bool *first, const char *key,
								 Datum val, bool isnull);
extern void os_emit_event(const char *type, const char *subject_kind,
						  const char *subject_id, StringInfo data);
extern void os_write_history(const char *action, int64 order_id, bool has_order,
							 const char *from_status, const char *to_status,
							 const char *sku, const char *location, int64 qty,
							 bool has_qty, const char *reason);
extern void os_emit_order_event(const char *type, HeapTuple order, TupleDesc desc,
								const char *previous_status, const char *reason);

/* an order line as placed, normalized (place_order.c) */
typedef struct OrderLine
{
	int			line_no;		/* 1-based, as placed */
	char	   *sku;
	int64		qty;
	char	   *price;			/* normalized: "19.90" */
} OrderLine;

/* stock figures of one row, or summed over a location's buckets */
typedef struct StockFigures
{
	int64		on_hand;
	int64		reserved;
	int64		available;
} StockFigures;

/* stock.c */
extern void os_stock_update(const char *sku, const char *location, int bucket,
							int64 d_on_hand, int64 d_reserved, StockFigures *row);
extern void os_location_figures(const char *sku, const char *location,
								StockFigures *out);
extern void os_stock_record(const char *action, const char *event_type,
							int64 order_id, bool has_order, const char *sku,
							const char *location, int64 qty,
							const StockFigures *fig, const char *reason);
extern bool os_sku_available(const char *sku, int64 *available);

/* hot_figures.c */
extern int	ordersync_hot_figures_age;
extern void os_hot_figures_init(void);
extern bool os_hot_figures_reserve(const char *sku, const char *location,
								   int64 qty, StockFigures *out);
extern void os_hot_figures_keep(const char *sku, const char *location,
								const StockFigures *fig);
extern void os_stock_thresholds(const char *sku, int64 after, int64 taken,
								int64 threshold, bool has_threshold);
extern void os_stock_overflow(const char *sku, const char *location,
							  const char *figure, int64 have,
							  int64 add) pg_attribute_noreturn();
extern void os_stock_out_of_range(const char *sku, const char *location,
								  const char *what,
								  const char *value) pg_attribute_noreturn();
extern void os_apply_effect(const char *effect, int64 order_id, const char *reason);
extern void os_require_location(const char *location);

/* args.c */
extern void os_null_argument(const char *func, const char *arg,
							 const char *hint) pg_attribute_noreturn();
extern void os_check_text(const char *func, const char *arg, const char *s);
extern char *os_required_text_arg(FunctionCallInfo fcinfo, int n, const char *name);
extern int64 os_required_qty_arg(FunctionCallInfo fcinfo, int n, int64 min);
extern void os_unknown_sku(const char *sku) pg_attribute_noreturn();
extern void os_unknown_channel(const char *channel) pg_attribute_noreturn();

/* allocate.c */
extern void os_reserve_lines(int64 order_id, OrderLine *lines, int n,
							 bool allow_split);

/* state_machine.c */
extern void os_transition_cache_init(void);
extern int	os_expire_due(int limit);

/* worker.c */
extern void os_worker_init(void);
extern bool os_worker_step(const char *activity, void (*step) (void *arg), void *arg);

/* history_chain.c: rows without an order lock their chain before the INSERT */
extern void os_history_chain_lock(const char *sku);

/* compliance.c: retention by market, run by the worker */
extern void os_compliance_init(void);
extern long os_retention_tick(void);

/* hot_sku.c */
extern void os_rebucket(const char *sku, int buckets);
extern bool os_hot_lock(const char *sku, int *buckets, char **source);
extern void os_hot_change(const char *sku, int from, int to, const char *source,
						  const char *reason);

/* autohot.c: its worker (worker.c) ticks every AUTOHOT_TICK_MS when auto-hot is on */
#define AUTOHOT_TICK_MS 250
extern bool ordersync_auto_hot;
extern void os_autohot_init(void);
extern TimestampTz os_autohot_clock(const char *sku);
extern void os_autohot_waited(const char *sku, TimestampTz started);
extern void os_autohot_busy(const char *sku);
extern void os_autohot_tick(void);

/* refusal.c: OS001 refusals counted in shared memory (demand turned away) */
extern void os_refusal_init(void);
extern void os_refusal_count(const char *sku, int64 requested, int64 available);
extern void os_refusal_tick(void);

/* stuck.c: orders stuck past their status's SLA */
extern void os_stuck_init(void);
extern long os_stuck_tick(TimestampTz *last);

#endif							/* ORDERSYNC_H */
