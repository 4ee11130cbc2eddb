/*
 * test_envelope.c — CloudEvents envelopes: exact bytes for a known input,
 * ids stable per (commit LSN, ordinal), data kept as written, and bad
 * message content rejected with a reason.
 */
#include <string.h>

#include "unit.h"
#include "envelope.h"
#include "w2j.h"

static json_tokener *tok;
static struct content_parser cp;

static int
setup(void **state)
{
	(void) state;
	tok = json_tokener_new();
	content_parser_init(&cp);
	return tok ? 0 : -1;
}

static int
teardown(void **state)
{
	(void) state;
	json_tokener_free(tok);
	content_parser_free(&cp);
	return 0;
}

static struct txn_info
sample_txn(void)
{
	struct txn_info t = {.xid = 727, .commit_lsn = 0x153DCD8, .end_lsn = 0x153DD08,
	.commit_usec = 0};

	strcpy(t.time, "2026-11-24T07:07:52.635716Z");
	return t;
}

static void
envelope_exact_bytes(void **state)
{
	struct event_content c;
	struct txn_info t = sample_txn();
	struct buf	b;
	char		err[256];
	const char *content = "{\"type\":\"order.paid\",\"subject\":\"order/17\","
		"\"data\":{\"order_id\":17,\"total\":\"39.80\",\"rate\":1.10,\"lines\":[],\"x\":null}}";

	(void) state;
	assert_int_equal(content_parse(&cp, content, strlen(content), &c, err, sizeof(err)), 0);
	buf_init(&b);
	envelope_build_text(&b, "/ordersync/shop", &t, 3, c.type, c.subject, c.data, c.data_len);
	assert_string_equal(b.data,
						"{\"specversion\":\"1.0\",\"id\":\"0/153DCD8/3\",\"source\":\"/ordersync/shop\","
						"\"type\":\"ordersync.order.paid\",\"subject\":\"order/17\","
						"\"time\":\"2026-11-24T07:07:52.635716Z\",\"datacontenttype\":\"application/json\","
						"\"oscommitlsn\":\"0/153DCD8\",\"osxid\":\"727\","
						"\"data\":{\"order_id\":17,\"total\":\"39.80\",\"rate\":1.10,\"lines\":[],\"x\":null}}\n");
	buf_free(&b);
}

static void
envelope_is_one_valid_json_line(void **state)
{
	struct event_content c;
	struct txn_info t = sample_txn();
	struct buf	b;
	char		err[256];
	json_object *back;
	const char *content = "{\"type\":\"order.created\",\"subject\":\"order/1\","
		"\"data\":{\"note\":\"line1\\nline2 \\\"q\\\" \\u00e9 \\/ \\t\"}}";

	(void) state;
	assert_int_equal(content_parse(&cp, content, strlen(content), &c, err, sizeof(err)), 0);
	buf_init(&b);
	envelope_build_text(&b, "/s", &t, 1, c.type, c.subject, c.data, c.data_len);
	/* exactly one newline, at the end */
	assert_ptr_equal(strchr(b.data, '\n'), b.data + b.len - 1);
	back = w2j_parse_json(tok, b.data, b.len, err, sizeof(err));
	assert_non_null(back);
	assert_string_equal(json_object_get_string(json_object_object_get(
		json_object_object_get(back, "data"), "note")), "line1\nline2 \"q\" \xc3\xa9 / \t");
	json_object_put(back);
	buf_free(&b);
}

/*
 * data as jsonb prints it (a space after ':' and ','), with braces and
 * spaces inside strings and a repeated key: the envelope carries the
 * value's text without the whitespace between tokens, which is what the
 * json-c serializer produced for such input, and exactly the last "data".
 */
static void
envelope_data_text_is_compacted(void **state)
{
	struct event_content c;
	struct txn_info t = sample_txn();
	struct buf	b;
	char		err[256];
	const char *content = "{\"type\": \"order.paid\", \"data\": {\"old\": 1}, \"subject\": \"order/17\",\n"
		" \"data\": {\"order_id\": 17, \"lines\": [{\"sku\": \"A} {\\\"1\", \"qty\": 2}],"
		" \"total\": \"39.80\", \"big\": 123456789012345678901234, \"r\": 1.10} }";
	const char *want = "{\"order_id\":17,\"lines\":[{\"sku\":\"A} {\\\"1\",\"qty\":2}],"
		"\"total\":\"39.80\",\"big\":123456789012345678901234,\"r\":1.10}}\n";

	(void) state;
	assert_int_equal(content_parse(&cp, content, strlen(content), &c, err, sizeof(err)), 0);
	assert_int_equal(c.data[0], '{');
	assert_int_equal(c.data[c.data_len - 1], '}');
	buf_init(&b);
	envelope_build_text(&b, "/s", &t, 1, c.type, c.subject, c.data, c.data_len);
	assert_true(b.len > strlen(want));
	assert_string_equal(b.data + b.len - strlen(want), want);
	buf_free(&b);
}

static void
envelope_ids_are_stable(void **state)
{
	struct txn_info t = sample_txn();
	struct buf	a,
				b;
	json_object *d = json_object_new_object();

	(void) state;
	buf_init(&a);
	buf_init(&b);
	envelope_build(&a, "/s", &t, 9, "x.y", "sku/A-1", d);
	envelope_build(&b, "/s", &t, 9, "x.y", "sku/A-1", d);
	assert_string_equal(a.data, b.data);
	assert_non_null(strstr(a.data, "\"id\":\"0/153DCD8/9\""));
	t.id_tag = "S";
	buf_reset(&a);
	envelope_build(&a, "/s", &t, 2, "order.snapshot", "order/5", d);
	assert_non_null(strstr(a.data, "\"id\":\"0/153DCD8/S2\""));
	json_object_put(d);
	buf_free(&a);
	buf_free(&b);
}

static void
content_rejects(void **state)
{
	const char *bad[] = {
		"not json",
		"[]",
		"\"str\"",
		"{}",
		"{\"type\":\"order.paid\",\"subject\":\"order/1\"}",				/* no data */
		"{\"type\":\"order.paid\",\"subject\":\"order/1\",\"data\":[1]}",	/* data not object */
		"{\"type\":\"\",\"subject\":\"order/1\",\"data\":{}}",
		"{\"type\":\"order paid\",\"subject\":\"order/1\",\"data\":{}}",
		"{\"type\":\"order.paid\\n\",\"subject\":\"order/1\",\"data\":{}}",
		"{\"type\":5,\"subject\":\"order/1\",\"data\":{}}",
		"{\"type\":\"order.paid\",\"subject\":\"\",\"data\":{}}",
		"{\"type\":\"order.paid\",\"subject\":7,\"data\":{}}",
		"{\"type\":\"order.paid\",\"subject\":\"order/1\",\"data\":{}} x",
		/* content may come from pg_logical_emit_message(bytea): bytes are checked here */
		"{\"type\":\"order.paid\",\"subject\":\"order/\xff\",\"data\":{}}",
	};

	(void) state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		struct event_content c;
		char		err[256] = "";

		if (content_parse(&cp, bad[i], strlen(bad[i]), &c, err, sizeof(err)) != -1)
			fail_msg("accepted bad content %zu: %s", i, bad[i]);
		assert_true(err[0] != '\0');
		assert_null(c.data);
	}
}

static void
content_tolerates_extra_keys(void **state)
{
	struct event_content c;
	char		err[256];
	const char *s = "{\"type\":\"inventory.reserved\",\"subject\":\"sku/A-1\",\"data\":{},\"v\":2}";

	(void) state;
	assert_int_equal(content_parse(&cp, s, strlen(s), &c, err, sizeof(err)), 0);
	assert_string_equal(c.type, "inventory.reserved");
	assert_string_equal(c.subject, "sku/A-1");
}

static void
row_data_drops_bookkeeping(void **state)
{
	char		err[256];
	const char *s = "{\"action\":\"U\",\"xid\":1,\"timestamp\":\"t\",\"lsn\":\"0/1\",\"schema\":\"ordersync\","
		"\"table\":\"orders\",\"columns\":[{\"name\":\"id\",\"value\":1}],\"identity\":[]}";
	json_object *root = w2j_parse_json(tok, s, strlen(s), err, sizeof(err));
	json_object *d;

	(void) state;
	assert_non_null(root);
	d = envelope_row_data(root);
	assert_string_equal(json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN),
						"{\"schema\":\"ordersync\",\"table\":\"orders\",\"columns\":[{\"name\":\"id\",\"value\":1}],\"identity\":[]}");
	json_object_put(d);
	json_object_put(root);
}

static void
invalid_data_keeps_the_line(void **state)
{
	json_object *d = envelope_invalid_data("why", 0x10, "ab\"c", 4);
	json_object *h = envelope_invalid_data("why", 0x10, "a\xff", 2);

	(void) state;
	assert_string_equal(json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
						"{\"reason\":\"why\",\"lsn\":\"0/10\",\"line\":\"ab\\\"c\"}");
	/* not UTF-8: carried as hex so the sink stays valid JSON */
	assert_string_equal(json_object_to_json_string_ext(h, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
						"{\"reason\":\"why\",\"lsn\":\"0/10\",\"line_hex\":\"61ff\"}");
	json_object_put(d);
	json_object_put(h);
}

int
group_envelope(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(envelope_exact_bytes),
		cmocka_unit_test(envelope_is_one_valid_json_line),
		cmocka_unit_test(envelope_data_text_is_compacted),
		cmocka_unit_test(envelope_ids_are_stable),
		cmocka_unit_test(content_rejects),
		cmocka_unit_test(content_tolerates_extra_keys),
		cmocka_unit_test(row_data_drops_bookkeeping),
		cmocka_unit_test(invalid_data_keeps_the_line),
	};

	return cmocka_run_group_tests_name("envelope", tests, setup, teardown);
}
