/*
 * content.h — validate the content of an ordersync logical message,
 * {"type","subject","data"}, in one yajl pass without building objects.
 *
 * data is not parsed into anything: the parser records where its text
 * starts and ends, so the envelope can carry it exactly as written.
 */
#ifndef ORDERSYNCD_CONTENT_H
#define ORDERSYNCD_CONTENT_H

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

struct content_parser
{
	struct yarena arena;		/* yajl's memory, reset per parse */
	struct buf	store;			/* type and subject, NUL-terminated */
	yajl_handle h;				/* during a parse: for byte offsets */
	int			depth;
	int			key;			/* top-level key whose value comes next */
	int			top;			/* top-level value: 0 none, '{' object, 'x' other */
	size_t		value_end;		/* where the top-level value ended, 0 before */
	/* per field: 0 absent, 's' string, 'o' object, 'x' anything else */
	int			kind[3];
	size_t		off[3];			/* 's': offset in store; 'o': start in text */
	size_t		len[3];			/* 's': length; 'o': end offset in text */
};

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

#endif
