/*
 * content.h — validate the content of an ordersync logical message,
 * {"type","subject","data"}, without building objects: with simdjson
 * (w2j_simd.cc), or with one yajl pass for what simdjson refuses.
 *
 * data is not parsed into anything: the scan records where its text
 * starts and ends, so the envelope can carry it exactly as written.
 */
#ifndef ORDERSYNCD_CONTENT_H
#define ORDERSYNCD_CONTENT_H

#include <stdbool.h>
#include <stddef.h>

#include <yajl/yajl_parse.h>

#include "buf.h"
#include "yarena.h"

/* A domain event as written by the extension. */
struct event_content
{
	const char *type;			/* in the parser: valid until its next parse */
	const char *subject;
	const char *data;			/* points into the parsed text */
	size_t		data_len;
};

enum content_field
{
	CF_TYPE, CF_SUBJECT, CF_DATA, CF_NFIELDS
};

/* What a scan of the content found; a repeated key counts with its last value. */
struct content_scan
{
	struct buf	store;			/* type and subject, NUL-terminated */
	int			top;			/* top-level value: 0 none, '{' object, 'x' other */
	/* per field: 0 absent, 's' string, 'o' object, 'x' anything else */
	int			kind[CF_NFIELDS];
	size_t		off[CF_NFIELDS];	/* 's': offset in store; 'o': start in text */
	size_t		len[CF_NFIELDS];	/* 's': length; 'o': end offset in text */
};

struct w2j_simd;

struct content_parser
{
	struct w2j_simd *simd;		/* the fast path */
	struct content_scan scan;
	struct yarena arena;		/* yajl's memory, reset per parse */
	yajl_handle h;				/* during a yajl parse: for byte offsets */
	int			depth;
	int			key;			/* top-level key whose value comes next */
	size_t		value_end;		/* where the top-level value ended, 0 before */
};

/* Aborts on out-of-memory, like buf.c. */
void content_parser_init(struct content_parser *cp);
void content_parser_free(struct content_parser *cp);

/*
 * Validate text[0..len) as message content. Returns 0 or -1 with a reason
 * in err. Unknown extra keys are tolerated (newer extension versions may
 * add some); type, subject and data are required; a repeated key counts
 * with its last value. Content must be valid UTF-8 (it may come from
 * pg_logical_emit_message with bytea).
 */
int content_parse(struct content_parser *cp, const char *text, size_t len,
				  struct event_content *out, char *err, size_t errlen);

/*
 * The two scans alone (the fuzz target compares them). The simdjson scan
 * (w2j_simd.cc) returns false for what it refuses: text that is not UTF-8
 * or not JSON, an integer beyond 64 bits, nesting deeper than 1024; the
 * yajl scan returns -1 with the reason for what is not JSON. Both leave
 * the checks of type, subject and data to content_parse.
 */
bool w2j_simd_content(struct w2j_simd *s, const char *text, size_t len, struct content_scan *scan);
int content_scan_yajl(struct content_parser *cp, const char *text, size_t len,
					  char *err, size_t errlen);

#endif
