/*
 * dsink.c — what every delivery sink shares (see dsink.h): the poll set,
 * choosing the sink kind by URI scheme, the common options and reading
 * secrets by reference. What a sink may be configured to do is checked in
 * dsink_policy.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dsink.h"
#include "dsink_policy.h"
#include "ts.h"

static void
out_of_memory(size_t n)
{
	fprintf(stderr, "ordersyncd: out of memory (%zu bytes); stopping, nothing unconfirmed is lost\n", n);
	abort();
}

void *
ds_xmalloc(size_t n)
{
	void	   *p = malloc(n);

	if (p == NULL)
		out_of_memory(n);
	return p;
}

void *
ds_xcalloc(size_t n)
{
	void	   *p = calloc(1, n);

	if (p == NULL)
		out_of_memory(n);
	return p;
}

void *
ds_xrealloc(void *old, size_t n)
{
	void	   *p = realloc(old, n);

	if (p == NULL)
		out_of_memory(n);
	return p;
}

char *
ds_xstrdup(const char *s)
{
	char	   *p = strdup(s);

	if (p == NULL)
		out_of_memory(strlen(s) + 1);
	return p;
}

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
		ps->fds = ds_xrealloc(ps->fds, sizeof(*ps->fds) * (size_t) ps->cap);
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
dsink_now_ms(void)
{
	return ts_mono_usec() / 1000;
}

const struct dsink_ops *
dsink_ops_for(const char *uri)
{
	if (strncasecmp(uri, "http://", 7) == 0 || strncasecmp(uri, "https://", 8) == 0)
		return &webhook_ops;
	if (strncasecmp(uri, "kafka://", 8) == 0)
		return &kafka_ops;
	if (strncasecmp(uri, "amqp://", 7) == 0 || strncasecmp(uri, "amqps://", 8) == 0)
		return &amqp_ops;
	return NULL;
}

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
dsink_parse_options(struct dsink_options *opt, json_object *raw, char *err, size_t errlen)
{
	json_object *v;

	*opt = (struct dsink_options)
	{
		.max_attempts = 25,
		.max_age_ms = 3600 * 1000,
		.backoff_min_ms = 200,
		.backoff_max_ms = 30000,
		.timeout_ms = 10000,
		.connect_timeout_ms = 5000,
		.max_in_flight = 64,
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
dsink_secret(const struct dsink *s, const char *key, char *err, size_t errlen)
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

		if (name == NULL || dsink_reference(s, k_env, name, ref, sizeof(ref), err, errlen) != 0)
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
		return strdup(val);
	}
	if (s->opt.raw && json_object_object_get_ex(s->opt.raw, k_file, &v))
	{
		const char *path = json_object_get_string(v);
		FILE	   *f;
		char		line[4096];
		size_t		n;

		if (path == NULL || dsink_reference(s, k_file, path, ref, sizeof(ref), err, errlen) != 0)
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
		return strdup(line);
	}
	snprintf(err, errlen, "sink \"%s\" has no %s: give option \"%s\" (an environment variable) "
			 "or \"%s\" (a file)", s->name, key, k_env, k_file);
	return NULL;
}
