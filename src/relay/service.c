/*
 * service.c — systemd notifications (see service.h).
 *
 * Built with libsystemd when pkg-config finds it (HAVE_LIBSYSTEMD, set by
 * the Makefile); without it the same calls do nothing, so the relay builds
 * and runs on systems without systemd. sd_notify() itself is a no-op when
 * $NOTIFY_SOCKET is unset, which is how the relay runs outside a unit.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "log.h"
#include "service.h"

static uint64_t ping_every_us;	/* 0: no watchdog */
static uint64_t last_ping_us;
static bool streaming;			/* "streaming" reported since the last status */
static bool notify;				/* a service manager listens */

static uint64_t
now_us(void)
{
	struct timespec ts;

	/* the coarse clock costs no system call: a busy stream asks per line */
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static void
notify_send(const char *state)
{
#ifdef HAVE_LIBSYSTEMD
	int			rc = sd_notify(0, state);

	if (rc < 0)
		log_debug("sd_notify(\"%s\") failed: %s", state, strerror(-rc));
#else
	(void) state;
#endif
}

void
service_init(int *status_interval_ms)
{
#ifdef HAVE_LIBSYSTEMD
	uint64_t	usec = 0;

	notify = getenv("NOTIFY_SOCKET") != NULL;
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
	{
		/* the loop must turn at least every half interval ... */
		int			most = usec / 2000 > 0 ? (int) (usec / 2000) : 1;

		/* ... and pings at a quarter of it: two slow turns still fit */
		ping_every_us = usec / 4;
		log_info("systemd watchdog: %llu ms", (unsigned long long) (usec / 1000));
		/* an idle stream's loop turns once per status interval */
		if (*status_interval_ms > most)
		{
			log_info("--status-interval lowered to %d ms so the idle stream pings systemd's "
					 "watchdog (WatchdogSec=%llu s) in time", most,
					 (unsigned long long) (usec / 1000000));
			*status_interval_ms = most;
		}
	}
#else
	(void) status_interval_ms;
#endif
}

static void
ping(bool force)
{
	uint64_t	now;

	if (ping_every_us == 0)
		return;
	now = now_us();
	if (!force && now - last_ping_us < ping_every_us)
		return;
	last_ping_us = now;
	notify_send("WATCHDOG=1");
}

void
service_loop_turn(void)
{
	if (!notify)
		return;
	if (!streaming)
	{
		streaming = true;
		notify_send("READY=1\nSTATUS=streaming");
		ping(true);
		return;
	}
	ping(false);
}

void
service_alive(void)
{
	if (notify)
		ping(false);
}

void
service_ready(void)
{
	if (notify)
		notify_send("READY=1\nSTATUS=receiving webhooks");
}

void
service_status(const char *fmt, ...)
{
	char		buf[512];
	va_list		ap;

	if (!notify)
		return;
	memcpy(buf, "STATUS=", 7);
	va_start(ap, fmt);
	vsnprintf(buf + 7, sizeof(buf) - 7, fmt, ap);
	va_end(ap);
	streaming = false;
	notify_send(buf);
}

void
service_stopping(void)
{
	if (notify)
		notify_send("STOPPING=1\nSTATUS=stopping");
}
