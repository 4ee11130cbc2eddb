#!/usr/bin/env bash
# test/integration/nats.sh — a throwaway NATS server with JetStream (Debian's
# nats-server) for the NATS JetStream sink's tests and benchmark.
#
#   test/integration/nats.sh start DIR PORT [USER PASS]
#   test/integration/nats.sh stop DIR       # polite stop (SIGTERM), waits
#   test/integration/nats.sh kill DIR       # kill -9 of the server
#   test/integration/nats.sh restart DIR    # stop, then start on the same DIR
#   test/integration/nats.sh url DIR        # nats://127.0.0.1:PORT
#   test/integration/nats.sh js DIR CMD ARGS  # the JetStream helper below
#
# The JetStream helper (C, libnats, built into DIR at the first start)
# talks to the server as a client would:
#   add-stream NAME SUBJECT DUP_SECONDS   file-stored stream NAME on SUBJECT
#                                   (wildcards allowed, e.g. "orders.>"),
#                                   duplicate window DUP_SECONDS: a message
#                                   whose Nats-Msg-Id was seen within it is
#                                   acknowledged but not stored again
#   count NAME                      messages in the stream
#   last-seq NAME                   the stream's last sequence number
#   purge NAME                      remove every message of the stream
#   delete NAME                     remove the stream
#   ids NAME                        every message's Nats-Msg-Id, one a line,
#                                   in stream order (to check order and
#                                   exactly-once)
#
# The server listens for clients on 127.0.0.1:PORT and for monitoring on
# 127.0.0.1:PORT+1 (/healthz is what 'start' waits for), keeps its
# JetStream store, config, pid file and log in DIR: 'start' again on the
# same DIR (or 'restart') brings back the same server with its streams and
# messages. With USER PASS the server requires them (kept in DIR/user for
# the helper); without, it accepts any client on loopback. Runs as the
# calling user; needs nats-server and libnats-dev (scripts/deps.sh).
set -uo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,33p' "$0" >&2; exit 2; }
NATS_SERVER=$(command -v nats-server || echo /usr/bin/nats-server)
[ -x "$NATS_SERVER" ] || {
	echo "nats.sh: nats-server not found: install Debian's nats-server (scripts/deps.sh)" >&2
	exit 1
}

pid() { cat "$dir/nats.pid" 2>/dev/null; }
alive() { local p; p=$(pid); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

# wait_gone SECS: until the server process has exited
wait_gone() {
	local i p
	p=$(pid)
	[ -n "$p" ] || return 0
	for ((i = 0; i < $1 * 10; i++)); do
		kill -0 "$p" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# build_tool: DIR/natstool from the source below (libnats-dev, as the sink)
build_tool() {
	[ -x "$dir/natstool" ] && return 0
	cat >"$dir/natstool.c" <<'C'
/* natstool — the test's own JetStream client: see test/integration/nats.sh. */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
check(natsStatus s, jsErrCode jerr, const char *what)
{
	if (s == NATS_OK)
		return;
	fprintf(stderr, "natstool: %s: %s (%s, JetStream error %d)\n", what,
			nats_GetLastError(NULL) ? nats_GetLastError(NULL) : "failed", natsStatus_GetText(s), (int) jerr);
	exit(1);
}

static jsStreamInfo *
info(jsCtx *js, const char *name)
{
	jsStreamInfo *si = NULL;
	jsErrCode	jerr = 0;

	check(js_GetStreamInfo(&si, js, name, NULL, &jerr), jerr, "stream info");
	return si;
}

int
main(int argc, char **argv)
{
	const char *user = getenv("NATS_USER"),
			   *pass = getenv("NATS_PASSWORD");
	natsOptions *o = NULL;
	natsConnection *nc = NULL;
	jsCtx	   *js = NULL;
	jsErrCode	jerr = 0;
	char		url[64];

	if (argc < 4)
	{
		fprintf(stderr, "usage: natstool PORT CMD STREAM ARGS\n");
		return 2;
	}
	snprintf(url, sizeof(url), "nats://127.0.0.1:%s", argv[1]);
	check(natsOptions_Create(&o), 0, "options");
	natsOptions_SetURL(o, url);
	natsOptions_SetTimeout(o, 10000);
	if (user && *user)
		natsOptions_SetUserInfo(o, user, pass);
	check(natsConnection_Connect(&nc, o), 0, "connect");
	check(natsConnection_JetStream(&js, nc, NULL), 0, "jetstream");
	if (strcmp(argv[2], "add-stream") == 0 && argc == 6)
	{
		jsStreamConfig cfg;
		jsStreamInfo *si = NULL;
		const char *subjects[1] = {argv[4]};

		jsStreamConfig_Init(&cfg);
		cfg.Name = argv[3];
		cfg.Subjects = subjects;
		cfg.SubjectsLen = 1;
		cfg.Storage = js_FileStorage;
		cfg.Duplicates = (int64_t) atoll(argv[5]) * 1000000000LL;	/* ns */
		check(js_AddStream(&si, js, &cfg, NULL, &jerr), jerr, "add stream");
		jsStreamInfo_Destroy(si);
	}
	else if (strcmp(argv[2], "count") == 0 && argc == 4)
	{
		jsStreamInfo *si = info(js, argv[3]);

		printf("%llu\n", (unsigned long long) si->State.Msgs);
		jsStreamInfo_Destroy(si);
	}
	else if (strcmp(argv[2], "last-seq") == 0 && argc == 4)
	{
		jsStreamInfo *si = info(js, argv[3]);

		printf("%llu\n", (unsigned long long) si->State.LastSeq);
		jsStreamInfo_Destroy(si);
	}
	else if (strcmp(argv[2], "purge") == 0 && argc == 4)
		check(js_PurgeStream(js, argv[3], NULL, &jerr), jerr, "purge");
	else if (strcmp(argv[2], "delete") == 0 && argc == 4)
		check(js_DeleteStream(js, argv[3], NULL, &jerr), jerr, "delete");
	else if (strcmp(argv[2], "ids") == 0 && argc == 4)
	{
		jsStreamInfo *si = info(js, argv[3]);

		for (uint64_t seq = si->State.FirstSeq; si->State.Msgs > 0 && seq <= si->State.LastSeq; seq++)
		{
			natsMsg    *m = NULL;
			const char *id = NULL;
			natsStatus	s = js_GetMsg(&m, js, argv[3], seq, NULL, &jerr);

			if (s == NATS_NOT_FOUND)
				continue;		/* deleted */
			check(s, jerr, "get message");
			if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) != NATS_OK)
				id = "-";
			printf("%s\n", id);
			natsMsg_Destroy(m);
		}
		jsStreamInfo_Destroy(si);
	}
	else
	{
		fprintf(stderr, "natstool: unknown command or arguments: %s\n", argv[2]);
		return 2;
	}
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	natsOptions_Destroy(o);
	nats_Close();
	return 0;
}
C
	cc -O1 -Wall -Werror -o "$dir/natstool" "$dir/natstool.c" -lnats ||
		{ echo "nats.sh: cannot build the JetStream helper: install libnats-dev" >&2; return 1; }
}

# start_server: start nats-server on DIR's config, wait until it is healthy
start_server() {
	local port mport i
	port=$(cat "$dir/port")
	mport=$((port + 1))
	if alive; then
		echo "nats.sh: the server of $dir is already running (pid $(pid))" >&2
		return 1
	fi
	for p in $port $mport; do
		if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "nats.sh: port $p is in use (a server left over from an earlier run? 'ss -ltnp'" \
				"shows the process): stop it, then run again" >&2
			return 1
		fi
	done
	rm -f "$dir/nats.pid"
	setsid "$NATS_SERVER" -c "$dir/nats.conf" >>"$dir/server.out" 2>&1 </dev/null &
	echo $! >"$dir/wrapper.pid"
	# /healthz answers 200 once the server and JetStream are up
	for ((i = 0; i < 300; i++)); do
		if ! kill -0 "$(cat "$dir/wrapper.pid")" 2>/dev/null; then
			break
		fi
		if curl -sf -o /dev/null "http://127.0.0.1:$mport/healthz"; then
			return 0
		fi
		sleep 0.1
	done
	echo "nats.sh: nats-server did not start on port $port; last lines of its log:" >&2
	tail -n 15 "$dir/nats.log" "$dir/server.out" 2>/dev/null >&2
	kill -9 "$(cat "$dir/wrapper.pid")" 2>/dev/null
	return 1
}

stop_server() {
	[ -f "$dir/port" ] || return 0
	alive || return 0
	# SIGTERM: the server closes its clients and syncs the JetStream store
	kill -TERM "$(pid)" 2>/dev/null
	if ! wait_gone 30; then
		echo "nats.sh: nats-server of $dir did not stop in 30 s; killing it" >&2
		kill -9 "$(pid)" 2>/dev/null
		wait_gone 5
	fi
}

case "$cmd" in
start)
	port=${3:?port required}
	user=${4:-}
	pass=${5:-}
	mkdir -p "$dir/js"
	echo "$port" >"$dir/port"
	printf '%s\n%s\n' "$user" "$pass" >"$dir/user"
	chmod 0600 "$dir/user"
	build_tool || exit 1
	{
		echo "# written by test/integration/nats.sh"
		echo "server_name: os$port"
		echo "listen: 127.0.0.1:$port"
		echo "http: 127.0.0.1:$((port + 1))"
		echo "pid_file: \"$dir/nats.pid\""
		echo "log_file: \"$dir/nats.log\""
		echo "max_payload: 1MB"
		echo "jetstream {"
		echo "  store_dir: \"$dir/js\""
		echo "  max_memory_store: 64MB"
		echo "  max_file_store: 2GB"
		echo "}"
		if [ -n "$user" ]; then
			echo "authorization {"
			echo "  user: \"$user\""
			echo "  password: \"$pass\""
			echo "}"
		fi
	} >"$dir/nats.conf"
	chmod 0600 "$dir/nats.conf"
	start_server || exit 1
	;;
stop)
	stop_server
	;;
kill)
	[ -f "$dir/port" ] || exit 0
	kill -9 "$(pid)" 2>/dev/null
	wait_gone 10
	;;
restart)
	[ -f "$dir/nats.conf" ] || { echo "nats.sh: no server was started in $dir" >&2; exit 1; }
	stop_server
	start_server || exit 1
	;;
url)
	echo "nats://127.0.0.1:$(cat "$dir/port")"
	;;
js)
	shift 2
	build_tool || exit 1
	NATS_USER=$(sed -n 1p "$dir/user") NATS_PASSWORD=$(sed -n 2p "$dir/user") \
		"$dir/natstool" "$(cat "$dir/port")" "$@"
	;;
*)
	sed -n '2,33p' "$0" >&2
	exit 2
	;;
esac
