/*
 * inbound_verify.h — is a webhook a channel pushed really from it, and
 * which event is it: the signature schemes of the inbound endpoint.
 *
 * Pure functions of the request (headers, body, the current time) and the
 * channel's key, so the checks can be tested without a server. The HMAC is
 * the webhook sink's (wh_signer_mac, sink_webhook_sign.h): one
 * implementation signs and verifies.
 */
#ifndef ORDERSYNCD_INBOUND_VERIFY_H
#define ORDERSYNCD_INBOUND_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sink_webhook_sign.h"

enum inbound_scheme
{
	INBOUND_STANDARD_WEBHOOKS,	/* webhook-id/-timestamp/-signature over id.ts.body */
	INBOUND_SHOPIFY,			/* X-Shopify-Hmac-Sha256 over the body */
	INBOUND_WOOCOMMERCE			/* X-WC-Webhook-Signature over the body */
};

/* the name set_channel_inbound() stores; -1 when unknown */
int			inbound_scheme_parse(const char *name);

/* The request's headers that matter; NULL when absent. */
struct inbound_headers
{
	const char *wh_id;
	const char *wh_timestamp;
	const char *wh_signature;
	const char *shopify_hmac;
	const char *shopify_webhook_id;
	const char *shopify_topic;
	const char *wc_signature;
	const char *wc_delivery_id;
	const char *wc_topic;
};

enum inbound_verdict
{
	INBOUND_OK,
	INBOUND_UNSIGNED,			/* 401: no signature or no timestamp */
	INBOUND_BAD_SIGNATURE,		/* 401: no signature matches */
	INBOUND_EXPIRED,			/* 401: timestamp outside the tolerance */
	INBOUND_BAD_ID				/* 400: signed, but no usable event id */
};

#define INBOUND_DEFAULT_TOLERANCE 300	/* seconds, as Standard Webhooks */
#define INBOUND_MAX_ID 200				/* bytes of an event id */

/*
 * Check the request against the channel's key. On INBOUND_OK, *event_id
 * and *topic (NULL when the scheme has none or it is absent) point into
 * h. Otherwise why says what was wrong, in words fit for the sender (no
 * expected value is ever shown). now and tolerance in seconds.
 */
enum inbound_verdict inbound_verify(enum inbound_scheme scheme, const struct wh_signer *sg,
									const struct inbound_headers *h,
									const char *body, size_t len, int64_t now,
									int tolerance, const char **event_id,
									const char **topic, char *why, size_t whylen);

/* 1 to INBOUND_MAX_ID visible ASCII characters, no space */
bool		inbound_id_ok(const char *id);

#endif
