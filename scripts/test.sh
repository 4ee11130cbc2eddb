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

# count PASS:/FAIL: lines of a suite's report
tally() {
	local out=$1
	local p f
	p=$(grep -c '^PASS: ' "$out" || true)
	f=$(grep -c '^FAIL: ' "$out" || true)
	passed=$((passed + p))
	failed=$((failed + f))
}

# suite_report NAME CMD...: runs one suite and prints its report: the
# runner's output, a FAIL line when it failed without reporting a failed
# case (so that it still counts once), and how long it took
suite_report() {
	local name=$1
	shift
	local started=$SECONDS rc
	echo "== $name"
	# the file exists before tail opens it: tail gives up on a missing one
	: >"$work/$name.raw"
	"$@" >>"$work/$name.raw" 2>&1 &
	local pid=$!
	tail -n +1 -s 0.2 -f --pid=$pid "$work/$name.raw" 2>/dev/null
	wait $pid
	rc=$?
	if [ "$rc" -ne 0 ] && ! grep -q '^FAIL: ' "$work/$name.raw"; then
		echo "FAIL: $name (runner exited $rc)"
	fi
	echo "-- $name took $((SECONDS - started)) s"
}

# run_suite NAME CMD...: one suite now, its report shown as it comes
run_suite() {
	suite_report "$@" | tee "$work/$1.out"
	tally "$work/$1.out"
}

# in_lane NAME CMD...: one suite of a lane (below), its report shown whole
# once it has run, so that the reports of two lanes do not interleave
in_lane() {
	suite_report "$@" >"$work/$1.out"
	echo "$1" >>"$work/lane_suites"
	flock "$work/print.lock" cat "$work/$1.out"
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
# The relay's suites run in two lanes at once: each starts its own cluster,
# brokers and receivers on ports of its own, and most of their time is
# spent waiting (timeouts, restarts, kill -9 and recovery), so one lane
# alone left the two cores half idle.  The broker suites (RabbitMQ, NATS,
# Kafka) share lane B; the unit tests and the fuzzer, which build against
# the relay's library, share lane A.  ORDERSYNC_TEST_LANES=1 runs them one
# after the other.
lane_a() {
	for s in unit integration; do
		want "$s" && [ -x "test/$s/run.sh" ] && in_lane "$s" "test/$s/run.sh"
	done
	# the attacker suite, the inbound receiver, the standby relay, the
	# dashboard's metrics and pg_dump of every upgrade against a fresh install
	for f in test/integration/attack.sh test/integration/inbound.sh test/integration/standby.sh \
		test/integration/dashboard.sh; do
		want "$(basename "$f" .sh)" && [ -x "$f" ] && in_lane "$(basename "$f" .sh)" "$f"
	done
	want upgrade && in_lane upgrade test/upgrade/run.sh
	want fuzz && [ -x test/fuzz/run.sh ] && in_lane fuzz test/fuzz/run.sh
}
lane_b() {
	# the delivery sinks, each against its real server, and primary failover
	for f in test/integration/sink_*.sh test/integration/failover.sh; do
		want "$(basename "$f" .sh)" && [ -x "$f" ] && in_lane "$(basename "$f" .sh)" "$f"
	done
}
: >"$work/lane_suites"
if [ "${ORDERSYNC_TEST_LANES:-2}" = 1 ]; then
	lane_a
	lane_b
else
	lane_a &
	lane_b &
	wait
fi
while read -r s; do tally "$work/$s.out"; done <"$work/lane_suites"
# the Debian packages, installed with dpkg -i and removed again (needs root)
want packaging && [ -x test/packaging/run.sh ] && run_suite packaging test/packaging/run.sh

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
