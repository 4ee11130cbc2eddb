/*
 * yarena.h — a bump allocator handed to yajl, reset after every parse.
 *
 * yajl 2.1 cannot reset a handle (a parse error leaves it unusable), so the
 * relay allocates a fresh handle per line. Through this arena that costs a
 * few pointer bumps instead of several malloc/free pairs per line; memory
 * only grows to what the largest line needed.
 */
#ifndef ORDERSYNCD_YARENA_H
#define ORDERSYNCD_YARENA_H

#include <stddef.h>

#include <yajl/yajl_common.h>

struct yarena_big;

struct yarena
{
	char	   *base;			/* the main block, reused for every parse */
	size_t		cap;
	size_t		used;
	size_t		last;			/* offset of the newest allocation, for in-place realloc */
	struct yarena_big *big;		/* overflow blocks (malloc), freed at reset */
	size_t		want;			/* overflow seen: grow the main block at reset */
	yajl_alloc_funcs funcs;		/* pass to yajl_alloc */
};

/* Both abort on out-of-memory, like buf.c. */
void yarena_init(struct yarena *a);
/* Forget every allocation (after yajl_free); keeps the main block. */
void yarena_reset(struct yarena *a);
void yarena_free(struct yarena *a);

#endif
