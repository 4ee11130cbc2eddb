/*
 * content.c — message content validation with yajl callbacks (see
 * content.h).
 *
 * Parsing the content into json-c objects and serializing data again was
 * a third of the relay's CPU time; here yajl checks the whole text, the
 * callbacks keep type and subject, and data is taken as the byte range
 * between its '{' and the matching '}' (yajl_get_bytes_consumed is the
 * offset just after the token a callback reports).
 */
#include <stdio.h>
#include <string.h>

#include "content.h"
#include "envelope.h"
#include "w2j.h"

enum
{
	F_TYPE, F_SUBJECT, F_DATA, F_NONE = -1
};

/* A value starts at the top level or as a field we want; returns the field or F_NONE. */
static int
value_start(struct content_parser *cp)
{
	if (cp->depth == 0)
	{
		cp->top = 'x';
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
		cp->kind[f] = 'x';
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

	if (f == F_NONE || f == F_DATA)
	{
		if (f == F_DATA)
			cp->kind[f] = 'x';
		return 1;
	}
	/* decoded text lives only during the callback: copy it */
	cp->kind[f] = 's';
	cp->off[f] = cp->store.len;
	cp->len[f] = len;
	buf_append(&cp->store, s, len);
	buf_append(&cp->store, "", 1);
	return 1;
}

static int
cb_start_map(void *ctx)
{
	struct content_parser *cp = ctx;
	int			f = value_start(cp);

	if (cp->depth == 0)
		cp->top = '{';
	cp->value_end = 0;			/* complete only at its end */
	if (f != F_NONE)
	{
		cp->kind[f] = f == F_DATA ? 'o' : 'x';
		/* the offset is just past the '{' */
		cp->off[f] = yajl_get_bytes_consumed(cp->h) - 1;
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
	if (cp->depth == 1 && cp->kind[F_DATA] == 'o' && cp->len[F_DATA] == 0)
		cp->len[F_DATA] = yajl_get_bytes_consumed(cp->h);
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
		cp->key = F_TYPE;
	else if (len == 7 && memcmp(k, "subject", 7) == 0)
		cp->key = F_SUBJECT;
	else if (len == 4 && memcmp(k, "data", 4) == 0)
	{
		cp->key = F_DATA;
		/* a repeated "data" counts with its last value */
		cp->len[F_DATA] = 0;
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
	yarena_init(&cp->arena);
	buf_init(&cp->store);
}

void
content_parser_free(struct content_parser *cp)
{
	yarena_free(&cp->arena);
	buf_free(&cp->store);
}

int
content_parse(struct content_parser *cp, const char *text, size_t len,
			  struct event_content *out, char *err, size_t errlen)
{
	char		jerr[160];
	int			rc;

	memset(out, 0, sizeof(*out));
	buf_reset(&cp->store);
	memset(cp->kind, 0, sizeof(cp->kind));
	memset(cp->len, 0, sizeof(cp->len));
	cp->depth = 0;
	cp->key = F_NONE;
	cp->top = 0;
	cp->value_end = 0;
	cp->h = yajl_alloc(&content_callbacks, &cp->arena.funcs, cp);
	if (cp->h == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* yajl checks UTF-8 by default: content may be arbitrary bytes */
	rc = w2j_yajl_run(cp->h, text, len, &cp->value_end, jerr, sizeof(jerr));
	yajl_free(cp->h);
	cp->h = NULL;
	yarena_reset(&cp->arena);
	if (rc != 0)
	{
		snprintf(err, errlen, "message content is not JSON: %s", jerr);
		return -1;
	}
	if (cp->top != '{')
	{
		snprintf(err, errlen, "message content is not a JSON object");
		return -1;
	}
	if (cp->kind[F_TYPE] != 's' || !envelope_type_ok(cp->store.data + cp->off[F_TYPE]))
	{
		snprintf(err, errlen, "message content has no valid \"type\" "
				 "(a string of letters, digits, '.', '_' or '-')");
		return -1;
	}
	if (cp->kind[F_SUBJECT] != 's' || cp->len[F_SUBJECT] == 0)
	{
		snprintf(err, errlen, "message content has no \"subject\" string");
		return -1;
	}
	if (cp->kind[F_DATA] != 'o')
	{
		snprintf(err, errlen, "message content has no \"data\" object");
		return -1;
	}
	out->type = cp->store.data + cp->off[F_TYPE];
	out->subject = cp->store.data + cp->off[F_SUBJECT];
	out->data = text + cp->off[F_DATA];
	out->data_len = cp->len[F_DATA] - cp->off[F_DATA];
	return 0;
}
