/*-------------------------------------------------------------------------
 *
 * ordersync.c
 *	  Module entry point of the ordersync extension: defines its GUCs.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "ordersync.h"
#include "outlook.h"

PG_MODULE_MAGIC;

/* how long a pending order's reservation lasts, in seconds */
int			ordersync_reservation_ttl = 900;

/* who is acting, as the application names it; recorded in history */
char	   *ordersync_actor = NULL;

/* limits of place_order()'s customer object: jsonb text bytes, nesting */
int			ordersync_max_customer_bytes = 16384;
int			ordersync_max_customer_depth = 8;

/* most units of a hot SKU a backend leases ahead (allocate.c); 0: none */
int			ordersync_hot_lease = 32;

void		_PG_init(void);

void
_PG_init(void)
{
	DefineCustomIntVariable("ordersync.reservation_ttl",
							"How long a pending order holds its stock before it expires.",
							"Set it per session or per channel connection to vary it.",
							&ordersync_reservation_ttl,
							900, 1, 30 * 24 * 3600,
							PGC_USERSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomStringVariable("ordersync.actor",
							   "Who makes the changes of this session, as the application names them (recorded in ordersync.history).",
							   "Empty means the database role.",
							   &ordersync_actor,
							   "",
							   PGC_USERSET, 0,
							   NULL, NULL, NULL);

	/*
	 * The customer object is stored with the order and copied into every
	 * order event, so its size bounds what each event of the order costs in
	 * WAL, in the relay and in every sink.  Superuser-only (PGC_SUSET): the
	 * application role, whose input these limits guard against, must not
	 * be able to raise them with SET or ALTER ROLE ... SET.
	 */
	DefineCustomIntVariable("ordersync.max_customer_bytes",
							"Largest customer object place_order() accepts, as jsonb text in bytes.",
							NULL,
							&ordersync_max_customer_bytes,
							16384, 64, 1024 * 1024,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ordersync.max_customer_depth",
							"Deepest nesting of objects and arrays in the customer object place_order() accepts.",
							"The customer object itself is level 1.",
							&ordersync_max_customer_depth,
							8, 1, 64,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ordersync.hot_lease",
							"Most units of a hot SKU a session takes ahead into a stock row of its own.",
							"Its next orders of the SKU take from that row, which no other buyer waits for; 0 turns leases off.",
							&ordersync_hot_lease,
							32, 0, 1000000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	os_worker_init();			/* its GUCs, and the worker when preloaded */
	os_autohot_init();			/* its GUCs, and shared memory when preloaded */
	os_outlook_init();			/* stock-out predictions, peak preparation */
	os_compliance_init();		/* retention GUCs (compliance.c) */
	os_stuck_init();			/* ordersync.stuck_interval */
	os_refusal_init();			/* refusal counters in shared memory when preloaded */
	os_hot_figures_init();		/* hot SKUs' event figures, shared when preloaded */

	MarkGUCPrefixReserved("ordersync");

	os_transition_cache_init();
}
