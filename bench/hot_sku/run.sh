#!/usr/bin/env bash
# bench/hot_sku/run.sh — flash-sale throughput, measured side by side, as a
# matrix of clients x buckets.  place_order of one unit on
#   spread: 10,000 different SKUs (no two buyers share a stock row),
#   hot:    one SKU split into buckets (ordersync.set_hot), or, in the
#           "auto" column, a SKU nobody prepared, split by auto-hot during
#           a warm-up storm of WARMUP seconds that is not measured (each
#           round: it is quiet, so merged back, while the others run),
#   naive:  one SKU in one stock row (every buyer queues on one row lock).
# Each run is measured in its steady state: pgbench's per-second progress
# over SECONDS_PER_RUN seconds, after max(5, clients/16) seconds that are
# not measured and before max(5, clients/32) more that are not either.  On
# 2 cores, connecting 256 clients and their first calls (library, plans,
# caches) take about 8 s: a 10 s run measured whole reported 30 to 200
# orders/s for what runs at about 1,000.  And the last 4 to 6 progress
# lines of a 256-client run fall to 0-150 orders/s whatever it runs
# (spread, naive or hot: pgbench's clients winding down), which, inside
# the window, swung a cell by up to a third.
# For each client count, spread and naive run once per round and each
# bucket column once; the cells are the medians over rounds of hot/spread
# (target >= 0.9 with 16 or more buckets, >= 0.8 with 8) and hot/naive
# (target >= 1 everywhere).  The stock invariants are checked after every
# run, and the run stops at the first violation.
#   CLIENTS_LIST (default "8 32 128 256"), BUCKETS_LIST (default
#   "8 16 64 auto"), SECONDS_PER_RUN (default 10: lower it to shorten the
#   whole matrix), WARMUP (default 10), ROUNDS (default 1), SYNC_COMMIT
#   (default on), PGBENCH, ORDERSYNC_CLUSTER_SH (another cluster script with
#   the same commands, e.g. for a private build)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
PORT=${ORDERSYNC_BENCH_HOT_PORT:-25467}
ROUNDS=${ROUNDS:-1}
SECS=${SECONDS_PER_RUN:-10}
WARMUP=${WARMUP:-10}
CLIENTS_LIST=${CLIENTS_LIST:-8 32 128 256}
BUCKETS_LIST=${BUCKETS_LIST:-8 16 64 auto}
PGBENCH=${PGBENCH:-/usr/lib/postgresql/15/bin/pgbench}
CLUSTER=${ORDERSYNC_CLUSTER_SH:-$top/scripts/cluster.sh}
dir=$(mktemp -d /tmp/ordersync-bench-hot.XXXXXX)
chmod 0755 "$dir"
trap '"$CLUSTER" stop "$dir/pg" >/dev/null 2>&1; rm -rf "$dir"' EXIT

max_clients=0
for c in $CLIENTS_LIST; do [ "$c" -gt "$max_clients" ] && max_clients=$c; done

# Commits are durable by default (SYNC_COMMIT=on), as a shop runs: a buyer
# holds its stock row lock until its commit is flushed, which is what turns
# one hot row into a queue.  SYNC_COMMIT=off measures CPU alone.  ordersync
# is preloaded so that auto-hot runs (in database "bench", which must exist
# when the worker starts: hence the restart).
# Checkpoints (and vacuums) only where the bench asks, before each run: at the
# default max_wal_size one started every 100 s, and the full-page images
# after it slowed whichever run it fell in (spread, touching 10,000 SKUs'
# pages, most) by up to half, which moved 8-client cells from 1.06 to 0.74.
# Vacuum too, with autovacuum off: with it on, the first 10 s of every run
# (8 clients, every kind) climbed from about 900 to 2,400 orders/s, inside
# the measured window; with a VACUUM before each run instead, runs start
# at about 2,200 (most likely autovacuum catching up on the previous run's
# 20,000-odd orders at the start of the next).
"$CLUSTER" start "$dir/pg" "$PORT" "synchronous_commit = ${SYNC_COMMIT:-on}" \
	"max_connections = $((max_clients + 20))" "max_wal_size = 16GB" "checkpoint_timeout = 1h" \
	"autovacuum = off" >/dev/null || exit 1
eval "$("$CLUSTER" env "$dir/pg" "$PORT")"
export PGOPTIONS="-c client_min_messages=warning"
q() { psql -X -At -v ON_ERROR_STOP=1 -d bench -c "$1"; }

psql -X -q -d postgres -c "CREATE DATABASE bench" || exit 1
# Its orders are never paid: with the default reservation TTL (15 min) the
# worker would be releasing thousands of them a second, on the benched
# SKUs' rows, from a quarter of an hour into the matrix on.
printf "%s\n" "shared_preload_libraries = 'ordersync'" "ordersync.database = 'bench'" \
	"ordersync.reservation_ttl = 86400" |
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- tee -a "$dir/pg/data/postgresql.conf"
	else
		tee -a "$dir/pg/data/postgresql.conf"
	fi >/dev/null
"$CLUSTER" restart "$dir/pg" || exit 1
q "CREATE EXTENSION ordersync" >/dev/null
q "SELECT ordersync.add_location('main')" >/dev/null
q "SELECT ordersync.receive_stock('HOT', 'main', 1000000000)" >/dev/null
q "SELECT ordersync.receive_stock('NAIVE', 'main', 1000000000)" >/dev/null
q "SELECT ordersync.set_hot('NAIVE', 1)" >/dev/null	# the operator's: auto-hot keeps it plain
for c in $CLIENTS_LIST; do
	q "SELECT ordersync.receive_stock('AUTO-$c', 'main', 1000000000)" >/dev/null
done
# one transaction (before 0.7.0 each SKU's history chain took a slot of the
# shared lock table until commit, and 10,000 outgrew the table of a cluster
# sized for 8 clients)
q "SELECT ordersync.receive_stock('S-' || i, 'main', 1000000) FROM generate_series(1, 10000) i" >/dev/null
q "VACUUM ANALYZE" >/dev/null

invariant() {
	q "SELECT CASE WHEN count(*) = 0 THEN 'ok' ELSE count(*) || ' rows violated' END
	   FROM ordersync.stock s
	   WHERE s.reserved > s.on_hand OR s.reserved < 0
	      OR s.reserved <> coalesce((SELECT sum(qty) FROM ordersync.reservation r
	             WHERE r.sku = s.sku AND r.location = s.location AND r.bucket = s.bucket
	               AND r.state = 'held'), 0)"
}

# run SCRIPT CLIENTS SECONDS [SKU]: prints tps; SKU replaces HOT in the script
run() {
	local kind=$1 clients=$2 secs=$3 sku=${4:-HOT}
	local tps
	local settle=$((clients / 16 > 5 ? clients / 16 : 5)) tail=$((clients / 32 > 5 ? clients / 32 : 5))
	sed "s/\"HOT\"/\"$sku\"/" "$here/$kind.pgbench" >"$dir/$kind.run"
	q "VACUUM" >/dev/null
	q "CHECKPOINT" >/dev/null
	"$PGBENCH" -n -M prepared -c "$clients" -j 2 -T "$((settle + secs + tail))" -P 1 -f "$dir/$kind.run" bench \
		>"$dir/$kind.out" 2>"$dir/$kind.err"
	# steady state: the per-second progress of $secs seconds between settle and tail
	tps=$(awk -v from="$settle" -v to="$((settle + secs))" '
		$1 == "progress:" && $2 + 0 > from && $2 + 0 <= to + 0.5 {sum += $4; n++}
		END {if (n > 0) printf "%.1f\n", sum / n}' "$dir/$kind.err")
	# pgbench counts a deadlock as a failed transaction and goes on
	if [ -z "$tps" ] || grep -q -E 'ERROR|aborted' "$dir/$kind.err" ||
		grep -q -E 'number of failed transactions: [1-9]' "$dir/$kind.out"; then
		echo "bench/hot_sku: pgbench $kind ($clients clients, $sku) failed:" >&2
		head -5 "$dir/$kind.err" "$dir/$kind.out" >&2
		exit 1
	fi
	[ -n "${TRACE:-}" ] && progress "$kind"
	local inv
	inv=$(invariant)
	if [ "$inv" != ok ]; then
		echo "bench/hot_sku: invariant violated after $kind ($clients clients, $sku): $inv" >&2
		exit 1
	fi
	echo "$tps"
}

# TRACE=1: the tps of each run per second, and after each auto run what
# auto-hot did
trace() {
	q "SELECT to_char(at, 'HH24:MI:SS.MS'), qty, reason FROM ordersync.history
	   WHERE action = 'set_hot' AND sku = '$1' ORDER BY id" | sed 's/^/    set_hot /' >&2
}
progress() {
	awk '$1 == "progress:" {printf " %d", $4} END {print ""}' "$dir/$1.err" | sed "s/^/    $1 tps/" >&2
}

median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f\n", a / b}'; }

# Not measured: the first orders of each of the 10,000 SKUs update stock
# rows on full pages (new versions off the page, index entries, page
# splits); in a first round spread fell from 1,700 to 750 orders/s within
# one run, and from then on ran at about 2,300.
run spread "$max_clients" "$WARMUP" >/dev/null || exit 1

echo "place_order of 1 unit, ${SECS}s per run, $ROUNDS round(s), synchronous_commit=${SYNC_COMMIT:-on}, auto after a ${WARMUP}s warm-up"
printf "%-8s %-8s %9s %9s %9s %11s %10s  %s\n" clients buckets spread hot naive hot/spread hot/naive note
for c in $CLIENTS_LIST; do
	for b in $BUCKETS_LIST; do : >"$dir/r1.$b"; : >"$dir/r2.$b"; : >"$dir/t.$b"; done
	: >"$dir/s"; : >"$dir/n"
	for r in $(seq 1 "$ROUNDS"); do
		s=$(run spread "$c" "$SECS") || exit 1
		n=$(run naive "$c" "$SECS") || exit 1
		echo "$s" >>"$dir/s"
		echo "$n" >>"$dir/n"
		for b in $BUCKETS_LIST; do
			if [ "$b" = auto ]; then
				sku=AUTO-$c
				# the storm that makes auto-hot split it, not measured: every
				# round, as auto-hot merged it back while the others ran
				run hot "$c" "$WARMUP" "$sku" >/dev/null || exit 1
			else
				sku=HOT
				q "SELECT ordersync.set_hot('HOT', $b)" >/dev/null
			fi
			h=$(run hot "$c" "$SECS" "$sku") || exit 1
			[ "$b" = auto ] && [ -n "${TRACE:-}" ] && trace "$sku"
			echo "$h" >>"$dir/t.$b"
			ratio "$h" "$s" >>"$dir/r1.$b"
			ratio "$h" "$n" >>"$dir/r2.$b"
		done
	done
	s=$(median <"$dir/s")
	n=$(median <"$dir/n")
	for b in $BUCKETS_LIST; do
		note=""
		[ "$b" = auto ] && note="split into $(q "SELECT buckets FROM ordersync.sku WHERE sku = 'AUTO-$c'") buckets"
		printf "%-8s %-8s %9.0f %9.0f %9.0f %11s %10s  %s\n" "$c" "$b" "$s" "$(median <"$dir/t.$b")" "$n" \
			"$(median <"$dir/r1.$b" | xargs printf "%.2f")" "$(median <"$dir/r2.$b" | xargs printf "%.2f")" "$note"
	done
done
echo "invariants held after every run"
