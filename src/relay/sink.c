/*
 * sink.c — what every sink shares (see sink.h): the registry of kinds, the
 * host's report queue, the poll set, the common options and reading
 * secrets by reference. What a sink may be configured to do is checked in
 * sink_policy.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sink.h"
#include "sink_policy.h"
#include "ts.h"

void
pollset_reset(struct pollset *ps)
{
	ps->n = 0;
}

int
pollset_add(struct pollset *ps, int fd, short events)
{
	if (ps->n == ps->cap)
	{
		ps->cap = ps->cap ? ps->cap * 2 : 16;
		ps->fds = xrealloc(ps->fds, sizeof(*ps->fds) * (size_t) ps->cap);
	}
	ps->fds[ps->n] = (struct pollfd) {.fd = fd,.events = events,.revents = 0};
	return ps->n++;
}

void
pollset_free(struct pollset *ps)
{
	free(ps->fds);
	memset(ps, 0, sizeof(*ps));
}

int64_t
sink_now_ms(void)
{
	return ts_mono_usec() / 1000;
}

/* The kinds there are; a new sink adds its line here. */
static const struct sink_ops *const kinds[] = {
	&sink_file_ops,
	&sink_webhook_ops,
	&sink_kafka_ops,
	&sink_amqp_ops,
	&sink_nats_ops,
};

const struct sink_ops *
sink_kind_for(const char *uri)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i]->claims(uri))
			return kinds[i];
	return NULL;
}

/* ---- the host's queue ---------------------------------------------------- */

void
sink_host_init(struct sink_host *h)
{
	memset(h, 0, sizeof(*h));
	buf_init(&h->text);
}

void
sink_host_free(struct sink_host *h)
{
	free(h->results);
	buf_free(&h->text);
	memset(h, 0, sizeof(*h));
}

void
sink_host_clear(struct sink_host *h)
{
	h->n = 0;
	buf_reset(&h->text);
}

const char *
sink_host_why(const struct sink_host *h, const struct sink_result *r)
{
	return r->why == (size_t) -1 ? "" : h->text.data + r->why;
}

static struct sink_result *
push(struct sink_host *h, enum sink_report what, struct sink_event *ev, const char *why)
{
	struct sink_result *r;

	if (h->n == h->cap)
	{
		h->cap = h->cap ? h->cap * 2 : 64;
		h->results = xrealloc(h->results, sizeof(*h->results) * (size_t) h->cap);
	}
	r = &h->results[h->n++];
	*r = (struct sink_result) {.what = what,.ev = ev,.why = (size_t) -1};
	if (why)
		r->why = buf_keep(&h->text, why, strlen(why));
	return r;
}

void
sink_host_accepted(struct sink_host *h, struct sink_event *ev)
{
	push(h, SINK_ACCEPTED, ev, NULL);
}

void
sink_host_failed(struct sink_host *h, struct sink_event *ev, bool retryable,
				 int64_t not_before_ms, const char *why)
{
	struct sink_result *r = push(h, SINK_FAILED, ev, why);

	r->retryable = retryable;
	r->not_before_ms = not_before_ms;
}

void
sink_host_returned(struct sink_host *h, struct sink_event *ev)
{
	push(h, SINK_RETURNED, ev, NULL);
}

void
sink_host_outage(struct sink_host *h, const char *why)
{
	push(h, SINK_OUTAGE, NULL, why);
}

void
sink_host_refused(struct sink_host *h, const char *why)
{
	push(h, SINK_REFUSED, NULL, why);
}

void
sink_host_durable(struct sink_host *h, uint64_t lsn)
{
	push(h, SINK_DURABLE, NULL, NULL)->lsn = lsn;
}

void
sink_host_fatal(struct sink_host *h, const char *why)
{
	push(h, SINK_FATAL, NULL, why);
}

/* ---- options and secrets ------------------------------------------------ */

/* An integer option within [min, max]; absent keeps *out. */
static int
int_option(json_object *o, const char *key, int min, int max, int *out,
		   char *err, size_t errlen)
{
	json_object *v;
	int64_t		n;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int))
	{
		snprintf(err, errlen, "option \"%s\" must be an integer, not %s", key,
				 json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
		return -1;
	}
	n = json_object_get_int64(v);
	if (n < min || n > max)
	{
		snprintf(err, errlen, "option \"%s\" is %lld; it must be between %d and %d", key,
				 (long long) n, min, max);
		return -1;
	}
	*out = (int) n;
	return 0;
}

int
sink_parse_options(struct sink_options *opt, json_object *raw, char *err, size_t errlen)
{
	json_object *v;

	*opt = (struct sink_options)
	{
		.max_attempts = 25,
		.max_age_ms = 3600 * 1000,
		.backoff_min_ms = 200,
		.backoff_max_ms = 30000,
		.timeout_ms = 10000,
		.connect_timeout_ms = 5000,
		.max_in_flight = 0,
		.drop_personal_data = false,
		.raw = raw,
	};
	if (raw == NULL)
		return 0;
	if (!json_object_is_type(raw, json_type_object))
	{
		snprintf(err, errlen, "sink options must be a JSON object such as '{\"max_attempts\": 5}'");
		return -1;
	}
	{
		int			age_s = opt->max_age_ms / 1000;

		if (int_option(raw, "max_attempts", 1, 1000000, &opt->max_attempts, err, errlen) ||
			int_option(raw, "max_age_seconds", 1, 30 * 86400, &age_s, err, errlen) ||
			int_option(raw, "backoff_min_ms", 1, 3600000, &opt->backoff_min_ms, err, errlen) ||
			int_option(raw, "backoff_max_ms", 1, 3600000, &opt->backoff_max_ms, err, errlen) ||
			int_option(raw, "timeout_ms", 1, 3600000, &opt->timeout_ms, err, errlen) ||
			int_option(raw, "connect_timeout_ms", 1, 3600000, &opt->connect_timeout_ms, err, errlen) ||
			int_option(raw, "max_in_flight", 1, 100000, &opt->max_in_flight, err, errlen))
			return -1;
		opt->max_age_ms = age_s * 1000;
	}
	if (opt->backoff_max_ms < opt->backoff_min_ms)
		opt->backoff_max_ms = opt->backoff_min_ms;
	if (json_object_object_get_ex(raw, "drop_personal_data", &v))
	{
		if (!json_object_is_type(v, json_type_boolean))
		{
			snprintf(err, errlen, "option \"drop_personal_data\" must be true or false");
			return -1;
		}
		opt->drop_personal_data = json_object_get_boolean(v);
	}
	return 0;
}

char *
sink_secret(const struct sink *s, const char *key, char *err, size_t errlen)
{
	char		k_env[64],
				k_file[64];
	char		ref[PATH_MAX];
	json_object *v;

	snprintf(k_env, sizeof(k_env), "%s_env", key);
	snprintf(k_file, sizeof(k_file), "%s_file", key);
	if (s->opt.raw && json_object_object_get_ex(s->opt.raw, k_env, &v))
	{
		const char *name = json_object_get_string(v);
		const char *val;

		if (name == NULL || sink_reference(s, k_env, name, ref, sizeof(ref), err, errlen) != 0)
		{
			if (name == NULL)
				snprintf(err, errlen, "sink \"%s\": option %s must name an environment variable",
						 s->name, k_env);
			return NULL;
		}
		val = getenv(ref);
		if (val == NULL || *val == '\0')
		{
			snprintf(err, errlen, "sink \"%s\": option %s names the environment variable \"%s\", "
					 "which is not set for ordersyncd; export it before starting the relay",
					 s->name, k_env, name);
			return NULL;
		}
		return xstrdup(val);
	}
	if (s->opt.raw && json_object_object_get_ex(s->opt.raw, k_file, &v))
	{
		const char *path = json_object_get_string(v);
		FILE	   *f;
		char		line[4096];
		size_t		n;

		if (path == NULL || sink_reference(s, k_file, path, ref, sizeof(ref), err, errlen) != 0)
		{
			if (path == NULL)
				snprintf(err, errlen, "sink \"%s\": option %s must name a file", s->name, k_file);
			return NULL;
		}
		/* the resolved path: what was checked is what is read */
		f = fopen(ref, "r");
		if (f == NULL)
		{
			snprintf(err, errlen, "sink \"%s\": cannot read %s \"%s\": %s; make the file readable "
					 "by the user ordersyncd runs as", s->name, k_file, path, strerror(errno));
			return NULL;
		}
		n = fread(line, 1, sizeof(line) - 1, f);
		fclose(f);
		line[n] = '\0';
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0)
		{
			snprintf(err, errlen, "sink \"%s\": %s \"%s\" is empty", s->name, k_file, path);
			return NULL;
		}
		return xstrdup(line);
	}
	snprintf(err, errlen, "sink \"%s\" has no %s: give option \"%s\" (an environment variable) "
			 "or \"%s\" (a file)", s->name, key, k_env, k_file);
	return NULL;
}
