/*
 * sink_net.c — the networks a delivery sink may reach (see sink_policy.h):
 * netmasks and the --deny-networks list, the default policy, and the
 * connect-time check each sink runs on the address its library is about
 * to use, so that a DNS name cannot get around the list.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "sink_policy.h"
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
			*masks = xrealloc(*masks, sizeof(**masks) * (size_t) (*n + 1));
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
sink_denied(const struct sink_policy *p, const struct sockaddr *sa)
{
	for (int i = 0; p && i < p->ndeny; i++)
		if (netmask_contains(&p->deny[i], sa))
			return &p->deny[i];
	return NULL;
}

bool
sink_is_loopback(const struct sockaddr *sa)
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

static struct sink_policy default_policy;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void
default_policy_init(void)
{
	char		err[256];

	default_policy.secret_env_prefix = SINK_DEFAULT_ENV_PREFIX;
	if (netmask_parse_list(SINK_DEFAULT_DENY, &default_policy.deny, &default_policy.ndeny,
						   err, sizeof(err)) != 0)
		abort();				/* a constant: cannot happen */
}

const struct sink_policy *
sink_default_policy(void)
{
	pthread_once(&default_once, default_policy_init);
	return &default_policy;
}

const struct sink_policy *
sink_policy_of(const struct sink *s)
{
	return s->policy ? s->policy : sink_default_policy();
}

/* ---- connect time --------------------------------------------------------- */

int
sink_check_peer(const struct sink *s, const struct sockaddr *sa, char *why, size_t whylen)
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
	if ((m = sink_denied(sink_policy_of(s), sa)) != NULL)
	{
		netmask_format(m, net, sizeof(net));
		snprintf(why, whylen, "sink \"%s\": refused to connect to %s: it is in %s, a network "
				 "ordersyncd never connects to (--deny-networks; by default cloud metadata, "
				 "link-local, multicast); point the sink at another host, or change "
				 "--deny-networks on the relay's command line", s->name, addr, net);
		return -1;
	}
	if (s->loopback_only && !sink_is_loopback(sa))
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
sink_check_host(const struct sink *s, const char *host, int port, char *why, size_t whylen)
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
		rc = sink_check_peer(s, ai->ai_addr, why, whylen);
	freeaddrinfo(res);
	return rc;
}

