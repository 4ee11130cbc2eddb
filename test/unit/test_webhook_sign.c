/*
 * test_webhook_sign.c — the webhook sink's signatures match the published
 * Standard Webhooks test vector (so receivers' libraries accept them),
 * secrets turn into the right key bytes, HTTP statuses map to accepted
 * / retry / refused the way the sink promises, and a refusal keeps only a
 * short, printable excerpt of the answer.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "sink_policy.h"
#include "sink_webhook_sign.h"

/* The vector from the Standard Webhooks specification and its libraries. */
#define SPEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SPEC_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SPEC_TS 1614265330
#define SPEC_BODY "{\"test\": 2432232314}"
#define SPEC_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static void
webhook_sign_spec_vector(void **state)
{
	char		err[256];
	size_t		keylen = 0;
	unsigned char *key = wh_key_from_secret(SPEC_SECRET, &keylen, err, sizeof(err));
	char		sig[WH_SIGNATURE_LEN];

	(void) state;
	assert_non_null(key);
	assert_int_equal(keylen, 24);	/* 32 base64 characters, no padding */
	assert_int_equal(wh_sign(key, keylen, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY), sig), 0);
	assert_string_equal(sig, SPEC_SIG);

	/* any change to id, timestamp or body changes the signature */
	assert_int_equal(wh_sign(key, keylen, SPEC_ID, SPEC_TS + 1, SPEC_BODY, strlen(SPEC_BODY), sig), 0);
	assert_string_not_equal(sig, SPEC_SIG);
	assert_int_equal(wh_sign(key, keylen, "msg_other", SPEC_TS, SPEC_BODY, strlen(SPEC_BODY), sig), 0);
	assert_string_not_equal(sig, SPEC_SIG);
	assert_int_equal(wh_sign(key, keylen, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY) - 1, sig), 0);
	assert_string_not_equal(sig, SPEC_SIG);
	free(key);
}

/*
 * One signer signs request after request (it starts its context again with
 * the key it keeps): every signature is the vector's or what a fresh key
 * gives, and wh_signer_mac (the inbound side's) agrees with it.
 */
static void
webhook_signer_signs_again(void **state)
{
	char		err[256];
	size_t		keylen = 0;
	unsigned char *key = wh_key_from_secret(SPEC_SECRET, &keylen, err, sizeof(err));
	struct wh_signer *sg;
	char		sig[WH_SIGNATURE_LEN],
				fresh[WH_SIGNATURE_LEN],
				mac[WH_MAC_B64_LEN];
	struct wh_part parts[] = {{SPEC_ID "." "1614265330" ".", strlen(SPEC_ID) + 12},
	{SPEC_BODY, strlen(SPEC_BODY)}};

	(void) state;
	assert_non_null(key);
	sg = wh_signer_new(key, keylen);
	assert_non_null(sg);
	for (int i = 0; i < 3; i++)
	{
		assert_int_equal(wh_signer_sign(sg, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY), sig), 0);
		assert_string_equal(sig, SPEC_SIG);
		assert_int_equal(wh_signer_sign(sg, "0/1/1", 1700000000 + i, "{}", 2, sig), 0);
		assert_int_equal(wh_sign(key, keylen, "0/1/1", 1700000000 + i, "{}", 2, fresh), 0);
		assert_string_equal(sig, fresh);
	}
	assert_int_equal(wh_signer_mac(sg, parts, 2, mac), 0);
	assert_string_equal(mac, SPEC_SIG + 3);
	wh_signer_free(sg);
	free(key);
}

static void
webhook_raw_secret_is_the_key(void **state)
{
	char		err[256];
	size_t		keylen = 0;
	unsigned char *key = wh_key_from_secret("plain secret", &keylen, err, sizeof(err));
	char		sig[WH_SIGNATURE_LEN];

	(void) state;
	assert_non_null(key);
	assert_int_equal(keylen, 12);
	assert_memory_equal(key, "plain secret", 12);
	/* python3: base64(hmac.new(b"plain secret", b"0/1/1.1700000000.{}", sha256)) */
	assert_int_equal(wh_sign(key, keylen, "0/1/1", 1700000000, "{}", 2, sig), 0);
	assert_string_equal(sig, "v1,a74DkxSMr+iWcfagrIy376YNToM20I13+EVUW0//a6w=");
	free(key);
}

static void
webhook_padded_and_bad_whsec(void **state)
{
	char		err[256];
	size_t		keylen = 0;
	unsigned char *key;

	(void) state;
	/* "whsec_" + base64("ab") = "YWI=": padding must not add key bytes */
	key = wh_key_from_secret("whsec_YWI=", &keylen, err, sizeof(err));
	assert_non_null(key);
	assert_int_equal(keylen, 2);
	assert_memory_equal(key, "ab", 2);
	free(key);

	assert_null(wh_key_from_secret("whsec_not base64!", &keylen, err, sizeof(err)));
	assert_non_null(strstr(err, "not valid base64"));
	assert_null(wh_key_from_secret("whsec_", &keylen, err, sizeof(err)));
	assert_null(wh_key_from_secret("", &keylen, err, sizeof(err)));
	assert_non_null(strstr(err, "empty"));
}

static void
webhook_status_classes(void **state)
{
	(void) state;
	assert_int_equal(wh_classify(200), WH_ACCEPTED);
	assert_int_equal(wh_classify(202), WH_ACCEPTED);
	assert_int_equal(wh_classify(204), WH_ACCEPTED);
	assert_int_equal(wh_classify(408), WH_RETRY);
	assert_int_equal(wh_classify(429), WH_RETRY);
	assert_int_equal(wh_classify(500), WH_RETRY);
	assert_int_equal(wh_classify(503), WH_RETRY);
	assert_int_equal(wh_classify(599), WH_RETRY);
	assert_int_equal(wh_classify(400), WH_REFUSED);
	assert_int_equal(wh_classify(401), WH_REFUSED);
	assert_int_equal(wh_classify(404), WH_REFUSED);
	assert_int_equal(wh_classify(301), WH_REFUSED);
	assert_int_equal(wh_classify(100), WH_REFUSED);
	assert_int_equal(wh_classify(0), WH_REFUSED);
}

/*
 * What a refusal keeps of the receiver's answer: at most SINK_EXCERPT_MAX
 * bytes, printable ASCII only, on one line.
 */
static void
webhook_printable_snippet(void **state)
{
	char		out[SINK_EXCERPT_MAX + 1];
	char		big[300];

	(void) state;
	sink_excerpt("bad\r\nrequest\n", 13, out, sizeof(out));
	assert_string_equal(out, "bad  request");
	sink_excerpt("caf\xc3\xa9 \x01\x7f.", 9, out, sizeof(out));
	assert_string_equal(out, "caf?? ??.");
	sink_excerpt("", 0, out, sizeof(out));
	assert_string_equal(out, "");
	/* an internal service's long answer: only the first 64 bytes */
	memset(big, 'x', sizeof(big));
	assert_int_equal(sink_excerpt(big, sizeof(big), out, sizeof(out)), SINK_EXCERPT_MAX);
	assert_int_equal(strlen(out), 64);
	sink_excerpt("0123456789abcdef", 16, out, 11);
	assert_string_equal(out, "0123456789");
	assert_string_equal(wh_status_text(404), "Not Found");
	assert_string_equal(wh_status_text(599), "server error");
}

int
group_webhook_sign(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(webhook_sign_spec_vector),
		cmocka_unit_test(webhook_signer_signs_again),
		cmocka_unit_test(webhook_raw_secret_is_the_key),
		cmocka_unit_test(webhook_padded_and_bad_whsec),
		cmocka_unit_test(webhook_status_classes),
		cmocka_unit_test(webhook_printable_snippet),
	};

	return cmocka_run_group_tests_name("webhook_sign", tests, NULL, NULL);
}
