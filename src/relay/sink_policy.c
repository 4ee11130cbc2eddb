/*
 * sink_policy.c — what a delivery sink may be configured to do (see
 * sink_policy.h and "What the database may configure" in doc/sinks.md).
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
 *
 * The networks (netmasks, the deny list, connect-time checks) are in
 * sink_net.c, the text of URIs and answers in sink_uri.c; this file holds
 * the rules themselves and sink_check().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "sink_policy.h"
#include "log.h"

/* ---- option keys and types ------------------------------------------------ */

static const char *const common_keys[] = {
	"max_attempts", "max_age_seconds", "backoff_min_ms", "backoff_max_ms", "timeout_ms",
	"connect_timeout_ms", "max_in_flight", "drop_personal_data", NULL
};
/* Options whose value is a non-empty string (names and paths). */
static const char *const string_keys[] = {
	"secret_env", "secret_file", "password_env", "password_file", "ca_file", "cert_file",
	"key_file", "declare_exchange", "token_env", "token_file", "stream", NULL
};
/* References to files; every other "_env" key names a variable. */
static const char *const file_keys[] = {
	"secret_file", "password_file", "ca_file", "cert_file", "key_file", "token_file", NULL
};

/* "a, b, c" */
static void
join(const char *const *list, char *out, size_t outlen)
{
	size_t		o = 0;

	out[0] = '\0';
	for (int i = 0; list[i]; i++)
	{
		if (i > 0)
			sink_append(out, outlen, &o, ", ", 2);
		sink_append(out, outlen, &o, list[i], strlen(list[i]));
	}
}

static int
check_keys(const struct sink *s, char *err, size_t errlen)
{
	const char *const *own = s->ops->option_keys;
	const char *kind = s->ops->kind;

	json_object_object_foreach(s->opt.raw, key, val)
	{
		char		a[256],
					b[256];

		(void) val;
		if (sink_in_list(common_keys, key) || sink_in_list(own, key) ||
			sink_opts_allow(s->ops->options, key))
			continue;
		join(common_keys, a, sizeof(a));
		if (s->ops->options)
			sink_opts_names(s->ops->options, b, sizeof(b));
		else
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
check_types(const struct sink *s, char *err, size_t errlen)
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
		if (sink_in_list(string_keys, key) &&
			(!json_object_is_type(v, json_type_string) || !clean_string(v) ||
			 (!s->trusted && sink_has_bad_char(json_object_get_string(v),
										  (size_t) json_object_get_string_len(v)))))
		{
			snprintf(err, errlen, "sink \"%s\": option \"%s\" must be a non-empty string "
					 "without control characters, such as %s", s->name, key,
					 sink_in_list(file_keys, key) ? "\"/etc/ordersync/secrets/name\"" :
					 strcmp(key, "declare_exchange") == 0 ? "\"topic\"" :
					 strcmp(key, "stream") == 0 ? "\"ORDERS\"" : "\"ORDERSYNC_NAME\"");
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
check_kafka_name(const struct sink *s, const char *key, char *err, size_t errlen)
{
	if (kafka_prop(key) == NULL)
	{
		char		names[1024];
		size_t		o = 0;

		names[0] = '\0';
		for (const struct kafka_prop *q = kafka_props; q->name; q++)
		{
			if (o)
				sink_append(names, sizeof(names), &o, " ", 1);
			sink_append(names, sizeof(names), &o, q->name, strlen(q->name));
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
check_kafka_value(const struct sink *s, const char *key, json_object *val,
				  char *err, size_t errlen)
{
	const struct kafka_prop *p = kafka_prop(key);
	const char *v = json_object_get_string(val);

	if (v == NULL || !clean_string(val) || sink_has_bad_char(v, strlen(v)))
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
	if (p->weakens && strcasecmp(v, p->weakens) == 0 && !sink_policy_of(s)->allow_insecure)
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
kafka_string(const struct sink *s, const char *key)
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
check_kafka(const struct sink *s, char *err, size_t errlen)
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
check_env_ref(const struct sink *s, const char *key, const char *name, char *err, size_t errlen)
{
	const char *prefix = sink_policy_of(s)->secret_env_prefix;

	if (prefix == NULL)
		prefix = SINK_DEFAULT_ENV_PREFIX;
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
check_file_ref(const struct sink *s, const char *key, const char *path, char *resolved,
			   char *err, size_t errlen)
{
	const char *dir = sink_policy_of(s)->secret_dir;
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
check_references(const struct sink *s, char *err, size_t errlen)
{
	json_object_object_foreach(s->opt.raw, key, v)
	{
		char		resolved[PATH_MAX];

		if (sink_in_list(file_keys, key))
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
sink_reference(const struct sink *s, const char *key, const char *value, char *resolved,
				size_t resolvedlen, char *err, size_t errlen)
{
	char		r[PATH_MAX];

	if (s->trusted)
	{
		snprintf(resolved, resolvedlen, "%s", value);
		return 0;
	}
	if (sink_in_list(file_keys, key))
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

/* A host of a sink from the database must say plainly where it goes. */
static int
host_form(const char *host, void *arg)
{
	const char **what = arg;

	if (host[0] == '\0')
		*what = "has no host: give a host name or address after \"//\"";
	else if (sink_ambiguous_ipv4(host))
		*what = "has an IPv4 address in an ambiguous form: write it as four decimal numbers "
			"without leading zeros, such as 192.0.2.10";
	else
		return 0;
	return -1;
}

struct static_deny
{
	const struct sink *s;
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

	if (!sink_host_literal(host, &ss) || (m = sink_denied(sink_policy_of(sd->s), (struct sockaddr *) &ss)) == NULL)
		return 0;
	netmask_format(m, net, sizeof(net));
	snprintf(sd->err, sd->errlen, "sink \"%s\": host %s is in %s, a network ordersyncd never "
			 "connects to (--deny-networks; by default cloud metadata, link-local, multicast); "
			 "point the sink at another host, or change --deny-networks on the relay's command "
			 "line", sd->s->name, host, net);
	return -1;
}

/* ---- the URI, TLS and clear text ------------------------------------------ */

static int
check_uri(const struct sink *s, char *err, size_t errlen)
{
	const char *a;
	size_t		alen;
	char		name[128],
				shown[512];

	const char *what = NULL;
	const char *hp;
	size_t		hplen;

	if (sink_has_bad_char(s->uri, strlen(s->uri)))
	{
		snprintf(err, errlen, "sink \"%s\": the uri contains whitespace, a control character "
				 "or an invisible one; %%-encode spaces (%%20) and remove the others", s->name);
		return -1;
	}
	sink_uri_hostport(s->uri, &hp, &hplen);
	if (memchr(hp, '%', hplen) != NULL)
	{
		snprintf(err, errlen, "sink \"%s\": the uri's host is %%-encoded (or has an IPv6 zone); "
				 "clients decode %%XX in host names, which would hide where they connect: write "
				 "the host as it is (international names in their xn-- form)", s->name);
		return -1;
	}
	if (sink_for_each_host(s->uri, host_form, &what) != 0)
	{
		snprintf(err, errlen, "sink \"%s\": the uri %s", s->name, what);
		return -1;
	}
	if (sink_uri_authority(s->uri, &a, &alen))
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
	if (sink_uri_secret_param(s->uri, name, sizeof(name)))
	{
		sink_redact_uri(s->uri, shown, sizeof(shown));
		snprintf(err, errlen, "sink \"%s\": the uri %s has a query parameter \"%s\", which looks "
				 "like a secret; secrets are never stored in ordersync.sink: sign webhooks with "
				 "secret_env/secret_file instead, or give this sink on the relay's command line",
				 s->name, shown, name);
		return -1;
	}
	return 0;
}

static int
check_tls(const struct sink *s, const char *kind, char *err, size_t errlen)
{
	json_object *v;

	if (strcmp(kind, "amqp") == 0 && json_object_object_get_ex(s->opt.raw, "verify_peer", &v) &&
		!json_object_get_boolean(v) && !sink_policy_of(s)->allow_insecure)
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

/*
 * Personal data in clear text: a sink from the database may send it only
 * to this machine (and the connect hooks hold it to that); the command line
 * may do as it likes, with a warning.
 */
static int
check_clear_text(struct sink *s, char *err, size_t errlen)
{
	char		shown[512];

	s->loopback_only = false;
	if (s->opt.drop_personal_data || !s->ops->clear_text(s))
		return 0;
	sink_redact_uri(s->uri, shown, sizeof(shown));
	if (sink_uri_all_loopback(s->uri))
	{
		s->loopback_only = !s->trusted && !sink_policy_of(s)->allow_insecure;
		return 0;
	}
	if (s->trusted)
	{
		log_warning("sink \"%s\" sends events with personal data unencrypted to %s; use TLS "
					"(https://, amqps://, nats+tls://, security.protocol ssl/sasl_ssl) or set "
					"{\"drop_personal_data\": true}", s->name, shown);
		return 0;
	}
	if (sink_policy_of(s)->allow_insecure)
		return 0;
	snprintf(err, errlen, "sink \"%s\": %s would carry events with personal data (customer "
			 "names, addresses) unencrypted to another machine; use TLS (https://, amqps://, "
			 "nats+tls://, kafka security.protocol ssl or sasl_ssl), set "
			 "{\"drop_personal_data\": true}, or "
			 "start ordersyncd with --allow-insecure-sinks", s->name, shown);
	return -1;
}

int
sink_check(struct sink *s, char *err, size_t errlen)
{
	const struct sink_ops *ops = s->uri ? sink_kind_for(s->uri) : NULL;
	const char *kind;
	struct static_deny sd = {s, err, errlen};

	s->loopback_only = false;
	if (ops == NULL || (ops->flags & SINK_LOCAL))
	{
		snprintf(err, errlen, "sink \"%s\": no usable uri; use http://, https://, "
				 "kafka://brokers/topic, amqp://user@host/vhost?exchange=NAME or "
				 "nats://host:4222/prefix",
				 s->name ? s->name : "?");
		return -1;
	}
	kind = ops->kind;
	s->ops = ops;
	if (!s->trusted && check_uri(s, err, errlen) != 0)
		return -1;
	if (s->opt.raw)
	{
		if (check_keys(s, err, errlen) != 0 || check_types(s, err, errlen) != 0 ||
			check_kafka(s, err, errlen) != 0)
			return -1;
		if (!s->trusted && (check_references(s, err, errlen) != 0 ||
							check_tls(s, kind, err, errlen) != 0))
			return -1;
	}
	if (check_clear_text(s, err, errlen) != 0)
		return -1;
	/* literal addresses fail now, before any connection; names at connect time */
	return sink_for_each_host(s->uri, host_denied, &sd) != 0 ? -1 : 0;
}
