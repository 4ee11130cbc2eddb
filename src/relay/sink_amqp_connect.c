/*
 * sink_amqp_connect.c — the RabbitMQ sink's connection (see sink_amqp.c for
 * the whole): connecting, checking where the socket leads against the
 * policy, logging in, opening the channel in confirm mode, checking or
 * declaring the exchange, and what each refusal of the broker means for
 * the operator. Synchronous, each step bounded by connect_timeout_ms;
 * called from poll when the link's backoff says it is time.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>

#include "log.h"
#include "sink_amqp.h"
#include "sink_policy.h"

/* ---- logging ----------------------------------------------------------- */

/* rabbitmq-c's text, with the system's reason for a socket error */
const char *
amqp_sink_status_text(int rc, int err)
{
	static char buf[256];

	if ((rc == AMQP_STATUS_SOCKET_ERROR || rc == AMQP_STATUS_TCP_ERROR) && err != 0 &&
		err != EINPROGRESS)
		snprintf(buf, sizeof(buf), "%s (%s)", amqp_error_string2(rc), strerror(err));
	else
		snprintf(buf, sizeof(buf), "%s", amqp_error_string2(rc));
	return buf;
}

/* ---- the connection ---------------------------------------------------- */

void
amqp_sink_drop(struct amqp_sink *a)
{
	if (a->conn)
		amqp_destroy_connection(a->conn);
	a->conn = NULL;
	a->fd = -1;
	a->blocked = false;
	a->want_write = false;
	a->room = 0;
	a->corked = false;
	a->polled_ps = NULL;
	a->ret_state = 0;
}

void
amqp_sink_lost(struct sink *s, const char *fmt,...)
{
	struct amqp_sink *a = s->state;
	va_list		ap;

	amqp_sink_drop(a);
	va_start(ap, fmt);
	sink_link_down(&a->link, &a->ring, fmt, ap);
	va_end(ap);
}

/* Text the broker sent, as a short printable excerpt (it may end in a dead letter). */
void
amqp_sink_server_text(amqp_bytes_t b, char *out, size_t outsize)
{
	sink_excerpt((const char *) b.bytes, b.len, out,
				  outsize < SINK_EXCERPT_MAX + 1 ? outsize : SINK_EXCERPT_MAX + 1);
}

/* "404 NOT_FOUND - no exchange 'x' in vhost '/'" from a server's close */
static void
amqp_reply_text(amqp_rpc_reply_t r, char *buf, size_t len, int *code)
{
	*code = 0;
	switch (r.reply_type)
	{
		case AMQP_RESPONSE_NORMAL:
			snprintf(buf, len, "ok");
			break;
		case AMQP_RESPONSE_NONE:
			snprintf(buf, len, "no reply from the broker");
			break;
		case AMQP_RESPONSE_LIBRARY_EXCEPTION:
			snprintf(buf, len, "%s", amqp_error_string2(r.library_error));
			break;
		case AMQP_RESPONSE_SERVER_EXCEPTION:
			if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)
			{
				amqp_connection_close_t *m = r.reply.decoded;

				*code = m->reply_code;
				amqp_sink_server_text(m->reply_text, buf, len);
			}
			else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD)
			{
				amqp_channel_close_t *m = r.reply.decoded;

				*code = m->reply_code;
				amqp_sink_server_text(m->reply_text, buf, len);
			}
			else
				snprintf(buf, len, "unexpected method 0x%08x from the broker", r.reply.id);
			break;
	}
}

/* Why a step of connecting failed, and what to do about it. */
static void
amqp_setup_error(struct sink *s, const char *step, amqp_rpc_reply_t r, char *msg, size_t len)
{
	struct amqp_sink *a = s->state;
	char		text[256];
	int			code;

	amqp_reply_text(r, text, sizeof(text), &code);
	if (code == 403 && strcmp(step, "login") == 0)
		snprintf(msg, len, "amqp sink \"%s\": RabbitMQ at %s:%d refused the login of user \"%s\" "
				 "(%d %s): check the user name in the URI and the password in password_env/"
				 "password_file (rabbitmqctl authenticate_user USER PASSWORD tells)",
				 s->name, a->host, a->port, a->user, code, text);
	else if (code == 530 || (code == 403 && strcmp(step, "vhost") == 0))
		snprintf(msg, len, "amqp sink \"%s\": cannot open vhost \"%s\" as \"%s\" (%d %s): create "
				 "it (rabbitmqctl add_vhost NAME) and give the user rights on it (rabbitmqctl "
				 "set_permissions -p NAME USER '.*' '.*' '.*'); in the URI the vhost \"/\" is "
				 "written %%2f", s->name, a->vhost, a->user, code, text);
	else if (code == 404 && strcmp(step, "exchange") == 0)
		snprintf(msg, len, "amqp sink \"%s\": exchange \"%s\" does not exist in vhost \"%s\" "
				 "(%d %s): create it as a durable exchange (e.g. type topic, with your "
				 "deployment tooling or: rabbitmqadmin declare exchange name=%s type=topic "
				 "durable=true), or set the sink option {\"declare_exchange\": \"topic\"} to let "
				 "ordersyncd declare it", s->name, a->exchange, a->vhost, code, text, a->exchange);
	else if (code == 406 && strcmp(step, "exchange") == 0)
		snprintf(msg, len, "amqp sink \"%s\": exchange \"%s\" exists with other settings than "
				 "declare_exchange \"%s\", durable (%d %s): use its actual type in "
				 "declare_exchange, or leave declare_exchange out to use it as it is",
				 s->name, a->exchange, a->declare_type, code, text);
	else if (code == 403)
		snprintf(msg, len, "amqp sink \"%s\": user \"%s\" may not use exchange \"%s\" in vhost "
				 "\"%s\" (%d %s): grant it configure/write rights (rabbitmqctl set_permissions)",
				 s->name, a->user, a->exchange, a->vhost, code, text);
	else if (code)
		snprintf(msg, len, "amqp sink \"%s\": %s on %s:%d failed: %d %s", s->name, step,
				 a->host, a->port, code, text);
	else
		snprintf(msg, len, "amqp sink \"%s\": %s on %s:%d failed: %s; is RabbitMQ running and "
				 "reachable there?", s->name, step, a->host, a->port, text);
}

/* The policy refused the broker's address: for good (see the top of the file). */
static void
amqp_refuse(struct sink *s, const char *why)
{
	struct amqp_sink *a = s->state;

	amqp_sink_drop(a);
	sink_ring_return_all(&a->ring, s->host);
	sink_link_refuse(&a->link, why);
}

/* The address the socket is connected to must be one the policy allows. */
static int
amqp_check_connected(struct sink *s, char *why, size_t whylen)
{
	struct amqp_sink *a = s->state;
	struct sockaddr_storage peer;
	socklen_t	len = sizeof(peer);

	if (getpeername(amqp_get_sockfd(a->conn), (struct sockaddr *) &peer, &len) != 0)
	{
		snprintf(why, whylen, "amqp sink \"%s\": cannot tell where the connection to %s:%d "
				 "leads (getpeername: %s)", s->name, a->host, a->port, strerror(errno));
		return -1;
	}
	return sink_check_peer(s, (struct sockaddr *) &peer, why, whylen);
}

/*
 * Connect, log in, open the channel in confirm mode and check (or declare)
 * the exchange. Synchronous, each step bounded by connect_timeout_ms.
 */
void
amqp_sink_connect(struct sink *s)
{
	struct amqp_sink *a = s->state;
	struct timeval tv = amqp_sink_tv(s->opt.connect_timeout_ms);
	amqp_socket_t *sock;
	amqp_rpc_reply_t r;
	amqp_table_entry_t caps[2],
				props[2];
	amqp_table_t client;
	char		msg[1024];
	char		err[512];
	char		conn_name[300];
	int			rc;

	/* a password file may have been rotated since the last connection */
	if (sink_secret_given(s, "password"))
		(void) amqp_sink_read_password(s, a, err, sizeof(err));

	a->conn = amqp_new_connection();
	if (a->conn == NULL)
	{
		snprintf(msg, sizeof(msg), "amqp sink \"%s\": out of memory for a connection", s->name);
		goto fail;
	}
	sock = a->tls.on ? amqp_ssl_socket_new(a->conn) : amqp_tcp_socket_new(a->conn);
	if (sock == NULL)
	{
		snprintf(msg, sizeof(msg), "amqp sink \"%s\": cannot create a%s socket", s->name,
				 a->tls.on ? " TLS" : "");
		goto fail;
	}
	if (a->tls.on)
	{
		amqp_ssl_socket_set_verify_peer(sock, a->tls.verify_peer);
		amqp_ssl_socket_set_verify_hostname(sock, a->tls.verify_peer);
		if (a->tls.ca_file && amqp_ssl_socket_set_cacert(sock, a->tls.ca_file) != AMQP_STATUS_OK)
		{
			snprintf(msg, sizeof(msg), "amqp sink \"%s\": cannot load the CA certificates in "
					 "ca_file \"%s\": give a readable PEM file", s->name, a->tls.ca_file);
			goto fail;
		}
		if (a->tls.cert_file &&
			amqp_ssl_socket_set_key(sock, a->tls.cert_file, a->tls.key_file) != AMQP_STATUS_OK)
		{
			snprintf(msg, sizeof(msg), "amqp sink \"%s\": cannot load the client certificate "
					 "\"%s\" with key \"%s\": give readable PEM files that belong together",
					 s->name, a->tls.cert_file, a->tls.key_file);
			goto fail;
		}
	}
	amqp_set_handshake_timeout(a->conn, &tv);
	amqp_set_rpc_timeout(a->conn, &tv);
	/* refused addresses: before connecting when the name says so */
	if (sink_check_host(s, a->host, a->port, msg, sizeof(msg)) != 0)
	{
		amqp_refuse(s, msg);
		return;
	}
	errno = 0;
	rc = amqp_socket_open_noblock(sock, a->host, a->port, &tv);
	if (rc != AMQP_STATUS_OK)
	{
		const char *hint = "; is RabbitMQ running and listening there?";

		if (rc == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED)
			hint = ": the broker's certificate does not name this host (rabbitmq-c compares "
				"DNS names, not IP addresses: use the host name the certificate has)";
		else if (rc == AMQP_STATUS_SSL_PEER_VERIFY_FAILED)
			hint = ": the broker's certificate is not signed by a CA in ca_file (give the CA "
				"that signed it with {\"ca_file\": \"/path/ca.pem\"})";
		else if (rc == AMQP_STATUS_SSL_CONNECTION_FAILED || rc == AMQP_STATUS_SSL_ERROR)
			hint = ": TLS handshake failed; is that RabbitMQ's TLS listener (5671 by default, "
				"amqp:// for the plain one)?";
		snprintf(msg, sizeof(msg), "amqp sink \"%s\": cannot connect to %s:%d: %s%s", s->name,
				 a->host, a->port, amqp_sink_status_text(rc, errno), hint);
		goto fail;
	}

	/* ... and where it did connect, before the login sends anything */
	if (amqp_check_connected(s, msg, sizeof(msg)) != 0)
	{
		amqp_refuse(s, msg);
		return;
	}

	/*
	 * connection.blocked: RabbitMQ tells us when an alarm stops publishers,
	 * instead of just not reading (which would block in basic.publish).
	 */
	caps[0].key = amqp_cstring_bytes("connection.blocked");
	caps[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
	caps[0].value.value.boolean = 1;
	caps[1].key = amqp_cstring_bytes("authentication_failure_close");
	caps[1].value.kind = AMQP_FIELD_KIND_BOOLEAN;
	caps[1].value.value.boolean = 1;
	snprintf(conn_name, sizeof(conn_name), "ordersyncd %s", s->name);
	props[0].key = amqp_cstring_bytes("capabilities");
	props[0].value.kind = AMQP_FIELD_KIND_TABLE;
	props[0].value.value.table.num_entries = 2;
	props[0].value.value.table.entries = caps;
	props[1].key = amqp_cstring_bytes("connection_name");
	props[1].value.kind = AMQP_FIELD_KIND_UTF8;
	props[1].value.value.bytes = amqp_cstring_bytes(conn_name);
	client.num_entries = 2;
	client.entries = props;
	r = amqp_login_with_properties(a->conn, a->vhost, 0, AMQP_DEFAULT_FRAME_SIZE, a->heartbeat_s,
								   &client, AMQP_SASL_METHOD_PLAIN, a->user, a->password);
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
	{
		int			code;

		amqp_reply_text(r, err, sizeof(err), &code);
		amqp_setup_error(s, code == 530 || (code == 403 && strstr(err, "vhost")) ? "vhost" : "login",
						 r, msg, sizeof(msg));
		goto fail;
	}
	amqp_channel_open(a->conn, AMQP_SINK_CHANNEL);
	r = amqp_get_rpc_reply(a->conn);
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
	{
		amqp_setup_error(s, "opening a channel", r, msg, sizeof(msg));
		goto fail;
	}
	amqp_confirm_select(a->conn, AMQP_SINK_CHANNEL);
	r = amqp_get_rpc_reply(a->conn);
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
	{
		amqp_setup_error(s, "confirm.select", r, msg, sizeof(msg));
		goto fail;
	}
	amqp_exchange_declare(a->conn, AMQP_SINK_CHANNEL, amqp_cstring_bytes(a->exchange),
						  a->declare_type ? amqp_cstring_bytes(a->declare_type) : amqp_empty_bytes,
						  a->declare_type == NULL, 1, 0, 0, amqp_empty_table);
	r = amqp_get_rpc_reply(a->conn);
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
	{
		amqp_setup_error(s, "exchange", r, msg, sizeof(msg));
		goto fail;
	}

	a->fd = amqp_get_sockfd(a->conn);
	a->heartbeat = amqp_get_heartbeat(a->conn);
	a->last_rx_ms = sink_now_ms();
	/* a channel's delivery tags start at 1 */
	sink_ring_restart(&a->ring, 1);
	snprintf(msg, sizeof(msg), "%s:%d vhost \"%s\", exchange \"%s\"%s", a->host, a->port,
			 a->vhost, a->exchange, a->declare_type ? " (declared)" : "");
	sink_link_up(&a->link, msg);
	return;

fail:
	amqp_sink_drop(a);
	sink_link_retry(&a->link, msg, 0);
}

