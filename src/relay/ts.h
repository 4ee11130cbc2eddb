/*
 * ts.h — commit timestamps: wal2json text -> RFC 3339 UTC.
 *
 * wal2json prints timestamps in the walsender's TimeZone
 * ("2026-11-24 07:07:52.63149+00", "+05:30", ...). CloudEvents wants
 * RFC 3339, and consumers compare times across servers, so we normalise
 * to UTC ("2026-11-24T07:07:52.63149Z") instead of trusting the session.
 */
#ifndef ORDERSYNCD_TS_H
#define ORDERSYNCD_TS_H

#include <stddef.h>
#include <stdint.h>

#define TS_TEXT_MAX 72		/* generous: the compiler checks the widest year */

/*
 * Parse a timestamptz as printed by PostgreSQL in ISO DateStyle.
 * On success returns 0, writes the RFC 3339 UTC text into out (TS_TEXT_MAX
 * bytes) and microseconds since the Unix epoch into *usec (may be NULL).
 */
int ts_to_rfc3339(const char *text, size_t len, char *out, int64_t *usec);

/* Format microseconds since the epoch as RFC 3339 UTC (microsecond digits). */
void ts_format_usec(int64_t usec, char *out);

/* The monotonic clock in microseconds: for intervals, never for dates. */
int64_t ts_mono_usec(void);

#endif
