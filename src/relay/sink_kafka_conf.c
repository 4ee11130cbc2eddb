/*
 * sink_kafka_conf.c — the Kafka sink's librdkafka configuration, made once
 * from the uri and the sink's options: the template every producer of the
 * sink is made from (sink_kafka.c).
 *
 * The sink sets what its guarantees rest on (idempotence, acks=all, no
 * timeout inside librdkafka, the Java client's partitioner) and refuses a
 * "kafka" property that would weaken them or that holds a secret. A sink
 * from the database never runs kinit (GSSAPI is refused by sink_check, and
 * sasl.kerberos.min.time.before.relogin = 0 turns the kinit timer off even
 * if it were chosen).
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sink_address.h"
#include "sink_kafka.h"

/* the options of this kind (sink.h); their order is the one messages list */
const struct sink_opt kafka_options[] = {
	{"password", SINK_OPT_SECRET, -1, 0, 0},
	SINK_TLS_OPTIONS(struct kafka, tls),
	{"kafka", SINK_OPT_OBJECT, offsetof(struct kafka, properties), 0, 0},
	{NULL, 0, 0, 0, 0}
};

static const struct sink_address_form kafka_form = {
	.kind = "kafka",
	.example = "kafka://host1:9092,host2:9092/topic",
	.server = "broker",
	.path = "topic",
	.example_more = "",
	.params = "a kafka sink uri is kafka://brokers/topic, librdkafka properties go into the "
	"option {\"kafka\": {\"linger.ms\": 20}}",
};


/* A librdkafka property, or -1 with a message naming the sink option. */
static int
conf_set(struct kafka *k, const char *key, const char *val, const char *from,
		 char *err, size_t errlen)
{
	char		errstr[512];

	if (rd_kafka_conf_set(k->conf, key, val, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
	{
		snprintf(err, errlen, "kafka sink \"%s\": %s \"%s\" = \"%s\": %s; see librdkafka's "
				 "CONFIGURATION.md for the properties and their values", k->s->name, from,
				 key, val, errstr);
		return -1;
	}
	return 0;
}

/* Properties the sink sets itself or that would weaken its guarantees. */
static int
check_property(struct kafka *k, const char *key, const char *val, char *err, size_t errlen)
{
	static const char *const owned[] = {
		"bootstrap.servers", "metadata.broker.list", "log.queue", "transactional.id",
		"enable.gapless.guarantee", NULL
	};
	regex_t		secret;
	bool		is_secret;

	/* the same rule as ordersync.add_sink(), for --sink-options too */
	if (regcomp(&secret, "(password|secret|\\.key$|key\\.pem|keystore)",
				REG_EXTENDED | REG_NOSUB | REG_ICASE) != 0)
		abort();
	is_secret = regexec(&secret, key, 0, NULL, 0) == 0;
	regfree(&secret);
	if (is_secret)
	{
		snprintf(err, errlen, "kafka sink \"%s\": the \"kafka\" option must not hold secrets "
				 "(\"%s\"): give the SASL password with \"password_env\" (an environment "
				 "variable of ordersyncd) or \"password_file\", and keys and keystores as "
				 "files (\"ssl.key.location\", \"ssl.certificate.location\")", k->s->name, key);
		return -1;
	}
	for (int i = 0; owned[i]; i++)
		if (strcmp(key, owned[i]) == 0)
		{
			snprintf(err, errlen, "kafka sink \"%s\": \"kafka\" property \"%s\" is set by "
					 "ordersyncd; give the brokers in the uri (kafka://host1:9092,host2:9092/topic) "
					 "and leave \"%s\" out", k->s->name, key, key);
			return -1;
		}
	if (strcmp(key, "message.timeout.ms") == 0 || strcmp(key, "delivery.timeout.ms") == 0)
	{
		snprintf(err, errlen, "kafka sink \"%s\": set the sink option \"timeout_ms\" instead of "
				 "\"kafka\" property \"%s\": librdkafka must not time records out by itself, "
				 "or a retry could land behind later events of the same order", k->s->name, key);
		return -1;
	}
	if (strcmp(key, "enable.idempotence") == 0 && strcasecmp(val, "true") != 0)
	{
		snprintf(err, errlen, "kafka sink \"%s\": \"enable.idempotence\" must stay true: "
				 "without it retries can reorder or duplicate an order's events", k->s->name);
		return -1;
	}
	if ((strcmp(key, "acks") == 0 || strcmp(key, "request.required.acks") == 0) &&
		strcasecmp(val, "all") != 0 && strcmp(val, "-1") != 0)
	{
		snprintf(err, errlen, "kafka sink \"%s\": \"%s\" must stay \"all\": an event counts as "
				 "delivered only when every in-sync replica has it", k->s->name, key);
		return -1;
	}
	return 0;
}

/* Split kafka://[user@]brokers/topic; *user may come back NULL. */
static int
parse_uri(struct kafka *k, char **brokers, char **user, char *err, size_t errlen)
{
	struct sink *s = k->s;
	struct sink_address a;
	const char *topic;
	size_t		tlen;

	*brokers = *user = NULL;
	if (sink_address_split(s, &kafka_form, &a, err, errlen) != 0)
		return -1;
	topic = a.path;
	tlen = strlen(topic);
	if (tlen > 249 || strspn(topic, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
							 "0123456789._-") != tlen ||
		strcmp(topic, ".") == 0 || strcmp(topic, "..") == 0)
	{
		snprintf(err, errlen, "kafka sink \"%s\": \"%s\" is not a valid topic name: use up to "
				 "249 letters, digits, \".\", \"_\" and \"-\"", s->name, topic);
		sink_address_free(&a);
		return -1;
	}
	for (const char *b = a.servers;; b++)
		if ((*b == ',' || *b == '\0') && (b == a.servers || b[-1] == ','))
		{
			snprintf(err, errlen, "kafka sink \"%s\": empty broker in \"%s\"; separate "
					 "brokers with single commas", s->name, a.servers);
			sink_address_free(&a);
			return -1;
		}
		else if (*b == '\0')
			break;
	k->topic = a.path;
	*brokers = a.servers;
	*user = a.user;
	return 0;
}

/* The SASL password, only by reference (password_env / password_file). */
static int
set_password(struct kafka *k, char *err, size_t errlen)
{
	struct sink *s = k->s;
	char		proto[64] = "plaintext";
	size_t		plen = sizeof(proto);
	char	   *pw;
	int			bad;

	if (!sink_secret_given(s, "password"))
		return 0;
	pw = sink_secret(s, "password", err, errlen);
	if (pw == NULL)
		return -1;
	if (rd_kafka_conf_get(k->conf, "security.protocol", proto, &plen) != RD_KAFKA_CONF_OK ||
		strncasecmp(proto, "sasl_", 5) != 0)
	{
		snprintf(err, errlen, "kafka sink \"%s\": a password is given but security.protocol "
				 "is \"%s\", which sends none; set for instance {\"kafka\": "
				 "{\"security.protocol\": \"sasl_ssl\", \"sasl.mechanisms\": \"SCRAM-SHA-512\", "
				 "\"sasl.username\": \"relay\"}}", s->name, proto);
		sink_secret_free(pw);
		return -1;
	}
	bad = rd_kafka_conf_set(k->conf, "sasl.password", pw, err, errlen) != RD_KAFKA_CONF_OK;
	sink_secret_free(pw);
	if (bad)
	{
		/* librdkafka's text could quote it: say less */
		snprintf(err, errlen, "kafka sink \"%s\": librdkafka refused the password setting", s->name);
		return -1;
	}
	return 0;
}

/* ca_file, cert_file, key_file: as resolved (inside --secret-dir for the database). */
static int
set_files(struct kafka *k, char *err, size_t errlen)
{
	const struct
	{
		const char *option;
		const char *property;
		const char *path;
	}			map[] = {
		{"ca_file", "ssl.ca.location", k->tls.ca_file},
		{"cert_file", "ssl.certificate.location", k->tls.cert_file},
		{"key_file", "ssl.key.location", k->tls.key_file},
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
	{
		char		from[32];

		snprintf(from, sizeof(from), "option \"%s\"", map[i].option);
		if (map[i].path && conf_set(k, map[i].property, map[i].path, from, err, errlen) != 0)
			return -1;
	}
	return 0;
}

int
kafka_configure(struct kafka *k, char *err, size_t errlen)
{
	struct sink *s = k->s;
	char	   *brokers,
			   *user;
	char		num[32];
	int			rc = -1;

	if (parse_uri(k, &brokers, &user, err, errlen) != 0)
		return -1;
	k->conf = rd_kafka_conf_new();
	snprintf(num, sizeof(num), "%d", s->opt.connect_timeout_ms);
	if (conf_set(k, "bootstrap.servers", brokers, "uri", err, errlen) ||
		conf_set(k, "client.id", "ordersyncd", "default", err, errlen) ||
		conf_set(k, "enable.idempotence", "true", "default", err, errlen) ||
		conf_set(k, "acks", "all", "default", err, errlen) ||
		/* retried in order by librdkafka until we take the records back */
		conf_set(k, "message.timeout.ms", "0", "default", err, errlen) ||
		/* the Java client's key hashing: other producers of the topic agree */
		conf_set(k, "partitioner", "murmur2_random", "default", err, errlen) ||
		conf_set(k, "log.queue", "true", "default", err, errlen) ||
		conf_set(k, "socket.connection.setup.timeout.ms", num, "option \"connect_timeout_ms\"",
				 err, errlen) ||
		(user && conf_set(k, "sasl.username", user, "uri user", err, errlen)))
		goto out;
	/*
	 * No kinit timer, ever, for a sink from the database: librdkafka would
	 * run sasl.kerberos.kinit.cmd through the shell. (sink_check refuses
	 * GSSAPI and every property that could change this.)
	 */
	if (!s->trusted &&
		conf_set(k, "sasl.kerberos.min.time.before.relogin", "0", "default", err, errlen))
		goto out;

	sink_tls_init(&k->tls, false);
	if (sink_opts_load(s, "kafka", kafka_options, k, err, errlen) != 0)
		goto out;
	if (k->properties)
	{
		json_object_object_foreach(k->properties, key, val)
		{
			const char *txt;

			if (json_object_is_type(val, json_type_object) ||
				json_object_is_type(val, json_type_array) ||
				json_object_is_type(val, json_type_null))
			{
				snprintf(err, errlen, "kafka sink \"%s\": \"kafka\" property \"%s\" must be a "
						 "string, number or boolean", s->name, key);
				goto out;
			}
			txt = json_object_get_string(val);
			if (check_property(k, key, txt, err, errlen) ||
				conf_set(k, key, txt, "\"kafka\" property", err, errlen))
				goto out;
		}
	}
	if (set_files(k, err, errlen) != 0 || set_password(k, err, errlen) != 0)
		goto out;
	rd_kafka_conf_set_connect_cb(k->conf, kafka_on_connect);
	rd_kafka_conf_set_dr_msg_cb(k->conf, kafka_on_delivery);
	rd_kafka_conf_set_error_cb(k->conf, kafka_on_error);
	rd_kafka_conf_set_log_cb(k->conf, kafka_on_log);
	rd_kafka_conf_set_opaque(k->conf, k);
	rc = 0;
out:
	free(brokers);
	free(user);
	return rc;
}

/* librdkafka's default security.protocol is plaintext */
bool
kafka_clear_text(const struct sink *s)
{
	json_object *kopt,
			   *v;
	const char *proto = NULL;

	if (s->opt.raw && json_object_object_get_ex(s->opt.raw, "kafka", &kopt) &&
		json_object_is_type(kopt, json_type_object) &&
		json_object_object_get_ex(kopt, "security.protocol", &v))
		proto = json_object_get_string(v);
	return proto == NULL || strcasecmp(proto, "plaintext") == 0 ||
		strcasecmp(proto, "sasl_plaintext") == 0;
}
