#!/usr/bin/env bash
# scripts/cluster.sh — a throwaway PostgreSQL 15 cluster for tests, demo and
# benchmarks. PostgreSQL refuses to run as root, so when called as root the
# server runs as the 'postgres' OS user; the data directory lives in a temp
# directory that 'stop' removes.
#
#   scripts/cluster.sh start DIR PORT [extra postgresql.conf lines...]
#   scripts/cluster.sh stop DIR
#   scripts/cluster.sh restart DIR
#   eval "$(scripts/cluster.sh env DIR PORT)"   # PGHOST/PGPORT/PGUSER
#
# The cluster listens on a Unix socket in DIR and on 127.0.0.1:PORT, trusts
# local connections, has wal_level=logical and lets wal2json act as an output
# plugin (in postgresql.conf the list is one quoted string; with ALTER SYSTEM
# it is written unquoted: SET output_plugin_libraries = pgoutput, wal2json).
set -euo pipefail

PGBIN=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
# pg_config from postgresql-common may point at another major: pin 15.
[ -x /usr/lib/postgresql/15/bin/postgres ] && PGBIN=/usr/lib/postgresql/15/bin
# ORDERSYNC_PGBIN: a private copy of the server (e.g. with an extension build
# under test installed into it with DESTDIR) instead of the system one.
PGBIN=${ORDERSYNC_PGBIN:-$PGBIN}

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,14p' "$0" >&2; exit 2; }

case "$cmd" in
start)
	port=${3:?port required}
	shift 3
	mkdir -p "$dir"
	[ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
	chmod 0755 "$dir"
	if [ ! -s "$dir/data/PG_VERSION" ]; then
		as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
			--locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
			{ cat "$dir/initdb.log" >&2; exit 1; }
		as_pg tee -a "$dir/data/postgresql.conf" >/dev/null <<CONF
# --- ordersync throwaway cluster ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
output_plugin_libraries = 'pgoutput, test_decoding, wal2json'
max_connections = 120
shared_buffers = 256MB
max_prepared_transactions = 10
fsync = on
log_line_prefix = '%m [%p] %q%a '
log_min_messages = warning
CONF
		for line in "$@"; do
			echo "$line" | as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
		done
	fi
	as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
		{ tail -20 "$dir/server.log" >&2; exit 1; }
	;;
stop)
	if [ -s "$dir/data/postmaster.pid" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null || true
	fi
	rm -rf "$dir"
	;;
restart)
	as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 60 restart >/dev/null
	;;
env)
	port=${3:?port required}
	echo "export PGHOST='$dir' PGPORT='$port' PGUSER=postgres PGDATABASE=postgres"
	;;
*)
	echo "unknown command: $cmd" >&2
	exit 2
	;;
esac
