/*
 * content.c — message content validation (see content.h): the checks of
 * type, subject and data, and the yajl scan for what the simdjson scan in
 * w2j_simd.cc refuses.
 *
 * Parsing the content into json-c objects and serializing data again was
 * a third of the relay's CPU time; a scan checks the whole text, keeps
 * type and subject, and takes data as the byte range between its '{' and
 * the matching '}' (in the yajl scan, yajl_get_bytes_consumed is the
 * offset just after the token a callback reports).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "content.h"
#include "envelope.h"
#include "w2j.h"

#define F_NONE (-1)

/* A value starts at the top level or as a field we want; returns the field or F_NONE. */
static int
value_start(struct content_parser *cp)
{
	if (cp->depth == 0)
	{
		cp->scan.top = 'x';
		cp->value_end = yajl_get_bytes_consumed(cp->h);
	}
	if (cp->depth != 1)
		return F_NONE;
	return cp->key;
}

static int
cb_scalar(struct content_parser *cp)
{
	int			f = value_start(cp);

	if (f != F_NONE)
		cp->scan.kind[f] = 'x';
	return 1;
}

static int
cb_null(void *ctx)
{
	return cb_scalar(ctx);
}

static int
cb_boolean(void *ctx, int v)
{
	(void) v;
	return cb_scalar(ctx);
}

static int
cb_number(void *ctx, const char *s, size_t len)
{
	(void) s;
	(void) len;
	return cb_scalar(ctx);
}

static int
cb_string(void *ctx, const unsigned char *s, size_t len)
{
	struct content_parser *cp = ctx;
	int			f = value_start(cp);

	if (f == F_NONE || f == CF_DATA)
	{
		if (f == CF_DATA)
			cp->scan.kind[f] = 'x';
		return 1;
	}
	/* decoded text lives only during the callback: copy it */
	cp->scan.kind[f] = 's';
	cp->scan.off[f] = buf_keep(&cp->scan.store, s, len);
	cp->scan.len[f] = len;
	return 1;
}

static int
cb_start_map(void *ctx)
{
	struct content_parser *cp = ctx;
	int			f = value_start(cp);

	if (cp->depth == 0)
		cp->scan.top = '{';
	cp->value_end = 0;			/* complete only at its end */
	if (f != F_NONE)
	{
		cp->scan.kind[f] = f == CF_DATA ? 'o' : 'x';
		/* the offset is just past the '{' */
		cp->scan.off[f] = yajl_get_bytes_consumed(cp->h) - 1;
	}
	cp->depth++;
	cp->key = F_NONE;
	return 1;
}

static int
cb_start_array(void *ctx)
{
	struct content_parser *cp = ctx;

	cb_scalar(cp);
	cp->value_end = 0;			/* complete only at its end */
	cp->depth++;
	cp->key = F_NONE;
	return 1;
}

static int
cb_end_map(void *ctx)
{
	struct content_parser *cp = ctx;

	cp->depth--;
	cp->key = F_NONE;
	if (cp->depth == 0)
		cp->value_end = yajl_get_bytes_consumed(cp->h);
	/* closing data's object: its text ends just after this '}' */
	if (cp->depth == 1 && cp->scan.kind[CF_DATA] == 'o' && cp->scan.len[CF_DATA] == 0)
		cp->scan.len[CF_DATA] = yajl_get_bytes_consumed(cp->h);
	return 1;
}

static int
cb_end_array(void *ctx)
{
	struct content_parser *cp = ctx;

	cp->depth--;
	cp->key = F_NONE;
	if (cp->depth == 0)
		cp->value_end = yajl_get_bytes_consumed(cp->h);
	return 1;
}

static int
cb_map_key(void *ctx, const unsigned char *k, size_t len)
{
	struct content_parser *cp = ctx;

	cp->key = F_NONE;
	if (cp->depth != 1)
		return 1;
	if (len == 4 && memcmp(k, "type", 4) == 0)
		cp->key = CF_TYPE;
	else if (len == 7 && memcmp(k, "subject", 7) == 0)
		cp->key = CF_SUBJECT;
	else if (len == 4 && memcmp(k, "data", 4) == 0)
	{
		cp->key = CF_DATA;
		/* a repeated "data" counts with its last value */
		cp->scan.len[CF_DATA] = 0;
	}
	return 1;
}

static const yajl_callbacks content_callbacks = {
	.yajl_null = cb_null,
	.yajl_boolean = cb_boolean,
	.yajl_number = cb_number,
	.yajl_string = cb_string,
	.yajl_start_map = cb_start_map,
	.yajl_map_key = cb_map_key,
	.yajl_end_map = cb_end_map,
	.yajl_start_array = cb_start_array,
	.yajl_end_array = cb_end_array,
};

void
content_parser_init(struct content_parser *cp)
{
	memset(cp, 0, sizeof(*cp));
	cp->simd = w2j_simd_new();
	if (cp->simd == NULL)
	{
		fprintf(stderr, "ordersyncd: out of memory\n");
		abort();
	}
	yarena_init(&cp->arena);
	buf_init(&cp->scan.store);
}

void
content_parser_free(struct content_parser *cp)
{
	w2j_simd_free(cp->simd);
	cp->simd = NULL;
	yarena_free(&cp->arena);
	buf_free(&cp->scan.store);
}

static void
scan_reset(struct content_scan *scan)
{
	buf_reset(&scan->store);
	memset(scan->kind, 0, sizeof(scan->kind));
	memset(scan->off, 0, sizeof(scan->off));
	memset(scan->len, 0, sizeof(scan->len));
	scan->top = 0;
}

int
content_scan_yajl(struct content_parser *cp, const char *text, size_t len,
				  char *err, size_t errlen)
{
	int			rc;

	scan_reset(&cp->scan);
	cp->depth = 0;
	cp->key = F_NONE;
	cp->value_end = 0;
	cp->h = yajl_alloc(&content_callbacks, &cp->arena.funcs, cp);
	if (cp->h == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* yajl checks UTF-8 by default: content may be arbitrary bytes */
	rc = w2j_yajl_run(cp->h, text, len, &cp->value_end, err, errlen);
	yajl_free(cp->h);
	cp->h = NULL;
	yarena_reset(&cp->arena);
	return rc;
}

int
content_parse(struct content_parser *cp, const char *text, size_t len,
			  struct event_content *out, char *err, size_t errlen)
{
	const struct content_scan *scan = &cp->scan;
	char		jerr[160];

	memset(out, 0, sizeof(*out));
	/* simdjson first; yajl for what it refuses, and for the error text */
	scan_reset(&cp->scan);
	if (!w2j_simd_content(cp->simd, text, len, &cp->scan) &&
		content_scan_yajl(cp, text, len, jerr, sizeof(jerr)) != 0)
	{
		snprintf(err, errlen, "message content is not JSON: %s", jerr);
		return -1;
	}
	if (scan->top != '{')
	{
		snprintf(err, errlen, "message content is not a JSON object");
		return -1;
	}
	if (scan->kind[CF_TYPE] != 's' || !envelope_type_ok(scan->store.data + scan->off[CF_TYPE]))
	{
		snprintf(err, errlen, "message content has no valid \"type\" "
				 "(a string of letters, digits, '.', '_' or '-')");
		return -1;
	}
	if (scan->kind[CF_SUBJECT] != 's' || scan->len[CF_SUBJECT] == 0)
	{
		snprintf(err, errlen, "message content has no \"subject\" string");
		return -1;
	}
	if (scan->kind[CF_DATA] != 'o')
	{
		snprintf(err, errlen, "message content has no \"data\" object");
		return -1;
	}
	out->type = scan->store.data + scan->off[CF_TYPE];
	out->subject = scan->store.data + scan->off[CF_SUBJECT];
	out->data = text + scan->off[CF_DATA];
	out->data_len = scan->len[CF_DATA] - scan->off[CF_DATA];
	return 0;
}
