/*
 * inbound.c — the inbound endpoint's HTTP side (see inbound.h): routing,
 * bounded bodies, the answer to every request.
 *
 * Everything a request carries is hostile until checked, in this order,
 * and each check answers for itself: the path (404), the method (405), the
 * declared and the real size (413; a body still arriving after
 * --inbound-timeout is cut off), the
 * channel (404 when it pushes no webhooks), the signature (401: nothing is
 * parsed or written for an unsigned body), the topic against the path, the
 * JSON (400), then the database (400 when it refuses the payload, 503 when
 * it cannot take it now, so the sender retries). Error answers are JSON:
 * {"error": "<code>", "message": "<what to do>"}.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <microhttpd.h>

#include "buf.h"
#include "inbound.h"
#include "inbound_db.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "w2j.h"

#define MAX_JSON_DEPTH 64

enum kind
{
	KIND_ORDER, KIND_STATUS
};

struct request
{
	int64_t		start_ms;
	enum kind	kind;
	char		channel[64];
	struct buf	body;
	bool		too_large;
	bool		answered;		/* early: the rest of the body is discarded */
};

static struct
{
	struct MHD_Daemon *daemon;
	struct inbound_options o;
	atomic_int	active;
}			srv;

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* one JSON answer; o is consumed */
static enum MHD_Result
answer(struct MHD_Connection *c, unsigned status, json_object *o, const char *retry_after)
{
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
													  JSON_C_TO_STRING_NOSLASHESCAPE);
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (text == NULL)
		x_out_of_memory(0);
	resp = MHD_create_response_from_buffer(strlen(text), (void *) text, MHD_RESPMEM_MUST_COPY);
	json_object_put(o);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	if (retry_after)
		MHD_add_response_header(resp, "Retry-After", retry_after);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, "Allow", "POST");
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* a refusal: counted by reason, answered with what to do */
static enum MHD_Result
refuse(struct MHD_Connection *c, struct request *rq, unsigned status, const char *code,
	   const char *channel_label, const char *message)
{
	json_object *o = json_object_new_object();

	if (o == NULL)
		x_out_of_memory(0);
	json_object_object_add(o, "error", json_object_new_string(code));
	json_object_object_add(o, "message", json_object_new_string(message));
	metrics_inbound(channel_label, "refused", code);
	log_debug("inbound: %u %s for channel \"%s\": %s", status, code, channel_label, message);
	if (rq)
		rq->answered = true;
	return answer(c, status, o, status == MHD_HTTP_SERVICE_UNAVAILABLE ? "5" : NULL);
}

/* "/channels/<channel>/orders" or ".../status"; the channel as add_channel() allows */
static bool
parse_path(const char *url, char *channel, size_t chlen, enum kind *kind)
{
	const char *p;
	size_t		n;

	if (strncmp(url, "/channels/", 10) != 0)
		return false;
	p = url + 10;
	n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_.-");
	if (n == 0 || n > 63 || n >= chlen || strchr("_.-", p[0]) || p[n] != '/')
		return false;
	if (strcmp(p + n, "/orders") == 0)
		*kind = KIND_ORDER;
	else if (strcmp(p + n, "/status") == 0)
		*kind = KIND_STATUS;
	else
		return false;
	memcpy(channel, p, n);
	channel[n] = '\0';
	return true;
}

static const char *
header(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/*
 * Shopify and WooCommerce name what happened in a topic header: it must
 * fit the endpoint, or an orders/cancelled hook pointed at /orders would
 * be taken for a new order. NULL when it fits (or the scheme has none).
 */
static const char *
topic_mismatch(enum inbound_scheme scheme, enum kind kind, const char *topic)
{
	static const char *const shopify_status[] = {
		"orders/updated", "orders/paid", "orders/cancelled", "orders/fulfilled",
		"orders/partially_fulfilled", NULL
	};

	if (topic == NULL)
		return NULL;
	if (scheme == INBOUND_SHOPIFY)
	{
		if (kind == KIND_ORDER)
			return strcmp(topic, "orders/create") == 0 ? NULL :
				"POST /orders takes the topic orders/create; send status topics (orders/updated, "
				"orders/paid, orders/cancelled, orders/fulfilled) to /status";
		for (const char *const *t = shopify_status; *t; t++)
			if (strcmp(topic, *t) == 0)
				return NULL;
		return "POST /status takes the topics orders/updated, orders/paid, orders/cancelled, "
			"orders/fulfilled and orders/partially_fulfilled; send orders/create to /orders";
	}
	if (scheme == INBOUND_WOOCOMMERCE)
	{
		if (kind == KIND_ORDER)
			return strcmp(topic, "order.created") == 0 ? NULL :
				"POST /orders takes the topic order.created; send order.updated to /status";
		return strcmp(topic, "order.updated") == 0 ? NULL :
			"POST /status takes the topic order.updated; send order.created to /orders";
	}
	return NULL;
}

/* WooCommerce pings a new webhook with a form body "webhook_id=<n>" */
static bool
woocommerce_ping(const struct buf *b)
{
	return b->len > 11 && b->len < 40 && memcmp(b->data, "webhook_id=", 11) == 0 &&
		strspn(b->data + 11, "0123456789") == b->len - 11;
}

/* the whole body is here: check it and keep it */
static enum MHD_Result
complete(struct MHD_Connection *c, struct request *rq)
{
	struct inbound_channel *ch = NULL;
	struct inbound_headers h;
	const char *event_id;
	const char *topic;
	const char *mismatch;
	char		why[1024];
	char		state[16] = "";
	enum inbound_db_rc rc;
	enum inbound_verdict v;
	enum MHD_Result ret;
	int64_t		inbox_id = 0;

	rc = inbound_channel_get(rq->channel, &ch);
	if (rc == INDB_NOT_FOUND)
		return refuse(c, rq, MHD_HTTP_NOT_FOUND, "unknown_channel", "",
					  "this channel pushes no webhooks here: an admin enables it with "
					  "ordersync.set_channel_inbound()");
	if (rc != INDB_OK)
		return refuse(c, rq, rc == INDB_UNAVAILABLE ? MHD_HTTP_SERVICE_UNAVAILABLE :
					  MHD_HTTP_INTERNAL_SERVER_ERROR, "unavailable", rq->channel,
					  "the database cannot be reached now; retry later");
	if (ch->signer == NULL)
	{
		ret = refuse(c, rq, MHD_HTTP_SERVICE_UNAVAILABLE, "secret_unavailable", rq->channel,
					 "the receiver cannot read this channel's secret now; retry later");
		inbound_channel_release(ch);
		return ret;
	}

	if (ch->scheme == INBOUND_WOOCOMMERCE && woocommerce_ping(&rq->body))
	{
		json_object *o = json_object_new_object();

		inbound_channel_release(ch);
		json_object_object_add(o, "status", json_object_new_string("ping"));
		return answer(c, MHD_HTTP_OK, o, NULL);
	}

	memset(&h, 0, sizeof(h));
	h.wh_id = header(c, "webhook-id");
	h.wh_timestamp = header(c, "webhook-timestamp");
	h.wh_signature = header(c, "webhook-signature");
	h.shopify_hmac = header(c, "X-Shopify-Hmac-Sha256");
	h.shopify_webhook_id = header(c, "X-Shopify-Webhook-Id");
	h.shopify_topic = header(c, "X-Shopify-Topic");
	h.wc_signature = header(c, "X-WC-Webhook-Signature");
	h.wc_delivery_id = header(c, "X-WC-Webhook-Delivery-ID");
	h.wc_topic = header(c, "X-WC-Webhook-Topic");
	v = inbound_verify(ch->scheme, ch->signer, &h, rq->body.data ? rq->body.data : "",
					   rq->body.len, (int64_t) time(NULL), ch->tolerance, &event_id, &topic,
					   why, sizeof(why));
	if (v != INBOUND_OK)
	{
		static const char *const codes[] = {"", "unsigned", "bad_signature", "expired", "bad_event_id"};

		ret = refuse(c, rq, v == INBOUND_BAD_ID ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_UNAUTHORIZED,
					 codes[v], rq->channel, why);
		inbound_channel_release(ch);
		return ret;
	}
	if (topic && (strlen(topic) > 100 || strspn(topic, "abcdefghijklmnopqrstuvwxyz0123456789_./-") != strlen(topic)))
		mismatch = "the topic header is not a topic name";
	else
		mismatch = topic_mismatch(ch->scheme, rq->kind, topic);
	inbound_channel_release(ch);
	if (mismatch)
		return refuse(c, rq, MHD_HTTP_BAD_REQUEST, "wrong_topic", rq->channel, mismatch);

	/* well-formed JSON, an object, nested at most MAX_JSON_DEPTH */
	{
		json_tokener *tok = json_tokener_new_ex(MAX_JSON_DEPTH);
		json_object *o;
		bool		object;

		if (tok == NULL)
			x_out_of_memory(0);
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
		o = w2j_parse_json(tok, rq->body.data ? rq->body.data : "", rq->body.len, why, sizeof(why));
		json_tokener_free(tok);
		object = o && json_object_is_type(o, json_type_object);
		json_object_put(o);
		if (!object || memchr(rq->body.data, '\0', rq->body.len))
		{
			char		msg[1200];

			snprintf(msg, sizeof(msg), "the body is not a JSON object: %s",
					 why[0] ? why : "another JSON value, or a NUL byte");
			return refuse(c, rq, MHD_HTTP_BAD_REQUEST, "malformed_json", rq->channel, msg);
		}
	}

	rc = inbound_receive(rq->channel, rq->kind == KIND_ORDER ? "order" : "status", event_id,
						 rq->body.data, rq->body.len, topic, &inbox_id, state, sizeof(state),
						 why, sizeof(why));
	switch (rc)
	{
		case INDB_OK:
		case INDB_DUPLICATE:
			{
				json_object *o = json_object_new_object();

				if (o == NULL)
					x_out_of_memory(0);
				json_object_object_add(o, "status", json_object_new_string(rc == INDB_OK ? "received" : "duplicate"));
				if (rc == INDB_OK)
				{
					json_object_object_add(o, "inbox_id", json_object_new_int64(inbox_id));
					/* applied with the receipt, or left to the appliers */
					json_object_object_add(o, "state", json_object_new_string(state));
					if (strcmp(state, "received") == 0)
						inbound_apply_soon();
					else
						metrics_inbound_applied(strcmp(state, "applied") == 0,
												strcmp(state, "stale") == 0,
												strcmp(state, "parked") == 0,
												strcmp(state, "failed") == 0);
				}
				metrics_inbound(rq->channel, rc == INDB_OK ? "received" : "duplicate", NULL);
				return answer(c, MHD_HTTP_OK, o, NULL);
			}
		case INDB_REFUSED:
			return refuse(c, rq, MHD_HTTP_BAD_REQUEST, "invalid_payload", rq->channel, why);
		case INDB_UNAVAILABLE:
			return refuse(c, rq, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", rq->channel,
						  "the database cannot take the webhook now; retry later");
		default:
			return refuse(c, rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "error", rq->channel,
						  "the receiver could not keep the webhook; retry later");
	}
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
	   const char *version, const char *upload_data, size_t *upload_data_size, void **ptr)
{
	struct request *rq = *ptr;

	(void) cls;
	(void) version;
	if (rq == NULL)
	{
		const char *cl;

		rq = xcalloc(sizeof(*rq));
		rq->start_ms = mono_ms();
		buf_init(&rq->body);
		*ptr = rq;
		atomic_fetch_add(&srv.active, 1);
		if (!parse_path(url, rq->channel, sizeof(rq->channel), &rq->kind))
			return refuse(c, rq, MHD_HTTP_NOT_FOUND, "not_found", "",
						  "POST webhooks to /channels/<channel>/orders or /channels/<channel>/status");
		if (strcmp(method, "POST") != 0)
			return refuse(c, rq, MHD_HTTP_METHOD_NOT_ALLOWED, "method", "",
						  "webhooks are POSTed");
		cl = header(c, "Content-Length");
		if (cl && (strspn(cl, "0123456789") != strlen(cl) || strlen(cl) > 15 ||
				   strtoull(cl, NULL, 10) > srv.o.max_body))
			return refuse(c, rq, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", "",
						  "the body is larger than this receiver takes (--inbound-max-body)");
		return MHD_YES;
	}
	if (rq->answered)
	{
		*upload_data_size = 0;	/* what is left of a body answered before it came */
		return MHD_YES;
	}
	if (*upload_data_size > 0)
	{
		/*
		 * libmicrohttpd takes no answer while a body arrives: a body over
		 * the limit is read and dropped, then answered 413; one still
		 * arriving after --inbound-timeout is cut off (connection closed).
		 */
		if (rq->too_large || rq->body.len + *upload_data_size > srv.o.max_body)
		{
			rq->too_large = true;
			buf_free(&rq->body);
		}
		else
			buf_append(&rq->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		if (mono_ms() - rq->start_ms > (int64_t) srv.o.timeout_s * 1000)
		{
			metrics_inbound("", "refused", "timeout");
			log_debug("inbound: a request body took more than %d s; connection closed", srv.o.timeout_s);
			return MHD_NO;
		}
		return MHD_YES;
	}
	if (rq->too_large)
		return refuse(c, rq, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", "",
					  "the body is larger than this receiver takes (--inbound-max-body)");
	return complete(c, rq);
}

static void
completed(void *cls, struct MHD_Connection *c, void **ptr, enum MHD_RequestTerminationCode toe)
{
	struct request *rq = *ptr;

	(void) cls;
	(void) c;
	(void) toe;
	if (rq == NULL)
		return;
	buf_free(&rq->body);
	free(rq);
	*ptr = NULL;
	atomic_fetch_sub(&srv.active, 1);
}

/* libmicrohttpd's own messages; fmt is its printf format */
static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char		msg[512];

	(void) cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_warning("inbound: %s", msg);
}

int
inbound_start(const struct inbound_options *o, char *err, size_t errlen)
{
	char		host[256];
	const char *colon = strrchr(o->addr, ':');
	struct addrinfo hints = {0},
			   *res = NULL;
	int			rc;

	srv.o = *o;
	if (colon == NULL || colon == o->addr || colon[1] == '\0' ||
		(size_t) (colon - o->addr) >= sizeof(host))
	{
		snprintf(err, errlen, "bad --inbound \"%s\": use HOST:PORT, e.g. 0.0.0.0:8443", o->addr);
		return -1;
	}
	memcpy(host, o->addr, (size_t) (colon - o->addr));
	host[colon - o->addr] = '\0';
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc != 0)
	{
		snprintf(err, errlen, "bad --inbound \"%s\": %s (use an IPv4 HOST:PORT)", o->addr,
				 gai_strerror(rc));
		return -1;
	}
	if (inbound_db_start(o->conninfo, o->pool_size, o->policy, err, errlen) != 0)
	{
		freeaddrinfo(res);
		return -1;
	}
	srv.daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD |
								  MHD_USE_ITC | MHD_USE_ERROR_LOG,
								  0, NULL, NULL, handle, NULL,
								  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,	/* first, or MHD warns */
								  MHD_OPTION_SOCK_ADDR, res->ai_addr,
								  MHD_OPTION_CONNECTION_LIMIT, (unsigned) o->max_connections,
								  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) o->timeout_s,
								  MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
								  MHD_OPTION_END);
	freeaddrinfo(res);
	if (srv.daemon == NULL)
	{
		inbound_db_stop();
		snprintf(err, errlen, "cannot listen on --inbound %s: the port is in use or not "
				 "allowed; choose another HOST:PORT", o->addr);
		return -1;
	}
	if (inbound_applier_start(o->appliers) != 0)
	{
		MHD_stop_daemon(srv.daemon);
		srv.daemon = NULL;
		inbound_db_stop();
		snprintf(err, errlen, "cannot start the inbox applier thread");
		return -1;
	}
	log_info("inbound: receiving webhooks on %s (POST /channels/<channel>/orders and /status)",
			 o->addr);
	return 0;
}

void
inbound_stop(void)
{
	int64_t		until = mono_ms() + 5000;

	if (srv.daemon == NULL)
		return;
	/* no new connections; what is under way may still commit and answer */
	{
		MHD_socket	listen = MHD_quiesce_daemon(srv.daemon);

		if (listen != MHD_INVALID_SOCKET)
			close(listen);
	}
	while (atomic_load(&srv.active) > 0 && mono_ms() < until)
	{
		struct timespec t = {0, 20 * 1000000L};

		nanosleep(&t, NULL);
	}
	MHD_stop_daemon(srv.daemon);
	srv.daemon = NULL;
	inbound_db_stop();
}
