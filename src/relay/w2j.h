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
	json_object *root;			/* owns everything above */
};

struct w2j_parser
{
	json_tokener *tok;
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

/*
 * Parse text as one complete JSON value (shared with the envelope code).
 * Returns NULL and sets err on any error, including trailing bytes.
 */
json_object *w2j_parse_json(json_tokener *tok, const char *text, size_t len,
							char *err, size_t errlen);

#endif
