/*
 * sink_amqp_conf.c — the RabbitMQ sink's configuration (see sink_amqp.c for
 * the whole): its URI (amqp://user@host:port/vhost?exchange=NAME, read by
 * rabbitmq-c, a password in it refused), its options and its password,
 * given by reference (password_env, password_file) or RabbitMQ's "guest"
 * on a broker that allows it. Read once at open, and the password again
 * before each login (it may have been rotated).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <amqp.h>

#include "sink_amqp.h"
#include "sink_policy.h"

/* the options of this kind (sink.h); their order is the one messages list */
const struct sink_opt amqp_options[] = {
	{"password", SINK_OPT_SECRET, -1, 0, 0},
	SINK_TLS_OPTIONS(struct amqp_sink, tls),
	{"verify_peer", SINK_OPT_BOOL, offsetof(struct amqp_sink, tls.verify_peer), 0, 0},
	{"declare_exchange", SINK_OPT_STRING, offsetof(struct amqp_sink, declare_type), 0, 0},
	{"heartbeat_seconds", SINK_OPT_INT, offsetof(struct amqp_sink, heartbeat_s), 0, 3600},
	{NULL, 0, 0, 0, 0}
};

/* Decode %XX in place; -1 on a malformed escape. */
static int
amqp_pct_decode(char *str)
{
	char	   *w = str;

	for (char *r = str; *r; r++)
	{
		if (*r == '%')
		{
			unsigned int c;

			if (sscanf(r + 1, "%2x", &c) != 1 || r[1] == '\0' || r[2] == '\0')
				return -1;
			*w++ = (char) c;
			r += 2;
		}
		else
			*w++ = *r;
	}
	*w = '\0';
	return 0;
}

/* The query of the URI: only exchange=NAME. */
static int
amqp_parse_query(struct sink *s, struct amqp_sink *a, char *query, char *err, size_t errlen)
{
	char	   *save = NULL;

	for (char *kv = strtok_r(query, "&", &save); kv; kv = strtok_r(NULL, "&", &save))
	{
		char	   *eq = strchr(kv, '=');

		if (eq == NULL || strncmp(kv, "exchange", (size_t) (eq - kv)) != 0 || eq - kv != 8)
		{
			snprintf(err, errlen, "amqp sink \"%s\": unknown URI parameter \"%s\"; the only one "
					 "is exchange=NAME (other settings go into the sink's options)", s->name, kv);
			return -1;
		}
		if (amqp_pct_decode(eq + 1) != 0)
		{
			snprintf(err, errlen, "amqp sink \"%s\": bad %%-escape in \"%s\"", s->name, kv);
			return -1;
		}
		free(a->exchange);
		a->exchange = xstrdup(eq + 1);
	}
	return 0;
}

static int
amqp_parse_uri(struct sink *s, struct amqp_sink *a, char *err, size_t errlen)
{
	char	   *copy = xstrdup(s->uri);
	char	   *query = strchr(copy, '?');
	const char *auth = strstr(copy, "://");
	const char *slash,
			   *at;
	struct amqp_connection_info ci;
	int			rc = -1;

	if (query)
		*query++ = '\0';
	/* a password in the URI would end up in ps output, logs or the sink table */
	auth = auth ? auth + 3 : copy;
	slash = strchr(auth, '/');
	at = strchr(auth, '@');
	if (at && (slash == NULL || at < slash) && memchr(auth, ':', (size_t) (at - auth)))
	{
		snprintf(err, errlen, "amqp sink \"%s\": the URI contains a password; remove it "
				 "(amqp://user@host:port/vhost?exchange=NAME) and give the password by reference "
				 "in the sink's options: {\"password_env\": \"VARIABLE\"} or {\"password_file\": "
				 "\"/path\"} (secrets never go on the command line or into ordersync's tables)",
				 s->name);
		goto out;
	}
	amqp_default_connection_info(&ci);
	if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK)
	{
		char		shown[512];

		sink_redact_uri(s->uri, shown, sizeof(shown));
		snprintf(err, errlen, "amqp sink \"%s\": cannot parse \"%s\"; write it as "
				 "amqp://user@host:port/vhost?exchange=NAME (the vhost \"/\" is %%2f, the "
				 "default when there is no path)", s->name, shown);
		goto out;
	}
	a->host = xstrdup(ci.host);
	a->port = ci.port;
	a->vhost = xstrdup(ci.vhost);
	a->user = xstrdup(ci.user);
	a->tls.on = ci.ssl != 0;
	if (query && amqp_parse_query(s, a, query, err, errlen) != 0)
		goto out;
	if (a->exchange == NULL || a->exchange[0] == '\0')
	{
		snprintf(err, errlen, "amqp sink \"%s\": no exchange: add ?exchange=NAME to the URI "
				 "(events are published to it with the event type as routing key)", s->name);
		goto out;
	}
	rc = 0;
out:
	free(copy);
	return rc;
}

static int
amqp_parse_options(struct sink *s, struct amqp_sink *a, char *err, size_t errlen)
{
	a->heartbeat_s = AMQP_SINK_HEARTBEAT_S;
	/* the kind's window (confirms want a wide one) unless max_in_flight says */
	a->cap = s->opt.max_in_flight > 0 ? s->opt.max_in_flight : AMQP_SINK_IN_FLIGHT;
	sink_tls_init(&a->tls, a->tls.on);
	if (sink_opts_load(s, "amqp", amqp_options, a, err, errlen) != 0)
		return -1;
	if (a->declare_type && strcmp(a->declare_type, "topic") != 0 &&
		strcmp(a->declare_type, "direct") != 0 && strcmp(a->declare_type, "fanout") != 0 &&
		strcmp(a->declare_type, "headers") != 0)
	{
		snprintf(err, errlen, "amqp sink \"%s\": declare_exchange is \"%s\"; it must be one of "
				 "topic, direct, fanout, headers (or leave it out to use an existing exchange)",
				 s->name, a->declare_type);
		return -1;
	}
	return sink_tls_settle(s, "amqp", &a->tls, "use an amqps:// URI (port 5671 by default)",
						   err, errlen);
}

int
amqp_sink_read_password(struct sink *s, struct amqp_sink *a, char *err, size_t errlen)
{
	char	   *pw;

	if (!sink_secret_given(s, "password") && strcmp(a->user, "guest") == 0)
	{
		/* RabbitMQ's built-in user, for a broker on localhost */
		a->password = xstrdup("guest");
		return 0;
	}
	pw = sink_secret(s, "password", err, errlen);
	if (pw == NULL)
		return -1;
	sink_secret_free(a->password);
	a->password = pw;
	return 0;
}

int
amqp_sink_configure(struct sink *s, struct amqp_sink *a, char *err, size_t errlen)
{
	if (amqp_parse_uri(s, a, err, errlen) != 0 ||
		amqp_parse_options(s, a, err, errlen) != 0)
		return -1;
	return amqp_sink_read_password(s, a, err, errlen);
}
