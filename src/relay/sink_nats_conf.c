/*
 * sink_nats_conf.c — the NATS sink's configuration (see sink_nats.c for the
 * whole): its uri (nats[+tls]://[user@]host[:port]/<subject prefix>, one
 * server), its options and its secrets (a password or a token, by
 * reference), and what makes a valid subject. Read once at open, the
 * secrets again before each connection (they may have been rotated).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sink_address.h"
#include "sink_nats.h"
#include "sink_policy.h"

/* the options of this kind (sink.h); their order is the one messages list */
const struct sink_opt nats_options[] = {
	{"stream", SINK_OPT_STRING, offsetof(struct nats_sink, stream), 0, 0},
	{"password", SINK_OPT_SECRET, -1, 0, 0},
	{"token", SINK_OPT_SECRET, -1, 0, 0},
	SINK_TLS_OPTIONS(struct nats_sink, tls),
	{NULL, 0, 0, 0, 0}
};

static const struct sink_address_form nats_form = {
	.kind = "nats",
	.example = "nats://host:4222/ordersync",
	.server = "host",
	.path = "subject prefix",
	.example_more = " (events go to ordersync.<event type>, e.g. ordersync.order.paid)",
	.params = "a nats sink uri is nats://host:4222/<subject prefix>, settings go into the "
	"sink's options",
};

/* One token of a subject as the sink writes them: [A-Za-z0-9_-]+ */
static bool
token_ok(const char *t, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') ||
			  (t[i] >= '0' && t[i] <= '9') || t[i] == '_' || t[i] == '-'))
			return false;
	return true;
}

/* "a.b.c": dot-separated tokens, none empty. */
bool
nats_sink_subject_ok(const char *s)
{
	const char *p = s;

	for (;;)
	{
		size_t		len = strcspn(p, ".");

		if (!token_ok(p, len))
			return false;
		if (p[len] == '\0')
			return true;
		p += len + 1;
	}
}

bool
nats_sink_is_tls(const char *uri)
{
	return strncasecmp(uri, "nats+tls://", 11) == 0;
}

/* nats[+tls]://[user@]host[:port]/prefix */
static int
nats_parse_uri(struct nats_sink *n, char *err, size_t errlen)
{
	struct sink *s = n->s;
	struct sink_address a;
	int			rc = -1;

	n->tls.on = nats_sink_is_tls(s->uri);
	if (sink_address_split(s, &nats_form, &a, err, errlen) != 0)
		return -1;
	if (strchr(a.servers, ',') != NULL)
	{
		snprintf(err, errlen, "nats sink \"%s\": uri names several servers (%s); a nats sink "
				 "connects to one (give the cluster's address, e.g. a load-balanced name)",
				 s->name, a.servers);
		goto out;
	}
	if (sink_address_server(s, &nats_form, a.servers, NATS_SINK_DEFAULT_PORT, &n->host,
							&n->port, err, errlen) != 0)
		goto out;
	if (strlen(a.path) > NATS_SINK_PREFIX_MAX || !nats_sink_subject_ok(a.path))
	{
		snprintf(err, errlen, "nats sink \"%s\": \"%.64s\" is not a valid subject prefix: use "
				 "up to %d characters, tokens of letters, digits, \"_\" and \"-\" separated by "
				 "single dots (no spaces, no wildcards * or >, no empty token), such as "
				 "\"ordersync\" or \"shop.events\"", s->name, a.path, NATS_SINK_PREFIX_MAX);
		goto out;
	}
	n->user = a.user;
	n->prefix = a.path;
	a.user = a.path = NULL;
	rc = 0;
out:
	sink_address_free(&a);
	return rc;
}

static int
nats_parse_options(struct nats_sink *n, char *err, size_t errlen)
{
	struct sink *s = n->s;
	bool		password = sink_secret_given(s, "password"),
				token = sink_secret_given(s, "token");

	n->cap = s->opt.max_in_flight > 0 ? s->opt.max_in_flight : NATS_SINK_IN_FLIGHT;
	sink_tls_init(&n->tls, n->tls.on);
	if (sink_opts_load(s, "nats", nats_options, n, err, errlen) != 0)
		return -1;
	if (n->stream && (strlen(n->stream) > 255 || strpbrk(n->stream, " \t.*>/\\") != NULL))
	{
		snprintf(err, errlen, "nats sink \"%s\": \"%.64s\" is not a JetStream stream name (no "
				 "spaces, dots, *, >, / or \\)", s->name, n->stream);
		return -1;
	}
	if (sink_tls_settle(s, "nats", &n->tls, "use a nats+tls:// uri", err, errlen) != 0)
		return -1;
	if (password && token)
	{
		snprintf(err, errlen, "nats sink \"%s\": give a password (with a user in the uri) or a "
				 "token, not both", s->name);
		return -1;
	}
	if (token && n->user)
	{
		snprintf(err, errlen, "nats sink \"%s\": a token authenticates without a user: remove "
				 "\"%s@\" from the uri, or give a password instead of the token", s->name, n->user);
		return -1;
	}
	if (password && n->user == NULL)
	{
		snprintf(err, errlen, "nats sink \"%s\": a password needs a user: write it in the uri "
				 "(nats://relay@host:4222/prefix)", s->name);
		return -1;
	}
	return 0;
}

/* Read the password or token (by reference); at open and before each connection. */
int
nats_sink_read_secrets(struct nats_sink *n, char *err, size_t errlen)
{
	static const char *const names[] = {"password", "token"};
	char	  **fields[] = {&n->password, &n->token};

	for (int i = 0; i < 2; i++)
	{
		char	   *v;

		if (!sink_secret_given(n->s, names[i]))
			continue;
		if ((v = sink_secret(n->s, names[i], err, errlen)) == NULL)
			return -1;
		sink_secret_free(*fields[i]);
		*fields[i] = v;
	}
	return 0;
}

int
nats_sink_configure(struct nats_sink *n, char *err, size_t errlen)
{
	if (nats_parse_uri(n, err, errlen) != 0 || nats_parse_options(n, err, errlen) != 0)
		return -1;
	return nats_sink_read_secrets(n, err, errlen);
}
