/*
 * log.h — leveled logging to stderr for ordersyncd.
 *
 * Every line carries a UTC timestamp and the level so operators can grep
 * for "ERROR" and read what to do next; the message text itself is written
 * by the caller and should say what happened and how to fix it.
 */
#ifndef ORDERSYNCD_LOG_H
#define ORDERSYNCD_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARNING = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

extern enum log_level log_threshold;

/* Parse "error|warning|info|debug"; returns 0 on success, -1 otherwise. */
int log_parse_level(const char *name, enum log_level *out);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) \
	do { if (log_threshold >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
