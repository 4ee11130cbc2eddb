/*
 * sink_nats.c — the NATS JetStream sink (libnats, the NATS C client).
 *
 *   --sink=nats://127.0.0.1:4222/ordersync
 *   --sink=nats+tls://relay@nats.example.com:4222/shop.events
 *   --sink-options='{"password_env": "NATS_PASSWORD", "stream": "ORDERS"}'
 *   ordersync.add_sink('events', 'nats+tls://nats.example.com/ordersync',
 *                      '{"token_env": "ORDERSYNC_NATS_TOKEN"}')
 *
 * Every event becomes one message on the subject "<prefix>.<event type>"
 * ("ordersync.order.paid"), the CloudEvent JSON as its payload, with the
 * headers Nats-Msg-Id = the event id and Content-Type
 * application/cloudevents+json (and Nats-Expected-Stream when the option
 * "stream" names the stream that must take it: JetStream then refuses the
 * message rather than store it in another stream). nats:// is clear text,
 * nats+tls:// is TLS (the CA defaults to the system's bundle).
 *
 * Accepted means acknowledged by JetStream: the message is published with
 * a reply subject on the sink's own inbox, and the stream answers there
 * with a PubAck once it has stored it ({"stream": "ORDERS", "seq": 12}).
 * This is what libnats' js_PublishMsgAsync does, done here on a plain
 * subscription because js_PublishMsgAsync blocks the caller when too many
 * acks are outstanding and keeps its own pending list; the delivery core's
 * window does both here. A replay (after a relay crash, or of events whose
 * ack a lost connection swallowed) carries the same Nats-Msg-Id, and
 * JetStream acknowledges a message whose id it stored within the stream's
 * duplicate window without storing it again ({"duplicate": true}): the
 * stream holds every event once, as long as the window (the stream's
 * "duplicate_window", 2 minutes by default) is longer than a relay takes to
 * come back.
 *
 * The stream must exist: the sink creates none. A subject that no stream
 * takes is answered "no responders" (503) at once: a retryable failure
 * whose reason names the subject and how to create a stream, so the events
 * wait (and, after max_attempts or max_age_seconds, become dead letters
 * that ordersync.redeliver() sends again).
 *
 * Threads. libnats reads the socket on its own threads and calls on_reply
 * on the subscription's thread: on_reply only copies the answer into the
 * mailbox (a queue under a mutex) and writes a byte to a pipe, which
 * prepare puts into the relay's poll; poll turns the answers into
 * outcomes on the relay's thread. Connecting blocks (DNS, TCP, TLS, the
 * CONNECT/INFO exchange), and a server that does not answer would stall
 * every other sink and the stream for connect_timeout_ms, so poll starts a
 * helper thread for it and picks the connection up when the thread says
 * it is done (close waits for an attempt in progress: at most
 * connect_timeout_ms plus the DNS lookup).
 *
 * Reconnects are the sink's, not libnats'. libnats would reconnect by
 * itself and send what was published meanwhile, but acks of what was in
 * flight when the connection broke never come, and those events would be
 * retried behind later ones. So each connection is one ordered run: when
 * it closes (poll looks at its status), or an ack is overdue by
 * timeout_ms, the sink drops it, gives every unacknowledged event back to
 * the core (sink_host_returned: offered again in each subject's order,
 * without counting an attempt; JetStream drops those it had stored as
 * duplicates) and connects again after its backoff (backoff_min_ms ..
 * backoff_max_ms). Only after max_age_seconds without delivering does each
 * failed connection count against the waiting events (sink_host_outage).
 *
 * Order: lane depth 0. The server handles one connection's messages in
 * order, so what JetStream stores of a connection is a prefix of what was
 * published on it, and a replay on the next connection goes out in the
 * same order. The exception is a publish that JetStream refuses with an
 * error while later ones already on their way are stored: its retry comes
 * after them. A restarted server does this for a moment (it answers "no
 * responders" until its streams are loaded), so after every connect and
 * after every refusal the sink publishes one event at a time until
 * JetStream acknowledges one. What remains is a refusal in the middle of a
 * healthy run (a clustered stream changing leaders), the same exception as
 * an AMQP basic.nack; lane_depth 1 would close it at the price of one
 * round trip per event of a subject.
 *
 * Where it connects. The sink resolves the host itself (on the helper
 * thread), checks every address with sink_check_peer, and gives libnats
 * only those addresses (as literal URLs, the host name kept for the TLS
 * certificate check through natsOptions_SetExpectedHostname), with the
 * servers a cluster advertises ignored: a DNS answer cannot lead libnats
 * elsewhere. A refusal is for good (sink_host_refused): every event of the
 * sink becomes a dead letter naming the address and the rule.
 *
 * Options of this sink besides the common ones (sink.h):
 *   stream                         the stream that must store the events
 *                                  (Nats-Expected-Stream); default: any
 *   password_env / password_file   the password of the URI's user
 *   token_env / token_file         a token instead of a user
 *   ca_file, cert_file, key_file   for nats+tls:// (TLS)
 * One server per sink; no NKey or credentials files (a server that wants
 * them needs a user and password or a token for the relay).
 *
 * The uri, options and secrets are read in sink_nats_conf.c; connecting
 * and the mailbox libnats' threads write to are in sink_nats_connect.c.
 */
#define _GNU_SOURCE				/* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "sink_nats.h"
#include "sink_policy.h"

/* Destroy the published messages kept so far (see nats_sink.spent). */
static void
nats_spent_flush(struct nats_sink *n)
{
	for (int i = 0; i < n->nspent; i++)
		natsMsg_Destroy(n->spent[i]);
	n->nspent = 0;
}

static void
nats_free(struct nats_sink *n)
{
	nats_spent_flush(n);
	free(n->host);
	free(n->user);
	free(n->prefix);
	sink_opts_free(nats_options, n);
	sink_secret_free(n->password);
	sink_secret_free(n->token);
	sink_link_free(&n->link);
	sink_ring_free(&n->ring);
	if (n->ack_tok)
		json_tokener_free(n->ack_tok);
	if (n->box)
		nats_sink_box_unref(n->box);
	free(n);
}

static int
nats_open(struct sink *s, struct sink_host *host, char *err, size_t errlen)
{
	struct nats_sink *n = xcalloc(sizeof(*n));
	natsOptions *probe;

	n->s = s;
	s->host = host;
	if (nats_sink_configure(n, err, errlen) != 0)
		goto fail;
	/* the TLS files are loaded now, so a bad one is reported at once */
	if ((probe = nats_sink_options(n, err, errlen)) == NULL)
		goto fail;
	natsOptions_Destroy(probe);

	n->box = xcalloc(sizeof(*n->box));
	n->box->refs = 1;
	pthread_mutex_init(&n->box->lock, NULL);
	if (pipe2(n->box->wake, O_NONBLOCK | O_CLOEXEC) != 0)
	{
		snprintf(err, errlen, "nats sink \"%s\": cannot create a pipe: %s", s->name,
				 strerror(errno));
		pthread_mutex_destroy(&n->box->lock);
		free(n->box);
		n->box = NULL;
		goto fail;
	}
	sink_ring_init(&n->ring, n->cap);
	n->ack_tok = json_tokener_new();
	if (n->ack_tok == NULL)
	{
		snprintf(err, errlen, "nats sink \"%s\": out of memory", s->name);
		goto fail;
	}
	sink_link_init(&n->link, s, "nats", "connecting again in", "events given back");
	s->state = n;
	log_info("nats sink \"%s\": publishing to JetStream on %s:%d%s as %s.<event type>%s%s, "
			 "up to %d unacknowledged", s->name, n->host, n->port, n->tls.on ? " over TLS" : "",
			 n->prefix, n->stream ? ", stream " : "", n->stream ? n->stream : "", n->cap);
	return 0;
fail:
	nats_free(n);
	return -1;
}

/* ---- answers ------------------------------------------------------------- */

/* Why JetStream refused, and whether trying again can help. */
static bool
nats_refusal(struct nats_sink *n, struct sink_event *ev, const char *subject,
			 const struct nats_answer *a, json_object *error, char *why, size_t len)
{
	json_object *v;
	int			code = 0,
				err_code = 0;
	char		desc[SINK_EXCERPT_MAX + 1] = "";

	if (strcmp(a->status, "503") == 0)
	{
		snprintf(why, len, "no JetStream stream takes subject \"%s\" (NATS answered \"no "
				 "responders\"); create one that does, e.g. nats stream add %s --subjects "
				 "'%s.>' --dupe-window 2m (the duplicate window lets JetStream drop replays "
				 "by their Nats-Msg-Id)",
				 subject, n->stream ? n->stream : "ORDERSYNC", n->prefix);
		return true;
	}
	if (error == NULL)
	{
		snprintf(why, len, "NATS answered event %s with status \"%s\" instead of a JetStream "
				 "ack", ev->id, a->status[0] ? a->status : "none");
		return true;
	}
	if (json_object_object_get_ex(error, "code", &v))
		code = json_object_get_int(v);
	if (json_object_object_get_ex(error, "err_code", &v))
		err_code = json_object_get_int(v);
	if (json_object_object_get_ex(error, "description", &v) && json_object_get_string(v))
		sink_excerpt(json_object_get_string(v), strlen(json_object_get_string(v)), desc,
					 sizeof(desc));
	if (err_code == 10060)
		snprintf(why, len, "JetStream refused subject \"%s\": %s (%d/%d): the stream that "
				 "takes it is not \"%s\" (option \"stream\"); point the option at that stream "
				 "or change the streams' subjects, then ordersync.redeliver() the dead letters",
				 subject, desc, code, err_code, n->stream ? n->stream : "?");
	else
		snprintf(why, len, "JetStream refused the message on subject \"%s\": %s (%d/%d)",
				 subject, desc, code, err_code);
	/* a request JetStream will never take (400 bad request, 413 too large) */
	return !(code >= 400 && code < 500 && code != 408 && code != 429);
}

static void
nats_answer(struct nats_sink *n, const struct nats_answer *a)
{
	struct sink *s = n->s;
	struct sink_event *ev;
	json_object *ack = NULL,
			   *error = NULL,
			   *v;
	char		subject[NATS_SINK_PREFIX_MAX + 300];
	char		why[1024];
	bool		retry;

	/* NULL: of a connection given up, its events went back */
	ev = sink_ring_get(&n->ring, a->tag);
	if (ev == NULL || ev->sink_tag != a->tag)
		return;
	sink_ring_take(&n->ring, a->tag);

	if (a->status[0] == '\0' && a->len > 0)
	{
		json_tokener_reset(n->ack_tok);
		ack = json_tokener_parse_ex(n->ack_tok, a->data, a->len);
	}
	if (ack && json_object_is_type(ack, json_type_object) &&
		!json_object_object_get_ex(ack, "error", &error) &&
		json_object_object_get_ex(ack, "stream", &v) &&
		json_object_object_get_ex(ack, "seq", &v))
	{
		json_object_put(ack);
		sink_host_accepted(s->host, ev);
		/* JetStream stores: the outage, if any, is over; pipeline again */
		n->probing = false;
		sink_link_delivered(&n->link);
		return;
	}
	snprintf(subject, sizeof(subject), "%s.%s", n->prefix, ev->type);
	if (a->status[0] == '\0' && error == NULL)
	{
		char		text[SINK_EXCERPT_MAX + 1];

		sink_excerpt(a->data, (size_t) a->len, text, sizeof(text));
		snprintf(why, sizeof(why), "NATS answered event %s on subject \"%s\" with something "
				 "that is not a JetStream ack (\"%s\"); is a service other than JetStream "
				 "subscribed to it?", ev->id, subject, text);
		retry = true;
	}
	else
		retry = nats_refusal(n, ev, subject, a, error, why, sizeof(why));
	json_object_put(ack);
	/* whatever follows must not overtake the retry: one at a time until a success */
	n->probing = true;
	log_debug("nats sink \"%s\": event %s (%s): %s", s->name, ev->id, ev->subject, why);
	sink_host_failed(s->host, ev, retry, 0, why);
}

/* Everything the subscription thread has queued since the last poll. */
static void
nats_take_answers(struct nats_sink *n)
{
	struct nats_box *b = n->box;
	struct nats_answer *list;
	int			count;

	pthread_mutex_lock(&b->lock);
	list = b->answers;
	count = b->n;
	b->answers = NULL;
	b->n = b->cap = 0;
	pthread_mutex_unlock(&b->lock);
	for (int i = 0; i < count; i++)
		nats_answer(n, &list[i]);
	for (int i = 0; i < count; i++)
		natsMsg_Destroy(list[i].msg);
	free(list);
}

/* ---- the sink interface -------------------------------------------------- */

static int
nats_submit(struct sink *s, struct sink_event *ev)
{
	struct nats_sink *n = s->state;
	char		subject[NATS_SINK_PREFIX_MAX + 300];
	char		reply[160];
	natsMsg    *m = NULL;
	natsStatus	st;
	uint64_t	tag;

	if (n->link.refused || n->nc == NULL || (n->probing && n->ring.n > 0) ||
		sink_ring_full(&n->ring))
		return SINK_BUSY;
	if (strlen(ev->type) > 255 || !nats_sink_subject_ok(ev->type))
	{
		sink_host_failed(s->host, ev, false, 0, "the event type is not a valid NATS subject "
						 "token sequence (letters, digits, \"_\", \"-\" between single dots, at "
						 "most 255 bytes)");
		return SINK_TAKEN;
	}
	if (n->max_payload > 0 && (int64_t) ev->body_len > n->max_payload)
	{
		char		why[256];

		snprintf(why, sizeof(why), "the event has %zu bytes, more than the NATS server's "
				 "max_payload (%lld); raise max_payload in nats-server's configuration, then "
				 "ordersync.redeliver() the dead letter", ev->body_len,
				 (long long) n->max_payload);
		sink_host_failed(s->host, ev, false, 0, why);
		return SINK_TAKEN;
	}
	tag = n->ring.next;
	snprintf(subject, sizeof(subject), "%s.%s", n->prefix, ev->type);
	snprintf(reply, sizeof(reply), "%s.%llu", n->inbox, (unsigned long long) tag);
	st = natsMsg_Create(&m, subject, reply, ev->body, (int) ev->body_len);
	if (st == NATS_OK)
		st = natsMsgHeader_Set(m, "Nats-Msg-Id", ev->id);
	if (st == NATS_OK)
		st = natsMsgHeader_Set(m, "Content-Type", NATS_SINK_CONTENT_TYPE);
	if (st == NATS_OK && n->stream)
		st = natsMsgHeader_Set(m, "Nats-Expected-Stream", n->stream);
	if (st == NATS_OK)
		st = natsConnection_PublishMsg(n->nc, m);
	if (m)
	{
		n->spent[n->nspent++] = m;
		if (n->nspent == NATS_SINK_SPENT_MAX)
			nats_spent_flush(n);
	}
	if (st != NATS_OK)
	{
		char		text[512];

		/* not published: the core keeps it */
		nats_sink_error_text(st, text, sizeof(text));
		nats_sink_lost(n, "publishing to %s:%d failed: %s", n->host, n->port, text);
		return SINK_BUSY;
	}
	ev->sink_ms = sink_now_ms();
	ev->sink_tag = tag;
	ev->sink_flags = 0;
	sink_ring_put(&n->ring, ev);
	return SINK_TAKEN;
}

static void
nats_prepare(struct sink *s, struct pollset *ps, int *timeout_ms)
{
	struct nats_sink *n = s->state;
	struct sink_event *oldest = sink_ring_oldest(&n->ring);
	int64_t		now = sink_now_ms();

	/* the relay is about to wait: the batch of published messages goes now */
	nats_spent_flush(n);
	if (n->link.refused)
		return;
	pollset_add(ps, n->box->wake[0], POLLIN);
	if (n->connecting)
		return;					/* the helper thread writes to the pipe */
	if (n->nc == NULL)
	{
		sink_lower_timeout(timeout_ms, n->link.next_connect_ms - now);
		return;
	}
	if (n->ring.n > 0)
	{
		/* no callback says the connection closed: look now and then */
		sink_lower_timeout(timeout_ms, NATS_SINK_STATUS_MS);
		if (oldest)
			sink_lower_timeout(timeout_ms, oldest->sink_ms + s->opt.timeout_ms - now);
	}
}

static void
nats_poll(struct sink *s, const struct pollset *ps)
{
	struct nats_sink *n = s->state;
	struct sink_event *oldest;
	char		buf[256];
	bool		done;
	const char *last = NULL;

	(void) ps;
	while (read(n->box->wake[0], buf, sizeof(buf)) > 0)
		;
	if (n->link.refused)
		return;
	if (n->connecting)
	{
		pthread_mutex_lock(&n->box->lock);
		done = n->box->connect_done;
		pthread_mutex_unlock(&n->box->lock);
		if (!done)
			return;
		nats_sink_finish_connect(n);
		if (n->link.refused)
			return;
	}
	/* answers first: what was acknowledged before a loss counts */
	nats_take_answers(n);
	if (n->nc == NULL)
	{
		if (sink_link_due(&n->link, sink_now_ms()))
			nats_sink_start_connect(n);
		return;
	}
	if (natsConnection_Status(n->nc) != NATS_CONN_STATUS_CONNECTED)
	{
		natsConnection_GetLastError(n->nc, &last);
		nats_sink_lost(n, "the connection to %s:%d closed (%s): server stopped or network "
					   "lost", n->host, n->port, last && *last ? last : "no error given");
		return;
	}
	oldest = sink_ring_oldest(&n->ring);
	if (oldest && sink_now_ms() - oldest->sink_ms > s->opt.timeout_ms)
		nats_sink_lost(n, "no JetStream ack from %s:%d for event %s within timeout_ms "
					   "(%d ms): the server or the stream is stuck or overloaded",
					   n->host, n->port, oldest->id, s->opt.timeout_ms);
}

static void
nats_close(struct sink *s)
{
	struct nats_sink *n = s->state;

	if (n == NULL)
		return;
	if (n->connecting)
	{
		/* the attempt ends within connect_timeout_ms; its connection is not used */
		pthread_join(n->thread, NULL);
		if (n->attempt->sub)
			natsSubscription_Destroy(n->attempt->sub);
		if (n->attempt->nc)
			natsConnection_Destroy(n->attempt->nc);
		natsOptions_Destroy(n->attempt->opts);
		free(n->attempt);
	}
	/* unacknowledged events are simply not reported: the stream sends them again */
	nats_sink_drop(n);
	nats_free(n);
	s->state = NULL;
}

static bool
nats_claims(const char *uri)
{
	return strncasecmp(uri, "nats://", 7) == 0 || nats_sink_is_tls(uri);
}

static bool
nats_clear_text(const struct sink *s)
{
	return !nats_sink_is_tls(s->uri);
}

const struct sink_ops sink_nats_ops = {
	.kind = "nats",
	.lane_depth = 0,			/* one connection keeps order: pipeline (see the top) */
	.window = NATS_SINK_IN_FLIGHT,
	.options = nats_options,
	.claims = nats_claims,
	.clear_text = nats_clear_text,
	.open = nats_open,
	.submit = nats_submit,
	.prepare = nats_prepare,
	.poll = nats_poll,
	.close = nats_close,
};
