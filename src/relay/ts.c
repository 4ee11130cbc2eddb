/*
 * ts.c — timestamp conversion (see ts.h).
 *
 * Calendar arithmetic is done here rather than with timegm()/mktime() so
 * the result never depends on the process's TZ and the code stays pure
 * for the unit tests and the fuzzer.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ts.h"

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's method). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t		era;
	unsigned	yoe,
				doy,
				doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned) (y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t) doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t		era;
	unsigned	doe,
				yoe,
				doy,
				mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned) (z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t) yoe + era * 400 + (*m <= 2);
}

/* Read exactly n digits at *p; advances *p. */
static int
digits(const char **p, const char *end, int n, int *out)
{
	int			v = 0;

	if (end - *p < n)
		return -1;
	for (int i = 0; i < n; i++)
	{
		char		c = (*p)[i];

		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int
expect(const char **p, const char *end, char c)
{
	if (*p >= end || **p != c)
		return -1;
	(*p)++;
	return 0;
}

/* n decimal digits of v (leading zeros), then the character after; returns the end. */
static char *
put_digits(char *out, unsigned v, int n, char after)
{
	for (int i = n - 1; i >= 0; i--, v /= 10)
		out[i] = (char) ('0' + v % 10);
	out[n] = after;
	return out + n + 1;
}

static const int month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

void
ts_format_usec(int64_t usec, char *out)
{
	int64_t		secs = usec >= 0 ? usec / 1000000 : -((-usec + 999999) / 1000000);
	int64_t		frac = usec - secs * 1000000;
	int64_t		days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
	int64_t		sod = secs - days * 86400;
	int64_t		y;
	unsigned	m,
				d;

	civil_from_days(days, &y, &m, &d);
	snprintf(out, TS_TEXT_MAX, "%04lld-%02u-%02uT%02d:%02d:%02d.%06lldZ",
			 (long long) y, m, d, (int) (sod / 3600), (int) (sod / 60 % 60),
			 (int) (sod % 60), (long long) frac);
}

int
ts_to_rfc3339(const char *text, size_t len, char *out, int64_t *usec)
{
	const char *p = text;
	const char *end = text + len;
	int			Y,
				M,
				D,
				h,
				mi,
				s,
				oh = 0,
				om = 0,
				os = 0,
				sign;
	int64_t		frac = 0;
	int			ndig = 0;
	char		fracbuf[8] = "";
	int64_t		epoch;
	int64_t		y;
	unsigned	m,
				d;
	int64_t		days,
				sod;

	if (text == NULL)
		return -1;
	if (digits(&p, end, 4, &Y) || expect(&p, end, '-') ||
		digits(&p, end, 2, &M) || expect(&p, end, '-') ||
		digits(&p, end, 2, &D) || expect(&p, end, ' ') ||
		digits(&p, end, 2, &h) || expect(&p, end, ':') ||
		digits(&p, end, 2, &mi) || expect(&p, end, ':') ||
		digits(&p, end, 2, &s))
		return -1;
	if (M < 1 || M > 12 || D < 1 || D > month_days[M - 1] || h > 23 || mi > 59 || s > 60)
		return -1;
	if (p < end && *p == '.')
	{
		p++;
		while (p < end && *p >= '0' && *p <= '9')
		{
			if (ndig >= 6)
				return -1;		/* PostgreSQL has microsecond precision */
			fracbuf[ndig++] = *p++;
		}
		if (ndig == 0)
			return -1;
		fracbuf[ndig] = '\0';
		for (int i = 0; i < 6; i++)
			frac = frac * 10 + (i < ndig ? fracbuf[i] - '0' : 0);
	}
	if (p >= end || (*p != '+' && *p != '-'))
		return -1;
	sign = *p++ == '-' ? -1 : 1;
	if (digits(&p, end, 2, &oh))
		return -1;
	if (p < end && *p == ':')
	{
		p++;
		if (digits(&p, end, 2, &om))
			return -1;
		if (p < end && *p == ':')
		{
			p++;
			if (digits(&p, end, 2, &os))
				return -1;
		}
	}
	if (p != end || om > 59 || os > 59)
		return -1;

	/* local time minus offset = UTC */
	epoch = days_from_civil(Y, (unsigned) M, (unsigned) D) * 86400 +
		h * 3600 + mi * 60 + s - sign * (oh * 3600 + om * 60 + os);
	if (usec)
		*usec = epoch * 1000000 + frac;

	days = epoch >= 0 ? epoch / 86400 : -((-epoch + 86399) / 86400);
	sod = epoch - days * 86400;
	civil_from_days(days, &y, &m, &d);
	/* keep the server's own precision: as many fraction digits as it printed */
	if (y < 0 || y > 9999)
	{
		/* an offset took the year out of four digits */
		snprintf(out, TS_TEXT_MAX, "%04lld-%02u-%02uT%02d:%02d:%02d%s%sZ",
				 (long long) y, m, d, (int) (sod / 3600), (int) (sod / 60 % 60),
				 (int) (sod % 60), ndig ? "." : "", fracbuf);
		return 0;
	}
	/* the same without printf: this runs for every transaction */
	out = put_digits(out, (unsigned) y, 4, '-');
	out = put_digits(out, m, 2, '-');
	out = put_digits(out, d, 2, 'T');
	out = put_digits(out, (unsigned) (sod / 3600), 2, ':');
	out = put_digits(out, (unsigned) (sod / 60 % 60), 2, ':');
	out = put_digits(out, (unsigned) (sod % 60), 2, ndig ? '.' : 'Z');
	if (ndig)
	{
		memcpy(out, fracbuf, (size_t) ndig);
		out += ndig;
		*out++ = 'Z';
	}
	*out = '\0';
	return 0;
}

int64_t
ts_mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
