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

PG_MODULE_MAGIC;

/* how long a pending order's reservation lasts, in seconds */
int			ordersync_reservation_ttl = 900;

/* who is acting, as the application names it; recorded in history */
char	   *ordersync_actor = NULL;

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

	os_worker_init();			/* its GUCs, and the worker when preloaded */

	MarkGUCPrefixReserved("ordersync");

	os_transition_cache_init();
}
