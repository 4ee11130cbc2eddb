#!/usr/bin/env bash
# bench/history_chain.sh — what the history hash chain (0.5.0) costs
# place_order(), measured side by side in one run: the same pgbench script
# as bench/place_order.sh (8 clients, 2-line orders spread over many SKUs)
# against
#   base   a cluster with the extension built from BENCH_BASE_REF (default:
#          the commit before history_chain.c), in a private server copy
#   chain  a cluster with this tree's extension
#   off    the same cluster with the chain trigger disabled (isolates the
#          trigger from the 0.5.0 columns and index)
# in alternating rounds, so a neighbour's load hits all three alike.  Prints
# tps and server CPU per transaction per round, the medians, and the
# ratios chain/base and chain/off.  Ports 26081 and 26082.
#
#   bench/history_chain.sh      BENCH_ROUNDS (3), BENCH_SECS (8), BENCH_BASE_REF
# Builds nothing into the system PostgreSQL: both builds go to private
# copies (scripts/private_pg.sh).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

ROUNDS=${BENCH_ROUNDS:-3}
SECS=${BENCH_SECS:-8}
CLIENTS=8
NSKUS=2000
# default: the commit before history_chain.c was added
first=$(git -C "$top" log --diff-filter=A --format=%H -- src/extension/history_chain.c | tail -1)
BASE_REF=${BENCH_BASE_REF:-$(git -C "$top" rev-parse "$first^")}

work=$(mktemp -d /tmp/ordersync-bench-chain.XXXXXX)
chmod 0755 "$work"
cleanup() {
	ORDERSYNC_PGBIN=$work/base-pg/usr/lib/postgresql/15/bin "$top/scripts/cluster.sh" stop "$work/base" >/dev/null 2>&1 || true
	ORDERSYNC_PGBIN=$work/new-pg/usr/lib/postgresql/15/bin "$top/scripts/cluster.sh" stop "$work/new" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

echo "== building base ($BASE_REF) and this tree into private server copies"
mkdir -p "$work/base-src"
git -C "$top" archive "$BASE_REF" | tar -x -C "$work/base-src"
eval "$("$work/base-src/scripts/private_pg.sh" "$work/base-pg")"
base_bin=$ORDERSYNC_PGBIN
eval "$("$top/scripts/private_pg.sh" "$work/new-pg")"
new_bin=$ORDERSYNC_PGBIN

setup() {
	psql_q >/dev/null <<SQL
CREATE EXTENSION ordersync;
CREATE SCHEMA ordersync_bench;
CREATE SEQUENCE ordersync_bench.ext_id;
SELECT ordersync.add_location('w1', 10), ordersync.add_location('w2', 5);
SELECT count(ordersync.receive_stock('S' || g, l, 1000000000))
  FROM generate_series(1, $NSKUS) g, (VALUES ('w1'), ('w2')) v(l);
VACUUM ANALYZE;
SQL
}

ORDERSYNC_PGBIN=$base_bin bench_cluster "$work/base" 26082
setup
ORDERSYNC_PGBIN=$new_bin bench_cluster "$work/new" 26081
setup

# use VARIANT: point PGHOST/PGPORT at the cluster of that variant
use() {
	if [ "$1" = base ]; then
		PGHOST=$work/base PGPORT=26082
	else
		PGHOST=$work/new PGPORT=26081
	fi
	export PGHOST PGPORT
}

args=(-c "$CLIENTS" -j 2 -f "$top/bench/place_order.pgbench" -D nskus="$NSKUS")

# run VARIANT ROUND: one timed round; appends "tps cpu_ms_per_txn" to $work/VARIANT
run() {
	local v=$1 r=$2 t0 t1 tps n cpu
	use "$v"
	case $v in
	chain) psql_q -c "ALTER TABLE ordersync.history ENABLE TRIGGER history_chain" ;;
	off) psql_q -c "ALTER TABLE ordersync.history DISABLE TRIGGER history_chain" ;;
	esac
	t0=$(server_cpu_ticks "$PGHOST")
	read -r tps n <<<"$(pgb "$work/$v.$r.log" "${args[@]}" -T "$SECS")"
	t1=$(server_cpu_ticks "$PGHOST")
	cpu=$(awk -v a="$t0" -v b="$t1" -v n="$n" -v hz="$CLK_TCK" 'BEGIN { printf "%.3f", (b - a) * 1000 / hz / n }')
	echo "$tps $cpu" >>"$work/res.$v"
	printf '  round %s %-5s %6s tps  %s ms server CPU/txn\n' "$r" "$v" "$tps" "$cpu"
}

echo
echo "== place_order, 2 lines on $NSKUS SKUs x 2 locations ($CLIENTS clients, $ROUNDS rounds x ${SECS} s each)"
for v in base chain; do
	use "$v"
	pgb "$work/warm.$v.log" "${args[@]}" -T 2 >/dev/null
done
: >"$work/res.base"
: >"$work/res.chain"
: >"$work/res.off"
for r in $(seq 1 "$ROUNDS"); do
	for v in base chain off; do
		run "$v" "$r"
	done
done

med() { awk '{ print $'"$2"' }' "$work/res.$1" | median; }
b=$(med base 1); c=$(med chain 1); o=$(med off 1)
bc=$(med base 2); cc=$(med chain 2); oc=$(med off 2)
printf '  median tps:  base %.0f  chain %.0f  off %.0f\n' "$b" "$c" "$o"
printf '  median CPU/txn (ms): base %s  chain %s  off %s\n' "$bc" "$cc" "$oc"
printf '  ratio chain/base: %.2f in tps, %.2f in CPU per transaction\n' \
	"$(awk -v a="$c" -v b="$b" 'BEGIN { print a / b }')" "$(awk -v a="$cc" -v b="$bc" 'BEGIN { print a / b }')"
printf '  ratio chain/off:  %.2f in tps, %.2f in CPU per transaction\n' \
	"$(awk -v a="$c" -v b="$o" 'BEGIN { print a / b }')" "$(awk -v a="$cc" -v b="$oc" 'BEGIN { print a / b }')"
[ -n "${BENCH_RESULTS:-}" ] && echo "history_chain_ratio $(awk -v a="$c" -v b="$b" 'BEGIN { print a / b }')" >>"$BENCH_RESULTS"

# the chain the clients wrote in the enabled rounds is intact (disabled
# rounds wrote rows without hash: those are expected to be reported)
use chain
psql_q -c "ALTER TABLE ordersync.history ENABLE TRIGGER history_chain"
bad=$(psql -X -At -c "SELECT count(*) FROM ordersync.verify_history() WHERE problem NOT LIKE 'no hash%'")
echo "  verify_history: $bad problem(s) besides the rows written with the trigger off"
[ "$bad" -eq 0 ]
