/*-------------------------------------------------------------------------
 *
 * inbox.h
 *	  What the module and the background worker call for the inbox of
 *	  channel webhooks (inbox.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ORDERSYNC_INBOX_H
#define ORDERSYNC_INBOX_H

/* its GUCs; called from _PG_init through os_worker_init() */
extern void os_inbox_init(void);

/*
 * Applies received rows when ordersync.inbox_interval has passed, prunes
 * once a minute; each step in transactions of its own, never raises.
 * Returns how long the worker may sleep before the next tick, in ms.
 */
extern long os_inbox_tick(void);

#endif							/* ORDERSYNC_INBOX_H */
