#!/usr/bin/env bash
# test/bgworker/run.sh — the expiry background worker, on a cluster of its
# own with ordersync in shared_preload_libraries: a pending order whose
# reservation runs out is expired without anyone calling
# expire_reservations(), its stock comes back, and an order being paid at
# that moment is left alone.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
PORT=${ORDERSYNC_BGWORKER_PORT:-25434}
dir=$(mktemp -d /tmp/ordersync-bgw.XXXXXX)
chmod 0755 "$dir"
trap '"$top/scripts/cluster.sh" stop "$dir/pg" >/dev/null 2>&1; rm -rf "$dir"' EXIT

# the database the worker works in must exist when the server starts
"$top/scripts/cluster.sh" start "$dir/pg" "$PORT" || { echo "FAIL: bgworker/cluster_start"; exit 1; }
eval "$("$top/scripts/cluster.sh" env "$dir/pg" "$PORT")"
export PGOPTIONS="-c client_min_messages=warning"
psql -X -q -d postgres -c "CREATE DATABASE shop" || exit 1
# (ALTER SYSTEM refuses ordersync.* before the library is loaded)
printf "%s\n" "shared_preload_libraries = 'ordersync'" "ordersync.database = 'shop'" \
	"ordersync.expire_interval = 1" | if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- tee -a "$dir/pg/data/postgresql.conf"
	else
		tee -a "$dir/pg/data/postgresql.conf"
	fi >/dev/null
"$top/scripts/cluster.sh" restart "$dir/pg" || { echo "FAIL: bgworker/cluster_restart"; exit 1; }

q() { psql -X -At -v ON_ERROR_STOP=1 -d shop -c "$1"; }
check() {
	if [ "$2" = "$3" ]; then echo "PASS: bgworker/$1"; else echo "FAIL: bgworker/$1 (got '$2', want '$3')"; fi
}

q "CREATE EXTENSION ordersync" >/dev/null
q "SELECT ordersync.add_location('main')" >/dev/null
q "SELECT ordersync.receive_stock('A', 'main', 10)" >/dev/null

# the worker waits for the extension, then runs in the configured database
for _ in $(seq 1 30); do
	[ "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ordersync expiry worker' AND datname = 'shop'")" = 1 ] && break
	sleep 0.5
done
check worker_running "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ordersync expiry worker' AND datname = 'shop'")" "1"

# two orders run out; one of them is being paid right now
q "SET ordersync.reservation_ttl = 1; SELECT ordersync.place_order('web', 'x1', '[{\"sku\": \"A\", \"qty\": 3, \"price\": \"1\"}]')" >/dev/null
q "SET ordersync.reservation_ttl = 1; SELECT ordersync.place_order('web', 'x2', '[{\"sku\": \"A\", \"qty\": 2, \"price\": \"1\"}]')" >/dev/null
check reserved "$(q "SELECT ordersync.available('A')")" "5"
# x2 is locked by a payment that takes 4 seconds, past its expiry
psql -X -q -d shop -c "BEGIN; SELECT ordersync.set_status(id, 'paid') FROM ordersync.orders WHERE external_id = 'x2'; SELECT pg_sleep(4); COMMIT;" >/dev/null &
payer=$!

for _ in $(seq 1 30); do
	[ "$(q "SELECT status FROM ordersync.orders WHERE external_id = 'x1'")" = expired ] && break
	sleep 0.2
done
check expired_by_worker "$(q "SELECT status FROM ordersync.orders WHERE external_id = 'x1'")" "expired"
check reason_recorded "$(q "SELECT reason FROM ordersync.history h JOIN ordersync.orders o ON o.id = h.order_id WHERE o.external_id = 'x1' AND h.to_status = 'expired'")" "reservation expired"
wait $payer
check payment_not_overtaken "$(q "SELECT status FROM ordersync.orders WHERE external_id = 'x2'")" "paid"
check stock_back "$(q "SELECT ordersync.available('A')")" "8"
