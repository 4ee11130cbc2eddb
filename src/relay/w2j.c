/*
 * w2j.c — wal2json v2 line parser (see w2j.h).
 *
 * simdjson (w2j_simd.cc) or, for what it refuses, yajl does the JSON, in
 * one pass over the line; this file only records the top-level fields the
 * relay uses and checks their shape.
 * Building json-c objects for every line (and freeing them) was most of
 * the relay's CPU time; json-c is still used for the rare row changes,
 * whose whole content becomes the event data.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsn.h"
#include "w2j.h"

int
w2j_parser_init(struct w2j_parser *p)
{
	memset(p, 0, sizeof(*p));
	p->tok = json_tokener_new();
	if (p->tok == NULL)
		return -1;
	/* same UTF-8 policy as the yajl pass, see w2j_scan_yajl */
	json_tokener_set_flags(p->tok, 0);
	p->simd = w2j_simd_new();
	if (p->simd == NULL)
	{
		json_tokener_free(p->tok);
		p->tok = NULL;
		return -1;
	}
	yarena_init(&p->arena);
	buf_init(&p->scan.store);
	return 0;
}

void
w2j_parser_free(struct w2j_parser *p)
{
	if (p->tok)
	{
		json_tokener_free(p->tok);
		w2j_simd_free(p->simd);
		yarena_free(&p->arena);
		buf_free(&p->scan.store);
	}
	p->tok = NULL;
}

json_object *
w2j_parse_json(json_tokener *tok, const char *text, size_t len,
			   char *err, size_t errlen)
{
	json_object *obj;
	enum json_tokener_error jerr;
	size_t		end;

	if (len > (size_t) INT32_MAX)
	{
		snprintf(err, errlen, "JSON text of %zu bytes is too large", len);
		return NULL;
	}
	json_tokener_reset(tok);
	obj = json_tokener_parse_ex(tok, text, (int) len);
	jerr = json_tokener_get_error(tok);
	if (jerr == json_tokener_continue)
	{
		snprintf(err, errlen, "truncated JSON (input ended inside a value)");
		json_object_put(obj);
		return NULL;
	}
	if (jerr != json_tokener_success)
	{
		snprintf(err, errlen, "invalid JSON at byte %zu: %s",
				 json_tokener_get_parse_end(tok), json_tokener_error_desc(jerr));
		json_object_put(obj);
		return NULL;
	}
	end = json_tokener_get_parse_end(tok);
	while (end < len && (text[end] == ' ' || text[end] == '\n' ||
						 text[end] == '\r' || text[end] == '\t'))
		end++;
	if (end != len)
	{
		snprintf(err, errlen, "unexpected data after the JSON value at byte %zu", end);
		json_object_put(obj);
		return NULL;
	}
	if (obj == NULL)
	{
		/* a bare "null": valid JSON, but never a valid line or message */
		snprintf(err, errlen, "JSON null where an object was expected");
		return NULL;
	}
	return obj;
}

/* ---- yajl callbacks: ctx is the w2j_parser ---- */

/* A scalar or container starts: top-level bookkeeping shared by all kinds. */
static struct w2j_field *
value_start(struct w2j_parser *p, int topkind)
{
	if (p->depth == 0)
	{
		p->scan.top = topkind;
		p->value_end = yajl_get_bytes_consumed(p->h);
		return NULL;
	}
	if (p->depth != 1 || p->key == K_NONE)
		return NULL;
	return &p->scan.f[p->key];
}

static int
cb_null(void *ctx)
{
	struct w2j_field *f = value_start(ctx, 'n');

	if (f)
		f->kind = W2J_OTHER;
	return 1;
}

static int
cb_boolean(void *ctx, int v)
{
	struct w2j_field *f = value_start(ctx, 'x');

	if (f)
	{
		f->kind = W2J_BOOL;
		f->ival = v;
	}
	return 1;
}

/*
 * Numbers arrive as text (no overflow error for a big numeric column of a
 * row change); only xid is ever read, as a json-c "int" would be: an
 * optional '-' and digits that fit in 64 bits.
 */
static int
cb_number(void *ctx, const char *s, size_t len)
{
	struct w2j_field *f = value_start(ctx, 'x');
	char		tmp[32];
	char	   *end;

	if (f == NULL)
		return 1;
	f->kind = W2J_OTHER;
	/* s points into the line: not NUL-terminated */
	if (len == 0 || len >= sizeof(tmp))
		return 1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (strpbrk(tmp, ".eE") != NULL)
		return 1;
	errno = 0;
	f->ival = strtoll(tmp, &end, 10);
	if (errno == 0 && *end == '\0')
		f->kind = W2J_INT;
	return 1;
}

static int
cb_string(void *ctx, const unsigned char *s, size_t len)
{
	struct w2j_parser *p = ctx;
	struct w2j_field *f = value_start(p, 'x');

	if (f == NULL)
		return 1;
	/* yajl's decoded text dies with the callback: keep a NUL-terminated copy */
	f->kind = W2J_STRING;
	f->off = buf_keep(&p->scan.store, s, len);
	f->len = len;
	return 1;
}

static int
cb_start(void *ctx)
{
	struct w2j_parser *p = ctx;
	struct w2j_field *f = value_start(p, p->depth == 0 ? '{' : 'x');

	if (f)
		f->kind = W2J_OTHER;
	p->value_end = 0;			/* complete only at its end */
	p->depth++;
	p->key = K_NONE;
	return 1;
}

static int
cb_start_array(void *ctx)
{
	struct w2j_parser *p = ctx;
	struct w2j_field *f = value_start(p, 'x');

	if (f)
		f->kind = W2J_OTHER;
	p->value_end = 0;			/* complete only at its end */
	p->depth++;
	p->key = K_NONE;
	return 1;
}

static int
cb_end(void *ctx)
{
	struct w2j_parser *p = ctx;

	p->depth--;
	p->key = K_NONE;
	if (p->depth == 0)
		p->value_end = yajl_get_bytes_consumed(p->h);
	return 1;
}

#define KEY(name) {name, sizeof(name) - 1}

/* the top-level keys w2j_key names, in its order */
static const struct
{
	const char *name;
	size_t		len;
}			keys[K_NKEYS] = {
	KEY("action"), KEY("xid"), KEY("timestamp"), KEY("lsn"), KEY("nextlsn"),
	KEY("transactional"), KEY("prefix"), KEY("content"), KEY("schema"), KEY("table")
};

enum w2j_key
w2j_key_of(const char *k, size_t len)
{
	for (int i = 0; i < K_NKEYS; i++)
		if (keys[i].len == len && memcmp(keys[i].name, k, len) == 0)
			return (enum w2j_key) i;
	return K_NONE;
}

static int
cb_map_key(void *ctx, const unsigned char *k, size_t len)
{
	struct w2j_parser *p = ctx;

	p->key = p->depth == 1 ? w2j_key_of((const char *) k, len) : K_NONE;
	return 1;
}

static const yajl_callbacks w2j_callbacks = {
	.yajl_null = cb_null,
	.yajl_boolean = cb_boolean,
	.yajl_number = cb_number,
	.yajl_string = cb_string,
	.yajl_start_map = cb_start,
	.yajl_map_key = cb_map_key,
	.yajl_end_map = cb_end,
	.yajl_start_array = cb_start_array,
	.yajl_end_array = cb_end,
};

int
w2j_yajl_run(yajl_handle h, const char *text, size_t len, const size_t *value_end,
			 char *err, size_t errlen)
{
	yajl_status st;

	st = yajl_parse(h, (const unsigned char *) text, len);
	if (st == yajl_status_ok)
	{
		st = yajl_complete_parse(h);
		if (st == yajl_status_ok)
			return 0;
		if (*value_end == 0)
		{
			/* everything was consumed but a value is still open */
			snprintf(err, errlen, "truncated JSON (input ended inside a value)");
			return -1;
		}
		/* else a complete value followed by a number, only seen at the end */
	}
	if (*value_end > 0)
	{
		/* the value was complete: what failed is what follows it */
		size_t		end = *value_end;

		while (end < len && (text[end] == ' ' || text[end] == '\n' ||
							 text[end] == '\r' || text[end] == '\t'))
			end++;
		snprintf(err, errlen, "unexpected data after the JSON value at byte %zu", end);
	}
	else
	{
		unsigned char *msg = yajl_get_error(h, 0, NULL, 0);
		const char *m = msg ? (const char *) msg : "parse error";
		size_t		at = yajl_get_bytes_consumed(h);

		/* yajl counts the offending byte as consumed; name that byte */
		snprintf(err, errlen, "invalid JSON at byte %zu: %.*s",
				 at > 0 ? at - 1 : 0, (int) strcspn(m, "\n"), m);
		if (msg)
			yajl_free_error(h, msg);
	}
	return -1;
}

static void
scan_reset(struct w2j_scan *scan)
{
	buf_reset(&scan->store);
	memset(scan->f, 0, sizeof(scan->f));
	scan->top = 0;
}

/* Scan line into p->scan with yajl; the error texts match w2j_parse_json. */
int
w2j_scan_yajl(struct w2j_parser *p, const char *line, size_t len, char *err, size_t errlen)
{
	yajl_handle h;
	int			rc;

	scan_reset(&p->scan);
	p->depth = 0;
	p->key = K_NONE;
	p->value_end = 0;
	h = p->h = yajl_alloc(&w2j_callbacks, &p->arena.funcs, p);
	if (h == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/*
	 * No UTF-8 validation of the line: the server only sends text of a
	 * UTF8 database (checked at connect). The one field that can carry
	 * arbitrary bytes, a message's content (pg_logical_emit_message with
	 * bytea), is validated when the content itself is parsed; raw lines of
	 * bad input are hex-encoded if needed.
	 */
	yajl_config(h, yajl_dont_validate_strings, 1);
	rc = w2j_yajl_run(h, line, len, &p->value_end, err, errlen);
	yajl_free(h);
	p->h = NULL;
	yarena_reset(&p->arena);
	return rc;
}

/* simdjson first; yajl for what it refuses, and for the error text. */
static int
scan_line(struct w2j_parser *p, const char *line, size_t len, char *err, size_t errlen)
{
	if (len <= W2J_SIMD_MAX)
	{
		scan_reset(&p->scan);
		if (w2j_simd_scan(p->simd, line, len, &p->scan))
			return 0;
	}
	return w2j_scan_yajl(p, line, len, err, errlen);
}

static const char *
str_field(struct w2j_parser *p, enum w2j_key k)
{
	return p->scan.f[k].kind == W2J_STRING ? p->scan.store.data + p->scan.f[k].off : NULL;
}

/* Optional LSN field: absent is fine, present-but-bad is an error. */
static int
get_lsn(struct w2j_parser *p, enum w2j_key k, const char *key, bool *has, uint64_t *out,
		char *err, size_t errlen)
{
	*has = false;
	if (p->scan.f[k].kind == W2J_ABSENT)
		return 0;
	if (p->scan.f[k].kind != W2J_STRING || lsn_parse(str_field(p, k), out) != 0)
	{
		snprintf(err, errlen, "field \"%s\" is not an LSN", key);
		return -1;
	}
	*has = true;
	return 0;
}

int
w2j_parse(struct w2j_parser *p, const char *line, size_t len,
		  struct w2j_rec *rec, char *err, size_t errlen)
{
	const char *action;

	memset(rec, 0, sizeof(*rec));
	if (scan_line(p, line, len, err, errlen) != 0)
		return -1;
	if (p->scan.top == 'n')
	{
		/* a bare "null": valid JSON, but never a valid line or message */
		snprintf(err, errlen, "JSON null where an object was expected");
		return -1;
	}
	if (p->scan.top != '{')
	{
		snprintf(err, errlen, "line is not a JSON object");
		return -1;
	}
	/* strlen, not the length: json-c's strings ended at an escaped NUL too */
	action = str_field(p, K_ACTION);
	if (action == NULL || strlen(action) != 1 || strchr("BCMIUDT", action[0]) == NULL)
	{
		snprintf(err, errlen, "missing or unknown \"action\" (expected B, C, M, I, U, D or T)");
		return -1;
	}
	rec->action = action[0];

	if (p->scan.f[K_XID].kind != W2J_ABSENT)
	{
		if (p->scan.f[K_XID].kind != W2J_INT || p->scan.f[K_XID].ival < 0)
		{
			snprintf(err, errlen, "field \"xid\" is not a transaction id");
			return -1;
		}
		rec->has_xid = true;
		rec->xid = p->scan.f[K_XID].ival;
	}
	if (p->scan.f[K_TIMESTAMP].kind != W2J_ABSENT)
	{
		if (p->scan.f[K_TIMESTAMP].kind != W2J_STRING)
		{
			snprintf(err, errlen, "field \"timestamp\" is not a string");
			return -1;
		}
		rec->timestamp = str_field(p, K_TIMESTAMP);
	}
	if (get_lsn(p, K_LSN, "lsn", &rec->has_lsn, &rec->lsn, err, errlen) ||
		get_lsn(p, K_NEXTLSN, "nextlsn", &rec->has_nextlsn, &rec->nextlsn, err, errlen))
		return -1;

	switch (rec->action)
	{
		case 'B':
		case 'C':
			/* ids are built from these: without them we cannot go on */
			if (!rec->has_xid || rec->timestamp == NULL || !rec->has_lsn || !rec->has_nextlsn)
			{
				snprintf(err, errlen, "%s without xid, timestamp, lsn and nextlsn "
						 "(the slot must be read with include-xids, include-timestamp "
						 "and include-lsn)", rec->action == 'B' ? "begin" : "commit");
				return -1;
			}
			break;
		case 'M':
			if (p->scan.f[K_TRANSACTIONAL].kind != W2J_BOOL)
			{
				snprintf(err, errlen, "message without boolean \"transactional\"");
				return -1;
			}
			rec->transactional = p->scan.f[K_TRANSACTIONAL].ival != 0;
			rec->prefix = str_field(p, K_PREFIX);
			if (rec->prefix == NULL)
			{
				snprintf(err, errlen, "message without string \"prefix\"");
				return -1;
			}
			rec->content = str_field(p, K_CONTENT);
			if (rec->content == NULL)
			{
				snprintf(err, errlen, "message without string \"content\"");
				return -1;
			}
			rec->content_len = p->scan.f[K_CONTENT].len;
			break;
		default:				/* I, U, D, T */
			rec->schema = str_field(p, K_SCHEMA);
			rec->table = str_field(p, K_TABLE);
			if (rec->schema == NULL || rec->table == NULL)
			{
				snprintf(err, errlen, "row change without \"schema\" and \"table\"");
				return -1;
			}
			/* the raw-change envelope needs the whole change as objects */
			rec->root = w2j_parse_json(p->tok, line, len, err, errlen);
			if (rec->root == NULL)
				return -1;
			break;
	}
	return 0;
}

void
w2j_rec_free(struct w2j_rec *rec)
{
	if (rec->root)
		json_object_put(rec->root);
	rec->root = NULL;
}
