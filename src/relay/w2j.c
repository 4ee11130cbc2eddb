/*
 * w2j.c — wal2json v2 line parser on top of json-c (see w2j.h).
 *
 * json-c does the JSON; this file only checks the shape. One tokener is
 * reused for all lines to avoid an allocation per line.
 */
#include <stdio.h>
#include <string.h>

#include "lsn.h"
#include "w2j.h"

int
w2j_parser_init(struct w2j_parser *p)
{
	p->tok = json_tokener_new();
	if (p->tok == NULL)
		return -1;
	/*
	 * No UTF-8 validation here: the server only sends text of a UTF8
	 * database (checked at connect), and it costs ~20% of the parse. The
	 * one field that can carry arbitrary bytes, a message's content
	 * (pg_logical_emit_message with bytea), is validated when the content
	 * itself is parsed; raw lines of bad input are hex-encoded if needed.
	 */
	json_tokener_set_flags(p->tok, 0);
	return 0;
}

void
w2j_parser_free(struct w2j_parser *p)
{
	if (p->tok)
		json_tokener_free(p->tok);
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

static const char *
get_string(json_object *root, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(root, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Optional LSN field: absent is fine, present-but-bad is an error. */
static int
get_lsn(json_object *root, const char *key, bool *has, uint64_t *out,
		char *err, size_t errlen)
{
	json_object *v;

	*has = false;
	if (!json_object_object_get_ex(root, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_string) ||
		lsn_parse(json_object_get_string(v), out) != 0)
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
	json_object *root;
	json_object *v;
	const char *action;

	memset(rec, 0, sizeof(*rec));
	root = w2j_parse_json(p->tok, line, len, err, errlen);
	if (root == NULL)
		return -1;
	rec->root = root;
	if (!json_object_is_type(root, json_type_object))
	{
		snprintf(err, errlen, "line is not a JSON object");
		goto fail;
	}
	action = get_string(root, "action");
	if (action == NULL || strlen(action) != 1 || strchr("BCMIUDT", action[0]) == NULL)
	{
		snprintf(err, errlen, "missing or unknown \"action\" (expected B, C, M, I, U, D or T)");
		goto fail;
	}
	rec->action = action[0];

	if (json_object_object_get_ex(root, "xid", &v))
	{
		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
		{
			snprintf(err, errlen, "field \"xid\" is not a transaction id");
			goto fail;
		}
		rec->has_xid = true;
		rec->xid = json_object_get_int64(v);
	}
	if (json_object_object_get_ex(root, "timestamp", &v))
	{
		if (!json_object_is_type(v, json_type_string))
		{
			snprintf(err, errlen, "field \"timestamp\" is not a string");
			goto fail;
		}
		rec->timestamp = json_object_get_string(v);
	}
	if (get_lsn(root, "lsn", &rec->has_lsn, &rec->lsn, err, errlen) ||
		get_lsn(root, "nextlsn", &rec->has_nextlsn, &rec->nextlsn, err, errlen))
		goto fail;

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
				goto fail;
			}
			break;
		case 'M':
			if (!json_object_object_get_ex(root, "transactional", &v) ||
				!json_object_is_type(v, json_type_boolean))
			{
				snprintf(err, errlen, "message without boolean \"transactional\"");
				goto fail;
			}
			rec->transactional = json_object_get_boolean(v);
			rec->prefix = get_string(root, "prefix");
			if (rec->prefix == NULL)
			{
				snprintf(err, errlen, "message without string \"prefix\"");
				goto fail;
			}
			if (!json_object_object_get_ex(root, "content", &v) ||
				!json_object_is_type(v, json_type_string))
			{
				snprintf(err, errlen, "message without string \"content\"");
				goto fail;
			}
			rec->content = json_object_get_string(v);
			rec->content_len = (size_t) json_object_get_string_len(v);
			break;
		default:				/* I, U, D, T */
			rec->schema = get_string(root, "schema");
			rec->table = get_string(root, "table");
			if (rec->schema == NULL || rec->table == NULL)
			{
				snprintf(err, errlen, "row change without \"schema\" and \"table\"");
				goto fail;
			}
			break;
	}
	return 0;

fail:
	json_object_put(root);
	rec->root = NULL;
	return -1;
}

void
w2j_rec_free(struct w2j_rec *rec)
{
	if (rec->root)
		json_object_put(rec->root);
	rec->root = NULL;
}
