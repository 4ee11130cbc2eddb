# bench/sinks/lib.sh — sourced by the delivery-sink benchmarks (webhook.sh,
# kafka.sh, amqp.sh, relay_cpu.sh): the throwaway cluster they all relay
# from. Needs $root (the repository) set by the caller.

# sinks_cluster DIR PORT [postgresql.conf lines...]: start a cluster in DIR
# on PORT and point psql at it (PGHOST...), set CONN (the relay's --dbname)
# and sql() (one statement, unaligned output); the extension is created (the
# relay refuses to run where any role may emit ordersync events, and reads
# its configured sinks, none, and writes dead letters there) and
# bench_produce() (produce.sql) loaded. Returns non-zero when any of it fails.
sinks_cluster() {
	local dir=$1 port=$2
	shift 2
	"$root/scripts/cluster.sh" start "$dir" "$port" "$@" >/dev/null || return 1
	eval "$("$root/scripts/cluster.sh" env "$dir" "$port")"
	export PGOPTIONS="-c client_min_messages=warning"
	CONN="host=$dir port=$port user=postgres dbname=postgres"
	sql "CREATE EXTENSION ordersync" &&
		psql -X -q -v ON_ERROR_STOP=1 -f "$root/bench/sinks/produce.sql"
}

sql() { psql -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }
