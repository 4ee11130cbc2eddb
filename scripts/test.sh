#!/usr/bin/env bash
# scripts/test.sh — runs every test suite against a throwaway cluster and
# ends with one line "N passed, N failed"; exits non-zero on any failure.
# Called by `make test` after the extension and relay are built and installed.
#
# Suites: pg_regress (test/regress), isolationtester (test/isolation),
# pgTAP (test/pgtap), load tests (test/load), and the relay's own runners
# (test/unit, test/integration, test/fuzz) when present, and the Debian
# packages (test/packaging).  Each case is
# reported as "PASS: suite/name" or "FAIL: suite/name".
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
PGBIN=/usr/lib/postgresql/15/bin
PGXS_DIR=$(dirname "$(pg_config --pgxs)")/..
# Every fixed port of the tests, benchmarks and demo lies below 32768, out of
# Linux's ephemeral range (32768-60999): there, a client socket of an earlier
# suite (pgbench leaves thousands in TIME_WAIT) can hold the port and a
# cluster's bind() fails with "Address already in use", as CI once saw.
PORT=${ORDERSYNC_TEST_PORT:-25432}
work=$(mktemp -d /tmp/ordersync-test.XXXXXX)
chmod 0755 "$work"
cluster="$work/pg"
passed=0
failed=0

# ORDERSYNC_TEST_KEEP=1 keeps the work directory (results, logs) for a look
cleanup() { scripts/cluster.sh stop "$cluster" >/dev/null 2>&1; [ "${ORDERSYNC_TEST_KEEP:-}" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT

# count PASS:/FAIL: lines a suite printed on stdout (also shown as they come)
tally() {
	local out=$1
	local p f
	p=$(grep -c '^PASS: ' "$out" || true)
	f=$(grep -c '^FAIL: ' "$out" || true)
	passed=$((passed + p))
	failed=$((failed + f))
}

run_suite() {
	local name=$1
	shift
	local out="$work/$name.out"
	local started=$SECONDS
	echo "== $name"
	"$@" 2>&1 | tee "$out"
	local rc=${PIPESTATUS[0]}
	echo "-- $name took $((SECONDS - started)) s"
	tally "$out"
	# a runner that failed without reporting a failed case still counts once
	if [ "$rc" -ne 0 ] && ! grep -q '^FAIL: ' "$out"; then
		echo "FAIL: $name (runner exited $rc)"
		failed=$((failed + 1))
	fi
}

scripts/cluster.sh start "$cluster" "$PORT" || { echo "0 passed, 1 failed"; exit 1; }
eval "$(scripts/cluster.sh env "$cluster" "$PORT")"
export ORDERSYNC_TEST_WORK="$work"

# pg_regress / pg_isolation_regress print "test NAME ... ok|FAILED"
pg_regress_suite() {
	local kind=$1 dir=$2 schedule=$3
	local bin=$PGXS_DIR/test/regress/pg_regress
	[ "$kind" = isolation ] && bin=$PGXS_DIR/test/isolation/pg_isolation_regress
	local outdir="$work/$kind"
	mkdir -p "$outdir"
	chown postgres: "$outdir" 2>/dev/null
	"$bin" --host="$PGHOST" --port="$PGPORT" --user=postgres \
		--inputdir="$dir" --outputdir="$outdir" --dbname="ordersync_$kind" \
		--schedule="$schedule" >"$outdir/log" 2>&1
	local rc=$?
	sed -n -E 's/^(test|     ) +([a-z0-9_]+) +\.\.\. +ok.*/PASS: '"$kind"'\/\2/p; s/^(test|     ) +([a-z0-9_]+) +\.\.\. +FAILED.*/FAIL: '"$kind"'\/\2/p' "$outdir/log"
	if grep -q FAILED "$outdir/log"; then
		echo "--- $kind diffs ($outdir/regression.diffs):"
		head -200 "$outdir/regression.diffs" 2>/dev/null
	fi
	return $rc
}

# ORDERSYNC_TEST_SUITES="regress isolation ...": only those suites (all by
# default), e.g. while working on one part
want() { [ -z "${ORDERSYNC_TEST_SUITES:-}" ] || [[ " $ORDERSYNC_TEST_SUITES " == *" $1 "* ]]; }

want regress && run_suite regress pg_regress_suite regress test/regress test/regress/schedule
want isolation && run_suite isolation pg_regress_suite isolation test/isolation test/isolation/schedule
want pgtap && run_suite pgtap test/pgtap/run.sh
want load && run_suite load test/load/run.sh
want bgworker && run_suite bgworker test/bgworker/run.sh

export ORDERSYNCD="$top/src/relay/ordersyncd"
for s in unit integration; do
	want "$s" && [ -x "test/$s/run.sh" ] && run_suite "$s" "test/$s/run.sh"
done
# the delivery sinks, each against its real server (own cluster and ports),
# the attacker suite and the inbound receiver
for f in test/integration/sink_*.sh test/integration/attack.sh test/integration/inbound.sh; do
	want "$(basename "$f" .sh)" && [ -x "$f" ] && run_suite "$(basename "$f" .sh)" "$f"
done
# operations (issue 14): standby relay, primary failover, the dashboard's
# metrics (own ports), and pg_dump of every upgrade against a fresh install
for f in test/integration/standby.sh test/integration/failover.sh test/integration/dashboard.sh; do
	want "$(basename "$f" .sh)" && [ -x "$f" ] && run_suite "$(basename "$f" .sh)" "$f"
done
want upgrade && run_suite upgrade test/upgrade/run.sh
want fuzz && [ -x test/fuzz/run.sh ] && run_suite fuzz test/fuzz/run.sh
# the Debian packages, installed with dpkg -i and removed again (needs root)
want packaging && [ -x test/packaging/run.sh ] && run_suite packaging test/packaging/run.sh

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
