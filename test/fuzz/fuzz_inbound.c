/*
 * fuzz_inbound.c — libFuzzer target for what a channel's webhook brings
 * before the database sees it: the signature schemes of the inbound
 * endpoint (inbound_verify.c), fed headers and a body from the input.
 *
 * Why a property and not only "no crash": the verifier is the door of the
 * inbound endpoint. Whatever headers and body come in, a request is
 * accepted only when it carries a signature made with the channel's key
 * over exactly that content. The fuzzer cannot find an HMAC by chance, so
 * any input it makes must be refused, unless this target signs it itself
 * (the input asks for that in its first byte). What the target signs is
 * computed here with OpenSSL's one-shot HMAC(), not with the relay's
 * signer, and must be accepted exactly when the rest of the request is
 * acceptable (a timestamp within the tolerance, a usable event id); with
 * one bit of the body or the signature changed after signing it must be
 * refused.
 *
 * Input: byte 0 the mode (bits 0-1 the scheme, 3 read as 0; bit 2 sign,
 * 3 tamper, 4-6 a blank, a decoy signature and a v2 one around the real
 * one), bytes 1-2 which of the nine headers are present, then the nine
 * headers, each ended by '\n' (a header from libmicrohttpd holds neither
 * '\n' nor NUL), then the body. With sign set, the scheme's signature
 * header is replaced by the real one.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "inbound_verify.h"

#define NOW 1764590400			/* 2025-12-01, a fixed clock */
#define TOLERANCE 300

enum field
{
	F_WH_ID, F_WH_TS, F_WH_SIG, F_SH_HMAC, F_SH_ID, F_SH_TOPIC, F_WC_SIG, F_WC_ID, F_WC_TOPIC,
	NFIELDS
};

static const unsigned char key[] = "fuzz-channel-secret";
static struct wh_signer *signer;

/* base64(HMAC-SHA256(key, a b c)) into out (at least 45 bytes) */
static void
mac(const char *a, size_t alen, const char *b, size_t blen, const char *c, size_t clen,
	char *out)
{
	unsigned char m[EVP_MAX_MD_SIZE];
	unsigned int mlen = 0;
	size_t		n = alen + blen + clen;
	unsigned char *all = malloc(n ? n : 1);

	if (all == NULL)
		abort();
	memcpy(all, a, alen);
	memcpy(all + alen, b, blen);
	memcpy(all + alen + blen, c, clen);
	if (HMAC(EVP_sha256(), key, (int) (sizeof(key) - 1), all, n, m, &mlen) == NULL || mlen != 32)
		abort();
	EVP_EncodeBlock((unsigned char *) out, m, (int) mlen);
	free(all);
}

/* One bit changed after signing: the body's, or else the signature's. */
static void
spoil(char *mac_b64, char *body, size_t len)
{
	if (len > 0)
		body[len / 2] ^= 1;
	else
		mac_b64[0] = mac_b64[0] == 'A' ? 'B' : 'A';
}

/* Unix seconds as the Standard Webhooks scheme takes them, within the tolerance */
static bool
timely(const char *ts)
{
	long long	t;

	if (ts == NULL || ts[0] == '\0' || ts[0] == '0' || strlen(ts) > 12 ||
		strspn(ts, "0123456789") != strlen(ts))
		return false;
	t = strtoll(ts, NULL, 10);
	return t >= NOW - TOLERANCE && t <= NOW + TOLERANCE;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *field[NFIELDS] = {0};
	char		sig[3 + 45 + 1],
				sighdr[200],
				why[1024];
	struct inbound_headers h;
	enum inbound_scheme scheme;
	enum inbound_verdict v;
	const char *event_id,
			   *topic,
			   *p,
			   *end = (const char *) data + size;
	const char *want_id = NULL;
	char	   *body;
	size_t		len;
	unsigned	mode,
				present;
	bool		sign,
				tamper,
				acceptable = false;

	if (size < 3)
		return 0;
	if (signer == NULL && (signer = wh_signer_new(key, sizeof(key) - 1)) == NULL)
		abort();
	mode = data[0];
	present = data[1] | (unsigned) data[2] << 8;
	p = (const char *) data + 3;
	scheme = (enum inbound_scheme) ((mode & 3) % 3);
	sign = mode & 4;
	tamper = mode & 8;
	for (int i = 0; i < NFIELDS; i++)
	{
		const char *nl = memchr(p, '\n', (size_t) (end - p));
		size_t		n = nl ? (size_t) (nl - p) : (size_t) (end - p);

		if (present & (1u << i))
		{
			field[i] = malloc(n + 1);
			if (field[i] == NULL)
				abort();
			memcpy(field[i], p, n);
			field[i][n] = '\0';	/* a NUL inside ends it, as in a C string */
		}
		p += nl ? n + 1 : n;
	}
	len = (size_t) (end - p);
	body = malloc(len ? len : 1);
	if (body == NULL)
		abort();
	memcpy(body, p, len);

	if (sign)
	{
		switch (scheme)
		{
			case INBOUND_STANDARD_WEBHOOKS:
				if (field[F_WH_ID] && field[F_WH_TS])
				{
					char		dotted_ts[32];
					size_t		idlen = strlen(field[F_WH_ID]);
					size_t		tslen = strlen(field[F_WH_TS]);
					char	   *id_dot = malloc(idlen + 1);

					if (id_dot == NULL || tslen > 20)
					{
						free(id_dot);
						break;
					}
					memcpy(id_dot, field[F_WH_ID], idlen);
					id_dot[idlen] = '.';
					snprintf(dotted_ts, sizeof(dotted_ts), "%s.", field[F_WH_TS]);
					memcpy(sig, "v1,", 3);
					mac(id_dot, idlen + 1, dotted_ts, tslen + 1, body, len, sig + 3);
					free(id_dot);
					if (tamper)
						spoil(sig + 3, body, len);
					/* a blank before it, or a decoy signature, or both */
					snprintf(sighdr, sizeof(sighdr), "%s%s%s%s", (mode & 16) ? " " : "",
							 (mode & 32) ? "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= " : "",
							 sig, (mode & 64) ? " v2,x" : "");
					free(field[F_WH_SIG]);
					if ((field[F_WH_SIG] = strdup(sighdr)) == NULL)
						abort();
					acceptable = timely(field[F_WH_TS]) && inbound_id_ok(field[F_WH_ID]);
					want_id = field[F_WH_ID];
				}
				break;
			case INBOUND_SHOPIFY:
			case INBOUND_WOOCOMMERCE:
				{
					int			f = scheme == INBOUND_SHOPIFY ? F_SH_HMAC : F_WC_SIG;
					int			id = scheme == INBOUND_SHOPIFY ? F_SH_ID : F_WC_ID;

					mac("", 0, "", 0, body, len, sig);
					if (tamper)
						spoil(sig, body, len);
					snprintf(sighdr, sizeof(sighdr), "%s%s", (mode & 16) ? " " : "", sig);
					free(field[f]);
					if ((field[f] = strdup(sighdr)) == NULL)
						abort();
					acceptable = inbound_id_ok(field[id]);
					want_id = field[id];
				}
				break;
		}
		if (tamper)
			acceptable = false;
	}

	memset(&h, 0, sizeof(h));
	h.wh_id = field[F_WH_ID];
	h.wh_timestamp = field[F_WH_TS];
	h.wh_signature = field[F_WH_SIG];
	h.shopify_hmac = field[F_SH_HMAC];
	h.shopify_webhook_id = field[F_SH_ID];
	h.shopify_topic = field[F_SH_TOPIC];
	h.wc_signature = field[F_WC_SIG];
	h.wc_delivery_id = field[F_WC_ID];
	h.wc_topic = field[F_WC_TOPIC];
	v = inbound_verify(scheme, signer, &h, body, len, NOW, TOLERANCE, &event_id, &topic,
					   why, sizeof(why));

	if (v == INBOUND_OK)
	{
		/* a forgery, or a tampered request, got through */
		if (!acceptable)
		{
			fprintf(stderr, "fuzz_inbound: accepted what was not signed (scheme %d, sign %d, tamper %d)\n",
					scheme, sign, tamper);
			abort();
		}
		if (event_id != want_id || !inbound_id_ok(event_id))
			abort();
		if (topic != (scheme == INBOUND_SHOPIFY ? h.shopify_topic :
					  scheme == INBOUND_WOOCOMMERCE ? h.wc_topic : NULL))
			abort();
	}
	else
	{
		if (acceptable)
		{
			fprintf(stderr, "fuzz_inbound: refused a request signed with the channel's key: %s\n", why);
			abort();
		}
		/* refused with a reason, and no event id */
		if (event_id != NULL || why[0] == '\0')
			abort();
	}
	for (int i = 0; i < NFIELDS; i++)
		free(field[i]);
	free(body);
	return 0;
}
