/*
 * buf.h — a growable byte buffer for building event lines.
 *
 * Reused across events so the steady state allocates nothing; it only
 * grows to the size of the largest single event seen.
 */
#ifndef ORDERSYNCD_BUF_H
#define ORDERSYNCD_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct buf
{
	char	   *data;
	size_t		len;
	size_t		cap;
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
/* Both abort on out-of-memory: a relay that cannot allocate cannot continue. */
void buf_append_slow(struct buf *b, const void *data, size_t len);
void buf_append_str(struct buf *b, const char *s);

/*
 * Keep a copy of data[0..len) followed by a NUL (text a parser hands out
 * only for a moment); returns its offset in b. Offsets, not pointers: b
 * may move as it grows.
 */
size_t buf_keep(struct buf *b, const void *data, size_t len);

/*
 * The decimal text of v in out (at least 21 bytes), NUL-terminated;
 * returns its length. Without printf: ids, timestamps and lengths are
 * written several times per event.
 */
size_t buf_format_u64(uint64_t v, char *out);

/*
 * Inline: an envelope is some twenty appends, per event; only growing
 * needs the out-of-line path.
 */
static inline void
buf_append(struct buf *b, const void *data, size_t len)
{
	if (b->len + len + 1 > b->cap)
	{
		buf_append_slow(b, data, len);
		return;
	}
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';		/* always a C string too */
}

#endif
