/*-------------------------------------------------------------------------
 *
 * rollup.h
 *	  What the background worker (worker.c) calls to keep the rollups of
 *	  ordersync.history current; the rollups themselves are in rollup.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ORDERSYNC_ROLLUP_H
#define ORDERSYNC_ROLLUP_H

/* one refresh, in transactions of its own; never raises an error */
extern void os_rollup_tick(void);

#endif							/* ORDERSYNC_ROLLUP_H */
