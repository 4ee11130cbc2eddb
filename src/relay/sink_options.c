/*
 * sink_options.c — what a sink's options object says: the options every
 * sink has (sink_parse_options) and each kind's own, read through the
 * kind's table (struct sink_opt in sink.h) into the kind's state. The
 * table is also the allowlist sink_policy.c checks keys against, so an
 * option is declared once: its name, its type and where it goes.
 *
 * Values have been checked by sink_check before a sink opens (types,
 * references against the policy); the loader checks the types again
 * because a sink may be opened without it (the unit tests, a trusted
 * sink), and resolves file references the way the policy does.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink.h"
#include "sink_policy.h"

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

/* ---- a kind's own options ------------------------------------------------ */

static const char *
kind_of(const struct sink *s, const char *kind)
{
	return kind ? kind : s->ops ? s->ops->kind : "";
}

bool
sink_opt_given(const struct sink *s, const char *key)
{
	return s->opt.raw && json_object_object_get_ex(s->opt.raw, key, NULL);
}

/* "name_env" / "name_file" for a secret; name itself otherwise */
static bool
entry_has_key(const struct sink_opt *o, const char *key)
{
	size_t		n = strlen(o->name);

	if (o->type != SINK_OPT_SECRET)
		return strcmp(o->name, key) == 0;
	return strncmp(key, o->name, n) == 0 &&
		(strcmp(key + n, "_env") == 0 || strcmp(key + n, "_file") == 0);
}

bool
sink_opts_allow(const struct sink_opt *table, const char *key)
{
	for (const struct sink_opt *o = table; o && o->name; o++)
		if (entry_has_key(o, key))
			return true;
	return false;
}

void
sink_opts_names(const struct sink_opt *table, char *out, size_t outlen)
{
	size_t		o = 0;

	if (outlen == 0)
		return;
	out[0] = '\0';
	for (const struct sink_opt *e = table; e && e->name; e++)
	{
		char		name[96];

		if (e->type == SINK_OPT_SECRET)
			snprintf(name, sizeof(name), "%s%s_env, %s_file", o ? ", " : "", e->name, e->name);
		else
			snprintf(name, sizeof(name), "%s%s", o ? ", " : "", e->name);
		sink_append(out, outlen, &o, name, strlen(name));
	}
}

static int
load_one(const struct sink *s, const char *kind, const struct sink_opt *e, json_object *v,
		 char *field, char *err, size_t errlen)
{
	switch (e->type)
	{
		case SINK_OPT_STRING:
		case SINK_OPT_FILE:
			{
				char		path[PATH_MAX];
				const char *text = json_object_get_string(v);

				if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0)
				{
					snprintf(err, errlen, "%s sink \"%s\": option \"%s\" must be a non-empty string",
							 kind, s->name, e->name);
					return -1;
				}
				/* a sink from the database: the file as resolved inside --secret-dir */
				if (e->type == SINK_OPT_FILE)
				{
					if (sink_reference(s, e->name, text, path, sizeof(path), err, errlen) != 0)
						return -1;
					text = path;
				}
				free(*(char **) field);
				*(char **) field = xstrdup(text);
				return 0;
			}
		case SINK_OPT_BOOL:
			if (!json_object_is_type(v, json_type_boolean))
			{
				snprintf(err, errlen, "%s sink \"%s\": option \"%s\" must be true or false",
						 kind, s->name, e->name);
				return -1;
			}
			*(bool *) field = json_object_get_boolean(v);
			return 0;
		case SINK_OPT_INT:
			if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < e->min ||
				json_object_get_int64(v) > e->max)
			{
				snprintf(err, errlen, "%s sink \"%s\": option \"%s\" must be an integer between "
						 "%d and %d", kind, s->name, e->name, e->min, e->max);
				return -1;
			}
			*(int *) field = (int) json_object_get_int64(v);
			return 0;
		case SINK_OPT_OBJECT:
			if (!json_object_is_type(v, json_type_object))
			{
				snprintf(err, errlen, "%s sink \"%s\": option \"%s\" must be a JSON object",
						 kind, s->name, e->name);
				return -1;
			}
			*(json_object **) field = v;
			return 0;
		case SINK_OPT_SECRET:
			break;
	}
	return 0;
}

int
sink_opts_load(const struct sink *s, const char *kind, const struct sink_opt *table,
			   void *state, char *err, size_t errlen)
{
	kind = kind_of(s, kind);
	for (const struct sink_opt *e = table; e && e->name; e++)
	{
		json_object *v;

		/* a secret itself in the options would end up in the sink table and in logs */
		if (e->type == SINK_OPT_SECRET && sink_opt_given(s, e->name))
		{
			snprintf(err, errlen, "%s sink \"%s\": option \"%s\" is not accepted: secrets are "
					 "never given in the options; use \"%s_env\" (an environment variable) "
					 "or \"%s_file\" (a file)", kind, s->name, e->name, e->name, e->name);
			return -1;
		}
		if (e->type == SINK_OPT_SECRET || e->offset < 0 || s->opt.raw == NULL ||
			!json_object_object_get_ex(s->opt.raw, e->name, &v))
			continue;
		if (load_one(s, kind, e, v, (char *) state + e->offset, err, errlen) != 0)
			return -1;
	}
	return 0;
}

void
sink_opts_free(const struct sink_opt *table, void *state)
{
	for (const struct sink_opt *e = table; e && e->name; e++)
		if ((e->type == SINK_OPT_STRING || e->type == SINK_OPT_FILE) && e->offset >= 0)
		{
			char	  **field = (char **) ((char *) state + e->offset);

			free(*field);
			*field = NULL;
		}
}
