# bench/lib.sh — helpers shared by the benchmark scripts in bench/ (sourced,
# not run): a throwaway cluster tuned to measure CPU, one timed pgbench run,
# medians, and the stock invariants every run must end with.
# shellcheck shell=bash disable=SC2034  # ROUNDS, SECS, CLK_TCK are for the caller

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${BENCH_ROUNDS:-5}
SECS=${BENCH_SECS:-10}

psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# start DIR PORT: a cluster whose commits do not wait for the disk, so the
# figures measure CPU (what C vs PL/pgSQL changes), and which neither
# checkpoints nor vacuums in the middle of a round (the benchmarks VACUUM
# after their setup; HOT pruning keeps the updated tables in shape).
bench_cluster() {
	local dir=$1 port=$2
	"$top/scripts/cluster.sh" start "$dir" "$port" \
		"synchronous_commit = off" \
		"checkpoint_timeout = 30min" \
		"max_wal_size = 8GB" \
		"autovacuum = off" >/dev/null
	eval "$("$top/scripts/cluster.sh" env "$dir" "$port")"
	export PGHOST PGPORT PGUSER PGDATABASE
}

# CPU (clock ticks) used by the cluster's exited children: the postmaster
# collects each backend's user+system time (cutime, cstime) when it reaps
# it.  Read before and after a pgbench run, it gives the server CPU per
# transaction, which a neighbour's load on this shared machine hardly moves,
# unlike tps.  Waits a moment so the backends of the run have been reaped.
server_cpu_ticks() {
	sleep 0.3
	sed 's/^.*) //' "/proc/$(head -1 "$1/data/postmaster.pid")/stat" | awk '{ print $14 + $15 }'
}
CLK_TCK=$(getconf CLK_TCK)

# pgb LOG pgbench-args...: runs pgbench -M prepared and prints its tps and
# transaction count ("tps n").  A client that aborts (an error in a
# transaction) fails the benchmark: its figures would mean nothing.
pgb() {
	local log=$1
	shift
	if ! pgbench -n -M prepared "$@" >"$log" 2>&1 || grep -q 'aborted' "$log"; then
		echo "pgbench failed:" >&2
		tail -15 "$log" >&2
		return 1
	fi
	awk '/^number of transactions actually processed:/ { n = $6 }
	     /^tps = / { t = $3 }
	     END { printf "%.0f %d\n", t, n }' "$log"
}

# median of the numbers on stdin, one per line
median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) exit 1
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# The promises about stock, checked on the final data: reserved is the sum of
# held reservations per (sku, location), reserved <= on_hand, nothing
# negative.  Prints "invariants: OK" or the offending rows; 0 when OK.
check_invariants() {
	local bad
	bad=$(psql -X -At -v ON_ERROR_STOP=1 <<'SQL'
-- per (sku, location): a hot SKU's stock there is split over bucket rows
WITH held AS (
	SELECT sku, location, sum(qty) AS qty FROM ordersync.reservation
	 WHERE state = 'held' GROUP BY sku, location),
st AS (
	SELECT sku, location, sum(reserved) AS reserved,
	       bool_and(reserved <= on_hand AND least(on_hand, reserved, safety) >= 0) AS rows_ok
	  FROM ordersync.stock GROUP BY sku, location)
SELECT format('  %s@%s: reserved=%s held=%s rows_ok=%s', coalesce(st.sku, h.sku),
              coalesce(st.location, h.location), st.reserved, coalesce(h.qty, 0), st.rows_ok)
  FROM st FULL JOIN held h USING (sku, location)
 WHERE st.sku IS NULL OR st.reserved <> coalesce(h.qty, 0) OR NOT st.rows_ok
 LIMIT 10;
SQL
	) || { echo "invariants: cannot be checked"; return 1; }
	if [ -z "$bad" ]; then
		echo "invariants: OK (stock.reserved = held reservations, reserved <= on_hand, none negative)"
		return 0
	fi
	echo "invariants: VIOLATED"
	echo "$bad"
	return 1
}
