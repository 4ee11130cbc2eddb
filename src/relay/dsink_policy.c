/*
 * dsink_policy.c — what a delivery sink may be configured to do (see
 * dsink_policy.h and "What the database may configure" in doc/sinks.md).
 *
 * Every rule is an allowlist: the option keys of each sink kind, the
 * librdkafka properties a sink from the database may set, the environment
 * variables and files its secret references may name. A blocklist would
 * have to know every dangerous property of three client libraries, today
 * and in their next versions (librdkafka alone can run a shell command,
 * dlopen a plugin, load an OpenSSL engine or provider, and read any file
 * as a key); an allowlist only has to know the harmless ones.
 *
 * Sinks on the relay's command line get the same key and type checks, so
 * a typo is found the same way, but none of the restrictions: the
 * operator of the host chose them. The deny list of networks applies to
 * both: it is the operator's own list of places the relay never goes.
 */
#define _GNU_SOURCE				/* inet_aton */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "dsink_policy.h"
#include "log.h"

/* ---- networks ------------------------------------------------------------ */

/*
 * The address of sa as family + bytes; a v4-mapped IPv6 address
 * (::ffff:169.254.169.254) is the IPv4 address it maps, since that is
 * where the packets go.
 */
static bool
addr_of(const struct sockaddr *sa, int *family, unsigned char addr[16])
{
	if (sa->sa_family == AF_INET)
	{
		memcpy(addr, &((const struct sockaddr_in *) sa)->sin_addr, 4);
		*family = AF_INET;
		return true;
	}
	if (sa->sa_family == AF_INET6)
	{
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *) sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a6))
		{
			memcpy(addr, a6->s6_addr + 12, 4);
			*family = AF_INET;
		}
		else
		{
			memcpy(addr, a6->s6_addr, 16);
			*family = AF_INET6;
		}
		return true;
	}
	return false;
}

/* The first bits of a and b agree. */
static bool
prefix_equal(const unsigned char *a, const unsigned char *b, int bits)
{
	int			whole = bits / 8,
				rest = bits % 8;

	if (memcmp(a, b, (size_t) whole) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[whole] ^ b[whole]) & (0xff << (8 - rest))) == 0;
}

/* Clear the bits after the prefix, so "10.1.2.3/8" is 10.0.0.0/8. */
static void
clear_host_bits(struct netmask *m)
{
	int			len = m->family == AF_INET ? 4 : 16;

	for (int i = 0; i < len; i++)
	{
		int			keep = m->bits - i * 8;

		if (keep <= 0)
			m->addr[i] = 0;
		else if (keep < 8)
			m->addr[i] &= (unsigned char) (0xff << (8 - keep));
	}
}

int
netmask_parse(const char *text, struct netmask *m, char *err, size_t errlen)
{
	char		buf[INET6_ADDRSTRLEN + 8];
	char	   *slash;
	int			max;

	memset(m, 0, sizeof(*m));
	if (strlen(text) >= sizeof(buf))
		goto bad;
	strcpy(buf, text);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (strchr(buf, ':'))
	{
		m->family = AF_INET6;
		max = 128;
	}
	else
	{
		m->family = AF_INET;
		max = 32;
	}
	/* strict forms only: this is the operator's text, not a resolver's */
	if (inet_pton(m->family, buf, m->addr) != 1)
		goto bad;
	m->bits = max;
	if (slash)
	{
		char	   *end;
		long		bits;

		errno = 0;
		bits = strtol(slash + 1, &end, 10);
		if (errno || end == slash + 1 || *end || bits < 0 || bits > max)
			goto bad;
		m->bits = (int) bits;
	}
	/* ::ffff:a.b.c.d/n is IPv4 as addresses are compared (addr_of) */
	if (m->family == AF_INET6 && m->bits >= 96 &&
		IN6_IS_ADDR_V4MAPPED((const struct in6_addr *) m->addr))
	{
		memmove(m->addr, m->addr + 12, 4);
		memset(m->addr + 4, 0, 12);
		m->family = AF_INET;
		m->bits -= 96;
	}
	clear_host_bits(m);
	return 0;
bad:
	snprintf(err, errlen, "\"%s\" is not a network; write it as an address with a prefix "
			 "length, like 169.254.0.0/16 or fd00::/8 (a bare address is one host)", text);
	return -1;
}

int
netmask_parse_list(const char *list, struct netmask **masks, int *n, char *err, size_t errlen)
{
	const char *p = list;

	*masks = NULL;
	*n = 0;
	while (*p)
	{
		size_t		len = strcspn(p, ",");
		char		item[INET6_ADDRSTRLEN + 8];
		const char *b = p,
				   *e = p + len;

		while (b < e && *b == ' ')
			b++;
		while (e > b && e[-1] == ' ')
			e--;
		if (e > b)
		{
			snprintf(item, sizeof(item), "%.*s", (int) (e - b), b);
			*masks = ds_xrealloc(*masks, sizeof(**masks) * (size_t) (*n + 1));
			if ((size_t) (e - b) >= sizeof(item) ||
				netmask_parse(item, &(*masks)[*n], err, errlen) != 0)
			{
				if ((size_t) (e - b) >= sizeof(item))
					snprintf(err, errlen, "\"%.*s\" is not a network", (int) (e - b), b);
				free(*masks);
				*masks = NULL;
				*n = 0;
				return -1;
			}
			(*n)++;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

bool
netmask_contains(const struct netmask *m, const struct sockaddr *sa)
{
	unsigned char addr[16];
	int			family;

	return addr_of(sa, &family, addr) && family == m->family &&
		prefix_equal(addr, m->addr, m->bits);
}

void
netmask_format(const struct netmask *m, char *out, size_t outlen)
{
	char		a[INET6_ADDRSTRLEN];

	if (inet_ntop(m->family, m->addr, a, sizeof(a)) == NULL)
		strcpy(a, "?");
	snprintf(out, outlen, "%s/%d", a, m->bits);
}

const struct netmask *
dsink_denied(const struct dsink_policy *p, const struct sockaddr *sa)
{
	for (int i = 0; p && i < p->ndeny; i++)
		if (netmask_contains(&p->deny[i], sa))
			return &p->deny[i];
	return NULL;
}

static bool
is_loopback(const struct sockaddr *sa)
{
	unsigned char addr[16];
	int			family;

	if (!addr_of(sa, &family, addr))
		return false;
	if (family == AF_INET)
		return addr[0] == 127;
	return IN6_IS_ADDR_LOOPBACK((const struct in6_addr *) addr);
}

static void
addr_text(const struct sockaddr *sa, char *out, size_t outlen)
{
	const void *a = sa->sa_family == AF_INET ?
		(const void *) &((const struct sockaddr_in *) sa)->sin_addr :
		(const void *) &((const struct sockaddr_in6 *) sa)->sin6_addr;

	if (inet_ntop(sa->sa_family, a, out, (socklen_t) outlen) == NULL)
		snprintf(out, outlen, "?");
}

/* ---- the default policy ------------------------------------------------- */

static struct dsink_policy default_policy;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void
default_policy_init(void)
{
	char		err[256];

	default_policy.secret_env_prefix = DSINK_DEFAULT_ENV_PREFIX;
	if (netmask_parse_list(DSINK_DEFAULT_DENY, &default_policy.deny, &default_policy.ndeny,
						   err, sizeof(err)) != 0)
		abort();				/* a constant: cannot happen */
}

const struct dsink_policy *
dsink_default_policy(void)
{
	pthread_once(&default_once, default_policy_init);
	return &default_policy;
}

static const struct dsink_policy *
policy_of(const struct dsink *s)
{
	return s->policy ? s->policy : dsink_default_policy();
}

/* ---- connect time --------------------------------------------------------- */

int
dsink_check_peer(const struct dsink *s, const struct sockaddr *sa, char *why, size_t whylen)
{
	char		addr[INET6_ADDRSTRLEN],
				net[INET6_ADDRSTRLEN + 8];
	const struct netmask *m;

	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
	{
		snprintf(why, whylen, "sink \"%s\": refused to connect to an address of family %d: "
				 "only IPv4 and IPv6 are checked against --deny-networks", s->name,
				 (int) sa->sa_family);
		return -1;
	}
	addr_text(sa, addr, sizeof(addr));
	if ((m = dsink_denied(policy_of(s), sa)) != NULL)
	{
		netmask_format(m, net, sizeof(net));
		snprintf(why, whylen, "sink \"%s\": refused to connect to %s: it is in %s, a network "
				 "ordersyncd never connects to (--deny-networks; by default cloud metadata, "
				 "link-local, multicast); point the sink at another host, or change "
				 "--deny-networks on the relay's command line", s->name, addr, net);
		return -1;
	}
	if (s->loopback_only && !is_loopback(sa))
	{
		snprintf(why, whylen, "sink \"%s\": refused to connect to %s: the sink sends personal "
				 "data in clear text, which a sink from the database may only do to this "
				 "machine (localhost, 127.0.0.0/8, ::1); use TLS, set {\"drop_personal_data\": "
				 "true}, or start ordersyncd with --allow-insecure-sinks", s->name, addr);
		return -1;
	}
	return 0;
}

int
dsink_check_host(const struct dsink *s, const char *host, int port, char *why, size_t whylen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,.ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char		service[16];
	int			rc = 0;

	snprintf(service, sizeof(service), "%d", port);
	/* a name that does not resolve now is the library's to report */
	if (getaddrinfo(host, service, &hints, &res) != 0)
		return 0;
	for (struct addrinfo *ai = res; ai && rc == 0; ai = ai->ai_next)
		rc = dsink_check_peer(s, ai->ai_addr, why, whylen);
	freeaddrinfo(res);
	return rc;
}

/* ---- text from other systems -------------------------------------------- */

size_t
dsink_excerpt(const char *in, size_t len, char *out, size_t outsize)
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

static bool
has_bad_char(const char *text, size_t len)
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
static bool
uri_authority(const char *uri, const char **start, size_t *len)
{
	const char *p = strstr(uri, "://");

	if (p == NULL)
		return false;
	*start = p + 3;
	*len = strcspn(*start, "/?#");
	return true;
}

/* The part of the authority after the userinfo. */
static void
uri_hostport(const char *uri, const char **start, size_t *len)
{
	const char *a;
	size_t		alen;

	if (!uri_authority(uri, &a, &alen))
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
static int
for_each_host(const char *uri, int (*fn) (const char *host, void *arg), void *arg)
{
	const char *hp;
	size_t		hplen;
	size_t		pos = 0;

	uri_hostport(uri, &hp, &hplen);
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
static bool
host_literal(const char *host, struct sockaddr_storage *ss)
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
	return !(host_literal(host, &ss) && is_loopback((struct sockaddr *) &ss));
}

/* Every host of uri is this machine: localhost or a loopback literal. */
static bool
uri_all_loopback(const char *uri)
{
	return for_each_host(uri, host_not_loopback, NULL) == 0;
}

/*
 * Would a resolver read host as an IPv4 address (2852039166, 0xa9.254.0.1,
 * 127.1)? Then it must be written as four plain decimal numbers, so that
 * what the database shows is the address the relay connects to.
 */
static bool
ambiguous_ipv4(const char *host)
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

/* A host of a sink from the database must say plainly where it goes. */
static int
host_form(const char *host, void *arg)
{
	const char **what = arg;

	if (host[0] == '\0')
		*what = "has no host: give a host name or address after \"//\"";
	else if (ambiguous_ipv4(host))
		*what = "has an IPv4 address in an ambiguous form: write it as four decimal numbers "
			"without leading zeros, such as 192.0.2.10";
	else
		return 0;
	return -1;
}

struct static_deny
{
	const struct dsink *s;
	char	   *err;
	size_t		errlen;
};

static int
host_denied(const char *host, void *arg)
{
	struct static_deny *sd = arg;
	struct sockaddr_storage ss;
	const struct netmask *m;
	char		net[INET6_ADDRSTRLEN + 8];

	if (!host_literal(host, &ss) || (m = dsink_denied(policy_of(sd->s), (struct sockaddr *) &ss)) == NULL)
		return 0;
	netmask_format(m, net, sizeof(net));
	snprintf(sd->err, sd->errlen, "sink \"%s\": host %s is in %s, a network ordersyncd never "
			 "connects to (--deny-networks; by default cloud metadata, link-local, multicast); "
			 "point the sink at another host, or change --deny-networks on the relay's command "
			 "line", sd->s->name, host, net);
	return -1;
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

static bool
in_list(const char *const *list, const char *s)
{
	for (int i = 0; list[i]; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

/* name (lower case) is a secret's, or ends in one after "_", "." or "-" */
static bool
secret_param_name(const char *name)
{
	size_t		n = strlen(name);

	if (in_list(secret_params, name))
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
static bool
uri_secret_param(const char *uri, char *name, size_t namelen)
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
static void
append(char *out, size_t outlen, size_t *o, const char *text, size_t len)
{
	for (size_t i = 0; i < len && *o + 1 < outlen; i++)
	{
		unsigned char c = (unsigned char) text[i];

		out[(*o)++] = (c < 0x20 || c == 0x7f) ? '?' : (char) c;
	}
	out[*o] = '\0';
}

void
dsink_redact_uri(const char *uri, char *out, size_t outlen)
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
		append(out, outlen, &o, uri, (size_t) (scheme_end + 3 - uri));
		uri_hostport(uri, &hp, &hplen);
		append(out, outlen, &o, hp, hplen);
		rest = hp + hplen;
	}
	else
		rest = uri;
	/* the path as it is */
	append(out, outlen, &o, rest, strcspn(rest, "?#"));
	rest += strcspn(rest, "?#");
	if (*rest != '?')
		return;					/* a fragment is never sent: left out */
	rest++;
	append(out, outlen, &o, "?", 1);
	while (*rest && *rest != '#')
	{
		size_t		len = strcspn(rest, "&#");
		size_t		nlen = strcspn(rest, "=&#");

		if (nlen < len && nlen == 8 && strncmp(rest, "exchange", 8) == 0)
			append(out, outlen, &o, rest, len);
		else if (nlen < len)
		{
			append(out, outlen, &o, rest, nlen);
			append(out, outlen, &o, "=***", 4);
		}
		else
			append(out, outlen, &o, "***", 3);	/* a bare parameter may be the secret */
		rest += len;
		if (*rest == '&')
		{
			append(out, outlen, &o, "&", 1);
			rest++;
		}
	}
}

/* ---- option keys and types ------------------------------------------------ */

static const char *const common_keys[] = {
	"max_attempts", "max_age_seconds", "backoff_min_ms", "backoff_max_ms", "timeout_ms",
	"connect_timeout_ms", "max_in_flight", "drop_personal_data", NULL
};
static const char *const webhook_keys[] = {"secret_env", "secret_file", "ca_file", NULL};
static const char *const kafka_keys[] = {
	"password_env", "password_file", "ca_file", "cert_file", "key_file", "kafka", NULL
};
static const char *const amqp_keys[] = {
	"password_env", "password_file", "ca_file", "cert_file", "key_file", "verify_peer",
	"declare_exchange", "heartbeat_seconds", NULL
};

/* Options whose value is a non-empty string (names and paths). */
static const char *const string_keys[] = {
	"secret_env", "secret_file", "password_env", "password_file", "ca_file", "cert_file",
	"key_file", "declare_exchange", NULL
};
/* References to files; every other "_env" key names a variable. */
static const char *const file_keys[] = {
	"secret_file", "password_file", "ca_file", "cert_file", "key_file", NULL
};

static const char *const *
kind_keys(const char *kind)
{
	if (strcmp(kind, "kafka") == 0)
		return kafka_keys;
	if (strcmp(kind, "amqp") == 0)
		return amqp_keys;
	return webhook_keys;
}

/* "a, b, c" */
static void
join(const char *const *list, char *out, size_t outlen)
{
	size_t		o = 0;

	out[0] = '\0';
	for (int i = 0; list[i]; i++)
	{
		if (i > 0)
			append(out, outlen, &o, ", ", 2);
		append(out, outlen, &o, list[i], strlen(list[i]));
	}
}

static int
check_keys(const struct dsink *s, const char *kind, char *err, size_t errlen)
{
	const char *const *own = kind_keys(kind);

	json_object_object_foreach(s->opt.raw, key, val)
	{
		char		a[256],
					b[256];

		(void) val;
		if (in_list(common_keys, key) || in_list(own, key))
			continue;
		join(common_keys, a, sizeof(a));
		join(own, b, sizeof(b));
		snprintf(err, errlen, "sink \"%s\": unknown option \"%.64s\" for %s sinks; the options "
				 "are %s, %s", s->name, key, kind, a, b);
		return -1;
	}
	return 0;
}

/*
 * A value whose text has no NULs or control characters (it ends up in
 * paths, library settings and logs). Numbers and booleans count by their
 * text.
 */
static bool
clean_string(json_object *v)
{
	const char *t = json_object_get_string(v);
	size_t		len = json_object_is_type(v, json_type_string) ?
		(size_t) json_object_get_string_len(v) : (t ? strlen(t) : 0);

	if (t == NULL || len == 0 || strlen(t) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char) t[i] < 0x20 || t[i] == 0x7f)
			return false;
	return true;
}

static int
check_types(const struct dsink *s, char *err, size_t errlen)
{
	if (json_object_object_get_ex(s->opt.raw, "cert_file", NULL) !=
		json_object_object_get_ex(s->opt.raw, "key_file", NULL))
	{
		snprintf(err, errlen, "sink \"%s\": a client certificate needs both cert_file and "
				 "key_file", s->name);
		return -1;
	}
	json_object_object_foreach(s->opt.raw, key, v)
	{
		if (in_list(string_keys, key) &&
			(!json_object_is_type(v, json_type_string) || !clean_string(v) ||
			 (!s->trusted && has_bad_char(json_object_get_string(v),
										  (size_t) json_object_get_string_len(v)))))
		{
			snprintf(err, errlen, "sink \"%s\": option \"%s\" must be a non-empty string "
					 "without control characters, such as %s", s->name, key,
					 in_list(file_keys, key) ? "\"/etc/ordersync/secrets/name\"" :
					 strcmp(key, "declare_exchange") == 0 ? "\"topic\"" : "\"ORDERSYNC_NAME\"");
			return -1;
		}
		if (strcmp(key, "verify_peer") == 0 && !json_object_is_type(v, json_type_boolean))
		{
			snprintf(err, errlen, "sink \"%s\": option \"verify_peer\" must be true or false",
					 s->name);
			return -1;
		}
		if (strcmp(key, "heartbeat_seconds") == 0 && !json_object_is_type(v, json_type_int))
		{
			snprintf(err, errlen, "sink \"%s\": option \"heartbeat_seconds\" must be an integer "
					 "(seconds; 0 turns heartbeats off)", s->name);
			return -1;
		}
		if (strcmp(key, "kafka") == 0 && !json_object_is_type(v, json_type_object))
		{
			snprintf(err, errlen, "sink \"%s\": option \"kafka\" must be an object of librdkafka "
					 "properties such as {\"linger.ms\": 20}", s->name);
			return -1;
		}
	}
	return 0;
}

/* ---- librdkafka properties ------------------------------------------------ */

static const char *const v_bool[] = {"true", "false", NULL};
static const char *const v_true[] = {"true", NULL};
static const char *const v_protocol[] = {"plaintext", "ssl", "sasl_plaintext", "sasl_ssl", NULL};
/* GSSAPI runs a kinit shell command and uses the host's Kerberos tickets;
 * OAUTHBEARER fetches tokens over HTTP from wherever it is told */
static const char *const v_mechanism[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", NULL};
static const char *const v_endpoint[] = {"https", "none", NULL};
static const char *const v_acks[] = {"all", "-1", NULL};

struct kafka_prop
{
	const char *name;
	const char *const *values;	/* NULL: any string, number or boolean */
	bool		exact;			/* values compared case-sensitively */
	const char *weakens;		/* the value that turns a TLS check off */
};

/* What a sink from the database may set: tuning, and TLS/SASL choices. */
#define ANY(n) {.name = (n)}
#define ONE_OF(n, v) {.name = (n),.values = (v)}
static const struct kafka_prop kafka_props[] = {
	ANY("client.id"), ANY("linger.ms"), ANY("queue.buffering.max.ms"),
	ANY("queue.buffering.max.messages"), ANY("queue.buffering.max.kbytes"),
	ANY("batch.num.messages"), ANY("batch.size"), ANY("compression.type"),
	ANY("compression.codec"), ANY("compression.level"), ANY("message.max.bytes"),
	ANY("request.timeout.ms"), ANY("socket.timeout.ms"), ONE_OF("socket.keepalive.enable", v_bool),
	ANY("retry.backoff.ms"), ANY("reconnect.backoff.ms"),
	ANY("reconnect.backoff.max.ms"), ANY("metadata.max.age.ms"),
	ANY("topic.metadata.refresh.interval.ms"), ANY("max.in.flight.requests.per.connection"),
	ANY("broker.address.family"), ONE_OF("security.protocol", v_protocol),
	{.name = "sasl.mechanism",.values = v_mechanism,.exact = true},
	{.name = "sasl.mechanisms",.values = v_mechanism,.exact = true},
	ANY("sasl.username"),
	{.name = "ssl.endpoint.identification.algorithm",.values = v_endpoint,.weakens = "none"},
	{.name = "enable.ssl.certificate.verification",.values = v_bool,.weakens = "false"},
	ONE_OF("acks", v_acks), ONE_OF("enable.idempotence", v_true),
	{.name = NULL}
};
#undef ANY
#undef ONE_OF

static const struct kafka_prop *
kafka_prop(const char *name)
{
	for (const struct kafka_prop *p = kafka_props; p->name; p++)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

static bool
value_listed(const struct kafka_prop *p, const char *v)
{
	for (int i = 0; p->values[i]; i++)
		if (p->exact ? strcmp(p->values[i], v) == 0 : strcasecmp(p->values[i], v) == 0)
			return true;
	return false;
}

/* A property a sink from the database may not set at all. */
static int
check_kafka_name(const struct dsink *s, const char *key, char *err, size_t errlen)
{
	if (kafka_prop(key) == NULL)
	{
		char		names[1024];
		size_t		o = 0;

		names[0] = '\0';
		for (const struct kafka_prop *q = kafka_props; q->name; q++)
		{
			if (o)
				append(names, sizeof(names), &o, " ", 1);
			append(names, sizeof(names), &o, q->name, strlen(q->name));
		}
		snprintf(err, errlen, "sink \"%s\": kafka property \"%.64s\" is not allowed for a sink "
				 "from the database (librdkafka can run commands, load libraries and read files "
				 "through its other properties); allowed: %s; anything else belongs on the "
				 "relay's command line (--sink --sink-options)", s->name, key, names);
		return -1;
	}
	return 0;
}

/* The value of an allowed property of a sink from the database. */
static int
check_kafka_value(const struct dsink *s, const char *key, json_object *val,
				  char *err, size_t errlen)
{
	const struct kafka_prop *p = kafka_prop(key);
	const char *v = json_object_get_string(val);

	if (v == NULL || !clean_string(val) || has_bad_char(v, strlen(v)))
	{
		snprintf(err, errlen, "sink \"%s\": kafka property \"%s\" has an empty value or one "
				 "with a control or invisible character", s->name, key);
		return -1;
	}
	if (p->values && !value_listed(p, v))
	{
		char		list[128];

		join(p->values, list, sizeof(list));
		snprintf(err, errlen, "sink \"%s\": kafka property \"%s\" is \"%.32s\"; a sink from the "
				 "database may set it to %s only", s->name, key, v, list);
		return -1;
	}
	if (p->weakens && strcasecmp(v, p->weakens) == 0 && !policy_of(s)->allow_insecure)
	{
		snprintf(err, errlen, "sink \"%s\": kafka property \"%s\" = \"%s\" turns off a TLS "
				 "check; a sink from the database may do that only when ordersyncd runs with "
				 "--allow-insecure-sinks (better: give the sink the broker's CA as ca_file)",
				 s->name, key, v);
		return -1;
	}
	return 0;
}

/* A string property of the "kafka" object, or NULL. */
static const char *
kafka_string(const struct dsink *s, const char *key)
{
	json_object *k,
			   *v;

	if (s->opt.raw && json_object_object_get_ex(s->opt.raw, "kafka", &k) &&
		json_object_is_type(k, json_type_object) && json_object_object_get_ex(k, key, &v) &&
		!json_object_is_type(v, json_type_null))
		return json_object_get_string(v);
	return NULL;
}

static int
check_kafka(const struct dsink *s, char *err, size_t errlen)
{
	json_object *kopt;
	const char *proto;

	if (!json_object_object_get_ex(s->opt.raw, "kafka", &kopt))
		return 0;
	/* names first: what could run or load something is named in the refusal */
	json_object_object_foreach(kopt, key, val)
	{
		if (json_object_is_type(val, json_type_object) ||
			json_object_is_type(val, json_type_array) ||
			json_object_is_type(val, json_type_null))
		{
			snprintf(err, errlen, "sink \"%s\": kafka property \"%.64s\" must be a string, "
					 "number or boolean", s->name, key);
			return -1;
		}
		if (!s->trusted && check_kafka_name(s, key, err, errlen) != 0)
			return -1;
	}
	json_object_object_foreach(kopt, key2, val2)
	{
		if (!s->trusted && check_kafka_value(s, key2, val2, err, errlen) != 0)
			return -1;
	}
	proto = kafka_string(s, "security.protocol");
	/* librdkafka's default mechanism is GSSAPI: say which one, or none is safe */
	if (!s->trusted && proto && strncasecmp(proto, "sasl_", 5) == 0 &&
		kafka_string(s, "sasl.mechanism") == NULL && kafka_string(s, "sasl.mechanisms") == NULL)
	{
		snprintf(err, errlen, "sink \"%s\": security.protocol %s needs \"sasl.mechanism\": "
				 "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (librdkafka's default, GSSAPI, would "
				 "run kinit and use this host's Kerberos credentials)", s->name, proto);
		return -1;
	}
	return 0;
}

/* ---- secret references ------------------------------------------------------ */

static bool
ends_with(const char *s, const char *suffix)
{
	size_t		n = strlen(s),
				m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/*
 * May a sink from the database name this variable? Its name must start with
 * the prefix, so the database can reach only variables the operator exported
 * for sinks, never AWS_SECRET_ACCESS_KEY, PGPASSWORD or the like.
 */
static int
check_env_ref(const struct dsink *s, const char *key, const char *name, char *err, size_t errlen)
{
	const char *prefix = policy_of(s)->secret_env_prefix;

	if (prefix == NULL)
		prefix = DSINK_DEFAULT_ENV_PREFIX;
	if (strncmp(name, prefix, strlen(prefix)) == 0 && strlen(name) > strlen(prefix) &&
		strlen(name) <= 128 && strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
									  "0123456789_") == strlen(name))
		return 0;
	snprintf(err, errlen, "sink \"%s\": option %s names the environment variable \"%.64s\", but "
			 "a sink from the database may only name variables that start with \"%s\" "
			 "(--secret-env-prefix); export the secret to ordersyncd as %s<NAME> and name that",
			 s->name, key, name, prefix, prefix);
	return -1;
}

/* path has a ".." component */
static bool
has_dotdot(const char *path)
{
	for (const char *p = path; (p = strstr(p, "..")) != NULL; p += 2)
		if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return true;
	return false;
}

/*
 * May a sink from the database name this file? It must resolve, through
 * every symbolic link and "..", to a regular file inside --secret-dir: the
 * files the operator put there for sinks, nothing else of the host.
 * resolved gets the path (PATH_MAX bytes).
 */
static int
check_file_ref(const struct dsink *s, const char *key, const char *path, char *resolved,
			   char *err, size_t errlen)
{
	const char *dir = policy_of(s)->secret_dir;
	char		rdir[PATH_MAX];
	struct stat st;
	size_t		n;

	if (dir == NULL)
	{
		snprintf(err, errlen, "sink \"%s\": option %s names a file, but ordersyncd runs without "
				 "--secret-dir, so sinks from the database may not name files; start it with "
				 "--secret-dir=DIR and put the file in DIR", s->name, key);
		return -1;
	}
	if (realpath(dir, rdir) == NULL)
	{
		snprintf(err, errlen, "sink \"%s\": --secret-dir \"%s\" cannot be resolved: %s",
				 s->name, dir, strerror(errno));
		return -1;
	}
	n = strlen(rdir);
	/* one message for every failure: the database learns nothing of the host */
	if (path[0] != '/' || has_dotdot(path) || realpath(path, resolved) == NULL ||
		!(strncmp(resolved, rdir, n) == 0 && (resolved[n] == '/' || (n == 1 && rdir[0] == '/'))) ||
		stat(resolved, &st) != 0 || !S_ISREG(st.st_mode))
	{
		snprintf(err, errlen, "sink \"%s\": option %s \"%.128s\" must name an existing regular "
				 "file inside --secret-dir \"%s\" by its absolute path, without \"..\" (links "
				 "that lead outside it are refused); put the file there", s->name, key, path, dir);
		return -1;
	}
	return 0;
}

static int
check_references(const struct dsink *s, char *err, size_t errlen)
{
	json_object_object_foreach(s->opt.raw, key, v)
	{
		char		resolved[PATH_MAX];

		if (in_list(file_keys, key))
		{
			if (check_file_ref(s, key, json_object_get_string(v), resolved, err, errlen) != 0)
				return -1;
		}
		else if (ends_with(key, "_env") &&
				 check_env_ref(s, key, json_object_get_string(v), err, errlen) != 0)
			return -1;
	}
	return 0;
}

int
dsink_reference(const struct dsink *s, const char *key, const char *value, char *resolved,
				size_t resolvedlen, char *err, size_t errlen)
{
	char		r[PATH_MAX];

	if (s->trusted)
	{
		snprintf(resolved, resolvedlen, "%s", value);
		return 0;
	}
	if (in_list(file_keys, key))
	{
		if (check_file_ref(s, key, value, r, err, errlen) != 0)
			return -1;
		snprintf(resolved, resolvedlen, "%s", r);
		return 0;
	}
	if (check_env_ref(s, key, value, err, errlen) != 0)
		return -1;
	snprintf(resolved, resolvedlen, "%s", value);
	return 0;
}

/* ---- the URI, TLS and clear text ------------------------------------------ */

static int
check_uri(const struct dsink *s, char *err, size_t errlen)
{
	const char *a;
	size_t		alen;
	char		name[128],
				shown[512];

	const char *what = NULL;
	const char *hp;
	size_t		hplen;

	if (has_bad_char(s->uri, strlen(s->uri)))
	{
		snprintf(err, errlen, "sink \"%s\": the uri contains whitespace, a control character "
				 "or an invisible one; %%-encode spaces (%%20) and remove the others", s->name);
		return -1;
	}
	uri_hostport(s->uri, &hp, &hplen);
	if (memchr(hp, '%', hplen) != NULL)
	{
		snprintf(err, errlen, "sink \"%s\": the uri's host is %%-encoded (or has an IPv6 zone); "
				 "clients decode %%XX in host names, which would hide where they connect: write "
				 "the host as it is (international names in their xn-- form)", s->name);
		return -1;
	}
	if (for_each_host(s->uri, host_form, &what) != 0)
	{
		snprintf(err, errlen, "sink \"%s\": the uri %s", s->name, what);
		return -1;
	}
	if (uri_authority(s->uri, &a, &alen))
	{
		const char *at = NULL;

		for (size_t i = 0; i < alen; i++)
			if (a[i] == '@')
				at = a + i;
		if (at && memchr(a, ':', (size_t) (at - a)) != NULL)
		{
			snprintf(err, errlen, "sink \"%s\": the uri contains a password; secrets are never "
					 "stored in ordersync.sink: remove it and name where ordersyncd reads it "
					 "(\"password_env\" or \"password_file\")", s->name);
			return -1;
		}
	}
	if (uri_secret_param(s->uri, name, sizeof(name)))
	{
		dsink_redact_uri(s->uri, shown, sizeof(shown));
		snprintf(err, errlen, "sink \"%s\": the uri %s has a query parameter \"%s\", which looks "
				 "like a secret; secrets are never stored in ordersync.sink: sign webhooks with "
				 "secret_env/secret_file instead, or give this sink on the relay's command line",
				 s->name, shown, name);
		return -1;
	}
	return 0;
}

static int
check_tls(const struct dsink *s, const char *kind, char *err, size_t errlen)
{
	json_object *v;

	if (strcmp(kind, "amqp") == 0 && json_object_object_get_ex(s->opt.raw, "verify_peer", &v) &&
		!json_object_get_boolean(v) && !policy_of(s)->allow_insecure)
	{
		snprintf(err, errlen, "sink \"%s\": verify_peer false turns off the broker's "
				 "certificate check; a sink from the database may do that only when ordersyncd "
				 "runs with --allow-insecure-sinks (better: give the broker's CA as ca_file)",
				 s->name);
		return -1;
	}
	/* kafka: enable.ssl.certificate.verification and the endpoint check, above */
	return 0;
}

/* Does the sink send events unencrypted? */
static bool
clear_text(const struct dsink *s, const char *kind)
{
	if (strcmp(kind, "kafka") == 0)
	{
		const char *proto = kafka_string(s, "security.protocol");

		/* librdkafka's default is plaintext */
		return proto == NULL || strcasecmp(proto, "plaintext") == 0 ||
			strcasecmp(proto, "sasl_plaintext") == 0;
	}
	if (strcmp(kind, "amqp") == 0)
		return strncasecmp(s->uri, "amqps://", 8) != 0;
	return strncasecmp(s->uri, "https://", 8) != 0;
}

/*
 * Personal data in clear text: a sink from the database may send it only
 * to this machine (and the connect hooks hold it to that); the command line
 * may do as it likes, with a warning.
 */
static int
check_clear_text(struct dsink *s, const char *kind, char *err, size_t errlen)
{
	char		shown[512];

	s->loopback_only = false;
	if (s->opt.drop_personal_data || !clear_text(s, kind))
		return 0;
	dsink_redact_uri(s->uri, shown, sizeof(shown));
	if (uri_all_loopback(s->uri))
	{
		s->loopback_only = !s->trusted && !policy_of(s)->allow_insecure;
		return 0;
	}
	if (s->trusted)
	{
		log_warning("sink \"%s\" sends events with personal data unencrypted to %s; use TLS "
					"(https://, amqps://, security.protocol ssl/sasl_ssl) or set "
					"{\"drop_personal_data\": true}", s->name, shown);
		return 0;
	}
	if (policy_of(s)->allow_insecure)
		return 0;
	snprintf(err, errlen, "sink \"%s\": %s would carry events with personal data (customer "
			 "names, addresses) unencrypted to another machine; use TLS (https://, amqps://, "
			 "kafka security.protocol ssl or sasl_ssl), set {\"drop_personal_data\": true}, or "
			 "start ordersyncd with --allow-insecure-sinks", s->name, shown);
	return -1;
}

int
dsink_check(struct dsink *s, char *err, size_t errlen)
{
	const struct dsink_ops *ops = s->uri ? dsink_ops_for(s->uri) : NULL;
	const char *kind;
	struct static_deny sd = {s, err, errlen};

	s->loopback_only = false;
	if (ops == NULL)
	{
		snprintf(err, errlen, "sink \"%s\": no usable uri; use http://, https://, "
				 "kafka://brokers/topic or amqp://user@host/vhost?exchange=NAME",
				 s->name ? s->name : "?");
		return -1;
	}
	kind = ops->kind;
	if (!s->trusted && check_uri(s, err, errlen) != 0)
		return -1;
	if (s->opt.raw)
	{
		if (check_keys(s, kind, err, errlen) != 0 || check_types(s, err, errlen) != 0 ||
			check_kafka(s, err, errlen) != 0)
			return -1;
		if (!s->trusted && (check_references(s, err, errlen) != 0 ||
							check_tls(s, kind, err, errlen) != 0))
			return -1;
	}
	if (check_clear_text(s, kind, err, errlen) != 0)
		return -1;
	/* literal addresses fail now, before any connection; names at connect time */
	return for_each_host(s->uri, host_denied, &sd) != 0 ? -1 : 0;
}
