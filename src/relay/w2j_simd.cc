/*
 * w2j_simd.cc — the fast path of the wal2json line scan, with simdjson
 * (see w2j.h).
 *
 * The only C++ in the relay: simdjson is a C++ library. This file keeps to
 * its error-code interface (no exceptions leave it) and offers plain C
 * functions. It fills a w2j_scan exactly as the yajl callbacks in w2j.c
 * do, so that w2j_parse cannot tell which scanner read a line; the fuzz
 * target checks that on every input both accept.
 */
#include <new>
#include <string_view>

#include <simdjson.h>

extern "C"
{
#include "w2j.h"
}

struct w2j_simd
{
	simdjson::dom::parser parser;
};

extern "C" struct w2j_simd *
w2j_simd_new(void)
{
	return new (std::nothrow) w2j_simd;
}

extern "C" void
w2j_simd_free(struct w2j_simd *s)
{
	delete s;
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
				/* simdjson's text dies with the next parse: copy it, as w2j.c does */
				f->kind = W2J_STRING;
				f->off = store->len;
				f->len = sv.size();
				buf_append(store, sv.data(), sv.size());
				buf_append(store, "", 1);
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
	simdjson::dom::element doc;
	simdjson::dom::object obj;

	/* true: the line is copied into the parser's padded buffer (reused) */
	if (s->parser.parse(line, len, true).get(doc) != simdjson::SUCCESS)
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
