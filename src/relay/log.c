/*
 * log.c — leveled logging to stderr (see log.h).
 *
 * One fprintf per line so lines from the metrics thread and the main loop
 * never interleave mid-line (stdio locks the stream per call).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "log.h"

enum log_level log_threshold = LOG_INFO;

static const char *const level_names[] = {"ERROR", "WARNING", "INFO", "DEBUG"};

int
log_parse_level(const char *name, enum log_level *out)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};

	for (int i = 0; i < 4; i++)
	{
		if (strcmp(name, names[i]) == 0)
		{
			*out = (enum log_level) i;
			return 0;
		}
	}
	return -1;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char		msg[2048];
	char		stamp[32];
	struct timeval tv;
	struct tm	tm;
	va_list		ap;

	if (level > log_threshold)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s.%03dZ ordersyncd %s: %s\n", stamp,
			(int) (tv.tv_usec / 1000), level_names[level], msg);
}
