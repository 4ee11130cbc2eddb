/*
 * mem.h — the relay's one out-of-memory policy.
 *
 * Running out of memory ends the process after one line on stderr. Nothing
 * is lost by that: whatever was not confirmed to the server is read again
 * from the slot on restart. So no caller checks for NULL, and no code path
 * has to unwind half-built state after a failed allocation.
 */
#ifndef ORDERSYNCD_MEM_H
#define ORDERSYNCD_MEM_H

#include <stddef.h>

void	   *xmalloc(size_t n);
void	   *xcalloc(size_t n);		/* zeroed */
void	   *xrealloc(void *p, size_t n);
char	   *xstrdup(const char *s);
char	   *xstrndup(const char *s, size_t n);

/* For code that allocated through another library (strdup, json-c...). */
void		x_out_of_memory(size_t n) __attribute__((noreturn));

#endif
