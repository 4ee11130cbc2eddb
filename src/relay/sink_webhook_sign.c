/*
 * sink_webhook_sign.c — Standard Webhooks signatures and HTTP status
 * classification for the webhook sink (see sink_webhook_sign.h).
 *
 * The signed content is "<webhook-id>.<webhook-timestamp>.<body>" exactly
 * as the Standard Webhooks specification defines it, so a receiver can use
 * any of its reference libraries. The three parts are fed to the HMAC one
 * after the other instead of being joined into one buffer: bodies can be
 * large and signing happens at every attempt. The key is set up once per
 * sink (wh_signer): each signature continues from a copy of that state.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "buf.h"
#include "log.h"
#include "sink.h"
#include "sink_webhook_sign.h"

#define WHSEC_PREFIX "whsec_"

unsigned char *
wh_key_from_secret(const char *secret, size_t *keylen, char *err, size_t errlen)
{
	const char *b64;
	size_t		len;
	unsigned char *key;
	EVP_ENCODE_CTX *ctx;
	int			n1 = 0,
				n2 = 0;

	if (secret == NULL || secret[0] == '\0')
	{
		snprintf(err, errlen, "the webhook secret is empty: put the shared secret "
				 "(e.g. whsec_... from the receiver) in the variable or file that "
				 "secret_env/secret_file names");
		return NULL;
	}
	if (strncmp(secret, WHSEC_PREFIX, strlen(WHSEC_PREFIX)) != 0)
	{
		/* Not a Standard Webhooks secret: the bytes themselves are the key. */
		len = strlen(secret);
		key = malloc(len);
		if (key == NULL)
		{
			snprintf(err, errlen, "out of memory for the webhook key");
			return NULL;
		}
		memcpy(key, secret, len);
		*keylen = len;
		return key;
	}

	b64 = secret + strlen(WHSEC_PREFIX);
	len = strlen(b64);
	/* base64 never decodes to more than 3/4 of its length (+3 for slack) */
	key = malloc(len / 4 * 3 + 3);
	ctx = EVP_ENCODE_CTX_new();
	if (key == NULL || ctx == NULL)
	{
		free(key);
		EVP_ENCODE_CTX_free(ctx);
		snprintf(err, errlen, "out of memory for the webhook key");
		return NULL;
	}

	/*
	 * EVP_DecodeUpdate/Final (unlike EVP_DecodeBlock) account for the "="
	 * padding, so the key has exactly the decoded length.
	 */
	EVP_DecodeInit(ctx);
	if (len == 0 ||
		EVP_DecodeUpdate(ctx, key, &n1, (const unsigned char *) b64, (int) len) < 0 ||
		EVP_DecodeFinal(ctx, key + n1, &n2) < 0 ||
		n1 + n2 == 0)
	{
		EVP_ENCODE_CTX_free(ctx);
		free(key);
		snprintf(err, errlen, "the webhook secret starts with \"whsec_\" but the rest "
				 "is not valid base64: copy the whole secret the receiver gave you, or "
				 "use a secret without the whsec_ prefix to sign with its raw bytes");
		return NULL;
	}
	EVP_ENCODE_CTX_free(ctx);
	*keylen = (size_t) (n1 + n2);
	return key;
}

struct wh_signer
{
	EVP_MAC    *mac;
	EVP_MAC_CTX *keyed;			/* HMAC-SHA256 with the key, nothing hashed yet */
	EVP_MAC_CTX *own;			/* wh_signer_sign's: started again with its key */
};

struct wh_signer *
wh_signer_new(const unsigned char *key, size_t keylen)
{
	struct wh_signer *sg = calloc(1, sizeof(*sg));
	OSSL_PARAM	params[2];

	if (sg == NULL)
		return NULL;
	sg->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (sg->mac != NULL)
		sg->keyed = EVP_MAC_CTX_new(sg->mac);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (sg->keyed == NULL || !EVP_MAC_init(sg->keyed, key, keylen, params) ||
		(sg->own = EVP_MAC_CTX_dup(sg->keyed)) == NULL)
	{
		ERR_clear_error();
		wh_signer_free(sg);
		return NULL;
	}
	return sg;
}

void
wh_signer_free(struct wh_signer *sg)
{
	if (sg == NULL)
		return;
	EVP_MAC_CTX_free(sg->own);
	EVP_MAC_CTX_free(sg->keyed);
	EVP_MAC_free(sg->mac);
	free(sg);
}

/* HMAC of parts in ctx, set up with the key and nothing hashed yet: base64 in out */
static int
mac_parts(EVP_MAC_CTX *ctx, const struct wh_part *parts, int nparts, char *out)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	size_t		dlen = 0;
	int			ok = 1;

	out[0] = '\0';
	for (int i = 0; ok && i < nparts; i++)
		ok = EVP_MAC_update(ctx, (const unsigned char *) parts[i].data, parts[i].len);
	ok = ok && EVP_MAC_final(ctx, digest, &dlen, sizeof(digest)) && dlen == 32;
	if (!ok)
	{
		ERR_clear_error();
		return -1;
	}
	EVP_EncodeBlock((unsigned char *) out, digest, (int) dlen);
	return 0;
}

int
wh_signer_mac(const struct wh_signer *sg, const struct wh_part *parts, int nparts, char *out)
{
	/* a copy of the keyed state: callers on several threads share sg */
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(sg->keyed);
	int			rc;

	if (ctx == NULL)
	{
		out[0] = '\0';
		ERR_clear_error();
		return -1;
	}
	rc = mac_parts(ctx, parts, nparts, out);
	EVP_MAC_CTX_free(ctx);
	return rc;
}

/* "v1,<base64 HMAC of id.timestamp.body>" through wh_signer_mac */
int
wh_signer_sign(struct wh_signer *sg, const char *id, int64_t timestamp,
			   const char *body, size_t body_len, char *out)
{
	char		ts[24];
	struct wh_part parts[5];

	parts[0].data = id;
	parts[0].len = strlen(id);
	parts[1].data = ".";
	parts[1].len = 1;
	parts[2].data = ts;
	if (timestamp < 0)
	{
		ts[0] = '-';
		parts[2].len = 1 + buf_format_u64(-(uint64_t) timestamp, ts + 1);
	}
	else
		parts[2].len = buf_format_u64((uint64_t) timestamp, ts);
	parts[3] = parts[1];
	parts[4].data = body;
	parts[4].len = body_len;
	memcpy(out, "v1,", 4);
	/*
	 * The sink's own context, started again with the key it keeps (init
	 * without a key): a copy of the keyed state per request, as
	 * wh_signer_mac makes, copied three digest states and allocated twice.
	 */
	if (!EVP_MAC_init(sg->own, NULL, 0, NULL) || mac_parts(sg->own, parts, 5, out + 3) != 0)
	{
		ERR_clear_error();
		out[0] = '\0';
		return -1;
	}
	return 0;
}

int
wh_signer_from_sink(const struct sink *s, const char *url, struct wh_signer **out,
					char *err, size_t errlen)
{
	char		e2[512];
	char	   *secret;
	unsigned char *key;
	size_t		keylen = 0;

	if (!sink_secret_given(s, "secret"))
	{
		log_warning("webhook sink \"%s\" has no secret: events to %s go out unsigned, so "
					"the receiver cannot tell them from forgeries; give the sink option "
					"secret_env or secret_file (a whsec_... secret or any string)",
					s->name, url);
		*out = NULL;
		return 0;
	}
	if ((secret = sink_secret(s, "secret", e2, sizeof(e2))) == NULL)
	{
		/* e2 names the sink already */
		snprintf(err, errlen, "webhook %s", e2);
		return -1;
	}
	key = wh_key_from_secret(secret, &keylen, e2, sizeof(e2));
	sink_secret_free(secret);
	if (key == NULL)
	{
		snprintf(err, errlen, "webhook sink \"%s\": %s", s->name, e2);
		return -1;
	}
	*out = wh_signer_new(key, keylen);
	explicit_bzero(key, keylen);
	free(key);
	if (*out == NULL)
	{
		snprintf(err, errlen, "webhook sink \"%s\": OpenSSL could not set up HMAC-SHA256 "
				 "with the secret (is the OpenSSL default provider available?)", s->name);
		return -1;
	}
	return 0;
}

/* one signature without a signer kept: keys it for this call only */
int
wh_sign(const unsigned char *key, size_t keylen, const char *id,
		int64_t timestamp, const char *body, size_t body_len, char *out)
{
	struct wh_signer *sg = wh_signer_new(key, keylen);
	int			rc;

	out[0] = '\0';
	if (sg == NULL)
		return -1;
	rc = wh_signer_sign(sg, id, timestamp, body, body_len, out);
	wh_signer_free(sg);
	return rc;
}

enum wh_outcome
wh_classify(long http_status)
{
	if (http_status >= 200 && http_status <= 299)
		return WH_ACCEPTED;
	/* Request Timeout and Too Many Requests are about now, not the event. */
	if (http_status == 408 || http_status == 429)
		return WH_RETRY;
	if (http_status >= 500 && http_status <= 599)
		return WH_RETRY;
	return WH_REFUSED;
}

const char *
wh_status_text(long http_status)
{
	static const struct
	{
		long		status;
		const char *text;
	}			names[] = {
		{301, "Moved Permanently"}, {302, "Found"}, {303, "See Other"},
		{307, "Temporary Redirect"}, {308, "Permanent Redirect"}, {400, "Bad Request"},
		{401, "Unauthorized"}, {403, "Forbidden"}, {404, "Not Found"},
		{405, "Method Not Allowed"}, {406, "Not Acceptable"}, {408, "Request Timeout"},
		{409, "Conflict"}, {410, "Gone"}, {411, "Length Required"},
		{413, "Content Too Large"}, {415, "Unsupported Media Type"},
		{422, "Unprocessable Content"}, {429, "Too Many Requests"},
		{500, "Internal Server Error"}, {501, "Not Implemented"}, {502, "Bad Gateway"},
		{503, "Service Unavailable"}, {504, "Gateway Timeout"},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].status == http_status)
			return names[i].text;
	if (http_status >= 500 && http_status <= 599)
		return "server error";
	if (http_status >= 400 && http_status <= 499)
		return "client error";
	if (http_status >= 300 && http_status <= 399)
		return "redirect";
	return "unexpected status";
}
