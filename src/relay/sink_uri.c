/*
 * sink_uri.c — the text of a sink's URI and of what other systems answer
 * (see sink_policy.h): hosts and their literal forms, secret-looking query
 * parameters, redaction for logs and metric labels, and the short, printable
 * excerpt of an answer that a dead letter may keep.
 */
#define _GNU_SOURCE				/* inet_aton */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "sink_policy.h"
#include "log.h"

/* ---- text from other systems -------------------------------------------- */

size_t
sink_excerpt(const char *in, size_t len, char *out, size_t outsize)
{
	size_t		n,
				i;

	if (outsize == 0)
		return 0;
	n = len < outsize - 1 ? len : outsize - 1;
	for (i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) in[i];

		if (c == '\t' || c == '\n' || c == '\r')
			out[i] = ' ';
		else if (c < 0x20 || c > 0x7e)
			out[i] = '?';
		else
			out[i] = (char) c;
	}
	/* trailing blanks (the newline ending most error pages) say nothing */
	while (i > 0 && out[i - 1] == ' ')
		i--;
	out[i] = '\0';
	return i;
}

/* ---- URIs --------------------------------------------------------------- */

/*
 * The characters add_sink() refuses in a uri or a string option (its
 * bad_char): controls, spaces and the invisible ones that could make a
 * uri look like another. Invalid UTF-8 counts as bad too.
 */
static bool
bad_codepoint(unsigned int cp)
{
	return cp <= 0x20 || (cp >= 0x7f && cp <= 0xa0) || cp == 0x061c || cp == 0x1680 ||
		(cp >= 0x2000 && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f) ||
		(cp >= 0x205f && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x2069) ||
		cp == 0x3000 || cp == 0xfeff;
}

bool
sink_has_bad_char(const char *text, size_t len)
{
	const unsigned char *p = (const unsigned char *) text;
	size_t		i = 0;

	while (i < len)
	{
		unsigned int cp = p[i];
		int			more = cp < 0x80 ? 0 : (cp & 0xe0) == 0xc0 ? 1 : (cp & 0xf0) == 0xe0 ? 2 :
			(cp & 0xf8) == 0xf0 ? 3 : -1;

		if (more < 0 || i + (size_t) more >= len)
			return true;			/* not UTF-8, or cut off */
		if (more)
			cp &= 0x3f >> more;
		for (int k = 1; k <= more; k++)
		{
			if ((p[i + (size_t) k] & 0xc0) != 0x80)
				return true;
			cp = (cp << 6) | (p[i + (size_t) k] & 0x3f);
		}
		if (bad_codepoint(cp))
			return true;
		i += (size_t) more + 1;
	}
	return false;
}

/* The authority ("user@host:port", kafka "user@h1:p1,h2:p2") of uri. */
bool
sink_uri_authority(const char *uri, const char **start, size_t *len)
{
	const char *p = strstr(uri, "://");

	if (p == NULL)
		return false;
	*start = p + 3;
	*len = strcspn(*start, "/?#");
	return true;
}

/* The part of the authority after the userinfo. */
void
sink_uri_hostport(const char *uri, const char **start, size_t *len)
{
	const char *a;
	size_t		alen;

	if (!sink_uri_authority(uri, &a, &alen))
	{
		*start = uri;
		*len = 0;
		return;
	}
	for (size_t i = alen; i > 0; i--)
		if (a[i - 1] == '@')
		{
			*len = alen - i;
			*start = a + i;
			return;
		}
	*start = a;
	*len = alen;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Copy in[0..len) to out, %XX decoded (rabbitmq-c and curl decode hosts). */
static void
pct_decode(const char *in, size_t len, char *out, size_t outsize)
{
	size_t		o = 0;

	for (size_t i = 0; i < len && o + 1 < outsize; i++)
	{
		if (in[i] == '%' && i + 2 < len && hexval(in[i + 1]) >= 0 && hexval(in[i + 2]) >= 0)
		{
			out[o++] = (char) (hexval(in[i + 1]) * 16 + hexval(in[i + 2]));
			i += 2;
		}
		else
			out[o++] = in[i];
	}
	out[o] = '\0';
}

/*
 * Call fn for every host of uri: kafka lists several brokers, the others
 * have one. Without port and brackets, %-decoded. Stops at the first
 * nonzero return of fn and returns it.
 */
int
sink_for_each_host(const char *uri, int (*fn) (const char *host, void *arg), void *arg)
{
	const char *hp;
	size_t		hplen;
	size_t		pos = 0;

	sink_uri_hostport(uri, &hp, &hplen);
	while (pos <= hplen)
	{
		size_t		len = 0;
		const char *item = hp + pos;
		const char *h;
		size_t		hlen;
		char		host[256];
		int			rc;

		while (pos + len < hplen && item[len] != ',')
			len++;
		h = item;
		hlen = len;
		if (len > 0 && item[0] == '[')
		{
			const char *close = memchr(item, ']', len);

			h = item + 1;
			hlen = close ? (size_t) (close - h) : len - 1;
		}
		else
		{
			const char *colon = memchr(item, ':', len);

			/* two colons without brackets: an IPv6 address without port */
			if (colon && memchr(colon + 1, ':', len - (size_t) (colon + 1 - item)) == NULL)
				hlen = (size_t) (colon - item);
		}
		pct_decode(h, hlen, host, sizeof(host));
		if ((rc = fn(host, arg)) != 0)
			return rc;
		pos += len + 1;
	}
	return 0;
}

/*
 * host as an address when it is an IP literal, in any form a resolver
 * takes (127.1, 2130706433 and 0x7f.1 are all 127.0.0.1).
 */
bool
sink_host_literal(const char *host, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(host, ':'))
	{
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) ss;
		char		buf[INET6_ADDRSTRLEN];
		size_t		n = strcspn(host, "%");	/* a zone: fe80::1%eth0 */

		if (n >= sizeof(buf))
			return false;
		memcpy(buf, host, n);
		buf[n] = '\0';
		s6->sin6_family = AF_INET6;
		return inet_pton(AF_INET6, buf, &s6->sin6_addr) == 1;
	}
	else
	{
		struct sockaddr_in *s4 = (struct sockaddr_in *) ss;

		s4->sin_family = AF_INET;
		return host[0] != '\0' && inet_aton(host, &s4->sin_addr) != 0;
	}
}

static int
host_not_loopback(const char *host, void *arg)
{
	struct sockaddr_storage ss;

	(void) arg;
	/* a name that is not loopback after all is refused by the connect hooks */
	if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0)
		return 0;
	return !(sink_host_literal(host, &ss) && sink_is_loopback((struct sockaddr *) &ss));
}

/* Every host of uri is this machine: localhost or a loopback literal. */
bool
sink_uri_all_loopback(const char *uri)
{
	return sink_for_each_host(uri, host_not_loopback, NULL) == 0;
}

/*
 * Would a resolver read host as an IPv4 address (2852039166, 0xa9.254.0.1,
 * 127.1)? Then it must be written as four plain decimal numbers, so that
 * what the database shows is the address the relay connects to.
 */
bool
sink_ambiguous_ipv4(const char *host)
{
	const char *p = host;
	int			parts = 0;
	bool		canonical = true;

	while (*p)
	{
		size_t		n;

		if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		{
			n = 2 + strspn(p + 2, "0123456789abcdefABCDEF");
			canonical = false;
		}
		else
		{
			n = strspn(p, "0123456789");
			if (n == 0)
				return false;	/* a name */
			if ((n > 1 && p[0] == '0') || n > 3 || atoi(p) > 255)
				canonical = false;
		}
		parts++;
		p += n;
		if (*p == '.')
			p++;
		else if (*p)
			return false;		/* a name */
		if (parts > 4)
			return false;
	}
	return parts > 0 && (!canonical || parts != 4 || host[strlen(host) - 1] == '.');
}

/* The query's parameter names that look like a secret's (lower case). */
static const char *const secret_params[] = {
	"token", "access_token", "secret", "password", "passwd", "pwd", "key", "apikey",
	"api_key", "api-key", "auth", "authorization", "sig", "signature", "credential",
	"credentials", "session", NULL
};
/* ... and the last parts of longer names: client_secret, x-api.key */
static const char *const secret_suffixes[] = {
	"token", "secret", "password", "passwd", "pwd", "key", "apikey", "signature",
	"credential", "credentials", NULL
};

bool
sink_in_list(const char *const *list, const char *s)
{
	for (int i = 0; list && list[i]; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

/* name (lower case) is a secret's, or ends in one after "_", "." or "-" */
static bool
secret_param_name(const char *name)
{
	size_t		n = strlen(name);

	if (sink_in_list(secret_params, name))
		return true;
	for (int i = 0; secret_suffixes[i]; i++)
	{
		size_t		m = strlen(secret_suffixes[i]);

		if (n > m && strcmp(name + n - m, secret_suffixes[i]) == 0 &&
			strchr("_.-", name[n - m - 1]) != NULL)
			return true;
	}
	return false;
}

/* The first query parameter of uri named like a secret, into name; or false. */
bool
sink_uri_secret_param(const char *uri, char *name, size_t namelen)
{
	const char *q = strchr(uri, '?');

	if (q == NULL)
		return false;
	q++;
	while (*q && *q != '#')
	{
		size_t		len = strcspn(q, "&;#");
		size_t		nlen = strcspn(q, "=&;#");
		char		decoded[128];

		pct_decode(q, nlen < len ? nlen : len, decoded, sizeof(decoded));
		/* %2574oken is %74oken is token: decode until nothing changes */
		for (int round = 0; round < 8 && strchr(decoded, '%'); round++)
		{
			char		again[128];

			pct_decode(decoded, strlen(decoded), again, sizeof(again));
			if (strcmp(again, decoded) == 0)
				break;
			strcpy(decoded, again);
		}
		for (char *c = decoded; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char) (*c - 'A' + 'a');
		if (secret_param_name(decoded))
		{
			snprintf(name, namelen, "%s", decoded);
			return true;
		}
		q += len;
		if (*q == '&' || *q == ';')
			q++;
	}
	return false;
}

/* out += text, as far as it fits */
void
sink_append(char *out, size_t outlen, size_t *o, const char *text, size_t len)
{
	for (size_t i = 0; i < len && *o + 1 < outlen; i++)
	{
		unsigned char c = (unsigned char) text[i];

		out[(*o)++] = (c < 0x20 || c == 0x7f) ? '?' : (char) c;
	}
	out[*o] = '\0';
}

void
sink_redact_uri(const char *uri, char *out, size_t outlen)
{
	const char *scheme_end = strstr(uri, "://");
	const char *hp,
			   *rest;
	size_t		hplen,
				o = 0;

	if (outlen == 0)
		return;
	out[0] = '\0';
	if (scheme_end)
	{
		sink_append(out, outlen, &o, uri, (size_t) (scheme_end + 3 - uri));
		sink_uri_hostport(uri, &hp, &hplen);
		sink_append(out, outlen, &o, hp, hplen);
		rest = hp + hplen;
	}
	else
		rest = uri;
	/* the path as it is */
	sink_append(out, outlen, &o, rest, strcspn(rest, "?#"));
	rest += strcspn(rest, "?#");
	if (*rest != '?')
		return;					/* a fragment is never sent: left out */
	rest++;
	sink_append(out, outlen, &o, "?", 1);
	while (*rest && *rest != '#')
	{
		size_t		len = strcspn(rest, "&#");
		size_t		nlen = strcspn(rest, "=&#");

		if (nlen < len && nlen == 8 && strncmp(rest, "exchange", 8) == 0)
			sink_append(out, outlen, &o, rest, len);
		else if (nlen < len)
		{
			sink_append(out, outlen, &o, rest, nlen);
			sink_append(out, outlen, &o, "=***", 4);
		}
		else
			sink_append(out, outlen, &o, "***", 3);	/* a bare parameter may be the secret */
		rest += len;
		if (*rest == '&')
		{
			sink_append(out, outlen, &o, "&", 1);
			rest++;
		}
	}
}

