#!/usr/bin/env bash
# test/upgrade/run.sh — every earlier version upgraded to the current one
# gives exactly the schema a fresh CREATE EXTENSION gives, as pg_dump sees
# it: for each version V with an upgrade script (0.1.0, 0.2.0, ...), a
# database gets CREATE EXTENSION ordersync VERSION 'V' and ALTER EXTENSION
# ordersync UPDATE, and its `pg_dump --schema-only` is compared with a
# fresh database's, twice:
#   plain          what a user's dump holds (CREATE EXTENSION, grants on
#                  members, configuration tables);
#   binary-upgrade every member object of the extension, column by column,
#                  with its grants, comments and the list of configuration
#                  tables (pg_upgrade's view; normalize.py takes out OIDs,
#                  xids and the random \restrict key).
# Any difference fails, with the diff. A last case proves the comparison
# sees a difference (a changed comment on one member).
#
# Runs against the cluster scripts/test.sh set up (PGHOST/PGPORT), or, when
# none is set, a cluster of its own on port 26066 (ORDERSYNC_PGBIN as in
# scripts/cluster.sh). Prints PASS:/FAIL: lines.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
here="$top/test/upgrade"
work=$(mktemp -d /tmp/ordersync-upgrade.XXXXXX)
chmod 0755 "$work"
own=
cleanup() { [ -n "$own" ] && "$top/scripts/cluster.sh" stop "$own" >/dev/null 2>&1; rm -rf "$work"; }
trap cleanup EXIT
if [ -z "${PGHOST:-}" ]; then
	own="$work/pg"
	"$top/scripts/cluster.sh" start "$own" 26066 "fsync = off" >"$work/cluster.log" 2>&1 ||
		{ cat "$work/cluster.log"; echo "FAIL: upgrade/setup (cluster)"; exit 1; }
	eval "$("$top/scripts/cluster.sh" env "$own" 26066)"
fi
PGBIN=${ORDERSYNC_PGBIN:-/usr/lib/postgresql/15/bin}
export PGOPTIONS="-c client_min_messages=warning"
failures=0
current=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$top/ordersync.control")
# the versions an upgrade starts from: every ordersync--V--W.sql
mapfile -t versions < <(ls "$top/sql" | sed -n 's/^ordersync--\([0-9.]*\)--[0-9.]*\.sql$/\1/p' | sort -uV)

sql() { psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
# dump DB NAME: $work/NAME.plain and $work/NAME.binary (normalized)
dump() {
	"$PGBIN/pg_dump" --schema-only -d "$1" | grep -v -E '^\\(un)?restrict ' >"$work/$2.plain" &&
		"$PGBIN/pg_dump" --schema-only --binary-upgrade -d "$1" >"$work/$2.raw" &&
		sql "$1" "SELECT c.oid || ' ' || c.oid::regclass FROM pg_class c
		          WHERE relnamespace = 'ordersync'::regnamespace" >"$work/$2.oids" &&
		python3 "$here/normalize.py" "$work/$2.raw" "$work/$2.oids" >"$work/$2.binary"
}
# same A B: both dumps equal, else the diff goes to $work/diff
same() {
	{ diff -u "$work/$1.plain" "$work/$2.plain" && diff -u "$work/$1.binary" "$work/$2.binary"; } >"$work/diff"
}
fresh_db() {
	local db=$1 c
	shift
	sql postgres "DROP DATABASE IF EXISTS $db" && sql postgres "CREATE DATABASE $db" || return 1
	for c in "$@"; do sql "$db" "$c" || return 1; done
}

# prepare NAME DB SQL...: a database with the extension as SQL leaves it,
# dumped; NAME.ok when that worked, NAME.log either way. Run in parallel:
# each step mostly waits for the server (fsync), not for a CPU.
prepare() {
	local name=$1 db=$2
	shift 2
	{ fresh_db "$db" "$@" && dump "$db" "$name"; } >"$work/$name.log" 2>&1 && : >"$work/$name.ok"
}
[ ${#versions[@]} -gt 0 ] || { echo "FAIL: upgrade/versions (no upgrade scripts found)"; exit 1; }
# the fresh install first: it creates the extension's roles (cluster-wide),
# which the parallel installs below would otherwise race to create
prepare fresh up_fresh "CREATE EXTENSION ordersync"
jobs_=()
for v in "${versions[@]}"; do
	prepare "from_${v//./_}" "up_${v//./_}" "CREATE EXTENSION ordersync VERSION '$v'" \
		"ALTER EXTENSION ordersync UPDATE" &
	jobs_+=($!)
done
wait "${jobs_[@]}"
if [ ! -e "$work/fresh.ok" ] ||
	[ "$(sql up_fresh "SELECT extversion FROM pg_extension WHERE extname = 'ordersync'")" != "$current" ]; then
	echo "FAIL: upgrade/fresh_install ($current)"
	sed 's/^/  /' "$work/fresh.log" | head -20
	exit 1
fi
for v in "${versions[@]}"; do
	name="from_${v//./_}"
	if [ ! -e "$work/$name.ok" ]; then
		echo "FAIL: upgrade/$name (install $v and update)"
		sed 's/^/  /' "$work/$name.log" | head -20
		failures=$((failures + 1))
	elif ! same fresh "$name"; then
		echo "FAIL: upgrade/$name ($v updated to $current differs from a fresh $current)"
		head -80 "$work/diff" | sed 's/^/  /'
		failures=$((failures + 1))
	else
		echo "PASS: upgrade/$name ($v -> $current: pg_dump identical, $(wc -l <"$work/$name.binary") lines)"
	fi
	sql postgres "DROP DATABASE IF EXISTS up_${v//./_}" &
done
wait

# the comparison itself: one changed comment must be a difference
if sql up_fresh "COMMENT ON TABLE ordersync.history IS 'changed'" && dump up_fresh changed &&
	! same fresh changed && grep -q "changed" "$work/diff"; then
	echo "PASS: upgrade/comparison_sees_a_change"
else
	echo "FAIL: upgrade/comparison_sees_a_change (a changed comment went unnoticed)"
	failures=$((failures + 1))
fi
sql postgres "DROP DATABASE up_fresh"
[ $failures = 0 ]
