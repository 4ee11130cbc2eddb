#!/usr/bin/env bash
# test/fuzz/run.sh — build the libFuzzer target and run it.
#   test/fuzz/run.sh          short run (default 20 s; FUZZ_SECONDS overrides)
#   test/fuzz/run.sh long     long run for `make fuzz` (default 600 s)
# Prints PASS:/FAIL: lines; a crash leaves its reproducer in test/fuzz/crashes/.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mode=${1:-short}
if [ "$mode" = long ]; then secs=${FUZZ_SECONDS:-600}; else secs=${FUZZ_SECONDS:-20}; fi
work=$(mktemp -d /tmp/ordersyncd-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT

if ! command -v clang >/dev/null; then
	echo "FAIL: fuzz/build (clang not installed: scripts/deps.sh)"
	exit 1
fi
if ! make -s -C "$here" BIN="$work/fuzz_line" "$work/fuzz_line" >"$work/build.log" 2>&1; then
	cat "$work/build.log" >&2
	echo "FAIL: fuzz/build"
	exit 1
fi
echo "PASS: fuzz/build"

# Seeds stay untouched: new inputs go to a scratch corpus.
mkdir -p "$work/corpus" "$here/crashes"
cp "$here"/corpus/* "$work/corpus/"
"$work/fuzz_line" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 \
	-artifact_prefix="$here/crashes/" -print_final_stats=1 \
	"$work/corpus" >"$work/fuzz.log" 2>&1
rc=$?
grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)' "$work/fuzz.log" | sed 's/^/  /'
if [ $rc -ne 0 ]; then
	tail -40 "$work/fuzz.log"
	echo "FAIL: fuzz/line_parser_and_envelope"
	exit 1
fi
rmdir "$here/crashes" 2>/dev/null || true
echo "  fuzzed for ${secs}s"
echo "PASS: fuzz/line_parser_and_envelope"
