/*
 * w2j.h — parse one wal2json format-version 2 line.
 *
 * With include-xids, include-timestamp and include-lsn every line is one
 * JSON object with an "action": B (begin), C (commit), M (logical message),
 * I/U/D (row change), T (truncate). The parser validates the fields the
 * relay depends on and reports anything else as an error with a reason, so
 * the caller can report the line with its LSN instead of dropping it.
 */
#ifndef ORDERSYNCD_W2J_H
#define ORDERSYNCD_W2J_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <yajl/yajl_parse.h>

#include "buf.h"
#include "yarena.h"

struct w2j_rec
{
	char		action;			/* 'B','C','M','I','U','D','T' */
	bool		has_xid;
	int64_t		xid;
	const char *timestamp;		/* NULL if absent */
	bool		has_lsn;
	uint64_t	lsn;			/* B/C: commit record LSN; others: change LSN */
	bool		has_nextlsn;
	uint64_t	nextlsn;		/* B/C: end of the commit record */
	bool		transactional;	/* M only */
	const char *prefix;			/* M only */
	const char *content;		/* M only */
	size_t		content_len;
	const char *schema;			/* I/U/D/T */
	const char *table;
	/*
	 * Row changes only: the whole line as json-c objects (the raw-change
	 * envelope needs all of it). The strings above live in the parser and
	 * stay valid until its next w2j_parse.
	 */
	json_object *root;
};

/* What one top-level field looked like (later duplicates win, as in json-c). */
enum w2j_kind
{
	W2J_ABSENT = 0,
	W2J_STRING,
	W2J_INT,
	W2J_BOOL,
	W2J_OTHER					/* null, double, object, array */
};

struct w2j_field
{
	enum w2j_kind kind;
	size_t		off;			/* W2J_STRING: offset in store, NUL-terminated */
	size_t		len;
	long long	ival;			/* W2J_INT, W2J_BOOL */
};

enum w2j_key
{
	K_ACTION, K_XID, K_TIMESTAMP, K_LSN, K_NEXTLSN, K_TRANSACTIONAL,
	K_PREFIX, K_CONTENT, K_SCHEMA, K_TABLE, K_NKEYS, K_NONE = K_NKEYS
};

/* Which of the fields above a top-level key names, or K_NONE. */
enum w2j_key w2j_key_of(const char *k, size_t len);

/*
 * What a scan of one line leaves: the fields (strings copied into store,
 * NUL-terminated) and what the top-level value was: '{' an object, 'n' a
 * bare null, 'x' anything else.
 */
struct w2j_scan
{
	struct w2j_field f[K_NKEYS];
	struct buf	store;
	int			top;
};

/*
 * The fast path (w2j_simd.cc, simdjson): yajl reads a line at about 350
 * MB/s, which made it half of the relay's CPU time; simdjson reads it three
 * times faster. w2j_simd_scan returns true and fills scan exactly as the
 * yajl callbacks would, or returns false when simdjson refuses the line
 * (not valid UTF-8, not JSON, an integer beyond 64 bits, nested too deep,
 * longer than W2J_SIMD_MAX); the caller then scans it with yajl, which
 * accepts what yajl accepts and words the error the relay reports.
 */
#define W2J_SIMD_MAX (1024 * 1024)

struct w2j_simd;
struct w2j_simd *w2j_simd_new(void);
void w2j_simd_free(struct w2j_simd *s);
bool w2j_simd_scan(struct w2j_simd *s, const char *line, size_t len, struct w2j_scan *scan);

/*
 * One line is parsed in a single pass with yajl callbacks that keep only
 * the top-level fields above; strings are copied into store because yajl's
 * decoded strings live only during the callback.
 */
struct w2j_parser
{
	json_tokener *tok;			/* row changes only (see w2j_rec.root) */
	struct w2j_simd *simd;		/* the fast path */
	struct yarena arena;		/* yajl's memory, reset per line */
	struct w2j_scan scan;		/* what the last line held */
	int			depth;			/* yajl: nesting depth while parsing */
	enum w2j_key key;			/* yajl: top-level key whose value comes next */
	yajl_handle h;				/* during a yajl parse: for byte offsets */
	size_t		value_end;		/* where the top-level value ended */
};

int w2j_parser_init(struct w2j_parser *p);
void w2j_parser_free(struct w2j_parser *p);

/*
 * Parse line[0..len). Returns 0 and fills rec (free with w2j_rec_free), or
 * -1 and writes a human-readable reason into err.
 */
int w2j_parse(struct w2j_parser *p, const char *line, size_t len,
			  struct w2j_rec *rec, char *err, size_t errlen);

void w2j_rec_free(struct w2j_rec *rec);

/* The yajl scan alone (the fuzz target compares it with the fast path). */
int w2j_scan_yajl(struct w2j_parser *p, const char *line, size_t len, char *err, size_t errlen);

/*
 * Parse text as one complete JSON value (shared with the envelope code).
 * Returns NULL and sets err on any error, including trailing bytes.
 */
json_object *w2j_parse_json(json_tokener *tok, const char *text, size_t len,
							char *err, size_t errlen);

/*
 * Run a fresh yajl handle over text as one complete value. *value_end is
 * kept by the callbacks: 0 until the top-level value is complete, then the
 * offset just after it. Returns 0, or -1 with the same reasons as
 * w2j_parse_json ("truncated JSON ...", "unexpected data after the JSON
 * value ...", "invalid JSON at byte N: <yajl's message>") in err. Shared
 * with the content parser.
 */
int w2j_yajl_run(yajl_handle h, const char *text, size_t len, const size_t *value_end,
				 char *err, size_t errlen);

#endif
