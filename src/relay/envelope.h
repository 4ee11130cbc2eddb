/*
 * envelope.h — CloudEvents 1.0 JSON envelopes, one per line.
 *
 * id is "<commit LSN>/<ordinal>": the commit LSN names the transaction and
 * the ordinal counts the events the relay emitted in it (from 1), so a
 * replayed transaction produces byte-identical ids and consumers can dedupe.
 */
#ifndef ORDERSYNCD_ENVELOPE_H
#define ORDERSYNCD_ENVELOPE_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "buf.h"
#include "ts.h"

/* What the begin line told us about the transaction being decoded. */
struct txn_info
{
	int64_t		xid;
	uint64_t	commit_lsn;		/* start of the commit record: names the txn */
	uint64_t	end_lsn;		/* end of the commit record: what we confirm */
	char		time[TS_TEXT_MAX];	/* commit time, RFC 3339 UTC */
	int64_t		commit_usec;	/* same, microseconds since the epoch */
	const char *id_tag;			/* NULL, or "S" for snapshot ids "<LSN>/S<n>" */
};

/* A domain event as written by the extension: {"type","subject","data"}. */
struct event_content
{
	const char *type;
	const char *subject;
	json_object *data;
	json_object *root;			/* owns the above */
};

/*
 * Validate the content of an ordersync logical message. Returns 0 or -1
 * with a reason in err. Unknown extra keys are tolerated (newer extension
 * versions may add some); type, subject and data are required.
 */
int content_parse(json_tokener *tok, const char *text, size_t len,
				  struct event_content *out, char *err, size_t errlen);
void content_free(struct event_content *c);

/*
 * Append one envelope plus '\n' to out. type_suffix is the event type
 * without the "ordersync." prefix. data is borrowed (not consumed).
 * Returns the number of bytes appended.
 */
size_t envelope_build(struct buf *out, const char *source,
					  const struct txn_info *txn, uint32_t ordinal,
					  const char *type_suffix, const char *subject,
					  json_object *data);

/*
 * Data of a raw row-change event: the wal2json change minus the
 * per-line bookkeeping (action, xid, timestamp, lsn). New object.
 */
json_object *envelope_row_data(json_object *change);

/* Data of an "ordersync.relay.invalid" event: why, where, and the raw line. */
json_object *envelope_invalid_data(const char *reason, uint64_t lsn,
								   const char *raw, size_t rawlen);

/* Is this a usable event type ([A-Za-z0-9._-], 1..200 chars)? */
bool envelope_type_ok(const char *type);

#endif
