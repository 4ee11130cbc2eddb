/*
 * sink_webhook_sign.h — the pure parts of the webhook sink: Standard
 * Webhooks signing, the signing key from a secret, and what an HTTP status
 * means for a delivery (and its name).
 *
 * Kept apart from sink_webhook.c (which needs libcurl and the relay's
 * loop) so the unit tests can check them against the published Standard
 * Webhooks test vector without any network; wh_signer_from_sink, the one
 * part that reads the sink's options, sets the sink's signer up at open.
 */
#ifndef ORDERSYNCD_SINK_WEBHOOK_SIGN_H
#define ORDERSYNCD_SINK_WEBHOOK_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "v1," + base64 of 32 bytes (44 characters) + NUL */
#define WH_SIGNATURE_LEN 48

/*
 * The HMAC key for a secret. A secret starting with "whsec_" is a Standard
 * Webhooks secret: the rest is base64 and the key is the decoded bytes (what
 * every Standard Webhooks / Svix receiver library does). Any other secret is
 * used as it is. Returns a malloc'd key (its length in *keylen), or NULL
 * with err filled.
 */
unsigned char *wh_key_from_secret(const char *secret, size_t *keylen,
								  char *err, size_t errlen);

/*
 * Sign one attempt: out = "v1," + base64(HMAC-SHA256(key, id "." ts "."
 * body)). out must hold WH_SIGNATURE_LEN bytes. Returns 0, or -1 if OpenSSL
 * failed (out is then empty). Sets the key up anew at every call: the
 * sink signs through a wh_signer.
 */
int			wh_sign(const unsigned char *key, size_t keylen, const char *id,
					int64_t timestamp, const char *body, size_t body_len,
					char *out);

/*
 * A key set up once for many signatures: OpenSSL 3 looks the HMAC and
 * SHA-256 implementations up by name and hashes the key's pads at every
 * EVP_MAC_init, which cost the sink more than the hashing of an event;
 * each signature starts from a copy of the keyed state instead.
 * wh_signer_new returns NULL when OpenSSL fails (or is out of memory).
 */
struct wh_signer;

struct wh_signer *wh_signer_new(const unsigned char *key, size_t keylen);
/*
 * As wh_sign. Uses a context of sg's own, so one thread at a time (the
 * sink's); wh_signer_mac may be called from several at once.
 */
int			wh_signer_sign(struct wh_signer *sg, const char *id, int64_t timestamp,
						   const char *body, size_t body_len, char *out);
void		wh_signer_free(struct wh_signer *sg);

/*
 * The webhook sink's signer from the secret its options name (secret_env
 * or secret_file): 0 with *out set, or with *out NULL and a warning (it
 * names url) when no secret is given (events go out unsigned); -1 with err
 * when the secret cannot be read or used.
 */
struct sink;
int			wh_signer_from_sink(const struct sink *s, const char *url, struct wh_signer **out,
								char *err, size_t errlen);

/* base64 of an HMAC-SHA256 (44 characters) + NUL */
#define WH_MAC_B64_LEN 45

/* one piece of the content a wh_signer_mac covers */
struct wh_part
{
	const void *data;
	size_t		len;
};

/*
 * out = base64(HMAC-SHA256(key, parts[0] parts[1] ...)) without a "v1,":
 * what Shopify and WooCommerce send over a body, and what the inbound
 * endpoint (inbound_verify.c) checks any signature with. out must hold
 * WH_MAC_B64_LEN bytes. Returns 0, or -1 if OpenSSL failed (out empty).
 */
int			wh_signer_mac(const struct wh_signer *sg, const struct wh_part *parts,
						  int nparts, char *out);

/* What a finished HTTP exchange means for the delivery. */
enum wh_outcome
{
	WH_ACCEPTED,				/* 2xx: the receiver has it */
	WH_RETRY,					/* 408, 429, 5xx: try again later */
	WH_REFUSED					/* 1xx, 3xx, other 4xx: retrying will not help */
};

enum wh_outcome wh_classify(long http_status);

/* The reason phrase of an HTTP status ("Not Found"), for messages. */
const char *wh_status_text(long http_status);

#endif
