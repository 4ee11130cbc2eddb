/*
 * yarena.c — bump allocator for yajl (see yarena.h).
 *
 * Each allocation is preceded by its size so realloc can copy; yajl's
 * buffers grow by realloc of the newest block most of the time, which is
 * done in place. free is a no-op: everything goes at yarena_reset.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yarena.h"

#define ALIGN 16
#define HDR ALIGN				/* size header, keeps the payload aligned */
#define INITIAL_CAP (64 * 1024)
#define MAX_KEPT_CAP (16 * 1024 * 1024)	/* bigger lines keep using malloc */

struct yarena_big
{
	struct yarena_big *next;
	size_t		size;
	/* payload follows, aligned by the padding below */
	char		pad[ALIGN - (2 * sizeof(size_t)) % ALIGN];
};

static void *
oom(void)
{
	fprintf(stderr, "ordersyncd: out of memory\n");
	abort();
}

static size_t
round_up(size_t n)
{
	return (n + ALIGN - 1) & ~(size_t) (ALIGN - 1);
}

static void *
big_alloc(struct yarena *a, size_t size)
{
	struct yarena_big *b = malloc(sizeof(*b) + size);

	if (b == NULL)
		return oom();
	b->next = a->big;
	b->size = size;
	a->big = b;
	a->want += size;
	return b + 1;
}

static size_t
size_of(struct yarena *a, void *p)
{
	char	   *c = p;

	if (c > a->base && c <= a->base + a->cap)
	{
		size_t		s;

		memcpy(&s, c - HDR, sizeof(s));
		return s;
	}
	return ((struct yarena_big *) p - 1)->size;
}

static void *
arena_malloc(void *ctx, size_t size)
{
	struct yarena *a = ctx;
	size_t		need = HDR + round_up(size);
	char	   *p;

	if (need > a->cap - a->used)
		return big_alloc(a, size);
	p = a->base + a->used;
	memcpy(p, &size, sizeof(size));
	a->last = a->used;
	a->used += need;
	return p + HDR;
}

static void
arena_free(void *ctx, void *ptr)
{
	/* everything is released at reset; yajl frees only at yajl_free */
	(void) ctx;
	(void) ptr;
}

static void *
arena_realloc(void *ctx, void *ptr, size_t size)
{
	struct yarena *a = ctx;
	char	   *c = ptr;
	size_t		old;
	void	   *n;

	if (ptr == NULL)
		return arena_malloc(ctx, size);
	/* the newest block in the main area grows in place when it fits */
	if (c == a->base + a->last + HDR && a->last + HDR + round_up(size) <= a->cap)
	{
		memcpy(a->base + a->last, &size, sizeof(size));
		a->used = a->last + HDR + round_up(size);
		return ptr;
	}
	old = size_of(a, ptr);
	n = arena_malloc(ctx, size);
	memcpy(n, ptr, old < size ? old : size);
	return n;
}

void
yarena_init(struct yarena *a)
{
	memset(a, 0, sizeof(*a));
	a->cap = INITIAL_CAP;
	a->base = malloc(a->cap);
	if (a->base == NULL)
		oom();
	a->funcs.malloc = arena_malloc;
	a->funcs.realloc = arena_realloc;
	a->funcs.free = arena_free;
	a->funcs.ctx = a;
}

void
yarena_reset(struct yarena *a)
{
	while (a->big)
	{
		struct yarena_big *b = a->big;

		a->big = b->next;
		free(b);
	}
	if (a->want)
	{
		/* a big line came: make the main block big enough for its kind */
		size_t		cap = a->cap + 2 * a->want;
		char	   *nb = cap <= MAX_KEPT_CAP ? malloc(cap) : NULL;

		if (nb != NULL)
		{
			free(a->base);
			a->base = nb;
			a->cap = cap;
		}
		a->want = 0;
	}
	a->used = 0;
	a->last = 0;
}

void
yarena_free(struct yarena *a)
{
	yarena_reset(a);
	free(a->base);
	a->base = NULL;
}
