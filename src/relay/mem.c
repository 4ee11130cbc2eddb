/*
 * mem.c — allocation that never returns NULL (see mem.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

void
x_out_of_memory(size_t n)
{
	fprintf(stderr, "ordersyncd: out of memory (%zu bytes); stopping, nothing unconfirmed is lost\n", n);
	abort();
}

void *
xmalloc(size_t n)
{
	void	   *p = malloc(n ? n : 1);

	if (p == NULL)
		x_out_of_memory(n);
	return p;
}

void *
xcalloc(size_t n)
{
	void	   *p = calloc(1, n ? n : 1);

	if (p == NULL)
		x_out_of_memory(n);
	return p;
}

void *
xrealloc(void *old, size_t n)
{
	void	   *p = realloc(old, n ? n : 1);

	if (p == NULL)
		x_out_of_memory(n);
	return p;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char	   *p = strndup(s, n);

	if (p == NULL)
		x_out_of_memory(n + 1);
	return p;
}
