/*
 * sink_amqp.c — the RabbitMQ delivery sink (AMQP 0-9-1, rabbitmq-c).
 *
 *   --sink=amqp://user@host:5672/vhost?exchange=orders
 *   --sink-options='{"password_env": "RMQ_PASSWORD"}'
 *
 * Every event becomes one persistent message (delivery_mode 2, content type
 * application/cloudevents+json, message_id = event id, type = event type)
 * published to the exchange with the event type as routing key
 * ("order.paid"), mandatory. The channel is in confirm mode: an event is
 * accepted only when a basic.ack covers its delivery tag, which RabbitMQ
 * sends once every queue the message was routed to has it on disk.
 *
 * Outcomes:
 *   basic.ack               accepted.
 *   basic.return + ack      no queue is bound for that routing key, so the
 *                           message went nowhere: a non-retryable failure
 *                           (dead letter) whose reason tells the operator to
 *                           bind a queue; ordersync.redeliver() sends it again
 *                           once one is bound. Publishing without mandatory
 *                           would silently drop such events.
 *   basic.nack              the broker lost it (an internal error of a queue):
 *                           a retryable failure: the delivery core publishes
 *                           it again after its backoff, before anything newer
 *                           of its subject.
 *   connection or channel   (broker down or restarting, network, heartbeat
 *   lost                    timeout, a confirm overdue by timeout_ms, the
 *                           exchange deleted): not the events' fault. The sink
 *                           returns every unconfirmed event to the core (which
 *                           offers them again in each subject's order, with the
 *                           same message_id: at least once, a consumer may see
 *                           an event twice, never miss one) and reconnects with
 *                           its own backoff (backoff_min_ms .. backoff_max_ms).
 *                           Such failures do not count as attempts, so an
 *                           outage does not turn every event into a dead letter
 *                           within seconds; only once the sink has been unable
 *                           to deliver for longer than max_age_seconds does
 *                           every reconnect that fails count as a failed
 *                           attempt of each waiting event (sink_host_outage,
 *                           which soon makes them dead letters).
 *
 * Order: one connection, one channel, events published in the order the
 * core submits them (each subject's in commit order, many at once: lane
 * depth 0), so every subject's events reach each queue in commit order (the
 * one exception is a basic.nack: events of the same subject published after
 * the nacked one are already on their way and arrive before its retry).
 *
 * Non-blocking as far as rabbitmq-c allows: connecting, logging in, opening
 * the channel and declaring the exchange are synchronous (bounded by
 * connect_timeout_ms each, done in work, never in open); publishing only
 * writes what the socket's send buffer has room for (basic.publish would
 * block on a full one). Asking the kernel before every message cost a
 * poll() per event (10% of the relay's CPU in bench/sinks/amqp.sh), so the
 * room is asked once and spent by many publishes: a socket poll() calls
 * writable has at least a third of its send buffer (SO_SNDBUF, as the
 * kernel sizes it) free, only our publishes fill it, and each is charged
 * its body plus AMQP_SINK_WIRE_OVERHEAD (its three frames and the kernel's
 * bookkeeping of a segment); once the room is spent the kernel is asked
 * again. A burst of publishes is corked (TCP_CORK, set at the first
 * publish, lifted in prepare, before the relay waits), so the broker reads
 * full segments instead of one per message. Confirms are read with amqp_simple_wait_frame_noblock and a zero
 * timeout whenever the relay's poll wakes up (rabbitmq-c answers the broker's
 * heartbeats there too). At most max_in_flight events (default 1000 here,
 * not the webhooks' 64: RabbitMQ confirms after its fsync, in batches, and a
 * wide window keeps it busy; bench/sinks/amqp.sh measures about 1.5x the
 * throughput of 64) are unconfirmed at a time; the rest wait in the core.
 * When RabbitMQ blocks publishers (memory or disk alarm: connection.blocked)
 * the sink takes nothing (SINK_BUSY) until connection.unblocked; the events
 * wait without counting as failures.
 *
 * The exchange must exist: by default the sink only checks (passive declare)
 * and says how to create it; {"declare_exchange": "topic"} (or direct,
 * fanout, headers) makes it declare a durable exchange of that type.
 *
 * Where it connects. rabbitmq-c resolves and connects by itself, with no
 * hook before its connect(): the sink resolves the host first and refuses
 * it when an address is one the policy forbids (sink_check_host), and
 * checks the address the socket is connected to (getpeername) before the
 * login, so a DNS answer that changed in between is caught before anything
 * of ours is sent (for amqps:// the TLS handshake has happened by then).
 * A refusal is for good (sink_host_refused): every event of the sink, then
 * and later, becomes a dead letter that names the address and the rule. Text from the broker
 * (reply texts of closes and returns) is kept only as a short, printable
 * excerpt (SINK_EXCERPT_MAX).
 *
 * The URI and options are read in sink_amqp_conf.c; connecting, logging in
 * and what the broker's refusals mean are in sink_amqp_connect.c; the
 * state the three files share is in sink_amqp.h.
 *
 * Options of this sink besides the common ones (sink.h):
 *   password_env / password_file   the password (never in the URI)
 *   declare_exchange               exchange type to declare, default none
 *   heartbeat_seconds              AMQP heartbeat, default 30, 0 = off
 *   ca_file, cert_file, key_file, verify_peer   for amqps:// (TLS); the CA
 *                                  defaults to the system's bundle
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>

#include "sink_amqp.h"
#include "sink_policy.h"
#include "log.h"

static void
amqp_free_config(struct amqp_sink *a)
{
	free(a->host);
	free(a->vhost);
	free(a->user);
	sink_secret_free(a->password);
	sink_opts_free(amqp_options, a);
	free(a->exchange);
	sink_link_free(&a->link);
	sink_ring_free(&a->ring);
	free(a);
}

static int
amqp_open(struct sink *s, struct sink_host *host, char *err, size_t errlen)
{
	struct amqp_sink *a = xcalloc(sizeof(*a));

	s->host = host;
	if (amqp_sink_configure(s, a, err, errlen) != 0)
	{
		amqp_free_config(a);
		return -1;
	}
	sink_ring_init(&a->ring, a->cap);
	a->fd = -1;
	sink_link_init(&a->link, s, "amqp", "reconnecting in", "events waiting");
	s->state = a;
	log_info("amqp sink \"%s\": publishing to exchange \"%s\" on %s:%d vhost \"%s\" as \"%s\"%s, "
			 "routing key = event type, up to %d unconfirmed", s->name, a->exchange, a->host,
			 a->port, a->vhost, a->user, a->tls.on ? " over TLS" : "", a->cap);
	return 0;
}

/* the reply code of a basic.return, by name */
static const char *
amqp_return_name(int code)
{
	switch (code)
	{
		case 312:
			return "NO_ROUTE";
		case 313:
			return "NO_CONSUMERS";
		default:
			return "returned";
	}
}

/* ---- publishing and confirms ------------------------------------------- */

/*
 * Room in the send buffer for a publish that takes need bytes of it (see
 * the top): from what is left of the last look, or by looking again. False
 * when the socket is full.
 */
static bool
amqp_room_for(struct amqp_sink *a, size_t need)
{
	struct pollfd p = {.fd = a->fd,.events = POLLOUT};
	int			sndbuf = 0;
	socklen_t	len = sizeof(sndbuf);

	if (a->room >= need)
		return true;
	if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLOUT))
		return false;
	/* writable: at least a third of the buffer is free (the kernel's rule) */
	if (getsockopt(a->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) != 0 || sndbuf < 0)
		sndbuf = 0;
	a->room = (size_t) sndbuf / 3;
	/* a message larger than that goes out whole, as it always could */
	if (a->room < need)
		a->room = need;
	return true;
}

/* TCP_CORK on or off; failing only costs segments, never data. */
static void
amqp_cork(struct amqp_sink *a, bool on)
{
	int			v = on ? 1 : 0;

	if (setsockopt(a->fd, IPPROTO_TCP, TCP_CORK, &v, sizeof(v)) == 0 || !on)
		a->corked = on;
}

/* Publish one event, if the connection, the window and the socket allow. */
static int
amqp_submit(struct sink *s, struct sink_event *ev)
{
	struct amqp_sink *a = s->state;
	amqp_basic_properties_t props;
	amqp_bytes_t body = {.len = ev->body_len,.bytes = (void *) ev->body};
	size_t		need = ev->body_len + AMQP_SINK_WIRE_OVERHEAD;
	int			rc;

	if (a->link.refused || a->conn == NULL || a->blocked || a->want_write ||
		sink_ring_full(&a->ring))
		return SINK_BUSY;
	/* AMQP short strings: a longer routing key or id can never be sent */
	if (strlen(ev->type) > 255 || strlen(ev->id) > 255)
	{
		sink_host_failed(s->host, ev, false, 0, "the event type or id is longer than the 255 "
						 "bytes an AMQP routing key or message id may have");
		return SINK_TAKEN;
	}
	/* basic.publish blocks on a full socket: wait for POLLOUT instead */
	if (!amqp_room_for(a, need))
	{
		a->want_write = true;
		return SINK_BUSY;
	}
	if (!a->corked)
		amqp_cork(a, true);
	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
		AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_APP_ID_FLAG;
	props.content_type = amqp_cstring_bytes(AMQP_SINK_CONTENT_TYPE);
	props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
	props.app_id = amqp_cstring_bytes("ordersyncd");
	props.message_id = amqp_cstring_bytes(ev->id);
	props.type = amqp_cstring_bytes(ev->type);
	errno = 0;
	rc = amqp_basic_publish(a->conn, AMQP_SINK_CHANNEL, amqp_cstring_bytes(a->exchange),
							amqp_cstring_bytes(ev->type), 1, 0, &props, body);
	if (rc != AMQP_STATUS_OK)
	{
		/* not on the wire (or not all of it): the core keeps it */
		amqp_sink_lost(s, "publishing to %s:%d failed: %s", a->host, a->port,
					   amqp_sink_status_text(rc, errno));
		return SINK_BUSY;
	}
	a->room -= need;
	ev->sink_ms = sink_now_ms();
	ev->sink_flags = 0;
	sink_ring_put(&a->ring, ev);
	return SINK_TAKEN;
}

/* One event's outcome: ack (maybe after a return) or nack. */
static void
amqp_finish(struct sink *s, struct sink_event *ev, bool ack)
{
	struct amqp_sink *a = s->state;
	char		why[512];

	if (ack && !(ev->sink_flags & AMQP_RETURNED))
	{
		sink_host_accepted(s->host, ev);
		return;
	}
	if (ack)
		snprintf(why, sizeof(why), "RabbitMQ returned the message as unroutable (%u %s): no queue "
				 "is bound to exchange \"%s\" for routing key \"%s\"; bind a queue to the exchange "
				 "with a matching binding key (e.g. \"order.#\" or \"#\"), then call "
				 "ordersync.redeliver() for the dead letters", (unsigned) ev->sink_tag,
				 amqp_return_name((int) ev->sink_tag), a->exchange, ev->type);
	else
		snprintf(why, sizeof(why), "RabbitMQ refused the message (basic.nack: an internal error "
				 "in a queue); it is published again");
	ev->sink_flags = 0;
	sink_host_failed(s->host, ev, !ack, 0, why);
}

/* basic.ack / basic.nack for tag (and everything before it when multiple). */
static void
amqp_confirm(struct sink *s, uint64_t tag, bool multiple, bool ack)
{
	struct amqp_sink *a = s->state;
	struct sink_ring *r = &a->ring;

	if (multiple && tag == 0)
		tag = r->next - 1;
	if (tag >= r->next || tag < r->head)
	{
		log_debug("amqp sink \"%s\": confirm for unknown delivery tag %llu ignored", s->name,
				  (unsigned long long) tag);
		return;
	}
	for (uint64_t t = multiple ? r->head : tag; t <= tag; t++)
	{
		struct sink_event *ev = sink_ring_take(r, t);

		if (ev)
			amqp_finish(s, ev, ack);
	}
	/* the broker takes events: the outage, if any, is over */
	if (ack)
		sink_link_delivered(&a->link);
}

/* A basic.return's header names the message: mark that delivery returned. */
static void
amqp_mark_returned(struct sink *s, amqp_bytes_t id)
{
	struct amqp_sink *a = s->state;

	for (uint64_t t = a->ring.head; t < a->ring.next; t++)
	{
		struct sink_event *ev = sink_ring_get(&a->ring, t);

		if (ev && !(ev->sink_flags & AMQP_RETURNED) && strlen(ev->id) == id.len &&
			memcmp(ev->id, id.bytes, id.len) == 0)
		{
			ev->sink_flags |= AMQP_RETURNED;
			ev->sink_tag = a->ret_code;
			return;
		}
	}
	log_warning("amqp sink \"%s\": RabbitMQ returned message %.*s (%u %s), which this sink "
				"does not have in flight; ignored", s->name, (int) id.len, (char *) id.bytes,
				a->ret_code, a->ret_text);
}

static void
amqp_handle_method(struct sink *s, amqp_frame_t *f)
{
	struct amqp_sink *a = s->state;
	void	   *m = f->payload.method.decoded;

	switch (f->payload.method.id)
	{
		case AMQP_BASIC_ACK_METHOD:
			{
				amqp_basic_ack_t *ack = m;

				amqp_confirm(s, ack->delivery_tag, ack->multiple, true);
				break;
			}
		case AMQP_BASIC_NACK_METHOD:
			{
				amqp_basic_nack_t *nack = m;

				amqp_confirm(s, nack->delivery_tag, nack->multiple, false);
				break;
			}
		case AMQP_BASIC_RETURN_METHOD:
			{
				amqp_basic_return_t *ret = m;

				/* the message itself follows: a header frame, then its body */
				a->ret_state = 1;
				a->ret_code = ret->reply_code;
				amqp_sink_server_text(ret->reply_text, a->ret_text, sizeof(a->ret_text));
				break;
			}
		case AMQP_CHANNEL_CLOSE_METHOD:
			{
				amqp_channel_close_t *c = m;
				amqp_channel_close_ok_t ok = {0};
				int			code = c->reply_code;
				char		text[256];

				amqp_sink_server_text(c->reply_text, text, sizeof(text));
				amqp_send_method(a->conn, AMQP_SINK_CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
				if (code == 404)
					amqp_sink_lost(s, "RabbitMQ closed the channel: %d %s (was exchange \"%s\" "
								   "deleted? create it again, or set {\"declare_exchange\": "
								   "\"topic\"})", code, text, a->exchange);
				else
					amqp_sink_lost(s, "RabbitMQ closed the channel: %d %s", code, text);
				break;
			}
		case AMQP_CONNECTION_CLOSE_METHOD:
			{
				amqp_connection_close_t *c = m;
				amqp_connection_close_ok_t ok = {0};
				int			code = c->reply_code;
				char		text[256];

				amqp_sink_server_text(c->reply_text, text, sizeof(text));
				amqp_send_method(a->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
				amqp_sink_lost(s, "RabbitMQ closed the connection: %d %s%s", code, text,
							   code == 320 ? " (broker shutting down or connection closed by "
							   "an operator)" : "");
				break;
			}
		case AMQP_CONNECTION_BLOCKED_METHOD:
			{
				amqp_connection_blocked_t *b = m;
				char		reason[SINK_EXCERPT_MAX + 1];

				a->blocked = true;
				amqp_sink_server_text(b->reason, reason, sizeof(reason));
				log_warning("amqp sink \"%s\": RabbitMQ blocks publishers (%s): its memory or "
							"disk alarm is on; events wait until it clears (free disk space or "
							"memory on the broker, or add consumers)", s->name, reason);
				break;
			}
		case AMQP_CONNECTION_UNBLOCKED_METHOD:
			a->blocked = false;
			log_info("amqp sink \"%s\": RabbitMQ accepts publishes again", s->name);
			break;
		default:
			log_debug("amqp sink \"%s\": ignoring method 0x%08x", s->name, f->payload.method.id);
			break;
	}
}

static void
amqp_handle_frame(struct sink *s, amqp_frame_t *f)
{
	struct amqp_sink *a = s->state;

	if (f->frame_type == AMQP_FRAME_METHOD)
		amqp_handle_method(s, f);
	else if (f->frame_type == AMQP_FRAME_HEADER && a->ret_state == 1)
	{
		amqp_basic_properties_t *p = f->payload.properties.decoded;

		if (p && (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG))
			amqp_mark_returned(s, p->message_id);
		a->ret_left = f->payload.properties.body_size;
		a->ret_state = a->ret_left > 0 ? 2 : 0;
	}
	else if (f->frame_type == AMQP_FRAME_BODY && a->ret_state == 2)
	{
		size_t		n = f->payload.body_fragment.len;

		a->ret_left = n >= a->ret_left ? 0 : a->ret_left - n;
		if (a->ret_left == 0)
			a->ret_state = 0;
	}
}

/* Read every frame that is there, without waiting. */
static void
amqp_read(struct sink *s, const struct pollset *ps)
{
	struct amqp_sink *a = s->state;
	struct timeval zero = {0, 0};
	struct pollfd p = {.fd = a->fd,.events = POLLIN};

	/*
	 * Heartbeats are read (and hidden) by rabbitmq-c: notice any input
	 * here, from the relay's poll when it watched the socket.
	 */
	if (ps != NULL && ps == a->polled_ps && a->polled_idx < ps->n &&
		ps->fds[a->polled_idx].fd == a->fd)
	{
		if (ps->fds[a->polled_idx].revents & (POLLIN | POLLHUP | POLLERR))
			a->last_rx_ms = sink_now_ms();
	}
	else if (poll(&p, 1, 0) > 0)
		a->last_rx_ms = sink_now_ms();
	a->polled_ps = NULL;
	for (int i = 0; i < AMQP_SINK_READ_BUDGET && a->conn; i++)
	{
		amqp_frame_t f;
		int			rc;

		errno = 0;
		rc = amqp_simple_wait_frame_noblock(a->conn, &f, &zero);

		if (rc == AMQP_STATUS_TIMEOUT)
			break;
		if (rc != AMQP_STATUS_OK)
		{
			amqp_sink_lost(s, "connection to %s:%d lost: %s", a->host, a->port,
						   amqp_sink_status_text(rc, errno));
			return;
		}
		a->last_rx_ms = sink_now_ms();
		amqp_handle_frame(s, &f);
		if (a->conn)
			amqp_maybe_release_buffers(a->conn);
	}
}

/* ---- the sink interface ------------------------------------------------ */

static void
amqp_prepare(struct sink *s, struct pollset *ps, int *timeout_ms)
{
	struct amqp_sink *a = s->state;
	int64_t		now = sink_now_ms();
	struct sink_event *oldest = sink_ring_oldest(&a->ring);

	if (a->link.refused)
		return;
	if (a->conn == NULL)
	{
		sink_lower_timeout(timeout_ms, a->link.next_connect_ms - now);
		return;
	}
	/* the burst is over: what it corked goes out before the relay waits */
	if (a->corked)
		amqp_cork(a, false);
	a->polled_idx = pollset_add(ps, a->fd, POLLIN | (a->want_write ? POLLOUT : 0));
	a->polled_ps = ps;
	/* frames rabbitmq-c already read are invisible to poll */
	if (amqp_data_in_buffer(a->conn) || amqp_frames_enqueued(a->conn))
		sink_lower_timeout(timeout_ms, 0);
	/* heartbeats are sent from poll; and the checks of poll below */
	if (a->heartbeat > 0)
		sink_lower_timeout(timeout_ms, a->heartbeat * 1000 / 4);
	if (oldest)
		sink_lower_timeout(timeout_ms, oldest->sink_ms + s->opt.timeout_ms - now);
}

static void
amqp_poll(struct sink *s, const struct pollset *ps)
{
	struct amqp_sink *a = s->state;
	int64_t		now = sink_now_ms();
	struct sink_event *oldest;

	if (a->link.refused)
		return;
	/*
	 * Up since the last poll with nothing unconfirmed: the core had its
	 * chance to publish, so any outage is over. (Not right after a
	 * reconnect: the events that waited have not been offered yet.)
	 */
	if (a->conn && a->ring.n == 0)
		a->link.down_since_ms = 0;
	a->want_write = false;
	if (a->conn == NULL)
	{
		if (!sink_link_due(&a->link, now))
			return;
		amqp_sink_connect(s);
		if (a->conn == NULL)
			return;
	}
	amqp_read(s, ps);
	if (a->conn == NULL)
		return;
	now = sink_now_ms();
	if (a->heartbeat > 0 && now - a->last_rx_ms > 2000LL * a->heartbeat)
	{
		amqp_sink_lost(s, "nothing heard from %s:%d for %lld s (heartbeat %d s): network or "
					   "broker down", a->host, a->port, (long long) (now - a->last_rx_ms) / 1000,
					   a->heartbeat);
		return;
	}
	oldest = sink_ring_oldest(&a->ring);
	if (!a->blocked && oldest && now - oldest->sink_ms > s->opt.timeout_ms)
		amqp_sink_lost(s, "no publisher confirm from %s:%d for event %s within timeout_ms "
					   "(%d ms): the broker is stuck or overloaded", a->host, a->port, oldest->id,
					   s->opt.timeout_ms);
}

static void
amqp_close(struct sink *s)
{
	struct amqp_sink *a = s->state;

	if (a == NULL)
		return;
	if (a->conn)
	{
		struct timeval tv = amqp_sink_tv(1000);

		/* say goodbye so the broker does not log an abrupt disconnect */
		amqp_set_rpc_timeout(a->conn, &tv);
		amqp_channel_close(a->conn, AMQP_SINK_CHANNEL, AMQP_REPLY_SUCCESS);
		amqp_connection_close(a->conn, AMQP_REPLY_SUCCESS);
		amqp_sink_drop(a);
	}
	/* unconfirmed events are simply not reported: the stream sends them again */
	amqp_free_config(a);
	s->state = NULL;
}

static bool
amqp_claims(const char *uri)
{
	return strncasecmp(uri, "amqp://", 7) == 0 || strncasecmp(uri, "amqps://", 8) == 0;
}

static bool
amqp_clear_text(const struct sink *s)
{
	return strncasecmp(s->uri, "amqps://", 8) != 0;
}

const struct sink_ops sink_amqp_ops = {
	.kind = "amqp",
	.lane_depth = 0,			/* one channel keeps order: pipeline */
	.window = AMQP_SINK_IN_FLIGHT,
	.options = amqp_options,
	.claims = amqp_claims,
	.clear_text = amqp_clear_text,
	.open = amqp_open,
	.submit = amqp_submit,
	.prepare = amqp_prepare,
	.poll = amqp_poll,
	.close = amqp_close,
};
