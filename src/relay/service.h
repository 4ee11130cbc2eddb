/*
 * service.h — what ordersyncd tells its service manager (systemd's notify
 * protocol through libsystemd's sd_notify): READY=1 once the stream runs,
 * WATCHDOG=1 from the loops that do the work, STATUS= lines saying what it
 * does, STOPPING=1 on the way out.
 *
 * Outside systemd (no $NOTIFY_SOCKET), or when the relay was built without
 * libsystemd, every call is a cheap no-op: the relay runs the same.
 */
#ifndef ORDERSYNCD_SERVICE_H
#define ORDERSYNCD_SERVICE_H

#include <stdint.h>

/*
 * Read the watchdog interval systemd asks for (WatchdogSec=) and lower
 * *status_interval_ms, the longest an idle stream waits between two turns
 * of its loop, so the loop still pings in time.
 */
void service_init(int *status_interval_ms);

/*
 * The top of the stream's loop: the first turn of a session reports
 * READY=1 and "streaming"; every turn pings the watchdog (at most a few
 * times per interval, so a busy stream pays a clock read per line).
 */
void service_loop_turn(void);

/* Waiting between sessions, or only receiving webhooks: alive, not stuck. */
void service_alive(void);

/* READY=1 without a stream: the relay only receives webhooks (--inbound). */
void service_ready(void);

/* STATUS= for systemctl status; also ends "streaming" until the next turn. */
void service_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* STOPPING=1: the relay is finishing and will exit. */
void service_stopping(void);

#endif
