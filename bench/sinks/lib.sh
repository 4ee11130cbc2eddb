# bench/sinks/lib.sh — sourced by the delivery-sink benchmarks (webhook.sh,
# kafka.sh, amqp.sh, relay_cpu.sh): the throwaway cluster they all relay
# from. Needs $root (the repository) set by the caller.

# sinks_cluster DIR PORT [postgresql.conf lines...]: start a cluster in DIR
# on PORT and point psql at it (PGHOST...), set CONN (the relay's --dbname)
# and sql() (one statement, unaligned output); the extension is created (the
# relay refuses to run where any role may emit ordersync events, and reads
# its configured sinks, none, and writes dead letters there) and
# bench_produce() (produce.sql) loaded. Returns non-zero when any of it fails.
sinks_cluster() {
	local dir=$1 port=$2
	shift 2
	"$root/scripts/cluster.sh" start "$dir" "$port" "$@" >/dev/null || return 1
	eval "$("$root/scripts/cluster.sh" env "$dir" "$port")"
	export PGOPTIONS="-c client_min_messages=warning"
	CONN="host=$dir port=$port user=postgres dbname=postgres"
	sql "CREATE EXTENSION ordersync" &&
		psql -X -q -v ON_ERROR_STOP=1 -f "$root/bench/sinks/produce.sql"
}

sql() { psql -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }
# median: of the numbers on stdin, one a line; rate N SECONDS: N / SECONDS
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rate() { echo "$1 / $2" | bc -l; }

# relay_run NAME SLOT SINK [OPTIONS]: one ordersyncd run from SLOT to $end
# (--endpos) into SINK (with --sink-options OPTIONS); prints "wall_seconds
# cpu_seconds" (user+system). Needs $ORDERSYNCD, $CONN, $end and $work (the
# run's time and log go there).
relay_run() {
	local name=$1 slot=$2 sink=$3 o=${4:-}
	local args=(--dbname="$CONN" --slot="$slot" --endpos="$end" --status-interval=1 --sink="$sink")
	[ -n "$o" ] && args+=(--sink-options="$o")
	if ! /usr/bin/time -o "$work/$name.time" -f "%e %U %S" "$ORDERSYNCD" "${args[@]}" \
		>/dev/null 2>"$work/$name.log"; then
		echo "ordersyncd ($name) failed:" >&2
		tail -5 "$work/$name.log" >&2
		return 1
	fi
	awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' "$work/$name.time"
}

# bench_end: one more event, "bench.end", after the measured ones: a relay
# at --endpos sees at its begin that nothing up to the position is left
# (instead of waiting for the server's next keepalive) and stops without
# relaying it; capture() knows where to stop.
bench_end() {
	sql "SELECT pg_logical_emit_message(true, 'ordersync', '{\"type\":\"bench.end\",\"subject\":\"bench/end\",\"data\":{}}')" >/dev/null
}

# The sink alone (bench/sinks/replay.c): the relay's library fed a captured
# stream without PostgreSQL, so a sink is timed against its reference
# without the walsender taking a core beside it.
#
# replay_build OUT: build replay.c into OUT against src/relay's library.
replay_build() {
	make -s -C "$root/src/relay" lib >&2 &&
		cc -O2 -std=gnu11 -Wall -Wextra -Werror -I"$root/src/relay" -I"$(pg_config --includedir)" \
			$(pkg-config --cflags json-c yajl) -o "$1" "$root/bench/sinks/replay.c" \
			"$root/src/relay/libordersyncd.a" $(make -s --no-print-directory -C "$root/src/relay" print-ldlibs)
}

# replay_run SINK [OPTIONS]: $work/replay (replay_build) over the capture
# $work/stream.w2j into SINK; prints its "events seconds cpu_seconds", or
# says why it failed and returns 1. What every run said is kept in
# $work/replay.log.
replay_run() {
	local rc=0
	"$work/replay" "$work/stream.w2j" "$@" 2>"$work/replay.last" || rc=1
	cat "$work/replay.last" >>"$work/replay.log"
	[ "$rc" = 0 ] && return 0
	echo "replay to $1 failed: $(cat "$work/replay.last")" >&2
	return 1
}

# The wal2json options ordersyncd streams with (start_replication() in
# src/relay/stream.c: keep the two in step), for pg_recvlogical.
relay_w2j_opts=(-o format-version=2 -o include-xids=1 -o include-timestamp=1 -o include-lsn=1
	-o include-transaction=1 -o include-types=0 -o add-msg-prefixes=ordersync
	-o filter-tables=ordersync.dead_letter
	-o add-tables=ordersync.sink,ordersync.route,ordersync.redelivery)

# capture SLOT FILE [MARKERS]: what the slot streams to ordersyncd, read
# with pg_recvlogical and the relay's wal2json options, up to the MARKERS'th
# (default 1) bench_end event, one payload a line. pg_recvlogical's
# --endpos is not used: it may stop on a keepalive past the position before
# the last transactions have come. FILE keeps whole transactions only.
# Sets capture_secs: seconds from pg_recvlogical's start until the last
# marker's commit was in FILE (to 20 ms): what PostgreSQL's decoding and
# the plainest client make of this WAL, the ceiling of any relay here.
#
# Markers are counted in the bytes written since the last look only (by
# their offsets, so one written across two looks counts once): a full scan
# of a large capture every 20 ms would tax the run it times, and looking
# only at the file's tail misses a marker that transactions committed
# after it (autoanalyze's, for one) have pushed out of it.
capture() {
	local slot=$1 file=$2 markers=${3:-1} pid n i t0 o
	local seen=0 last=-1 off=0 from size
	t0=$(date +%s.%N)
	pg_recvlogical -d "$CONN" -S "$slot" --start -F 0 -f "$file.part" "${relay_w2j_opts[@]}" 2>"$file.log" &
	pid=$!
	for ((i = 0; i < 6000; i++)); do
		size=$(stat -c %s "$file.part" 2>/dev/null || echo 0)
		if [ "$size" -gt "$off" ]; then
			from=$((off > 16 ? off - 16 : 0))
			while IFS=: read -r o _; do
				o=$((from + o))
				[ "$o" -gt "$last" ] && seen=$((seen + 1)) last=$o
			done < <(tail -c +$((from + 1)) "$file.part" | grep -aboF bench/end)
			off=$size	# (bytes written since stat are looked at again: counted once)
		fi
		# the last marker's commit has come: a commit is the last line
		[ "$seen" -ge "$markers" ] && [[ $(tail -n 1 "$file.part") == *'"action":"C"'* ]] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	capture_secs=$(echo "$(date +%s.%N) - $t0" | bc -l)
	kill -INT "$pid" 2>/dev/null
	wait "$pid"
	n=$(grep -n '"action":"C"' "$file.part" | tail -1 | cut -d: -f1)
	if [ -z "$n" ] || [ "$(grep -cF bench/end "$file.part")" -lt "$markers" ]; then
		echo "capture of slot $slot did not reach the bench.end event: $(cat "$file.log")" >&2
		return 1
	fi
	head -n "$n" "$file.part" >"$file" && rm -f "$file.part" "$file.log"
}
