/*
 * snapshot.h — the initial snapshot of open orders (--create-slot --snapshot).
 */
#ifndef ORDERSYNCD_SNAPSHOT_H
#define ORDERSYNCD_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "options.h"
#include "relay.h"

#define SNAPSHOT_ERROR (-1)			/* query/connection problem */
#define SNAPSHOT_SINK_ERROR (-2)	/* a sink failed */

/*
 * Read the open orders as of the slot's exported snapshot and emit one
 * order.snapshot event each, ids "<consistent point>/S<n>", then make them
 * durable. Must run before anything else is sent on the replication
 * connection, or the exported snapshot is gone.
 */
int snapshot_emit(const struct options *o, struct relay *r, const char *snapshot_name,
				  uint64_t consistent_point, char *err, size_t errlen);

#endif
