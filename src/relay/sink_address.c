/*
 * sink_address.c — scheme://[user@]servers/path for the broker sinks
 * (Kafka, NATS): where to connect and as whom, and what the path names.
 * A password never goes into a URI: it would end up in ps output, logs and
 * ordersync.sink; it comes by reference in the options (sink_secret).
 * Settings go into the options too, never into URI parameters, so the
 * allowlist of sink_policy.c sees every one of them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink_address.h"
#include "sink_policy.h"

int
sink_address_split(const struct sink *s, const struct sink_address_form *f,
				   struct sink_address *a, char *err, size_t errlen)
{
	const char *p = strstr(s->uri, "://");
	const char *slash,
			   *at;
	char		shown[512];

	memset(a, 0, sizeof(*a));
	sink_redact_uri(s->uri, shown, sizeof(shown));
	p = p ? p + 3 : s->uri;
	if (strpbrk(p, "?#") != NULL)
	{
		snprintf(err, errlen, "%s sink \"%s\": uri \"%s\" has parameters; %s", f->kind, s->name,
				 shown, f->params);
		return -1;
	}
	slash = strchr(p, '/');
	if (slash == NULL || slash[1] == '\0')
	{
		snprintf(err, errlen, "%s sink \"%s\": uri \"%s\" names no %s; write %s%s", f->kind,
				 s->name, shown, f->path, f->example, f->example_more);
		return -1;
	}
	at = memchr(p, '@', (size_t) (slash - p));
	if (at)
	{
		if (memchr(p, ':', (size_t) (at - p)) != NULL)
		{
			snprintf(err, errlen, "%s sink \"%s\": the uri contains a password; remove it and "
					 "give option \"password_env\" or \"password_file\" instead", f->kind, s->name);
			return -1;
		}
		if (at == p)
		{
			snprintf(err, errlen, "%s sink \"%s\": empty user name before \"@\" in uri \"%s\"",
					 f->kind, s->name, shown);
			return -1;
		}
		a->user = xstrndup(p, (size_t) (at - p));
		p = at + 1;
	}
	if (p == slash || *p == ':')
	{
		snprintf(err, errlen, "%s sink \"%s\": uri \"%s\" names no %s; write %s", f->kind,
				 s->name, shown, f->server, f->example);
		sink_address_free(a);
		return -1;
	}
	a->servers = xstrndup(p, (size_t) (slash - p));
	a->path = xstrdup(slash + 1);
	return 0;
}

int
sink_address_server(const struct sink *s, const struct sink_address_form *f,
					const char *server, int default_port, char **host, int *port,
					char *err, size_t errlen)
{
	const char *end = server + strlen(server);
	const char *portp = NULL;

	*host = NULL;
	if (*server == '[')
	{
		const char *close = strchr(server, ']');

		if (close == NULL)
		{
			snprintf(err, errlen, "%s sink \"%s\": unclosed \"[\" in \"%s\"", f->kind, s->name,
					 server);
			return -1;
		}
		if (close[1] != '\0' && close[1] != ':')
		{
			snprintf(err, errlen, "%s sink \"%s\": expected \":port\" after \"]\" in \"%s\"",
					 f->kind, s->name, server);
			return -1;
		}
		*host = xstrndup(server + 1, (size_t) (close - server - 1));
		if (close[1] == ':')
			portp = close + 2;
	}
	else
	{
		const char *colon = strchr(server, ':');

		*host = xstrndup(server, colon ? (size_t) (colon - server) : strlen(server));
		if (colon)
			portp = colon + 1;
	}
	if ((*host)[0] == '\0')
	{
		snprintf(err, errlen, "%s sink \"%s\": \"%s\" names no %s; write %s", f->kind, s->name,
				 server, f->server, f->example);
		goto fail;
	}
	*port = default_port;
	if (portp)
	{
		long		n = 0;
		const char *q;

		for (q = portp; q < end && *q >= '0' && *q <= '9' && n <= 65535; q++)
			n = n * 10 + (*q - '0');
		if (q != end || q == portp || n < 1 || n > 65535)
		{
			snprintf(err, errlen, "%s sink \"%s\": bad port in \"%s\"; write %s", f->kind,
					 s->name, server, f->example);
			goto fail;
		}
		*port = (int) n;
	}
	return 0;
fail:
	free(*host);
	*host = NULL;
	return -1;
}

void
sink_address_free(struct sink_address *a)
{
	free(a->user);
	free(a->servers);
	free(a->path);
	memset(a, 0, sizeof(*a));
}
