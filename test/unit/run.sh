#!/usr/bin/env bash
# test/unit/run.sh — build and run the cmocka unit tests of ordersyncd's
# pure parts. Prints "PASS: <group>.<test>" / "FAIL: <group>.<test>" per
# test case; exits non-zero if any failed. Run from anywhere.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d /tmp/ordersyncd-unit-run.XXXXXX)
trap 'rm -rf "$out"' EXIT

if ! make -s -C "$here" BIN="$out/unit_tests" "$out/unit_tests" >"$out/build.log" 2>&1; then
	cat "$out/build.log" >&2
	echo "FAIL: unit/build"
	exit 1
fi

# cmocka's TAP output: "ok N - name" / "not ok N - name", "# ok - group" after each group.
CMOCKA_MESSAGE_OUTPUT=TAP "$out/unit_tests" >"$out/tap" 2>"$out/stderr"
rc=$?
awk '
	/^(not )?ok [0-9]+ - / {
		name = $0; sub(/^(not )?ok [0-9]+ - /, "", name)
		res[++n] = ($1 == "ok") ? "PASS" : "FAIL"; nm[n] = name; next
	}
	/^# (not )?ok - / {
		grp = $0; sub(/^# (not )?ok - /, "", grp)
		for (i = first + 1; i <= n; i++) print res[i] ": unit/" grp "." nm[i]
		first = n; next
	}
	/^#/ { print "  " $0 }
' "$out/tap"
if [ "$rc" -ne 0 ] || grep -q '^not ok' "$out/tap"; then
	echo "--- unit test stderr (expected ERROR lines are from bad-input tests) ---"
	cat "$out/stderr"
	exit 1
fi
exit 0
