/*
 * sink_nats_connect.c — the NATS sink's connection (see sink_nats.c for the
 * whole). libnats calls back on its own threads: those only fill the
 * mailbox (struct nats_box) and wake the relay through a pipe. Connecting
 * blocks, so it runs on a helper thread: it resolves the host, checks
 * every address against the policy, connects to exactly those and
 * subscribes to a fresh reply inbox; poll takes the result.
 */
#define _GNU_SOURCE				/* strcasestr */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "log.h"
#include "sink_nats.h"
#include "sink_policy.h"

void
nats_sink_box_unref(struct nats_box *b)
{
	int			left;

	pthread_mutex_lock(&b->lock);
	left = --b->refs;
	pthread_mutex_unlock(&b->lock);
	if (left > 0)
		return;
	for (int i = 0; i < b->n; i++)
		natsMsg_Destroy(b->answers[i].msg);
	free(b->answers);
	close(b->wake[0]);
	close(b->wake[1]);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static void
nats_sink_box_wake(struct nats_box *b)
{
	/* full pipe: a wake-up is pending anyway */
	(void) !write(b->wake[1], "n", 1);
}

/* An answer on the inbox (a subscription thread of libnats). */
static void
on_reply(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	struct nats_box *b = closure;
	const char *subj = natsMsg_GetSubject(msg);
	const char *dot = subj ? strrchr(subj, '.') : NULL;
	const char *status = NULL;
	struct nats_answer a = {0};
	int			len = natsMsg_GetDataLength(msg);
	bool		first;

	(void) nc;
	(void) sub;
	if (dot == NULL)
	{
		natsMsg_Destroy(msg);
		return;
	}
	a.tag = strtoull(dot + 1, NULL, 10);
	if (natsMsgHeader_Get(msg, "Status", &status) == NATS_OK && status)
		snprintf(a.status, sizeof(a.status), "%s", status);
	if (len > NATS_SINK_ANSWER_MAX)
		len = NATS_SINK_ANSWER_MAX;
	a.len = len;
	/* kept, not copied: poll reads it and destroys the batch together */
	a.msg = msg;
	a.data = natsMsg_GetData(msg) ? natsMsg_GetData(msg) : "";

	pthread_mutex_lock(&b->lock);
	if (b->n == b->cap)
	{
		b->cap = b->cap ? b->cap * 2 : 256;
		b->answers = xrealloc(b->answers, sizeof(*b->answers) * (size_t) b->cap);
	}
	b->answers[b->n++] = a;
	first = b->n == 1;
	pthread_mutex_unlock(&b->lock);

	/*
	 * Only the first answer of a batch wakes the relay: poll drains the
	 * pipe before it takes the whole batch, so a batch that is not empty
	 * always has a byte in the pipe written after the last drain. A write
	 * per answer cost a system call (and often a wake-up) per event.
	 */
	if (first)
		nats_sink_box_wake(b);
}

/* The subscription is closed and on_reply has returned for good. */
static void
on_sub_complete(void *closure)
{
	nats_sink_box_unref(closure);
}

/* libnats' status with its last error text, if it has one. */
void
nats_sink_error_text(natsStatus st, char *out, size_t len)
{
	const char *last = nats_GetLastError(NULL);
	const char *text = natsStatus_GetText(st);

	/* "(conn.c:2088): No server available for connection": without the place */
	if (last && last[0] == '(' && strstr(last, "): "))
		last = strstr(last, "): ") + 3;
	if (last && *last && strcmp(last, text) != 0)
		snprintf(out, len, "%s: %s", text, last);
	else
		snprintf(out, len, "%s", text);
}

/* The options of one connection, all but the servers (the helper thread adds them). */
natsOptions *
nats_sink_options(struct nats_sink *n, char *err, size_t errlen)
{
	struct sink *s = n->s;
	natsOptions *o = NULL;
	natsStatus	st;
	char		name[300];
	char		text[512];
	const char *step = "options";

	snprintf(name, sizeof(name), "ordersyncd %s", s->name);
	if ((st = natsOptions_Create(&o)) != NATS_OK ||
		(st = natsOptions_SetName(o, name)) != NATS_OK ||
		(st = natsOptions_SetTimeout(o, s->opt.connect_timeout_ms)) != NATS_OK ||
		/* reconnecting is ours (see the top of the file) */
		(st = natsOptions_SetAllowReconnect(o, false)) != NATS_OK ||
		(st = natsOptions_SetIgnoreDiscoveredServers(o, true)) != NATS_OK ||
		(st = natsOptions_SetNoRandomize(o, true)) != NATS_OK ||
		(st = natsOptions_SetPingInterval(o, 10000)) != NATS_OK ||
		(st = natsOptions_SetMaxPingsOut(o, 3)) != NATS_OK ||
		(st = natsOptions_SetWriteDeadline(o, NATS_SINK_WRITE_DEADLINE_MS)) != NATS_OK)
		goto fail;
	step = "user and password";
	if (n->user && (st = natsOptions_SetUserInfo(o, n->user, n->password)) != NATS_OK)
		goto fail;
	step = "token";
	if (n->token && (st = natsOptions_SetToken(o, n->token)) != NATS_OK)
		goto fail;
	if (n->tls.on)
	{
		step = "TLS";
		if ((st = natsOptions_SetSecure(o, true)) != NATS_OK ||
			(st = natsOptions_SetExpectedHostname(o, n->host)) != NATS_OK)
			goto fail;
		step = "ca_file (give a readable file of PEM certificates)";
		if (n->tls.ca_file &&
			(st = natsOptions_LoadCATrustedCertificates(o, n->tls.ca_file)) != NATS_OK)
			goto fail;
		step = "cert_file and key_file (give readable PEM files that belong together)";
		if (n->tls.cert_file &&
			(st = natsOptions_LoadCertificatesChain(o, n->tls.cert_file, n->tls.key_file)) != NATS_OK)
			goto fail;
	}
	return o;
fail:
	nats_sink_error_text(st, text, sizeof(text));
	snprintf(err, errlen, "nats sink \"%s\": cannot set up the connection's %s: %s", s->name,
			 step, text);
	natsOptions_Destroy(o);
	return NULL;
}

/* ---- the connection ------------------------------------------------------ */

void
nats_sink_drop(struct nats_sink *n)
{
	/* the subscription's on-complete callback drops its box reference */
	if (n->sub)
		natsSubscription_Destroy(n->sub);
	if (n->nc)
		natsConnection_Destroy(n->nc);
	n->sub = NULL;
	n->nc = NULL;
}

void
nats_sink_lost(struct nats_sink *n, const char *fmt,...)
{
	va_list		ap;

	nats_sink_drop(n);
	va_start(ap, fmt);
	sink_link_down(&n->link, &n->ring, fmt, ap);
	va_end(ap);
}

/* The policy refused the server's address: for good. */
static void
nats_refuse(struct nats_sink *n, const char *why)
{
	nats_sink_drop(n);
	sink_ring_return_all(&n->ring, n->s->host);
	sink_link_refuse(&n->link, why);
}

/*
 * The helper thread: resolve, check every address against the policy,
 * connect to exactly those, subscribe to a fresh inbox. Touches only the
 * attempt, the sink's configuration (read only) and the box.
 */
static void *
nats_connect_main(void *arg)
{
	struct nats_attempt *a = arg;
	struct nats_sink *n = a->n;
	struct addrinfo hints = {.ai_family = AF_UNSPEC,.ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char		service[16];
	char	   *urls[16];
	int			nurls = 0;
	natsInbox  *inbox = NULL;
	natsStatus	st;
	char		text[512];
	char		subj[160];
	int			rc;

	snprintf(service, sizeof(service), "%d", n->port);
	rc = getaddrinfo(n->host, service, &hints, &res);
	if (rc != 0)
	{
		snprintf(a->err, sizeof(a->err), "nats sink \"%s\": cannot resolve host \"%s\": %s",
				 n->s->name, n->host, gai_strerror(rc));
		goto done;
	}
	for (struct addrinfo *ai = res; ai && nurls < 16; ai = ai->ai_next)
	{
		char		addr[INET6_ADDRSTRLEN];
		char		url[INET6_ADDRSTRLEN + 32];
		const void *raw = ai->ai_family == AF_INET6 ?
			(const void *) &((struct sockaddr_in6 *) ai->ai_addr)->sin6_addr :
			(const void *) &((struct sockaddr_in *) ai->ai_addr)->sin_addr;
		bool		dup = false;

		if (sink_check_peer(n->s, ai->ai_addr, a->err, sizeof(a->err)) != 0)
		{
			a->refused = true;
			goto done;
		}
		if (inet_ntop(ai->ai_family, raw, addr, sizeof(addr)) == NULL)
			continue;
		snprintf(url, sizeof(url), ai->ai_family == AF_INET6 ? "nats://[%s]:%d" : "nats://%s:%d",
				 addr, n->port);
		for (int i = 0; i < nurls; i++)
			dup = dup || strcmp(urls[i], url) == 0;
		if (!dup)
			urls[nurls++] = xstrdup(url);
	}
	if (nurls == 0)
	{
		snprintf(a->err, sizeof(a->err), "nats sink \"%s\": host \"%s\" has no IPv4 or IPv6 "
				 "address", n->s->name, n->host);
		goto done;
	}
	if ((st = natsOptions_SetServers(a->opts, (const char **) urls, nurls)) != NATS_OK)
	{
		nats_sink_error_text(st, text, sizeof(text));
		snprintf(a->err, sizeof(a->err), "nats sink \"%s\": libnats refused the addresses of "
				 "\"%s\": %s", n->s->name, n->host, text);
		goto done;
	}
	st = natsConnection_Connect(&a->nc, a->opts);
	if (st != NATS_OK)
	{
		const char *hint = "is nats-server running and listening there?";

		nats_sink_error_text(st, text, sizeof(text));
		if (st == NATS_NOT_PERMITTED || strcasestr(text, "authorization"))
			hint = "check the user in the uri and password_env/password_file, or "
				"token_env/token_file, against the server's authorization";
		else if (st == NATS_SSL_ERROR || st == NATS_SECURE_CONNECTION_REQUIRED ||
				 st == NATS_SECURE_CONNECTION_WANTED)
			hint = n->tls.on ? "the server's certificate must name the host of the uri and be "
				"signed by a CA in ca_file (default: the system's bundle); is TLS enabled on the "
				"server?" : "the server wants TLS: use a nats+tls:// uri";
		snprintf(a->err, sizeof(a->err), "nats sink \"%s\": cannot connect to %s:%d: %s; %s",
				 n->s->name, n->host, n->port, text, hint);
		a->nc = NULL;
		goto done;
	}
	if ((st = natsInbox_Create(&inbox)) != NATS_OK)
		goto sub_fail;
	snprintf(a->inbox, sizeof(a->inbox), "%s", (const char *) inbox);
	natsInbox_Destroy(inbox);
	snprintf(subj, sizeof(subj), "%s.*", a->inbox);
	pthread_mutex_lock(&n->box->lock);
	n->box->refs++;				/* the subscription's, until on_sub_complete */
	pthread_mutex_unlock(&n->box->lock);
	st = natsConnection_Subscribe(&a->sub, a->nc, subj, on_reply, n->box);
	if (st != NATS_OK)
	{
		nats_sink_box_unref(n->box);		/* no subscription: no on-complete */
		goto sub_fail;
	}
	/* if this fails the subscription is gone already: its reference is kept (leaked) */
	if ((st = natsSubscription_SetOnCompleteCB(a->sub, on_sub_complete, n->box)) != NATS_OK)
		goto sub_fail;
	goto done;
sub_fail:
	nats_sink_error_text(st, text, sizeof(text));
	snprintf(a->err, sizeof(a->err), "nats sink \"%s\": connected to %s:%d but cannot subscribe "
			 "to its reply inbox: %s; the relay's user needs permission to subscribe to "
			 "_INBOX.>", n->s->name, n->host, n->port, text);
	if (a->sub)
		natsSubscription_Destroy(a->sub);
	if (a->nc)
		natsConnection_Destroy(a->nc);
	a->sub = NULL;
	a->nc = NULL;
done:
	if (res)
		freeaddrinfo(res);
	for (int i = 0; i < nurls; i++)
		free(urls[i]);
	pthread_mutex_lock(&n->box->lock);
	n->box->connect_done = true;
	pthread_mutex_unlock(&n->box->lock);
	nats_sink_box_wake(n->box);
	return NULL;
}

void
nats_sink_start_connect(struct nats_sink *n)
{
	struct sink *s = n->s;
	struct nats_attempt *a;
	char		err[1024];
	int			rc;

	/* a secret file may have been rotated since the last connection */
	if (nats_sink_read_secrets(n, err, sizeof(err)) != 0)
		log_warning("%s; connecting with the one read before", err);
	a = xcalloc(sizeof(*a));
	a->n = n;
	if ((a->opts = nats_sink_options(n, err, sizeof(err))) == NULL)
	{
		free(a);
		sink_link_retry(&n->link, err, 0);
		return;
	}
	n->box->connect_done = false;
	rc = pthread_create(&n->thread, NULL, nats_connect_main, a);
	if (rc != 0)
	{
		snprintf(err, sizeof(err), "nats sink \"%s\": cannot start a thread to connect: %s",
				 s->name, strerror(rc));
		natsOptions_Destroy(a->opts);
		free(a);
		sink_link_retry(&n->link, err, 0);
		return;
	}
	n->attempt = a;
	n->connecting = true;
}

/* The helper thread has finished: take its connection, or its failure. */
void
nats_sink_finish_connect(struct nats_sink *n)
{
	struct nats_attempt *a = n->attempt;

	pthread_join(n->thread, NULL);
	n->connecting = false;
	n->attempt = NULL;
	natsOptions_Destroy(a->opts);
	if (a->refused)
		nats_refuse(n, a->err);
	else if (a->nc == NULL)
		sink_link_retry(&n->link, a->err, 0);
	else
	{
		char		where[300];

		n->nc = a->nc;
		n->sub = a->sub;
		snprintf(n->inbox, sizeof(n->inbox), "%s", a->inbox);
		n->max_payload = natsConnection_GetMaxPayload(n->nc);
		n->probing = true;
		snprintf(where, sizeof(where), "%s:%d", n->host, n->port);
		sink_link_up(&n->link, where);
	}
	free(a);
}

