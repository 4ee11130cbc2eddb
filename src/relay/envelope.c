/*
 * envelope.c — build CloudEvents envelopes (see envelope.h).
 *
 * The envelope is assembled by hand in a fixed key order. A message's
 * data is copied from the content text (numbers keep their text); data
 * built with json-c (snapshot, row changes, dead letters) is serialized by
 * json-c, which keeps keys in insertion order.
 */
#include <stdio.h>
#include <string.h>

#include "envelope.h"
#include "lsn.h"
#include "w2j.h"

bool
envelope_type_ok(const char *type)
{
	size_t		n = 0;

	if (type == NULL)
		return false;
	for (const char *p = type; *p; p++, n++)
	{
		char		c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return n >= 1 && n <= 200;
}

/*
 * JSON string literal: quote, escape '"', '\\' and control characters.
 * Serialization only (json-c does all parsing); the envelope is assembled
 * by hand because building a json-c object per event and serializing it
 * cost as much as parsing the line (see bench/relay).
 */
static void
append_json_chars(struct buf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t		start = 0;

	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];
		char		esc[6];
		size_t		elen = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		buf_append(out, s + start, i - start);
		start = i + 1;
		esc[0] = '\\';
		switch (c)
		{
			case '"':
				esc[1] = '"';
				break;
			case '\\':
				esc[1] = '\\';
				break;
			case '\n':
				esc[1] = 'n';
				break;
			case '\r':
				esc[1] = 'r';
				break;
			case '\t':
				esc[1] = 't';
				break;
			default:
				esc[1] = 'u';
				esc[2] = '0';
				esc[3] = '0';
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 15];
				elen = 6;
				break;
		}
		buf_append(out, esc, elen);
	}
	buf_append(out, s + start, len - start);
}

static void
append_json_string(struct buf *out, const char *s, size_t len)
{
	buf_append(out, "\"", 1);
	append_json_chars(out, s, len);
	buf_append(out, "\"", 1);
}

#define APPEND_LIT(b, lit) buf_append((b), (lit), sizeof(lit) - 1)

/*
 * Copy JSON text that yajl has validated, leaving out whitespace outside
 * strings (jsonb's text output has a space after every ':' and ','; json-c
 * wrote none, and the envelope bytes stay what they were). Only quotes and
 * backslashes need tracking: the text is known to be valid JSON.
 */
static void
append_compact(struct buf *out, const char *s, size_t len)
{
	size_t		start = 0;
	bool		in_str = false;

	for (size_t i = 0; i < len; i++)
	{
		char		c = s[i];

		if (in_str)
		{
			if (c == '\\')
				i++;			/* the escaped character cannot end the string */
			else if (c == '"')
				in_str = false;
			continue;
		}
		if (c == '"')
			in_str = true;
		else if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
		{
			buf_append(out, s + start, i - start);
			start = i + 1;
		}
	}
	buf_append(out, s + start, len - start);
}

void
envelope_format_id(const struct txn_info *txn, uint32_t ordinal, char *out)
{
	char		lsn[LSN_TEXT_MAX];
	size_t		n = strlen(lsn_format(txn->commit_lsn, lsn));
	size_t		tag = txn->id_tag ? strlen(txn->id_tag) : 0;

	/* per event for every remote sink: no printf */
	if (n + 1 + tag + 11 > ENVELOPE_ID_MAX)
		tag = 0;				/* never: tags are one letter */
	memcpy(out, lsn, n);
	out[n++] = '/';
	memcpy(out + n, txn->id_tag ? txn->id_tag : "", tag);
	buf_format_u64(ordinal, out + n + tag);
}

static size_t
build(struct buf *out, const char *source, const struct txn_info *txn,
	  uint32_t ordinal, const char *type_suffix, const char *subject,
	  const char *data, size_t data_len, bool compact)
{
	char		lsn[LSN_TEXT_MAX];
	char		num[24];
	size_t		n;
	size_t		before = out->len;

	lsn_format(txn->commit_lsn, lsn);
	n = strlen(lsn);

	APPEND_LIT(out, "{\"specversion\":\"1.0\",\"id\":\"");
	buf_append(out, lsn, n);
	buf_append(out, "/", 1);
	if (txn->id_tag)
		buf_append_str(out, txn->id_tag);
	buf_append(out, num, buf_format_u64(ordinal, num));
	APPEND_LIT(out, "\",\"source\":");
	append_json_string(out, source, strlen(source));
	APPEND_LIT(out, ",\"type\":\"ordersync.");
	append_json_chars(out, type_suffix, strlen(type_suffix));
	APPEND_LIT(out, "\",\"subject\":");
	append_json_string(out, subject, strlen(subject));
	APPEND_LIT(out, ",\"time\":\"");
	buf_append_str(out, txn->time);
	APPEND_LIT(out, "\",\"datacontenttype\":\"application/json\",\"oscommitlsn\":\"");
	buf_append(out, lsn, n);
	/* xid as a string: CloudEvents integers are 32-bit signed, xids are not */
	APPEND_LIT(out, "\",\"osxid\":\"");
	buf_append(out, num, buf_format_u64((uint64_t) txn->xid, num));
	APPEND_LIT(out, "\",\"data\":");
	if (compact)
		append_compact(out, data, data_len);
	else
		buf_append(out, data, data_len);
	APPEND_LIT(out, "}\n");
	return out->len - before;
}

size_t
envelope_build_text(struct buf *out, const char *source,
					const struct txn_info *txn, uint32_t ordinal,
					const char *type_suffix, const char *subject,
					const char *data, size_t data_len)
{
	return build(out, source, txn, ordinal, type_suffix, subject, data, data_len, true);
}

size_t
envelope_build(struct buf *out, const char *source,
			   const struct txn_info *txn, uint32_t ordinal,
			   const char *type_suffix, const char *subject,
			   json_object *data)
{
	const char *text;
	size_t		textlen;

	/* json-c writes data on one line, doubles with the text they were parsed from */
	text = json_object_to_json_string_length(data, JSON_C_TO_STRING_PLAIN |
											 JSON_C_TO_STRING_NOSLASHESCAPE,
											 &textlen);
	return build(out, source, txn, ordinal, type_suffix, subject, text, textlen, false);
}

json_object *
envelope_row_data(json_object *change)
{
	json_object *data = json_object_new_object();

	json_object_object_foreach(change, key, val)
	{
		if (strcmp(key, "action") == 0 || strcmp(key, "xid") == 0 ||
			strcmp(key, "timestamp") == 0 || strcmp(key, "lsn") == 0)
			continue;
		json_object_object_add(data, key, json_object_get(val));
	}
	return data;
}

/* Strict UTF-8 check (no overlongs, no surrogates, max U+10FFFF, no NUL). */
static bool
utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t		i = 0;

	while (i < len)
	{
		unsigned char c = p[i];
		size_t		n;
		uint32_t	cp;

		if (c == 0)
			return false;
		if (c < 0x80)
		{
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			n = 1, cp = c & 0x1F;
		else if (c >= 0xE0 && c <= 0xEF)
			n = 2, cp = c & 0x0F;
		else if (c >= 0xF0 && c <= 0xF4)
			n = 3, cp = c & 0x07;
		else
			return false;
		if (i + n >= len)	/* sequence runs past the end */
			return false;
		for (size_t k = 1; k <= n; k++)
		{
			if ((p[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3F);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
			cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += n + 1;
	}
	return true;
}

json_object *
envelope_invalid_data(const char *reason, uint64_t lsn, const char *raw, size_t rawlen)
{
	json_object *data = json_object_new_object();
	char		lsntext[LSN_TEXT_MAX];

	json_object_object_add(data, "reason", json_object_new_string(reason));
	json_object_object_add(data, "lsn", json_object_new_string(lsn_format(lsn, lsntext)));
	/*
	 * The sink must stay valid UTF-8 JSON: a line that is not valid UTF-8
	 * is carried hex-encoded instead, still complete.
	 */
	if (utf8_valid(raw, rawlen))
		json_object_object_add(data, "line", json_object_new_string_len(raw, (int) rawlen));
	else
	{
		static const char hex[] = "0123456789abcdef";
		struct buf	h;

		buf_init(&h);
		for (size_t i = 0; i < rawlen; i++)
		{
			char		pair[2] = {hex[(unsigned char) raw[i] >> 4], hex[raw[i] & 15]};

			buf_append(&h, pair, 2);
		}
		json_object_object_add(data, "line_hex", json_object_new_string_len(h.data ? h.data : "", (int) h.len));
		buf_free(&h);
	}
	return data;
}
