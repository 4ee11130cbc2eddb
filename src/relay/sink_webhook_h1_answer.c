/*
 * sink_webhook_h1_answer.c — the lean HTTP/1.1 client reads an answer
 * (see sink_webhook_h1.c): as RFC 9112 says, a status line, headers, then
 * a body by Content-Length, chunked, or until the connection closes; 1xx
 * answers are skipped. Only the start of a body is kept
 * (SINK_EXCERPT_MAX), for the reason of a refusal.
 */
#define _GNU_SOURCE				/* memmem, strcasestr */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "sink_webhook_h1_conn.h"

static bool
header_is(const char *line, size_t len, const char *name, const char **value)
{
	size_t		n = strlen(name);

	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return false;
	*value = line + n + 1;
	while (**value == ' ' || **value == '\t')
		(*value)++;
	return true;
}

/*
 * "HTTP/1.<minor> <code>": what sscanf("HTTP/1.%d %3ld") read, without
 * the scanf machinery for every answer. 0, or -1 when it is not that.
 */
static int
status_line(const char *p, const char *stop, int *minor, long *status)
{
	const char *q = p + 7;
	int			digits = 0;

	if (stop - p < 7 || memcmp(p, "HTTP/1.", 7) != 0 || q == stop || *q < '0' || *q > '9')
		return -1;
	*minor = 0;
	while (q < stop && *q >= '0' && *q <= '9' && *minor < 1000)
		*minor = *minor * 10 + (*q++ - '0');
	while (q < stop && (*q == ' ' || *q == '\t'))
		q++;
	*status = 0;
	while (q < stop && *q >= '0' && *q <= '9' && digits < 3)
	{
		*status = *status * 10 + (*q++ - '0');
		digits++;
	}
	return digits > 0 ? 0 : -1;
}

/* Parse the status line and headers (in[0..end), CRLFs included). -1: malformed. */
static int
parse_head(struct h1_conn *k, size_t end)
{
	char	   *p = k->in;
	char	   *stop = k->in + end;
	int			minor = 1;
	bool		chunked = false,
				length = false,
				keep_alive = false;

	if (status_line(p, stop, &minor, &k->a.status) != 0 || k->a.status < 100 ||
		k->a.status > 999)
		return -1;
	p = memchr(p, '\n', (size_t) (stop - p)) + 1;
	while (p < stop)
	{
		char	   *eol = memchr(p, '\n', (size_t) (stop - p));
		size_t		len = (size_t) (eol - p);
		const char *v;
		char		val[600];

		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len == 0)
			break;
		/* a NUL-terminated copy (no printf: this runs per header of every answer) */
		if (len >= sizeof(val))
			len = sizeof(val) - 1;
		memcpy(val, p, len);
		val[len] = '\0';
		len = strlen(val);
		if (header_is(val, len, "content-length", &v))
		{
			length = true;
			k->left = strtoull(v, NULL, 10);
		}
		else if (header_is(val, len, "transfer-encoding", &v))
			chunked = strcasestr(v, "chunked") != NULL;
		else if (header_is(val, len, "connection", &v))
		{
			k->close_after = k->close_after || strcasestr(v, "close") != NULL;
			keep_alive = strcasestr(v, "keep-alive") != NULL;
		}
		else if (header_is(val, len, "retry-after", &v))
		{
			if (*v >= '0' && *v <= '9')
				k->a.retry_after_s = strtol(v, NULL, 10);
			else
			{
				/* an HTTP date: seconds from now, as curl reports it */
				time_t		t = curl_getdate(v, NULL);
				time_t		now = time(NULL);

				k->a.retry_after_s = t > now ? (long) (t - now) : 0;
			}
		}
		else if (header_is(val, len, "location", &v))
			snprintf(k->a.location, sizeof(k->a.location), "%s", v);
		p = eol + 1;
	}
	if (minor == 0 && !keep_alive)
		k->close_after = true;
	if (k->a.status < 200 || k->a.status == 204 || k->a.status == 304)
		k->body_state = k->a.status < 200 ? H1_HEAD : H1_DONE;
	else if (chunked)
		k->body_state = H1_CHUNK_SIZE;
	else if (length)
		k->body_state = k->left > 0 ? H1_LENGTH : H1_DONE;
	else
	{
		k->body_state = H1_UNTIL_CLOSE;
		k->close_after = true;
	}
	return 0;
}

/* Body bytes: the start is kept, the rest dropped. */
static void
keep_body(struct h1_conn *k, const char *data, size_t n)
{
	size_t		room = sizeof(k->excerpt) - k->a.body_len;
	size_t		take = n < room ? n : room;

	memcpy(k->excerpt + k->a.body_len, data, take);
	k->a.body_len += take;
}

int
h1_parse(struct h1_conn *k)
{
	size_t		at = 0;

	while (k->body_state != H1_DONE)
	{
		char	   *avail = k->in + at;
		size_t		n = k->in_len - at;
		char	   *nl;

		if (k->body_state == H1_HEAD)
		{
			char	   *end = memmem(avail, n, "\r\n\r\n", 4);

			if (end == NULL)
				break;
			/* the headers are parsed where they are: move them to the start */
			if (at > 0)
			{
				memmove(k->in, avail, n);
				k->in_len = n;
				at = 0;
				end = memmem(k->in, k->in_len, "\r\n\r\n", 4);
			}
			if (parse_head(k, (size_t) (end - k->in) + 4) != 0)
				return -1;
			at = (size_t) (end - k->in) + 4;
			if (k->a.status < 200)
			{
				/* 100 Continue and friends: the real answer follows */
				k->a.status = 0;
				k->a.location[0] = '\0';
				k->a.retry_after_s = 0;
			}
			continue;
		}
		if (k->body_state == H1_LENGTH || k->body_state == H1_CHUNK_DATA ||
			k->body_state == H1_UNTIL_CLOSE)
		{
			size_t		take = k->body_state == H1_UNTIL_CLOSE || n < k->left ? n : (size_t) k->left;

			keep_body(k, avail, take);
			at += take;
			if (k->body_state != H1_UNTIL_CLOSE)
			{
				k->left -= take;
				if (k->left == 0)
					k->body_state = k->body_state == H1_LENGTH ? H1_DONE : H1_CHUNK_END;
			}
			if (take == n)
				break;
			continue;
		}
		/* the line-based states */
		if ((nl = memchr(avail, '\n', n)) == NULL)
			break;
		at += (size_t) (nl - avail) + 1;
		if (k->body_state == H1_CHUNK_SIZE)
		{
			char	   *endp;

			k->left = strtoull(avail, &endp, 16);
			if (endp == avail)
				return -1;
			k->body_state = k->left > 0 ? H1_CHUNK_DATA : H1_TRAILER;
		}
		else if (k->body_state == H1_CHUNK_END)
			k->body_state = H1_CHUNK_SIZE;
		else if (nl == avail || (nl == avail + 1 && avail[0] == '\r'))
			k->body_state = H1_DONE;	/* the empty line after the trailers */
	}
	if (at > 0)
	{
		memmove(k->in, k->in + at, k->in_len - at);
		k->in_len -= at;
	}
	if (k->body_state != H1_DONE && k->in_len == sizeof(k->in))
		return -1;				/* headers (or a line) larger than the buffer */
	return 0;
}

/* Read what is there; finish the request when its answer is complete. */
