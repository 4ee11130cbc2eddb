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
#include "content.h"
#include "lsn.h"
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
 * The same with data given as JSON text already validated (a message's
 * data, see content.h): copied as written, only the whitespace between
 * tokens is left out, so the line is what envelope_build would make of
 * the same value.
 */
size_t envelope_build_text(struct buf *out, const char *source,
						   const struct txn_info *txn, uint32_t ordinal,
						   const char *type_suffix, const char *subject,
						   const char *data, size_t data_len);

/* The event id "<commit LSN>/<ordinal>" as in the envelope; out has ENVELOPE_ID_MAX bytes. */
#define ENVELOPE_ID_MAX (LSN_TEXT_MAX + 32)
void envelope_format_id(const struct txn_info *txn, uint32_t ordinal, char *out);

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
