#!/usr/bin/env bash
# test/fuzz/run.sh — build the libFuzzer targets and run each.
#   test/fuzz/run.sh          short run (15 s per target; FUZZ_SECONDS overrides)
#   test/fuzz/run.sh long     long run for `make fuzz` (300 s per target)
# Prints PASS:/FAIL: lines; a crash leaves its reproducer in test/fuzz/crashes/.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mode=${1:-short}
if [ "$mode" = long ]; then secs=${FUZZ_SECONDS:-300}; else secs=${FUZZ_SECONDS:-15}; fi
work=$(mktemp -d /tmp/ordersyncd-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT

if ! command -v clang >/dev/null; then
	echo "FAIL: fuzz/build (clang not installed: scripts/deps.sh)"
	exit 1
fi
if ! make -s -C "$here" BIN="$work/fuzz_line" CONTROL_BIN="$work/fuzz_control" \
	INBOUND_BIN="$work/fuzz_inbound" "$work/fuzz_line" "$work/fuzz_control" \
	"$work/fuzz_inbound" >"$work/build.log" 2>&1; then
	cat "$work/build.log" >&2
	echo "FAIL: fuzz/build"
	exit 1
fi
echo "PASS: fuzz/build"

# fuzz TARGET CORPUS CASE SECONDS: seeds stay untouched, new inputs go to a
# scratch corpus; a crash leaves its reproducer in test/fuzz/crashes/.
fuzz() {
	local target=$1 seeds=$2 case=$3 t=$4 rc
	mkdir -p "$work/$target.corpus" "$here/crashes"
	cp "$here/$seeds"/* "$work/$target.corpus/"
	"$work/$target" -max_total_time="$t" -timeout=10 -rss_limit_mb=1024 \
		-artifact_prefix="$here/crashes/$target-" -print_final_stats=1 \
		"$work/$target.corpus" >"$work/$target.log" 2>&1
	rc=$?
	grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)' "$work/$target.log" | sed 's/^/  /'
	if [ $rc -ne 0 ]; then
		grep -v ' ordersyncd ' "$work/$target.log" | tail -40
		echo "FAIL: fuzz/$case"
		return 1
	fi
	echo "  fuzzed for ${t}s"
	echo "PASS: fuzz/$case"
}

failed=0
fuzz fuzz_line corpus line_parser_and_envelope "$secs" || failed=1
fuzz fuzz_control corpus_control control_rows_and_forged_messages "$secs" || failed=1
fuzz fuzz_inbound corpus_inbound inbound_signatures "$secs" || failed=1
rmdir "$here/crashes" 2>/dev/null || true
exit $failed
