/*
 * w2j_simd.cc — the fast paths of the wal2json line scan (see w2j.h) and
 * of the message content scan (see content.h), with simdjson.
 *
 * The only C++ in the relay: simdjson is a C++ library. This file keeps to
 * its error-code interface (no exceptions leave it) and offers plain C
 * functions. It fills a w2j_scan or content_scan exactly as the yajl
 * callbacks in w2j.c and content.c do, so that the callers cannot tell
 * which scanner read the text; the fuzz target checks that on every input
 * both accept.
 */
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>

#include <simdjson.h>

extern "C"
{
#include "content.h"
#include "w2j.h"
}

struct w2j_simd
{
	simdjson::dom::parser parser;	/* lines */
	simdjson::dom::parser content;	/* message content: checks all of it */
	simdjson::ondemand::parser ondemand;	/* message content: where data lies */
	char	   *pad = nullptr;	/* the text, copied with simdjson's padding */
	size_t		padcap = 0;
};

extern "C" struct w2j_simd *
w2j_simd_new(void)
{
	return new (std::nothrow) w2j_simd;
}

extern "C" void
w2j_simd_free(struct w2j_simd *s)
{
	if (s != nullptr)
		free(s->pad);
	delete s;
}

/* The text copied into a buffer simdjson may read past (its padding). */
static const char *
padded(struct w2j_simd *s, const char *text, size_t len)
{
	size_t		need = len + simdjson::SIMDJSON_PADDING;

	if (need > s->padcap)
	{
		char	   *p = static_cast<char *>(realloc(s->pad, need));

		if (p == NULL)
			return NULL;
		s->pad = p;
		s->padcap = need;
	}
	memcpy(s->pad, text, len);
	memset(s->pad + len, 0, simdjson::SIMDJSON_PADDING);
	return s->pad;
}

/* One top-level field, as cb_boolean/cb_number/cb_string/cb_start record it. */
static void
take_field(struct w2j_field *f, struct buf *store, simdjson::dom::element v)
{
	switch (v.type())
	{
		case simdjson::dom::element_type::STRING:
			{
				std::string_view sv;

				if (v.get_string().get(sv) != simdjson::SUCCESS)
					break;
				/* simdjson's text dies with the next parse, as yajl's with the callback */
				f->kind = W2J_STRING;
				f->off = buf_keep(store, sv.data(), sv.size());
				f->len = sv.size();
				return;
			}
		case simdjson::dom::element_type::INT64:
			/* yajl's path: digits that strtoll takes whole */
			f->kind = W2J_INT;
			f->ival = v.get_int64().value_unsafe();
			return;
		case simdjson::dom::element_type::BOOL:
			f->kind = W2J_BOOL;
			f->ival = v.get_bool().value_unsafe() ? 1 : 0;
			return;
		default:
			/*
			 * null, an object, an array, a fraction or exponent, an integer
			 * above INT64_MAX (simdjson's UINT64): what yajl's path calls
			 * W2J_OTHER as well
			 */
			break;
	}
	f->kind = W2J_OTHER;
}

extern "C" bool
w2j_simd_scan(struct w2j_simd *s, const char *line, size_t len, struct w2j_scan *scan)
{
	const char *buf = padded(s, line, len);
	simdjson::dom::element doc;
	simdjson::dom::object obj;

	if (buf == NULL || s->parser.parse(buf, len, false).get(doc) != simdjson::SUCCESS)
		return false;
	if (doc.is_null())
	{
		scan->top = 'n';
		return true;
	}
	if (doc.get_object().get(obj) != simdjson::SUCCESS)
	{
		scan->top = 'x';
		return true;
	}
	scan->top = '{';
	/* in document order, so a repeated key ends with its last value, as in yajl's pass */
	for (simdjson::dom::key_value_pair field : obj)
	{
		enum w2j_key k = w2j_key_of(field.key.data(), field.key.size());

		if (k != K_NONE)
			take_field(&scan->f[k], &scan->store, field.value);
	}
	return true;
}

/* ---- message content ---- */

/*
 * Where the last top-level "data" object lies in buf. The DOM has checked
 * the whole text but keeps no offsets; the On-Demand parser finds them
 * over the same bytes.
 */
static bool
data_range(struct w2j_simd *s, const char *buf, size_t len, size_t *start, size_t *end)
{
	simdjson::ondemand::document doc;
	simdjson::ondemand::object obj;
	bool		found = false;

	if (s->ondemand.iterate(buf, len, len + simdjson::SIMDJSON_PADDING).get(doc) != simdjson::SUCCESS ||
		doc.get_object().get(obj) != simdjson::SUCCESS)
		return false;
	for (auto field : obj)
	{
		std::string_view key;
		std::string_view raw;
		simdjson::ondemand::object data;

		if (field.unescaped_key().get(key) != simdjson::SUCCESS)
			return false;
		if (key != "data")
			continue;
		found = false;
		if (field.value().get_object().get(data) != simdjson::SUCCESS)
			continue;			/* a later "data" may still be an object */
		if (data.raw_json().get(raw) != simdjson::SUCCESS)
			return false;
		/* raw_json runs on to the next token: end just after the '}' */
		while (!raw.empty() && raw.back() != '}')
			raw.remove_suffix(1);
		if (raw.size() < 2 || raw.front() != '{')
			return false;
		*start = static_cast<size_t>(raw.data() - buf);
		*end = *start + raw.size();
		found = true;
	}
	return found;
}

extern "C" bool
w2j_simd_content(struct w2j_simd *s, const char *text, size_t len, struct content_scan *scan)
{
	const char *buf = padded(s, text, len);
	simdjson::dom::element doc;
	simdjson::dom::object obj;

	if (buf == NULL ||
		s->content.parse(buf, len, false).get(doc) != simdjson::SUCCESS)
		return false;
	if (doc.get_object().get(obj) != simdjson::SUCCESS)
	{
		scan->top = 'x';
		return true;
	}
	scan->top = '{';
	/* in document order: a repeated key ends with its last value, as in yajl's scan */
	for (simdjson::dom::key_value_pair field : obj)
	{
		int			f;
		std::string_view sv;

		if (field.key == "type")
			f = CF_TYPE;
		else if (field.key == "subject")
			f = CF_SUBJECT;
		else if (field.key == "data")
		{
			scan->kind[CF_DATA] = field.value.is_object() ? 'o' : 'x';
			continue;
		}
		else
			continue;
		if (field.value.get_string().get(sv) != simdjson::SUCCESS)
		{
			scan->kind[f] = 'x';
			continue;
		}
		scan->kind[f] = 's';
		scan->off[f] = buf_keep(&scan->store, sv.data(), sv.size());
		scan->len[f] = sv.size();
	}
	if (scan->kind[CF_DATA] == 'o' &&
		!data_range(s, buf, len, &scan->off[CF_DATA], &scan->len[CF_DATA]))
		return false;
	return true;
}
