/*
 * lsn.h — PostgreSQL WAL positions (LSN) as 64-bit integers and text.
 *
 * The text form is the server's "X/X" (upper-case hex, no zero padding) so
 * event ids built from it compare equal to what psql shows for pg_lsn.
 */
#ifndef ORDERSYNCD_LSN_H
#define ORDERSYNCD_LSN_H

#include <stddef.h>
#include <stdint.h>

#define LSN_TEXT_MAX 20			/* "FFFFFFFF/FFFFFFFF" + NUL, rounded up */

/* Parse "X/X"; returns 0 and sets *out, or -1 for anything else. */
int lsn_parse(const char *text, uint64_t *out);

/* Same, for a string that is not NUL-terminated. */
int lsn_parse_n(const char *text, size_t len, uint64_t *out);

/* Format into buf (at least LSN_TEXT_MAX bytes); returns buf. */
char *lsn_format(uint64_t lsn, char *buf);

#endif
