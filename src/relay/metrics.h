/*
 * metrics.h — counters and gauges, served as Prometheus text by
 * libmicrohttpd on --metrics-addr (/metrics and /healthz).
 *
 * The HTTP server runs in libmicrohttpd's own thread; everything here is
 * guarded by one mutex that the main loop holds only for a few counter
 * updates at a time.
 */
#ifndef ORDERSYNCD_METRICS_H
#define ORDERSYNCD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Start the HTTP server; addr is "HOST:PORT". Returns 0 or -1 (err filled). */
int metrics_start(const char *addr, char *err, size_t errlen);
void metrics_stop(void);

/* A file or stdout sink: its index for metrics_event (-1 past the limit). */
int metrics_add_sink(const char *name);

/* type is the event type without its "ordersync." prefix */
void metrics_event(int sink, const char *type, size_t bytes);
void metrics_invalid(void);
/* a message that claims to be ordersync's but cannot be (trust.h) */
void metrics_forged(void);
/* a sink, route or redelivery row the relay refused (delivery.h) */
void metrics_config_refused(void);
void metrics_reconnect(void);
void metrics_transactions(uint64_t n);
void metrics_fsync(void);
void metrics_set_connected(bool connected);
/* another process holds the slot: its PID while this relay stands by, else 0 */
void metrics_set_standby(int holder_pid);
void metrics_set_confirmed(uint64_t lsn, double commit_to_durable_seconds);
void metrics_set_server_lsn(uint64_t lsn);
void metrics_set_retained_wal(int64_t bytes);
void metrics_observe_latency(double seconds, uint64_t count);

/* Sinks that keep lanes (webhooks, Kafka, RabbitMQ), which come and go. */
enum delivery_outcome
{
	DELIVERY_ACCEPTED, DELIVERY_RETRY, DELIVERY_DEAD,
	DELIVERY_UNFILTERED			/* the personal-data filter failed: dead letter, not sent */
};
int metrics_register_lane_sink(const char *name);	/* id for the calls below */
void metrics_delivery(int id, enum delivery_outcome outcome, size_t bytes);
/* an accepted event by type: ordersyncd_events_total{sink,type} as for file sinks */
void metrics_delivered_event(int id, const char *type, size_t bytes);
void metrics_set_outstanding(int id, uint64_t n);

/*
 * The inbound endpoint (inbound.c): a request per channel that was
 * "received", a "duplicate", or "refused" for reason; and what the relay's
 * applier made of inbox rows.
 */
void metrics_inbound(const char *channel, const char *outcome, const char *reason);
void metrics_inbound_applied(uint64_t applied, uint64_t stale, uint64_t parked, uint64_t failed);

/* Render the Prometheus text into a malloc'd string (also used by tests). */
char *metrics_render(size_t *len);

#endif
