#!/usr/bin/env bash
# bench/status.sh — status-change throughput through the C trigger vs the
# same trigger in PL/pgSQL (bench/plpgsql_reference.sql), on one table of one
# throwaway cluster (port 25460).  The two variants alternate in short rounds
# (C then PL/pgSQL, next round the other way round) because this small
# machine is noisy: drift hits both.  Prints per-round tps and the median of
# the per-round ratios C / PL/pgSQL.  bench/check_reference.sql first proves
# that both triggers do the same work.
#
#   bench/status.sh            BENCH_ROUNDS (5), BENCH_SECS (10), BENCH_CLIENTS (4)
# Appends "key value" result lines to $BENCH_RESULTS when set.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

PORT=25460
CLIENTS=${BENCH_CLIENTS:-4}
NSKUS=1000
NFLIP=20000			# paid orders that bounce paid <-> fulfilling
NCANCEL=10000		# pending 2-line orders that are cancelled (rolled back)

work=$(mktemp -d /tmp/ordersync-bench-status.XXXXXX)
chmod 0755 "$work"
trap '"$top/scripts/cluster.sh" stop "$work/pg" >/dev/null 2>&1; rm -rf "$work"' EXIT
bench_cluster "$work/pg" "$PORT"

echo "setup: $NSKUS SKUs x 2 locations, $NFLIP paid orders, $NCANCEL pending 2-line orders"
psql_q -c 'CREATE EXTENSION ordersync' -f "$top/bench/plpgsql_reference.sql" >/dev/null
psql_q >/dev/null <<SQL
-- bench only: lets a fulfilling order go back to paid, so orders can cycle
INSERT INTO ordersync.transition (from_status, to_status, effect) VALUES ('fulfilling', 'paid', 'none');
SELECT ordersync.add_location('w1', 10), ordersync.add_location('w2', 5);
SELECT count(ordersync.receive_stock('S' || g, l, 1000000))
  FROM generate_series(1, $NSKUS) g, (VALUES ('w1'), ('w2')) v(l);
-- ids 1..NFLIP: paid (through the C trigger)
SELECT count(ordersync.place_order('web', 'F' || g,
       jsonb_build_array(jsonb_build_object('sku', 'S' || (g % $NSKUS + 1), 'qty', 1, 'price', '9.90')),
       '{"name": "Ada"}'))
  FROM generate_series(1, $NFLIP) g;
UPDATE ordersync.orders SET status = 'paid';
-- ids NFLIP+1..NFLIP+NCANCEL: pending, two different SKUs (two stock rows) each
SELECT count(ordersync.place_order('web', 'K' || g,
       jsonb_build_array(jsonb_build_object('sku', 'S' || (g % $NSKUS + 1), 'qty', 1, 'price', '9.90'),
                         jsonb_build_object('sku', 'S' || ((g * 7 + 3) % $NSKUS + 1), 'qty', 2, 'price', '1.50')),
       '{"name": "Bob"}'))
  FROM generate_series(1, $NCANCEL) g;
VACUUM ANALYZE;
SQL
[ "$(psql -X -At -c 'SELECT max(id) FROM ordersync.orders')" -eq $((NFLIP + NCANCEL)) ] ||
	{ echo "setup: unexpected order ids" >&2; exit 1; }
# the comparison is only fair if both triggers do the same work
psql -X -q -f "$top/bench/check_reference.sql" 2>&1 | sed 's/^.*NOTICE:  /  /'
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1

use_trigger() {
	if [ "$1" = C ]; then
		psql_q -c 'ALTER TABLE ordersync.orders ENABLE TRIGGER orders_status, DISABLE TRIGGER orders_status_plpgsql'
	else
		psql_q -c 'ALTER TABLE ordersync.orders DISABLE TRIGGER orders_status, ENABLE TRIGGER orders_status_plpgsql'
	fi
}

history_rows() { psql -X -At -c 'SELECT count(*) FROM ordersync.history'; }

# compare KEY NAME SCRIPT FIRST LAST ROWS_PER_TXN: the rounds for one workload.
# ROWS_PER_TXN history rows must appear per committed transaction, which
# shows that the trigger really ran (and did the same work) in both variants.
compare() {
	local key=$1 name=$2 script=$3 first=$4 last=$5 per=$6
	local r v order out tps n h0 h1 c0 c1 ctps ptps ccpu pcpu cpu
	local args=(-c "$CLIENTS" -j 2 -f "$top/bench/$script" -D first="$first" -D last="$last")

	echo
	echo "== $name ($CLIENTS clients, $ROUNDS rounds x ${SECS} s per variant)"
	# warm both up: caches, the PL/pgSQL compile, the first touch of pages
	for v in C P; do use_trigger $v; pgb "$work/warm.log" "${args[@]}" -T 3 >/dev/null; done
	printf '  %-6s %8s %13s %6s   %13s %18s %6s\n' round "C tps" "PL/pgSQL tps" ratio \
		"C CPU us/tx" "PL/pgSQL CPU us/tx" ratio
	: >"$work/ratios"
	: >"$work/cpu_ratios"
	for r in $(seq 1 "$ROUNDS"); do
		# C first in odd rounds, PL/pgSQL first in even ones: a trend within
		# a round (autovacuum, a neighbour's load) does not favour one side
		order="C P"
		[ $((r % 2)) -eq 0 ] && order="P C"
		for v in $order; do
			use_trigger $v
			h0=$(history_rows)
			c0=$(server_cpu_ticks "$work/pg")
			out=$(pgb "$work/$v.$r.log" "${args[@]}" -T "$SECS")
			c1=$(server_cpu_ticks "$work/pg")
			h1=$(history_rows)
			read -r tps n <<<"$out"
			cpu=$(awk -v t=$((c1 - c0)) -v n="$n" -v hz="$CLK_TCK" 'BEGIN { printf "%.0f", t * 1e6 / hz / n }')
			if [ $((h1 - h0)) -ne $((n * per)) ]; then
				echo "  $v round $r: $n transactions wrote $((h1 - h0)) history rows, expected $((n * per))" >&2
				exit 1
			fi
			if [ $v = C ]; then ctps=$tps ccpu=$cpu; else ptps=$tps pcpu=$cpu; fi
		done
		awk -v c="$ctps" -v p="$ptps" 'BEGIN { print c / p }' >>"$work/ratios"
		awk -v c="$ccpu" -v p="$pcpu" 'BEGIN { print p / c }' >>"$work/cpu_ratios"
		printf '  %-6s %8s %13s %6.2f   %13s %18s %6.2f\n' "$r" "$ctps" "$ptps" "$(tail -1 "$work/ratios")" \
			"$ccpu" "$pcpu" "$(tail -1 "$work/cpu_ratios")"
	done
	med=$(median <"$work/ratios")
	cpu_med=$(median <"$work/cpu_ratios")
	printf '  median ratio C / PL/pgSQL: %.2f in tps, %.2f in server CPU per transaction\n' "$med" "$cpu_med"
	if [ -n "${BENCH_RESULTS:-}" ]; then
		echo "$key $med" >>"$BENCH_RESULTS"
		echo "${key}_cpu $cpu_med" >>"$BENCH_RESULTS"
	fi
}

compare status_ratio "status change paid<->fulfilling (plain UPDATE)" status_flip.pgbench 1 "$NFLIP" 1
flip_med=$med flip_cpu=$cpu_med
# rolled back: no history row survives, so 0 per transaction
compare cancel_ratio "cancel with release of 2 reservations (rolled back)" status_cancel.pgbench \
	$((NFLIP + 1)) $((NFLIP + NCANCEL)) 0

echo
awk -v m="$flip_med" -v c="$flip_cpu" 'BEGIN {
	printf "target: C path >= 1.5x PL/pgSQL on the plain status change: %s (median %.2fx in tps, %.2fx in CPU)\n",
		(m >= 1.5 ? "MET" : "NOT MET"), m, c }'
use_trigger C
check_invariants
