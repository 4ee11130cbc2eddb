#!/usr/bin/env bash
# test/integration/rabbitmq.sh — a throwaway RabbitMQ node (Debian's
# rabbitmq-server 3.10) for the AMQP sink's tests and benchmark.
#
#   test/integration/rabbitmq.sh start DIR PORT USER PASS [TLSPORT]
#   test/integration/rabbitmq.sh stop DIR      # polite stop (SIGTERM), waits
#   test/integration/rabbitmq.sh kill DIR      # kill -9 of the node
#   test/integration/rabbitmq.sh ctl DIR ARGS  # rabbitmqctl against the node
#   test/integration/rabbitmq.sh amqp DIR CMD ARGS  # the AMQP helper below
#
# The AMQP helper (C, rabbitmq-c, built into DIR at the first start) speaks
# AMQP to the node as USER, as a consumer or an operator would:
#   declare-exchange NAME TYPE      durable exchange
#   exchange-exists NAME            exit 0 when it exists (passive declare)
#   queue NAME EXCHANGE KEY...      durable queue, bound with each binding key
#   count QUEUE                     messages ready in the queue
#   purge QUEUE                     empty the queue
#   drain QUEUE                     take every message (auto-ack), one line
#                                   each: routing key, delivery mode, content
#                                   type, message id, type, body (tabs)
#
# The node is named os<PORT>@localhost, listens for AMQP on 127.0.0.1:PORT
# (and AMQPS on TLSPORT when given, with DIR/tls/server.{pem,key} signed by
# DIR/tls/ca.pem, made with openssl at the first start: the certificate
# names localhost and 127.0.0.1), for Erlang distribution on
# 127.0.0.1:PORT+1, and keeps everything (database, logs, Erlang cookie,
# config) in DIR: 'start' again on the same DIR restarts the same node with
# its durable exchanges, queues and messages. USER/PASS is created at the
# first start (default_user), with all rights on vhost "/".
#
# It does not touch, depend on or stop the package's own node (rabbit@host on
# 5672, which Debian's postinst may have started): a different node name,
# ports, cookie and data directory. The one thing shared is epmd on its
# standard port 4369: the first Erlang node on the machine starts it and it
# stays (bound to 127.0.0.1 when it is ours); that is how Erlang works.
# Runs the node as the calling user (root in CI is fine for Erlang).
set -uo pipefail

RMQ_LIB=/usr/lib/rabbitmq/bin
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,21p' "$0" >&2; exit 2; }
[ -x "$RMQ_LIB/rabbitmq-server" ] || {
	echo "rabbitmq.sh: $RMQ_LIB/rabbitmq-server not found: install Debian's rabbitmq-server (scripts/deps.sh)" >&2
	exit 1
}

# rmq_env: the environment every RabbitMQ script of this node needs. HOME
# holds the node's own Erlang cookie, so the CLI tools reach this node and
# never the package's.
rmq_env() {
	local port
	port=$(cat "$dir/port")
	export HOME="$dir"
	export RABBITMQ_NODENAME="os$port@localhost"
	export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
	export RABBITMQ_NODE_PORT=$port
	export RABBITMQ_DIST_PORT=$((port + 1))
	export RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf"
	export RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf"
	export RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config"
	export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
	export RABBITMQ_MNESIA_BASE="$dir/mnesia"
	export RABBITMQ_LOG_BASE="$dir/log"
	export RABBITMQ_PID_FILE="$dir/beam.pid"
	# Erlang distribution and (when this call starts it) epmd on loopback only
	export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
	export ERL_EPMD_ADDRESS=127.0.0.1
	unset RABBITMQ_ENV_LOADED
	NODE=$RABBITMQ_NODENAME
}

ctl() {
	rmq_env
	"$RMQ_LIB/rabbitmqctl" -n "$NODE" "$@"
}

beam_pid() { cat "$dir/beam.pid" 2>/dev/null; }
alive() { local p; p=$(beam_pid); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

# wait_gone SECS: until the node's Erlang VM and its wrapper have exited
wait_gone() {
	local i p w
	p=$(beam_pid)
	w=$(cat "$dir/wrapper.pid" 2>/dev/null)
	for ((i = 0; i < $1 * 10; i++)); do
		{ [ -z "$p" ] || ! kill -0 "$p" 2>/dev/null; } &&
			{ [ -z "$w" ] || ! kill -0 "$w" 2>/dev/null; } && return 0
		sleep 0.1
	done
	return 1
}

# build_tool: DIR/rmqtool from the source below (librabbitmq-dev, as the relay)
build_tool() {
	[ -x "$dir/rmqtool" ] && return 0
	cat >"$dir/rmqtool.c" <<'C'
/* rmqtool — the test's own AMQP client: see test/integration/rabbitmq.sh. */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static amqp_connection_state_t conn;

static void
check(amqp_rpc_reply_t r, const char *what)
{
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return;
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
		(r.reply.id == AMQP_CHANNEL_CLOSE_METHOD || r.reply.id == AMQP_CONNECTION_CLOSE_METHOD))
	{
		amqp_channel_close_t *m = r.reply.decoded;	/* same layout for both */

		fprintf(stderr, "rmqtool: %s: %d %.*s\n", what, m->reply_code,
				(int) m->reply_text.len, (char *) m->reply_text.bytes);
	}
	else
		fprintf(stderr, "rmqtool: %s: %s\n", what,
				r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION ? amqp_error_string2(r.library_error) : "failed");
	exit(1);
}

/* body on one line: JSON whitespace outside strings is all a newline can be */
static void
put_clean(amqp_bytes_t b)
{
	for (size_t i = 0; i < b.len; i++)
	{
		char		c = ((char *) b.bytes)[i];

		putchar(c == '\n' || c == '\t' || c == '\r' ? ' ' : c);
	}
}

int
main(int argc, char **argv)
{
	const char *user = getenv("RMQ_USER"),
			   *pass = getenv("RMQ_PASSWORD");
	amqp_socket_t *sock;
	struct timeval tv = {10, 0};

	if (argc < 3 || !user || !pass)
	{
		fprintf(stderr, "usage: RMQ_USER=u RMQ_PASSWORD=p rmqtool PORT CMD ARGS\n");
		return 2;
	}
	conn = amqp_new_connection();
	sock = amqp_tcp_socket_new(conn);
	if (amqp_socket_open_noblock(sock, "127.0.0.1", atoi(argv[1]), &tv) != AMQP_STATUS_OK)
	{
		fprintf(stderr, "rmqtool: cannot connect to 127.0.0.1:%s\n", argv[1]);
		return 1;
	}
	check(amqp_login(conn, "/", 0, AMQP_DEFAULT_FRAME_SIZE, 0, AMQP_SASL_METHOD_PLAIN, user, pass), "login");
	amqp_channel_open(conn, 1);
	check(amqp_get_rpc_reply(conn), "channel.open");
	if (strcmp(argv[2], "declare-exchange") == 0 && argc == 5)
	{
		amqp_exchange_declare(conn, 1, amqp_cstring_bytes(argv[3]), amqp_cstring_bytes(argv[4]),
							  0, 1, 0, 0, amqp_empty_table);
		check(amqp_get_rpc_reply(conn), "exchange.declare");
	}
	else if (strcmp(argv[2], "exchange-exists") == 0 && argc == 4)
	{
		amqp_exchange_declare(conn, 1, amqp_cstring_bytes(argv[3]), amqp_empty_bytes,
							  1, 0, 0, 0, amqp_empty_table);
		if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL)
			return 1;
	}
	else if (strcmp(argv[2], "queue") == 0 && argc >= 6)
	{
		amqp_queue_declare(conn, 1, amqp_cstring_bytes(argv[3]), 0, 1, 0, 0, amqp_empty_table);
		check(amqp_get_rpc_reply(conn), "queue.declare");
		for (int i = 5; i < argc; i++)
		{
			amqp_queue_bind(conn, 1, amqp_cstring_bytes(argv[3]), amqp_cstring_bytes(argv[4]),
							amqp_cstring_bytes(argv[i]), amqp_empty_table);
			check(amqp_get_rpc_reply(conn), "queue.bind");
		}
	}
	else if (strcmp(argv[2], "count") == 0 && argc == 4)
	{
		amqp_queue_declare_ok_t *ok = amqp_queue_declare(conn, 1, amqp_cstring_bytes(argv[3]),
														 1, 0, 0, 0, amqp_empty_table);

		check(amqp_get_rpc_reply(conn), "queue.declare passive");
		printf("%u\n", ok->message_count);
	}
	else if (strcmp(argv[2], "purge") == 0 && argc == 4)
	{
		amqp_queue_purge(conn, 1, amqp_cstring_bytes(argv[3]));
		check(amqp_get_rpc_reply(conn), "queue.purge");
	}
	else if (strcmp(argv[2], "drain") == 0 && argc == 4)
	{
		for (;;)
		{
			amqp_rpc_reply_t r = amqp_basic_get(conn, 1, amqp_cstring_bytes(argv[3]), 1);
			amqp_basic_get_ok_t *ok;
			amqp_message_t msg;
			amqp_basic_properties_t *p;

			check(r, "basic.get");
			if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
				break;
			ok = r.reply.decoded;
			printf("%.*s\t", (int) ok->routing_key.len, (char *) ok->routing_key.bytes);
			check(amqp_read_message(conn, 1, &msg, 0), "reading a message");
			p = &msg.properties;
			printf("%d\t%.*s\t%.*s\t%.*s\t",
				   (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG) ? p->delivery_mode : 0,
				   (p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG) ? (int) p->content_type.len : 0,
				   (char *) p->content_type.bytes,
				   (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) ? (int) p->message_id.len : 0,
				   (char *) p->message_id.bytes,
				   (p->_flags & AMQP_BASIC_TYPE_FLAG) ? (int) p->type.len : 0, (char *) p->type.bytes);
			put_clean(msg.body);
			putchar('\n');
			amqp_destroy_message(&msg);
			amqp_maybe_release_buffers(conn);
		}
	}
	else
	{
		fprintf(stderr, "rmqtool: unknown command or arguments: %s\n", argv[2]);
		return 2;
	}
	amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(conn);
	return 0;
}
C
	cc -O1 -Wall -Werror -o "$dir/rmqtool" "$dir/rmqtool.c" -lrabbitmq ||
		{ echo "rabbitmq.sh: cannot build the AMQP helper: install librabbitmq-dev" >&2; return 1; }
}

case "$cmd" in
start)
	port=${3:?port required}
	user=${4:?user required}
	pass=${5:?password required}
	tlsport=${6:-}
	mkdir -p "$dir/log" "$dir/mnesia"
	echo "$port" >"$dir/port"
	printf '%s\n%s\n' "$user" "$pass" >"$dir/user"
	chmod 0600 "$dir/user"
	build_tool || exit 1
	rmq_env
	if alive; then
		echo "rabbitmq.sh: node $NODE is already running (pid $(beam_pid))" >&2
		exit 1
	fi
	for p in $port $((port + 1)) $tlsport; do
		if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "rabbitmq.sh: port $p is in use (a node left over from an earlier run? 'epmd -names'" \
				"lists Erlang nodes; 'ss -ltnp' shows the process): stop it, then run again" >&2
			exit 1
		fi
	done
	if [ ! -f "$dir/.erlang.cookie" ]; then
		# a cookie of our own: the CLI then talks to this node only
		head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/.erlang.cookie"
		chmod 0400 "$dir/.erlang.cookie"
	fi
	if [ -n "$tlsport" ] && [ ! -f "$dir/tls/server.pem" ]; then
		mkdir -p "$dir/tls"
		(
			cd "$dir/tls" &&
				openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3 \
					-subj "/CN=ordersync test CA" &&
				openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" &&
				printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >ext &&
				openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
					-out server.pem -days 3 -extfile ext
		) >"$dir/log/openssl.log" 2>&1 || {
			echo "rabbitmq.sh: cannot make test certificates with openssl:" >&2
			cat "$dir/log/openssl.log" >&2
			exit 1
		}
	fi
	: >"$dir/rabbitmq-env.conf"
	echo '[].' >"$dir/enabled_plugins"
	{
		echo "listeners.tcp.1 = 127.0.0.1:$port"
		if [ -n "$tlsport" ]; then
			echo "listeners.ssl.1 = 127.0.0.1:$tlsport"
			echo "ssl_options.cacertfile = $dir/tls/ca.pem"
			echo "ssl_options.certfile = $dir/tls/server.pem"
			echo "ssl_options.keyfile = $dir/tls/server.key"
			echo "ssl_options.verify = verify_none"
			echo "ssl_options.fail_if_no_peer_cert = false"
		fi
		echo "loopback_users = none"
		echo "default_vhost = /"
		echo "default_user = $user"
		echo "default_pass = $pass"
		echo "default_permissions.configure = .*"
		echo "default_permissions.read = .*"
		echo "default_permissions.write = .*"
		echo "default_user_tags.administrator = true"
		# test machines have little free disk; the default alarm (50 MB) is fine,
		# but never let a full /tmp block publishers forever in a test
		echo "disk_free_limit.absolute = 10MB"
		echo "log.console = false"
		echo "log.file.level = info"
	} >"$dir/rabbitmq.conf"
	chmod 0600 "$dir/rabbitmq.conf"
	rm -f "$dir/beam.pid"
	setsid "$RMQ_LIB/rabbitmq-server" >>"$dir/log/server.out" 2>&1 </dev/null &
	echo $! >"$dir/wrapper.pid"
	# The AMQP listener opens at the very end of the boot; await_startup then
	# confirms the whole application is up.
	ok=
	for ((i = 0; i < 600; i++)); do
		if ! kill -0 "$(cat "$dir/wrapper.pid")" 2>/dev/null; then
			break
		fi
		if alive && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			ok=1
			break
		fi
		sleep 0.1
	done
	if [ -z "$ok" ] || ! "$RMQ_LIB/rabbitmqctl" -n "$NODE" -q await_startup --timeout 30 >>"$dir/log/ctl.out" 2>&1; then
		echo "rabbitmq.sh: node $NODE did not start on port $port; last lines of its logs:" >&2
		tail -n 15 "$dir/log/server.out" "$dir/log/$NODE.log" "$dir/log/ctl.out" 2>/dev/null >&2
		kill -9 "$(beam_pid)" "$(cat "$dir/wrapper.pid")" 2>/dev/null
		exit 1
	fi
	;;
stop)
	[ -f "$dir/port" ] || exit 0
	rmq_env
	alive || exit 0
	# SIGTERM makes RabbitMQ stop politely (closes connections, syncs queues)
	kill -TERM "$(beam_pid)" 2>/dev/null
	if ! wait_gone 30; then
		echo "rabbitmq.sh: node $NODE did not stop in 30 s; killing it" >&2
		kill -9 "$(beam_pid)" "$(cat "$dir/wrapper.pid" 2>/dev/null)" 2>/dev/null
		wait_gone 5
	fi
	;;
kill)
	[ -f "$dir/port" ] || exit 0
	rmq_env
	kill -9 "$(beam_pid)" 2>/dev/null
	wait_gone 10
	;;
ctl)
	shift 2
	ctl "$@"
	;;
amqp)
	shift 2
	build_tool || exit 1
	RMQ_USER=$(sed -n 1p "$dir/user") RMQ_PASSWORD=$(sed -n 2p "$dir/user") \
		"$dir/rmqtool" "$(cat "$dir/port")" "$@"
	;;
*)
	sed -n '2,21p' "$0" >&2
	exit 2
	;;
esac
