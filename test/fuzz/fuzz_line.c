/*
 * fuzz_line.c — libFuzzer target for the wal2json line parser and the
 * envelope builder.
 *
 * Properties checked beyond "no crash, no sanitizer report":
 *   - a parsed begin/commit has a timestamp we either convert or reject;
 *   - every envelope built (from a parsed message, a raw row, or a bad-input
 *     report of the raw bytes) is exactly one line of valid JSON whose id
 *     and type are what we put in;
 *   - a message's data, taken by byte offsets from the yajl pass over the
 *     content, is one whole object of the content (and, by the above,
 *     still valid JSON once its whitespace is left out);
 *   - the two line scanners agree, and so do the two content scanners:
 *     whatever a simdjson fast path accepts, the yajl scan accepts too,
 *     with the same fields (and data at the same offsets). The input's
 *     bytes are also scanned as content directly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "content.h"
#include "envelope.h"
#include "lsn.h"
#include "ts.h"
#include "w2j.h"

static struct w2j_parser parser;
static struct content_parser cparser;
static json_tokener *check_tok;
static struct buf out;
static struct w2j_scan fast;
static struct content_scan cfast;

static void
check_line(const struct txn_info *t, uint32_t ordinal, const char *type, const char *subject)
{
	char		err[256];
	char		id[64];
	char		lsn[LSN_TEXT_MAX];
	json_object *o;
	json_object *v;

	if (out.len == 0 || out.data[out.len - 1] != '\n' ||
		memchr(out.data, '\n', out.len) != out.data + out.len - 1)
		abort();				/* not exactly one line */
	o = w2j_parse_json(check_tok, out.data, out.len, err, sizeof(err));
	if (o == NULL)
	{
		fprintf(stderr, "envelope is not JSON (%s): %s", err, out.data);
		abort();
	}
	snprintf(id, sizeof(id), "%s/%u", lsn_format(t->commit_lsn, lsn), ordinal);
	if (!json_object_object_get_ex(o, "id", &v) || strcmp(json_object_get_string(v), id) != 0)
		abort();
	if (!json_object_object_get_ex(o, "type", &v) ||
		strncmp(json_object_get_string(v), "ordersync.", 10) != 0 ||
		strcmp(json_object_get_string(v) + 10, type) != 0)
		abort();
	/* the hand-written string escaping must round-trip exactly */
	if (!json_object_object_get_ex(o, "subject", &v) || strcmp(json_object_get_string(v), subject) != 0)
		abort();
	json_object_put(o);
}

/* w2j_simd_scan may refuse a line, but what it reads it must read as yajl does */
static void
check_scanners_agree(const char *line, size_t len)
{
	char		err[256];

	memset(fast.f, 0, sizeof(fast.f));
	buf_reset(&fast.store);
	fast.top = 0;
	if (len > W2J_SIMD_MAX || !w2j_simd_scan(parser.simd, line, len, &fast))
		return;
	if (w2j_scan_yajl(&parser, line, len, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "simdjson took a line yajl refuses (%s)\n", err);
		abort();
	}
	if (fast.top != parser.scan.top)
		abort();
	for (int k = 0; k < K_NKEYS; k++)
	{
		const struct w2j_field *a = &fast.f[k];
		const struct w2j_field *b = &parser.scan.f[k];

		if (a->kind != b->kind)
		{
			fprintf(stderr, "field %d: simdjson kind %d, yajl kind %d\n", k, a->kind, b->kind);
			abort();
		}
		if (a->kind == W2J_STRING &&
			(a->len != b->len ||
			 memcmp(fast.store.data + a->off, parser.scan.store.data + b->off, a->len) != 0))
			abort();
		if ((a->kind == W2J_INT || a->kind == W2J_BOOL) && a->ival != b->ival)
			abort();
	}
}

/* the same for the message content scanners */
static void
check_content_scanners_agree(const char *text, size_t len)
{
	const struct content_scan *slow = &cparser.scan;
	char		err[256];

	buf_reset(&cfast.store);
	memset(cfast.kind, 0, sizeof(cfast.kind));
	memset(cfast.off, 0, sizeof(cfast.off));
	memset(cfast.len, 0, sizeof(cfast.len));
	cfast.top = 0;
	if (!w2j_simd_content(cparser.simd, text, len, &cfast))
		return;
	if (content_scan_yajl(&cparser, text, len, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "simdjson took content yajl refuses (%s)\n", err);
		abort();
	}
	if (cfast.top != slow->top)
		abort();
	for (int f = 0; f < CF_NFIELDS; f++)
	{
		if (cfast.kind[f] != slow->kind[f])
		{
			fprintf(stderr, "content field %d: simdjson kind %d, yajl kind %d\n",
					f, cfast.kind[f], slow->kind[f]);
			abort();
		}
		if (cfast.kind[f] == 's' &&
			(cfast.len[f] != slow->len[f] ||
			 memcmp(cfast.store.data + cfast.off[f], slow->store.data + slow->off[f],
					cfast.len[f]) != 0))
			abort();
		if (cfast.kind[f] == 'o' && (cfast.off[f] != slow->off[f] || cfast.len[f] != slow->len[f]))
		{
			fprintf(stderr, "data at %zu..%zu (simdjson), %zu..%zu (yajl)\n",
					cfast.off[f], cfast.len[f], slow->off[f], slow->len[f]);
			abort();
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct w2j_rec rec;
	struct event_content c;
	struct txn_info t = {.xid = 1, .commit_lsn = 0x1234, .end_lsn = 0x1300};
	char		err[256];

	if (check_tok == NULL)
	{
		if (w2j_parser_init(&parser) != 0)
			abort();
		content_parser_init(&cparser);
		check_tok = json_tokener_new();
		buf_init(&out);
		buf_init(&fast.store);
		buf_init(&cfast.store);
	}
	strcpy(t.time, "2026-11-24T07:00:00Z");
	buf_reset(&out);

	check_scanners_agree((const char *) data, size);
	check_content_scanners_agree((const char *) data, size);
	if (w2j_parse(&parser, (const char *) data, size, &rec, err, sizeof(err)) != 0)
	{
		/* the bad-input path: the raw bytes must survive as valid JSON */
		json_object *d = envelope_invalid_data(err, 0x42, (const char *) data, size);

		envelope_build(&out, "/fuzz", &t, 7, "relay.invalid", "relay/invalid", d);
		json_object_put(d);
		check_line(&t, 7, "relay.invalid", "relay/invalid");
		return 0;
	}

	if (rec.timestamp)
	{
		int64_t		usec;

		if (ts_to_rfc3339(rec.timestamp, strlen(rec.timestamp), t.time, &usec) != 0)
			strcpy(t.time, "2026-11-24T07:00:00Z");
	}
	if (rec.action == 'M')
	{
		check_content_scanners_agree(rec.content, rec.content_len);
		if (content_parse(&cparser, rec.content, rec.content_len, &c, err, sizeof(err)) == 0)
		{
			/* data's span must be exactly one object of the content */
			if (c.data < rec.content || c.data_len < 2 ||
				c.data + c.data_len > rec.content + rec.content_len ||
				c.data[0] != '{' || c.data[c.data_len - 1] != '}')
				abort();
			envelope_build_text(&out, "/fuzz", &t, 1, c.type, c.subject, c.data, c.data_len);
			check_line(&t, 1, c.type, c.subject);
		}
	}
	else if (strchr("IUDT", rec.action))
	{
		json_object *d = envelope_row_data(rec.root);

		/* table names are arbitrary text: they go into type and subject */
		char		type[200],
					subject[200];

		snprintf(type, sizeof(type), "row.%.80s.insert", rec.table);
		snprintf(subject, sizeof(subject), "table/%.80s.%.80s", rec.schema, rec.table);
		envelope_build(&out, "/fuzz", &t, 2, type, subject, d);
		json_object_put(d);
		if (strlen(rec.table) <= 80 && strlen(rec.schema) <= 80 &&
			memchr(rec.table, 0, 1) == NULL)
			check_line(&t, 2, type, subject);
	}
	w2j_rec_free(&rec);
	return 0;
}
