# test/integration/lib.sh — what every relay integration runner shares: a
# throwaway cluster on its own port, psql helpers, PASS/FAIL lines, and
# starting/stopping ordersyncd in the background.
#
#   . test/integration/lib.sh
#   it_init NAME PORT [postgresql.conf lines...]   # cluster, $work, $CONN, traps
#
# Runners print "PASS: integration/<name>" / "FAIL: integration/<name>" and
# exit non-zero when $failures > 0. Must run as root (the cluster runs as
# postgres). ORDERSYNCD may point at the binary.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here="$root/test/integration"
ORDERSYNCD=${ORDERSYNCD:-$root/src/relay/ordersyncd}
case "$ORDERSYNCD" in /*) ;; *) ORDERSYNCD="$PWD/$ORDERSYNCD" ;; esac
pids=()
failures=0
cleanups=()

it_cleanup() {
	local c
	# disowned first: bash would report each job it killed ("Killed" and its command line)
	for p in "${pids[@]}"; do disown "$p" 2>/dev/null; kill -9 "$p" 2>/dev/null; done
	for c in "${cleanups[@]}"; do eval "$c" >/dev/null 2>&1; done
	"$root/scripts/cluster.sh" stop "$cl" >/dev/null 2>&1
	rm -rf "$work"
}

# it_init NAME PORT [conf lines]: $work, a cluster $cl on PORT, $CONN
it_init() {
	local name=$1 port=$2
	shift 2
	PORT=$port
	work=$(mktemp -d "/tmp/ordersyncd-$name.XXXXXX")
	chmod 0755 "$work"
	cl="$work/cluster"
	trap it_cleanup EXIT
	trap 'exit 130' INT TERM
	if [ ! -x "$ORDERSYNCD" ]; then
		echo "FAIL: integration/$name-setup (no ordersyncd binary at $ORDERSYNCD: run make first)"
		exit 1
	fi
	if ! "$root/scripts/cluster.sh" start "$cl" "$PORT" "$@" >"$work/cluster.log" 2>&1; then
		cat "$work/cluster.log"
		echo "FAIL: integration/$name-setup (cluster)"
		exit 1
	fi
	eval "$("$root/scripts/cluster.sh" env "$cl" "$PORT")"
	CONN="host=$cl port=$PORT user=postgres dbname=postgres"
	export PGOPTIONS="-c client_min_messages=warning"
}

# ---- the shared event producer and checker ----------------------------------
# it_producer: the shop and public.it_orders() (orders.sql), after CREATE EXTENSION
it_producer() { psql -X -q -v ON_ERROR_STOP=1 -f "$here/orders.sql"; }
# check ...: check.py (what a sink got against the file sink; see its --help)
check() { python3 "$here/check.py" "$@"; }

# ---- helpers ---------------------------------------------------------------
sql() { psql -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }
pass() { echo "PASS: integration/$1"; }
fail() {
	local name=$1
	shift
	echo "FAIL: integration/$name"
	for l in "$@"; do echo "  $l"; done
	failures=$((failures + 1))
}
# start_relay NAME ARGS...: background relay, stderr in $work/NAME.log; sets RELAY
start_relay() {
	local name=$1
	shift
	"$ORDERSYNCD" --dbname="$CONN" ${DEBUG:+--log-level=debug} "$@" >>"$work/$name.out" 2>>"$work/$name.log" &
	RELAY=$!
	pids+=("$RELAY")
}
# wait_exit PID SECS: wait for the relay to exit; its status goes to WRC
# (124 on timeout, after which it is killed). No $(...): wait needs the parent shell.
wait_exit() {
	local pid=$1 secs=$2 i
	for ((i = 0; i < secs * 10; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			WRC=$?
			return
		fi
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	WRC=124
}
confirmed() { sql "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '$1'"; }
cur_lsn() { sql "SELECT pg_current_wal_lsn()"; }
# wait_confirmed SLOT LSN SECS: until the slot's confirmed position reaches LSN
wait_confirmed() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		[ "$(sql "SELECT coalesce(confirmed_flush_lsn >= '$2', false) FROM pg_replication_slots WHERE slot_name = '$1'")" = t ] && return 0
		sleep 0.1
	done
	return 1
}
reset_seq() { sql "SELECT setval('public.it_seq', 1, false); TRUNCATE public.it_committed" >/dev/null; }
new_slot() { sql "SELECT pg_create_logical_replication_slot('$1', 'wal2json')" >/dev/null; }
drop_slot() { sql "SELECT pg_drop_replication_slot('$1')" >/dev/null 2>&1; }
emit() { # emit TYPE SUBJECT DATAJSON  (inside a caller's SQL: use the function)
	printf "SELECT pg_logical_emit_message(true, 'ordersync', '{\"type\":\"%s\",\"subject\":\"%s\",\"data\":%s}');" "$1" "$2" "$3"
}


# webhook receivers (webhook_receiver.py checks Standard Webhooks signatures)
declare -A rpid
# recv_start NAME PORT SECRET: a receiver writing $work/NAME.{events,attempts},
# controlled through $work/NAME.ctl/; SECRET "" checks no signature
recv_start() {
	local name=$1 port=$2 secret=$3 i
	mkdir -p "$work/$name.ctl"
	rm -f "$work/$name.ready"
	python3 "$here/webhook_receiver.py" --port "$port" ${secret:+--secret "$secret"} \
		--events "$work/$name.events" --attempts "$work/$name.attempts" \
		--control "$work/$name.ctl" --ready "$work/$name.ready" 2>>"$work/$name.stderr" &
	rpid[$name]=$!
	pids+=("$!")
	for ((i = 0; i < 80; i++)); do
		[ -e "$work/$name.ready" ] && return 0
		sleep 0.1
	done
	echo "receiver $name did not start: $(tail -3 "$work/$name.stderr")"
	return 1
}
recv_kill() {
	kill -9 "${rpid[$1]}" 2>/dev/null
	wait "${rpid[$1]}" 2>/dev/null
}

# ---- "what the database may not configure" (sink_kafka.sh, sink_amqp.sh) --
psqld() {
	local db=$1
	shift
	psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$db" "$@"
}
# new_db DB: a database with the extension, stock for SKU-P and a slot named DB
new_db() {
	sql "CREATE DATABASE $1" >/dev/null &&
		psqld "$1" -c "CREATE EXTENSION ordersync" >/dev/null &&
		psqld "$1" -c "SELECT ordersync.add_location('main', 1)" >/dev/null &&
		psqld "$1" -c "SELECT ordersync.receive_stock('SKU-P', 'main', 100)" >/dev/null &&
		psqld "$1" -c "SELECT pg_create_logical_replication_slot('$1', 'wal2json')" >/dev/null
}
# order DB: one order (order.created and its stock events)
order() {
	psqld "$1" -c "SELECT ordersync.place_order('web', 'p-' || clock_timestamp(),
		'[{\"sku\":\"SKU-P\",\"qty\":1,\"price\":\"1.00\"}]', '{\"name\": \"Ada\"}')" >/dev/null
}
# dead_letters DB N: wait until N sinks have dead letters; prints "sink: error" lines
dead_letters() {
	local i
	for ((i = 0; i < 200; i++)); do
		[ "$(psqld "$1" -c "SELECT count(DISTINCT sink) FROM ordersync.dead_letter")" -ge "$2" ] && break
		sleep 0.1
	done
	psqld "$1" -c "SELECT sink || ': ' || min(error) FROM ordersync.dead_letter GROUP BY sink ORDER BY sink"
}
# expect_reasons ROWS: stdin lines "SINK|TEXT": ROWS has "SINK: ...TEXT..."; into bad
expect_reasons() {
	local sink want
	while IFS='|' read -r sink want; do
		grep -F -- "$sink: " <<<"$1" | grep -q -F -- "$want" ||
			bad+=("$sink: want \"$want\", got: $(grep -F -- "$sink: " <<<"$1" | cut -c1-300)")
	done
}
