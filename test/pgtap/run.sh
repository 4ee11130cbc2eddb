#!/usr/bin/env bash
# test/pgtap/run.sh — the pgTAP suite of ordersync: schema, API contract,
# privileges and history.
#
# Called from the repository root by scripts/test.sh with PGHOST, PGPORT and
# PGUSER (a superuser) exported for a running throwaway cluster.  Creates a
# fresh database, installs pgtap and ordersync in it, runs every
# test/pgtap/*.sql file with psql inside its own transaction (rolled back at
# the end, so files do not see each other's data or roles), and prints one
# line per assertion:
#
#   PASS: pgtap/<file>/<n> <description>
#   FAIL: pgtap/<file>/<n> <description>
#
# plus a FAIL line when a file errors out or runs a different number of
# assertions than it planned.  Exits non-zero when anything failed.
#
#   ORDERSYNC_PGTAP_DB   database to (re)create   (default ordersync_pgtap)
#   ORDERSYNC_PGTAP_KEEP keep the database afterwards when set to 1
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
db=${ORDERSYNC_PGTAP_DB:-ordersync_pgtap}
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
PSQL=(psql -X -q -v ON_ERROR_STOP=1)

failed=0
passed=0
fail() {
	echo "FAIL: $*"
	failed=$((failed + 1))
}

if ! "${PSQL[@]}" -d postgres \
	-c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" \
	-c "CREATE DATABASE \"$db\"" >/dev/null; then
	fail "pgtap/setup cannot create database $db"
	exit 1
fi
if ! "${PSQL[@]}" -d "$db" \
	-c "CREATE EXTENSION pgtap" \
	-c "CREATE EXTENSION ordersync" >/dev/null; then
	fail "pgtap/setup cannot create extensions pgtap and ordersync in $db"
	exit 1
fi

shopt -s nullglob
files=("$here"/*.sql)
if [ ${#files[@]} -eq 0 ]; then
	fail "pgtap/setup no test files in $here"
	exit 1
fi

for f in "${files[@]}"; do
	name=$(basename "$f" .sql)
	out=$(mktemp)
	err=$(mktemp)
	{
		echo "SET statement_timeout = '60s';"
		echo "SET lock_timeout = '20s';"
		echo "BEGIN;"
		cat "$f"
		echo
		echo "ROLLBACK;"
	} | "${PSQL[@]}" -At -d "$db" >"$out" 2>"$err"
	rc=$?

	# Translate TAP: "1..N", "ok N - desc", "not ok N - desc # TODO ...".
	# Diagnostics ("# ...") of failed assertions are shown indented.
	awk -v file="$name" '
		function desc_of(line) {
			sub(/^(not )?ok [0-9]+( - )?/, "", line)
			return line
		}
		/^1\.\.[0-9]+$/ { planned = substr($0, 4) + 0; next }
		/^ok [0-9]+/ {
			n = $2; ran++
			print "PASS: pgtap/" file "/" n " " desc_of($0)
			lastfail = 0; next
		}
		/^not ok [0-9]+/ {
			n = $3; ran++
			d = desc_of($0)
			if (d ~ /# TODO/) { print "PASS: pgtap/" file "/" n " " d; lastfail = 0; next }
			print "FAIL: pgtap/" file "/" n " " d
			failures++; lastfail = 1; next
		}
		/^#/ { if (lastfail) print "    " $0; next }
		/^ / { if (lastfail) print "    " $0; next }
		END { printf "%d %d %d\n", planned, ran, failures > sumfile }
	' sumfile="$out.sum" "$out"
	read -r planned ran failures <"$out.sum"
	failed=$((failed + failures))
	passed=$((passed + ran - failures))

	if [ "$rc" -ne 0 ]; then
		fail "pgtap/$name psql exited $rc after $ran assertions: $(grep -m1 -E 'ERROR|FATAL|psql:' "$err" | sed 's/^psql:[^:]*:[0-9]*: //')"
		sed 's/^/    /' "$err" | head -20
	elif [ "$planned" -eq 0 ]; then
		fail "pgtap/$name no plan (SELECT plan(N)) was printed"
	elif [ "$planned" -ne "$ran" ]; then
		fail "pgtap/$name planned $planned assertions but ran $ran"
	fi
	rm -f "$out" "$err" "$out.sum"
done

if [ "${ORDERSYNC_PGTAP_KEEP:-0}" != 1 ]; then
	"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 ||
		echo "warning: could not drop database $db" >&2
fi

echo "pgtap: $passed assertions passed, $failed failed"
[ "$failed" -eq 0 ]
