/*
 * pgerr.h — turn server errors into advice.
 *
 * The relay meets a handful of configuration mistakes again and again
 * (wal_level, wal2json not installed or not allowed as an output plugin,
 * missing REPLICATION privilege, slot in use or missing). This maps the
 * server's SQLSTATE/message to "what happened, how to fix it" and to
 * whether retrying could help.
 */
#ifndef ORDERSYNCD_PGERR_H
#define ORDERSYNCD_PGERR_H

#include <stdbool.h>
#include <stddef.h>

struct pgerr_advice
{
	bool		transient;		/* retrying later may succeed */
	const char *hint;			/* what the user should do ("" if nothing specific) */
};

/*
 * sqlstate may be NULL (connection-level failures carry none).
 * slot is used in the advice text.
 */
struct pgerr_advice pgerr_classify(const char *sqlstate, const char *message);

#endif
