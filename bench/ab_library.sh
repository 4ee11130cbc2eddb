#!/usr/bin/env bash
# bench/ab_library.sh BEFORE.so AFTER.so — spread place_order tps of two
# builds of ordersync.so side by side, in one cluster (bench/lib.sh's: CPU,
# no checkpoint or autovacuum within a round): runs alternate, and between
# them the installed library is replaced by a rename (backends that still
# map the old file keep it; every pgbench run connects anew).  The same SQL
# schema serves both, so only C changes can be compared; the installed
# library is put back at exit.  Each run is preceded by VACUUM and
# CHECKPOINT (see bench/hot_sku/run.sh for why); the stock invariants are
# checked at the end.
#   NSKU (default 1000), CLIENTS (8), BENCH_SECS (15), BENCH_ROUNDS (3),
#   port 25474
# Build the other variant with e.g.
#   git worktree add /tmp/before REV && make -C /tmp/before/src/extension
# Prints tps per round and the median ratio AFTER/BEFORE.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
ROUNDS=${BENCH_ROUNDS:-3}
SECS=${BENCH_SECS:-15}
before=${1:?usage: bench/ab_library.sh BEFORE.so AFTER.so}
after=${2:?usage: bench/ab_library.sh BEFORE.so AFTER.so}
nsku=${NSKU:-1000}
clients=${CLIENTS:-8}
lib=$(pg_config --pkglibdir)	# where make install puts it
dir=$(mktemp -d /tmp/ordersync-bench-ab.XXXXXX)
chmod 0755 "$dir"
cp "$lib/ordersync.so" "$dir/installed.so"
put() { cp "$1" "$lib/.ordersync.so.ab" && mv "$lib/.ordersync.so.ab" "$lib/ordersync.so"; }
trap 'put "$dir/installed.so"; "$top/scripts/cluster.sh" stop "$dir/pg" >/dev/null 2>&1; rm -rf "$dir"' EXIT

bench_cluster "$dir/pg" 25474
export PGOPTIONS="-c client_min_messages=warning"
psql_q -c "CREATE EXTENSION ordersync" -c "SELECT ordersync.add_location('main')" \
	-c "SELECT count(ordersync.receive_stock('S-' || g, 'main', 100000000)) FROM generate_series(1, $nsku) g" \
	-c "VACUUM ANALYZE" >/dev/null
sed "s/random(1, 10000)/random(1, $nsku)/" "$top/bench/hot_sku/spread.pgbench" >"$dir/spread.pgbench"
args=(-c "$clients" -j 2 -f "$dir/spread.pgbench")
# not measured: the first order on each SKU's row
pgb "$dir/warm.log" "${args[@]}" -T 10 >/dev/null

echo "spread place_order, $nsku SKUs, $clients clients, ${SECS} s runs, synchronous_commit=off"
printf "%-6s %10s %10s %8s\n" round before after ratio
for r in $(seq 1 "$ROUNDS"); do
	put "$before"
	psql_q -c VACUUM -c CHECKPOINT
	b=$(pgb "$dir/before.log" "${args[@]}" -T "$SECS")	# "tps n"; fails the script if pgbench did
	put "$after"
	psql_q -c VACUUM -c CHECKPOINT
	a=$(pgb "$dir/after.log" "${args[@]}" -T "$SECS")
	awk -v r="$r" -v b="${b%% *}" -v a="${a%% *}" 'BEGIN {printf "%-6s %10.0f %10.0f %8.2f\n", r, b, a, a / b}' | tee -a "$dir/rows"
done
printf "median after/before: %.2f\n" "$(awk '{print $4}' "$dir/rows" | median)"
check_invariants
