#!/usr/bin/env bash
# bench/ab_library.sh BEFORE.so AFTER.so — spread place_order tps of two
# builds of ordersync.so side by side, in one cluster: runs alternate, and
# between them the installed library is replaced by a rename (backends
# that still map the old file keep it; every pgbench run connects anew).
# The same SQL schema serves both, so only C changes can be compared; the
# installed library is put back at exit.  Each run is preceded by VACUUM
# and CHECKPOINT (see bench/hot_sku/run.sh for why).
#   NSKU (default 1000), CLIENTS (8), SECS (15), ROUNDS (3),
#   SYNC_COMMIT (default off: CPU-bound), port 25474
# Build the other variant with e.g.
#   git worktree add /tmp/before REV && make -C /tmp/before/src/extension
# Prints tps per round and the median ratio AFTER/BEFORE.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
before=${1:?usage: bench/ab_library.sh BEFORE.so AFTER.so}
after=${2:?usage: bench/ab_library.sh BEFORE.so AFTER.so}
nsku=${NSKU:-1000}
clients=${CLIENTS:-8}
bin=/usr/lib/postgresql/15/bin
lib=$(pg_config --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib)
[ -d /usr/lib/postgresql/15/lib ] && lib=/usr/lib/postgresql/15/lib
dir=$(mktemp -d /tmp/ordersync-bench-ab.XXXXXX)
chmod 0755 "$dir"
cp "$lib/ordersync.so" "$dir/installed.so"
put() { cp "$1" "$lib/.ordersync.so.ab" && mv "$lib/.ordersync.so.ab" "$lib/ordersync.so"; }
trap 'put "$dir/installed.so"; "$top/scripts/cluster.sh" stop "$dir/pg" >/dev/null 2>&1; rm -rf "$dir"' EXIT

"$top/scripts/cluster.sh" start "$dir/pg" 25474 "synchronous_commit = ${SYNC_COMMIT:-off}" \
	"autovacuum = off" "max_wal_size = 16GB" "checkpoint_timeout = 1h" >/dev/null
eval "$("$top/scripts/cluster.sh" env "$dir/pg" 25474)"
export PGOPTIONS="-c client_min_messages=warning"
psql -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION ordersync" -c "SELECT ordersync.add_location('main')" \
	-c "SELECT count(ordersync.receive_stock('S-' || g, 'main', 100000000)) FROM generate_series(1, $nsku) g" \
	-c "VACUUM ANALYZE" >/dev/null
sed "s/random(1, 10000)/random(1, $nsku)/" "$top/bench/hot_sku/spread.pgbench" >"$dir/spread.pgbench"
# not measured: the first order on each SKU's row
"$bin/pgbench" -n -M prepared -c "$clients" -j 2 -T 10 -f "$dir/spread.pgbench" postgres >/dev/null 2>&1

echo "spread place_order, $nsku SKUs, $clients clients, ${SECS:-15} s runs, synchronous_commit=${SYNC_COMMIT:-off}"
printf "%-6s %10s %10s %8s\n" round before after ratio
for r in $(seq 1 "${ROUNDS:-3}"); do
	for v in before after; do
		if [ $v = before ]; then put "$before"; else put "$after"; fi
		psql -X -q -c VACUUM -c CHECKPOINT
		"$bin/pgbench" -n -M prepared -c "$clients" -j 2 -T "${SECS:-15}" -f "$dir/spread.pgbench" postgres >"$dir/$v.out" 2>&1 ||
			{ echo "bench/ab_library.sh: pgbench failed with the $v library:" >&2; tail -5 "$dir/$v.out" >&2; exit 1; }
		awk '/^tps/ {print $3}' "$dir/$v.out" >"$dir/$v.tps"
	done
	b=$(cat "$dir/before.tps"); a=$(cat "$dir/after.tps")
	awk -v r="$r" -v b="$b" -v a="$a" 'BEGIN {printf "%-6s %10.0f %10.0f %8.2f\n", r, b, a, a / b}' | tee -a "$dir/rows"
done
awk '{print $4}' "$dir/rows" | sort -n | awk '{a[NR] = $1} END {printf "median after/before: %.2f\n", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'
