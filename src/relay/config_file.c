/*
 * config_file.c — --config=FILE (see config_file.h).
 *
 * Syntax, kept as small as the flags it stands for:
 *   # a comment (a line whose first non-blank character is '#')
 *   dbname = host=/var/run/postgresql dbname=shop user=ordersync_relay
 *   sink = file:/var/lib/ordersync/events.jsonl
 *   create-slot = true
 * The name ends at the first '='; blanks around name and value are dropped;
 * a value inside matching double or single quotes keeps its blanks (and
 * may be empty: deny-networks = ""). Options without an argument take
 * true/false (yes/no, on/off, 1/0): false leaves the option out.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <string.h>
#include <sys/stat.h>

#include "config_file.h"

#define CONFIG_MAX_LINE 8192
#define CONFIG_MAX_ENTRIES 256

struct argv_builder
{
	char	  **v;
	int			n;
	int			cap;
};

static int
push(struct argv_builder *b, char *s)
{
	if (s == NULL)
		return -1;
	if (b->n + 2 > b->cap)
	{
		int			cap = b->cap ? b->cap * 2 : 16;
		char	  **v = realloc(b->v, sizeof(char *) * (size_t) cap);

		if (v == NULL)
			return -1;
		b->v = v;
		b->cap = cap;
	}
	b->v[b->n++] = s;
	b->v[b->n] = NULL;
	return 0;
}

static char *
trim(char *s)
{
	char	   *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

static const struct option *
find_option(const struct option *longopts, const char *name)
{
	for (const struct option *o = longopts; o->name; o++)
		if (strcmp(o->name, name) == 0)
			return o;
	return NULL;
}

/* true/false for options without an argument; -1 if neither */
static int
parse_bool(const char *v)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
	{
		if (strcmp(v, yes[i]) == 0)
			return 1;
		if (strcmp(v, no[i]) == 0)
			return 0;
	}
	return -1;
}

/* "--name=value" or "--name", malloc'd */
static char *
make_arg(const char *name, const char *value)
{
	size_t		len = strlen(name) + (value ? strlen(value) + 1 : 0) + 3;
	char	   *s = malloc(len);

	if (s)
	{
		if (value)
			snprintf(s, len, "--%s=%s", name, value);
		else
			snprintf(s, len, "--%s", name);
	}
	return s;
}

/*
 * One line, already trimmed, not blank and not a comment: append its option
 * to b. Returns 0 or an exit code after a message.
 */
static int
read_line(const char *path, int lineno, char *name, const struct option *longopts,
		  struct argv_builder *b)
{
	char	   *eq = strchr(name, '=');
	char	   *value;
	size_t		vlen;
	const struct option *opt;

	if (eq == NULL)
	{
		fprintf(stderr, "ordersyncd: %s:%d: expected \"name = value\", not \"%s\"\n",
				path, lineno, name);
		return 1;
	}
	*eq = '\0';
	value = trim(eq + 1);
	name = trim(name);
	if (strncmp(name, "--", 2) == 0)
		name += 2;				/* a pasted flag: --slot = x */
	vlen = strlen(value);
	if (vlen >= 2 && (value[0] == '"' || value[0] == '\'') && value[vlen - 1] == value[0])
	{
		value[vlen - 1] = '\0';
		value++;
	}
	opt = find_option(longopts, name);
	if (opt == NULL || strcmp(name, "help") == 0 || strcmp(name, "version") == 0 ||
		strcmp(name, "config") == 0)
	{
		fprintf(stderr, "ordersyncd: %s:%d: unknown option \"%s\"\nHINT: names are the long "
				"options of ordersyncd --help without \"--\", spelled out in full\n",
				path, lineno, name);
		return 1;
	}
	if (opt->has_arg == no_argument)
	{
		int			on = parse_bool(value);

		if (on < 0)
		{
			fprintf(stderr, "ordersyncd: %s:%d: %s takes true or false, not \"%s\"\n",
					path, lineno, name, value);
			return 1;
		}
		if (!on)
			return 0;
		value = NULL;
	}
	if (push(b, make_arg(name, value)) != 0)
	{
		fprintf(stderr, "ordersyncd: out of memory reading \"%s\"\n", path);
		return 2;
	}
	return 0;
}

/* Append the file's options to b. Returns 0 or an exit code after a message. */
static int
read_config(const char *path, const struct option *longopts, struct argv_builder *b)
{
	FILE	   *f = fopen(path, "r");
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len;
	struct stat st;
	int			lineno = 0;
	int			entries = 0;
	int			rc = 0;

	if (f == NULL)
	{
		fprintf(stderr, "ordersyncd: could not open --config file \"%s\": %s\n"
				"HINT: create it (one \"name = value\" a line, names are the long options of "
				"ordersyncd --help) or correct the path\n", path, strerror(errno));
		return 2;
	}
	/* whoever may write the file chooses the database and where events go */
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & S_IWOTH))
	{
		fprintf(stderr, "ordersyncd: --config file \"%s\" is writable by everyone: anyone could "
				"redirect the relay; chmod o-w it\n", path);
		fclose(f);
		return 2;
	}
	while (rc == 0 && (len = getline(&line, &cap, f)) >= 0)
	{
		/* before trim(), which writes NULs: one inside would end the line early */
		bool		has_nul = strlen(line) != (size_t) len;
		char	   *text = trim(line);

		lineno++;
		if (len > CONFIG_MAX_LINE)
		{
			fprintf(stderr, "ordersyncd: %s:%d: line longer than %d bytes\n", path, lineno,
					CONFIG_MAX_LINE);
			rc = 1;
		}
		else if (has_nul)
		{
			/* the rest of the line would be dropped without a word */
			fprintf(stderr, "ordersyncd: %s:%d: the line holds a NUL byte\n", path, lineno);
			rc = 1;
		}
		else if (text[0] == '\0' || text[0] == '#')
			continue;
		else if (++entries > CONFIG_MAX_ENTRIES)
		{
			fprintf(stderr, "ordersyncd: %s:%d: more than %d options\n", path, lineno,
					CONFIG_MAX_ENTRIES);
			rc = 1;
		}
		else
			rc = read_line(path, lineno, text, longopts, b);
	}
	if (rc == 0 && ferror(f))
	{
		fprintf(stderr, "ordersyncd: could not read --config file \"%s\": %s\n", path,
				strerror(errno));
		rc = 2;
	}
	free(line);
	fclose(f);
	return rc;
}

int
config_file_expand(int *argc, char ***argv, const struct option *longopts)
{
	struct argv_builder b = {0};
	const char *path = NULL;
	int			at = -1,
				width = 0;
	int			rc;

	/* find --config; getopt_long() permutes, so it may come anywhere before "--" */
	for (int i = 1; i < *argc; i++)
	{
		const char *a = (*argv)[i];
		const char *p = NULL;
		int			w = 1;

		if (strcmp(a, "--") == 0)
			break;
		if (strncmp(a, "--config=", 9) == 0)
			p = a + 9;
		else if (strcmp(a, "--config") == 0)
		{
			if (i + 1 >= *argc)
			{
				fprintf(stderr, "ordersyncd: --config needs a file name\n");
				return 1;
			}
			p = (*argv)[i + 1];
			w = 2;
		}
		if (p == NULL)
			continue;
		if (path)
		{
			fprintf(stderr, "ordersyncd: --config given twice; name one file\n");
			return 1;
		}
		path = p;
		at = i;
		width = w;
		i += w - 1;
	}
	if (path == NULL)
		return 0;

	if (push(&b, (*argv)[0]) != 0)
		goto oom;
	if ((rc = read_config(path, longopts, &b)) != 0)
	{
		free(b.v);				/* the strings are small and we are exiting */
		return rc;
	}
	for (int i = 1; i < *argc; i++)
	{
		if (i == at)
		{
			i += width - 1;
			continue;
		}
		if (push(&b, (*argv)[i]) != 0)
			goto oom;
	}
	*argc = b.n;
	*argv = b.v;
	return 0;

oom:
	fprintf(stderr, "ordersyncd: out of memory\n");
	return 2;
}
