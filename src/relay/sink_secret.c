/*
 * sink_secret.c — secrets by reference (see sink_secret in sink.h): a sink's
 * options name an environment variable ("<key>_env") or a file
 * ("<key>_file") that holds the secret, never the secret itself, and the
 * reference is checked against the policy at every read. A secret read is
 * wiped before it is freed.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink.h"
#include "sink_policy.h"

bool
sink_secret_given(const struct sink *s, const char *key)
{
	char		k_env[64],
				k_file[64];

	snprintf(k_env, sizeof(k_env), "%s_env", key);
	snprintf(k_file, sizeof(k_file), "%s_file", key);
	return sink_opt_given(s, k_env) || sink_opt_given(s, k_file);
}

void
sink_secret_free(char *secret)
{
	if (secret)
	{
		explicit_bzero(secret, strlen(secret));
		free(secret);
	}
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
