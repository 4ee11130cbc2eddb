/*
 * amqp_ref.c — the reference bench/sinks/amqp.sh measures ordersyncd's AMQP
 * sink against: the smallest rabbitmq-c publisher that does what the sink
 * promises, so "relay / reference" says how close the sink gets to what
 * this broker, this library and this machine allow.
 *
 * It publishes COUNT persistent messages (delivery_mode 2) of SIZE bytes
 * each, mandatory, to EXCHANGE with routing key KEY, on one channel in
 * confirm mode, with at most WINDOW messages unconfirmed at a time; the
 * same properties the sink sets (content type, message_id, type, app_id).
 * A message counts once a basic.ack covers it (multiple acks included);
 * a nack or a return is an error. Between publishes it reads whatever
 * confirms have arrived without waiting; with the window full it waits for
 * the next frame. Nothing else: no reconnects, no retries, no bookkeeping
 * per subject.
 *
 *   RMQ_PASSWORD=... amqp_ref HOST PORT USER EXCHANGE KEY COUNT SIZE WINDOW
 *
 * Prints one line: "COUNT SECONDS MSGS_PER_S", timed from the first
 * publish to the last confirm (the connection and channel set-up are not
 * counted). Exit 0 when every message was confirmed.
 *
 * Build: cc -O2 -o amqp_ref amqp_ref.c -lrabbitmq
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

static amqp_connection_state_t conn;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
die_reply(amqp_rpc_reply_t r, const char *what)
{
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return;
	if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
		fprintf(stderr, "amqp_ref: %s: %s\n", what, amqp_error_string2(r.library_error));
	else
		fprintf(stderr, "amqp_ref: %s: refused by the broker\n", what);
	exit(1);
}

int
main(int argc, char **argv)
{
	const char *pass = getenv("RMQ_PASSWORD");
	amqp_socket_t *sock;
	amqp_basic_properties_t props;
	amqp_bytes_t body,
				exchange,
				key;
	uint64_t	count,
				size,
				window,
				sent = 0,		/* delivery tags 1..sent are published */
				acked = 0;		/* tags 1..acked are confirmed */
	char	   *payload;
	char		id[64];
	double		t0,
				t;
	struct timeval tv = {10, 0};

	if (argc != 9 || pass == NULL)
	{
		fprintf(stderr, "usage: RMQ_PASSWORD=p amqp_ref HOST PORT USER EXCHANGE KEY COUNT SIZE WINDOW\n");
		return 2;
	}
	count = strtoull(argv[6], NULL, 10);
	size = strtoull(argv[7], NULL, 10);
	window = strtoull(argv[8], NULL, 10);
	if (count == 0 || size == 0 || window == 0)
	{
		fprintf(stderr, "amqp_ref: COUNT, SIZE and WINDOW must be positive\n");
		return 2;
	}

	/* a JSON-looking body of exactly SIZE bytes */
	payload = malloc(size);
	if (payload == NULL)
		return 1;
	memset(payload, 'x', size);
	if (size >= 16)
	{
		memcpy(payload, "{\"pad\":\"", 8);
		memcpy(payload + size - 2, "\"}", 2);
	}
	body.bytes = payload;
	body.len = size;
	exchange = amqp_cstring_bytes(argv[4]);
	key = amqp_cstring_bytes(argv[5]);

	conn = amqp_new_connection();
	sock = amqp_tcp_socket_new(conn);
	if (sock == NULL || amqp_socket_open_noblock(sock, argv[1], atoi(argv[2]), &tv) != AMQP_STATUS_OK)
	{
		fprintf(stderr, "amqp_ref: cannot connect to %s:%s\n", argv[1], argv[2]);
		return 1;
	}
	die_reply(amqp_login(conn, "/", 0, AMQP_DEFAULT_FRAME_SIZE, 0, AMQP_SASL_METHOD_PLAIN, argv[3], pass),
			  "login");
	amqp_channel_open(conn, 1);
	die_reply(amqp_get_rpc_reply(conn), "channel.open");
	amqp_confirm_select(conn, 1);
	die_reply(amqp_get_rpc_reply(conn), "confirm.select");

	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
		AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_APP_ID_FLAG;
	props.content_type = amqp_cstring_bytes("application/cloudevents+json");
	props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
	props.app_id = amqp_cstring_bytes("amqp_ref");
	props.type = key;

	t0 = now_s();
	while (acked < count)
	{
		amqp_frame_t f;
		struct timeval zero = {0, 0};
		int			rc;

		/* publish while the window has room */
		while (sent < count && sent - acked < window)
		{
			/* an id shaped like the relay's: commit LSN / ordinal */
			snprintf(id, sizeof(id), "0/%" PRIX64 "/%" PRIu64, 0x1000000 + sent / 5 * 256, sent % 5);
			props.message_id = amqp_cstring_bytes(id);
			rc = amqp_basic_publish(conn, 1, exchange, key, 1, 0, &props, body);
			if (rc != AMQP_STATUS_OK)
			{
				fprintf(stderr, "amqp_ref: publish: %s\n", amqp_error_string2(rc));
				return 1;
			}
			sent++;
			/* take confirms that are already here, without waiting */
			if (!amqp_data_in_buffer(conn) && !amqp_frames_enqueued(conn))
			{
				rc = amqp_simple_wait_frame_noblock(conn, &f, &zero);
				if (rc == AMQP_STATUS_TIMEOUT)
					continue;
			}
			else
				rc = amqp_simple_wait_frame(conn, &f);
			goto have_frame;
		}
		/* window full or all published: wait for the next confirm */
		rc = amqp_simple_wait_frame(conn, &f);
have_frame:
		if (rc != AMQP_STATUS_OK)
		{
			fprintf(stderr, "amqp_ref: reading: %s\n", amqp_error_string2(rc));
			return 1;
		}
		if (f.frame_type != AMQP_FRAME_METHOD)
			continue;
		if (f.payload.method.id == AMQP_BASIC_ACK_METHOD)
		{
			amqp_basic_ack_t *a = f.payload.method.decoded;

			if (a->multiple)
				acked = a->delivery_tag > acked ? a->delivery_tag : acked;
			else if (a->delivery_tag == acked + 1)
				acked++;
			else
			{
				/* a single ack out of tag order: not what RabbitMQ does */
				fprintf(stderr, "amqp_ref: ack %" PRIu64 " after %" PRIu64 "\n", a->delivery_tag, acked);
				return 1;
			}
		}
		else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD)
		{
			fprintf(stderr, "amqp_ref: the broker nacked a message\n");
			return 1;
		}
		else if (f.payload.method.id == AMQP_BASIC_RETURN_METHOD)
		{
			fprintf(stderr, "amqp_ref: a message was returned (no queue bound for \"%s\")\n", argv[5]);
			return 1;
		}
		else if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
				 f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)
		{
			fprintf(stderr, "amqp_ref: the broker closed the channel\n");
			return 1;
		}
		amqp_maybe_release_buffers(conn);
	}
	t = now_s() - t0;
	printf("%" PRIu64 " %.3f %.0f\n", count, t, (double) count / t);
	amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(conn);
	free(payload);
	return 0;
}
