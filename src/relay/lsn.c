/*
 * lsn.c — parse and format LSNs (see lsn.h).
 *
 * Strict on purpose: an LSN that does not parse is bad input from the
 * stream and must be reported, not guessed at.
 */
#include <string.h>

#include "lsn.h"

static int
parse_hex32(const char *s, size_t len, uint32_t *out)
{
	uint32_t	v = 0;

	if (len == 0 || len > 8)
		return -1;
	for (size_t i = 0; i < len; i++)
	{
		char		c = s[i];
		uint32_t	d;

		if (c >= '0' && c <= '9')
			d = (uint32_t) (c - '0');
		else if (c >= 'A' && c <= 'F')
			d = (uint32_t) (c - 'A' + 10);
		else if (c >= 'a' && c <= 'f')
			d = (uint32_t) (c - 'a' + 10);
		else
			return -1;
		v = (v << 4) | d;
	}
	*out = v;
	return 0;
}

int
lsn_parse_n(const char *text, size_t len, uint64_t *out)
{
	const char *slash;
	uint32_t	hi,
				lo;

	if (text == NULL)
		return -1;
	slash = memchr(text, '/', len);
	if (slash == NULL)
		return -1;
	if (parse_hex32(text, (size_t) (slash - text), &hi) != 0 ||
		parse_hex32(slash + 1, len - (size_t) (slash - text) - 1, &lo) != 0)
		return -1;
	*out = ((uint64_t) hi << 32) | lo;
	return 0;
}

int
lsn_parse(const char *text, uint64_t *out)
{
	if (text == NULL)
		return -1;
	return lsn_parse_n(text, strlen(text), out);
}

/* Upper-case hex without leading zeros; returns the end of what it wrote. */
static char *
put_hex32(uint32_t v, char *p)
{
	static const char hex[] = "0123456789ABCDEF";
	int			shift = 28;

	while (shift > 0 && ((v >> shift) & 15) == 0)
		shift -= 4;
	for (; shift >= 0; shift -= 4)
		*p++ = hex[(v >> shift) & 15];
	return p;
}

/* "%X/%X" by hand: this runs for every event. */
char *
lsn_format(uint64_t lsn, char *buf)
{
	char	   *p = put_hex32((uint32_t) (lsn >> 32), buf);

	*p++ = '/';
	p = put_hex32((uint32_t) lsn, p);
	*p = '\0';
	return buf;
}
