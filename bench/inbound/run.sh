#!/usr/bin/env bash
# bench/inbound/run.sh — signed order webhooks through ordersyncd --inbound
# to applied orders, against place_order() called directly over libpq at
# the same concurrency, side by side in one run (issue 12: >= 0.7x).
#
# Both sides import the same 2-line orders over NSKUS SKUs with plenty of
# stock, from CLIENTS connections, with durable commits (synchronous_commit
# on: a webhook is answered only after its inbox row is on disk, and
# place_order's caller likewise waits for its commit). Rounds alternate
# the two sides.
#
#   inbound   loadgen (C, keep-alive, Standard Webhooks signatures) ->
#             ordersyncd -> inbox_receive_apply() -> place_order() (an
#             order another applier holds is left to ordersyncd's appliers,
#             inbox_apply()). Timed from the first request to the last
#             order applied (end to end), and to the last 2xx.
#   direct    pgbench -M prepared, one place_order() per transaction.
#
# Rounds of a few seconds swing by +-15% on a 2-core VM (either side), so
# the median is taken over 5 pairs of rounds.
#
#   bench/inbound/run.sh    BENCH_ROUNDS (5), INBOUND_ORDERS (4000), CLIENTS (8),
#                           APPLIERS (ordersyncd --inbound-appliers, 8)
# Ports 25547 (cluster) and 25548 (receiver). Appends inbound_ratio to
# $BENCH_RESULTS when set.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
PORT=25547
RPORT=25548
ROUNDS=${BENCH_ROUNDS:-5}
N=${INBOUND_ORDERS:-4000}
CLIENTS=${CLIENTS:-8}
APPLIERS=${APPLIERS:-8}
NSKUS=2000
SECRET=bench-secret-$$
ORDERSYNCD=${ORDERSYNCD:-$top/src/relay/ordersyncd}

work=$(mktemp -d /tmp/ordersync-bench-inbound.XXXXXX)
chmod 0755 "$work"
relay=
cleanup() {
	[ -n "$relay" ] && kill "$relay" 2>/dev/null && wait "$relay" 2>/dev/null
	"$top/scripts/cluster.sh" stop "$work/pg" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT
cc -O2 -Wall -Werror -o "$work/loadgen" "$here/loadgen.c" -lcrypto -lpthread
# autovacuum stays on: its ANALYZE is what renews the plans that long-lived
# sessions (the relay's appliers, like any application's pool) keep
"$top/scripts/cluster.sh" start "$work/pg" "$PORT" "synchronous_commit = on" "max_wal_size = 4GB" >/dev/null
eval "$("$top/scripts/cluster.sh" env "$work/pg" "$PORT")"
export PGHOST PGPORT PGUSER PGDATABASE
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE EXTENSION ordersync;
CREATE SCHEMA ordersync_bench;
CREATE SEQUENCE ordersync_bench.ext_id;
SELECT ordersync.add_location('w1', 10);
SELECT count(ordersync.receive_stock('S' || g, 'w1', 1000000000)) FROM generate_series(1, $NSKUS) g;
SELECT ordersync.add_channel('bench');
SELECT ordersync.set_channel_inbound('bench', '{"signature": "standard-webhooks", "secret_env": "ORDERSYNC_BENCH_SECRET", "format": "ordersync"}');
CREATE ROLE ordersyncd_bench LOGIN REPLICATION IN ROLE ordersync_relay;
VACUUM ANALYZE;
SQL
cat >"$work/direct.pgbench" <<'PGB'
\set a random(1, :nskus)
\set b random(1, :nskus)
SELECT ordersync.place_order('web', 'P' || nextval('ordersync_bench.ext_id'), ('[{"sku":"S' || :a::integer || '","qty":1,"price":"9.90"},{"sku":"S' || :b::integer || '","qty":2,"price":"4.50"}]')::jsonb, '{"name":"bench"}');
PGB

ORDERSYNC_BENCH_SECRET=$SECRET "$ORDERSYNCD" --dbname="host=$PGHOST port=$PORT user=ordersyncd_bench dbname=postgres" \
	--inbound=127.0.0.1:$RPORT --inbound-pool="$CLIENTS" --inbound-appliers="$APPLIERS" --log-level=warning 2>"$work/relay.log" &
relay=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$RPORT/" && break; sleep 0.1; done

applied() { psql -X -A -t -c "SELECT count(*) FROM ordersync.inbox WHERE state = 'applied' AND external_id LIKE 'I$1-%'"; }
now() { date +%s.%N; }

inbound_round() {
	local r=$1 t0 out t_end i
	t0=$(now)
	out=$("$work/loadgen" 127.0.0.1 "$RPORT" bench "$SECRET" "$N" "$CLIENTS" "$r" "$NSKUS")
	# the end is the last apply's time (inbox.applied_at, the start of its
	# transaction), read once all are applied: a psql every 50 ms while the
	# appliers work took CPU from them that the direct side does not pay
	for ((i = 0; i < 150; i++)); do
		[ "$(applied "$r")" -ge "$N" ] && break
		sleep 0.2
	done
	[ "$(applied "$r")" -ge "$N" ] || { echo "round $r: only $(applied "$r") of $N applied" >&2; exit 1; }
	t_end=$(psql -X -A -t -c "SELECT extract(epoch FROM max(applied_at)) FROM ordersync.inbox
		WHERE state = 'applied' AND external_id LIKE 'I$r-%'")
	# applied/s end to end, and received (2xx)/s
	awk -v n="$N" -v t0="$t0" -v t1="$t_end" -v recv="$(cut -d' ' -f3 <<<"$out")" \
		'BEGIN { printf "%.0f %.0f\n", n / (t1 - t0), n / recv }'
}

direct_round() {
	pgbench -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -t $((N / CLIENTS)) -D nskus=$NSKUS \
		-f "$work/direct.pgbench" >"$work/direct.log" 2>&1 || { tail "$work/direct.log" >&2; exit 1; }
	grep -q aborted "$work/direct.log" && { tail "$work/direct.log" >&2; exit 1; }
	awk '/^tps = / { printf "%.0f\n", $3 }' "$work/direct.log"
}

# warm-up, unmeasured; then statistics of full tables for both sides
inbound_round w >/dev/null
direct_round >/dev/null
psql -X -q -c "ANALYZE"

echo "inbound webhooks vs place_order over libpq: $N orders per round, $CLIENTS connections, durable commits, $APPLIERS appliers"
printf "%-6s %14s %14s %14s %8s\n" round "direct ord/s" "inbound ord/s" "2xx/s" ratio
ratios=()
for ((r = 1; r <= ROUNDS; r++)); do
	d=$(direct_round)
	read -r a x <<<"$(inbound_round "$r")"
	ratio=$(awk -v a="$a" -v d="$d" 'BEGIN { printf "%.2f", a / d }')
	ratios+=("$ratio")
	printf "%-6s %14s %14s %14s %8s\n" "$r" "$d" "$a" "$x" "$ratio"
done
med=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
echo "median ratio inbound/direct: $med (target >= 0.70)"
[ -n "${BENCH_RESULTS:-}" ] && echo "inbound_ratio $med" >>"$BENCH_RESULTS"
grep -E "ERROR|WARNING" "$work/relay.log" | head -5 || true
