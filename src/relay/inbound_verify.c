/*
 * inbound_verify.c — signature checks of the inbound endpoint (see
 * inbound_verify.h).
 *
 * Every comparison of a signature is constant-time (CRYPTO_memcmp) and
 * happens only between values of the expected length, so the time an
 * answer takes says nothing about how close a forgery came. Nothing here
 * allocates: headers are bounded by libmicrohttpd's per-connection memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "inbound_verify.h"

/* at most this many signatures in webhook-signature (key rotation sends 2) */
#define MAX_SIGNATURES 8

int
inbound_scheme_parse(const char *name)
{
	if (strcmp(name, "standard-webhooks") == 0)
		return INBOUND_STANDARD_WEBHOOKS;
	if (strcmp(name, "shopify") == 0)
		return INBOUND_SHOPIFY;
	if (strcmp(name, "woocommerce") == 0)
		return INBOUND_WOOCOMMERCE;
	return -1;
}

bool
inbound_id_ok(const char *id)
{
	size_t		n = 0;

	if (id == NULL)
		return false;
	for (; id[n]; n++)
		if (id[n] <= 0x20 || id[n] >= 0x7f || n >= INBOUND_MAX_ID)
			return false;
	return n > 0;
}

/* a signature as sent (spaces around trimmed) against the expected one */
static bool
same(const char *sent, size_t sentlen, const char *expected)
{
	size_t		n = strlen(expected);

	while (sentlen > 0 && (*sent == ' ' || *sent == '\t'))
		sent++, sentlen--;
	while (sentlen > 0 && (sent[sentlen - 1] == ' ' || sent[sentlen - 1] == '\t'))
		sentlen--;
	return sentlen == n && CRYPTO_memcmp(sent, expected, n) == 0;
}

static enum inbound_verdict
standard_webhooks(const struct wh_signer *sg, const struct inbound_headers *h,
				  const char *body, size_t len, int64_t now, int tolerance,
				  const char **event_id, char *why, size_t whylen)
{
	char		expected[3 + WH_MAC_B64_LEN] = "v1,";
	struct wh_part parts[5];
	const char *ts = h->wh_timestamp;
	const char *p;
	int64_t		t = 0;
	int			n = 0;

	if (h->wh_signature == NULL || ts == NULL || h->wh_id == NULL)
	{
		snprintf(why, whylen, "the request has no %s header: sign it the Standard Webhooks way "
				 "(webhook-id, webhook-timestamp, webhook-signature)",
				 h->wh_id == NULL ? "webhook-id" : ts == NULL ? "webhook-timestamp" : "webhook-signature");
		return INBOUND_UNSIGNED;
	}
	/* Unix seconds, written plainly: the signature covers this very text */
	if (ts[0] == '\0' || ts[0] == '0' || strspn(ts, "0123456789") != strlen(ts) || strlen(ts) > 12)
	{
		snprintf(why, whylen, "webhook-timestamp is not a time in Unix seconds");
		return INBOUND_UNSIGNED;
	}
	t = strtoll(ts, NULL, 10);
	if (t < now - tolerance || t > now + tolerance)
	{
		snprintf(why, whylen, "webhook-timestamp is %lld seconds %s this server's clock; at most %d "
				 "are accepted (replayed, or a clock is wrong)",
				 (long long) (t < now ? now - t : t - now), t < now ? "behind" : "ahead of", tolerance);
		return INBOUND_EXPIRED;
	}
	if (!inbound_id_ok(h->wh_id))
	{
		snprintf(why, whylen, "webhook-id must be 1 to %d visible ASCII characters", INBOUND_MAX_ID);
		return INBOUND_BAD_ID;
	}
	parts[0] = (struct wh_part) {h->wh_id, strlen(h->wh_id)};
	parts[1] = (struct wh_part) {".", 1};
	parts[2] = (struct wh_part) {ts, strlen(ts)};
	parts[3] = (struct wh_part) {".", 1};
	parts[4] = (struct wh_part) {body, len};
	if (wh_signer_mac(sg, parts, 5, expected + 3) != 0)
	{
		snprintf(why, whylen, "the signature could not be computed (OpenSSL failed)");
		return INBOUND_BAD_SIGNATURE;
	}
	/* "v1,<sig> v1,<sig2>": any one of them may match */
	for (p = h->wh_signature; *p && n < MAX_SIGNATURES; n++)
	{
		size_t		l;

		while (*p == ' ')
			p++;
		l = strcspn(p, " ");
		if (l > 0 && same(p, l, expected))
		{
			*event_id = h->wh_id;
			return INBOUND_OK;
		}
		p += l;
	}
	snprintf(why, whylen, "no signature in webhook-signature matches the body; check that the "
			 "sender uses the secret ordersyncd reads for this channel");
	return INBOUND_BAD_SIGNATURE;
}

/* Shopify and WooCommerce: base64(HMAC-SHA256(secret, body)) in a header */
static enum inbound_verdict
body_hmac(const struct wh_signer *sg, const char *header, const char *sig,
		  const char *id, const char *id_header, const char *body, size_t len,
		  const char **event_id, char *why, size_t whylen)
{
	char		expected[WH_MAC_B64_LEN];
	struct wh_part part = {body, len};

	if (sig == NULL)
	{
		snprintf(why, whylen, "the request has no %s header", header);
		return INBOUND_UNSIGNED;
	}
	if (wh_signer_mac(sg, &part, 1, expected) != 0)
	{
		snprintf(why, whylen, "the signature could not be computed (OpenSSL failed)");
		return INBOUND_BAD_SIGNATURE;
	}
	if (!same(sig, strlen(sig), expected))
	{
		snprintf(why, whylen, "%s does not match the body; check that the sender uses the "
				 "secret ordersyncd reads for this channel", header);
		return INBOUND_BAD_SIGNATURE;
	}
	if (!inbound_id_ok(id))
	{
		snprintf(why, whylen, "%s must be 1 to %d visible ASCII characters: it is how repeats "
				 "are recognised", id_header, INBOUND_MAX_ID);
		return INBOUND_BAD_ID;
	}
	*event_id = id;
	return INBOUND_OK;
}

enum inbound_verdict
inbound_verify(enum inbound_scheme scheme, const struct wh_signer *sg,
			   const struct inbound_headers *h, const char *body, size_t len,
			   int64_t now, int tolerance, const char **event_id, const char **topic,
			   char *why, size_t whylen)
{
	*event_id = NULL;
	*topic = NULL;
	why[0] = '\0';
	switch (scheme)
	{
		case INBOUND_STANDARD_WEBHOOKS:
			return standard_webhooks(sg, h, body, len, now, tolerance, event_id, why, whylen);
		case INBOUND_SHOPIFY:
			*topic = h->shopify_topic;
			return body_hmac(sg, "X-Shopify-Hmac-Sha256", h->shopify_hmac, h->shopify_webhook_id,
							 "X-Shopify-Webhook-Id", body, len, event_id, why, whylen);
		case INBOUND_WOOCOMMERCE:
			*topic = h->wc_topic;
			return body_hmac(sg, "X-WC-Webhook-Signature", h->wc_signature, h->wc_delivery_id,
							 "X-WC-Webhook-Delivery-ID", body, len, event_id, why, whylen);
	}
	snprintf(why, whylen, "unknown signature scheme");
	return INBOUND_BAD_SIGNATURE;
}
