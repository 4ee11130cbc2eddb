#!/usr/bin/env bash
# bench/hot_sku/instructions.sh — CPU instructions per place_order of one
# unit, counted by valgrind's callgrind in a single-user backend, so the
# figure does not depend on what else the machine runs (tps on a shared
# 2-core machine does).  Two kinds, side by side:
#   spread: each order on another of NSKU plain SKUs (default 1000)
#   hot:    every order on one SKU split into 16 buckets
# For the same work done by plain SQL, see bench/place_order.sh.
#   bench/hot_sku/instructions.sh [ORDERS]      (default 300 per kind)
#   NSKU, ORDERSYNC_PGBIN (a private build, as scripts/cluster.sh),
#   ORDERSYNC_BENCH_INSTR_PORT (default 25473), KEEP=DIR (copy the callgrind
#   files there, for callgrind_annotate)
# ordersync is preloaded as in bench/hot_sku/run.sh: a hot SKU's event
# figures then come from shared memory (hot_figures.c), not a sum per order.
# Prints "KIND: N instructions per order" and the ratio hot/spread.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-300}
nsku=${NSKU:-1000}
port=${ORDERSYNC_BENCH_INSTR_PORT:-25473}
bin=${ORDERSYNC_PGBIN:-/usr/lib/postgresql/15/bin}
command -v valgrind >/dev/null || { echo "instructions.sh: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
dir=$(mktemp -d /tmp/ordersync-bench-instr.XXXXXX)
chmod 0755 "$dir"
# callgrind writes its output as postgres, into this directory
[ "$(id -u)" -eq 0 ] && chown postgres "$dir"
trap '"$top/scripts/cluster.sh" stop "$dir/pg" >/dev/null 2>&1; [ -z "${KEEP:-}" ] || cp "$dir"/*.cg "$KEEP"/ 2>/dev/null; rm -rf "$dir"' EXIT

"$top/scripts/cluster.sh" start "$dir/pg" "$port" "synchronous_commit = off" \
	"shared_preload_libraries = 'ordersync'" >/dev/null
eval "$("$top/scripts/cluster.sh" env "$dir/pg" "$port")"
export PGOPTIONS="-c client_min_messages=warning"
psql -X -q -v ON_ERROR_STOP=1 \
	-c "CREATE EXTENSION ordersync" -c "SELECT ordersync.add_location('main')" \
	-c "SELECT ordersync.receive_stock('H', 'main', 100000000)" -c "SELECT ordersync.set_hot('H', 16)" \
	-c "SELECT count(ordersync.receive_stock('P' || g, 'main', 1000000)) FROM generate_series(1, $nsku) g" \
	-c "SELECT count(ordersync.place_order('web', 'old-' || g, '[{\"sku\": \"P1\", \"qty\": 1, \"price\": \"1.00\"}]')) FROM generate_series(1, 2000) g" \
	-c "VACUUM ANALYZE" >/dev/null
runuser -u postgres -- "$bin/pg_ctl" -D "$dir/pg/data" -m fast -w stop >/dev/null
# Both kinds start from this cluster: the second would otherwise find the
# first one's orders in the tables.  The orders placed above make the
# planner look rows up by index, as it does in a shop (and in run.sh):
# against empty tables, the foreign-key checks scan every row placed so far.
runuser -u postgres -- cp -a "$dir/pg/data" "$dir/pristine"

# one order per statement, each its own transaction in single-user mode
per_order() {
	local kind=$1 i
	for ((i = 1; i <= n; i++)); do
		if [ "$kind" = hot ]; then
			echo "SELECT ordersync.place_order('web', '$kind-$i', '[{\"sku\": \"H\", \"qty\": 1, \"price\": \"1.00\"}]');"
		else
			echo "SELECT ordersync.place_order('web', '$kind-$i', '[{\"sku\": \"P$((1 + i % nsku))\", \"qty\": 1, \"price\": \"1.00\"}]');"
		fi
	done >"$dir/$kind.sql"
	chown postgres "$dir/$kind.sql"
	rm -rf "$dir/pg/data"
	runuser -u postgres -- cp -a "$dir/pristine" "$dir/pg/data"
	runuser -u postgres -- valgrind --tool=callgrind --callgrind-out-file="$dir/$kind.cg" \
		"$bin/postgres" --single -D "$dir/pg/data" postgres <"$dir/$kind.sql" >"$dir/$kind.log" 2>&1
	if grep -q ERROR "$dir/$kind.log"; then
		echo "instructions.sh: place_order failed:" >&2
		grep -m3 ERROR "$dir/$kind.log" >&2
		exit 1
	fi
	awk -v n="$n" '/^(summary|totals):/ { printf "%d\n", $2 / n; exit }' "$dir/$kind.cg"
}
spread=$(per_order spread)
hot=$(per_order hot)
echo "spread: $spread instructions per order ($nsku SKUs, $n orders)"
echo "hot:    $hot instructions per order (one SKU, 16 buckets)"
awk -v h="$hot" -v s="$spread" 'BEGIN { printf "hot/spread: %.2f\n", h / s }'
