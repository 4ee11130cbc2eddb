#!/usr/bin/env bash
# bench/run.sh — runs every benchmark (what `make bench` calls, after
# `make install`) and ends with a summary of the figures.  Each benchmark
# starts and removes its own throwaway cluster (ports 25460-25464; the
# forecast benchmark also needs R, which it installs when missing).  The relay
# benchmark, bench/relay/run.sh, runs last when it exists; the flash-sale
# benchmark (bench/hot_sku, durable commits) before it.
#
#   bench/run.sh           BENCH_ROUNDS=5 BENCH_SECS=10 by default (~5 min)
# Exits non-zero when a benchmark fails or an invariant is violated.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

results=$(mktemp /tmp/ordersync-bench-results.XXXXXX)
trap 'rm -f "$results"' EXIT
export BENCH_RESULTS=$results
rc=0

echo "ordersync benchmarks — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, PostgreSQL $(pg_config --version | awk '{print $2}')"
echo "(status and place_order: synchronous_commit=off, so figures are CPU; ratios come from rounds run side by side)"
echo
echo "### status changes: C trigger vs PL/pgSQL reference"
bench/status.sh || { echo "bench/status.sh FAILED"; rc=1; }
echo
echo "### place_order"
bench/place_order.sh || { echo "bench/place_order.sh FAILED"; rc=1; }
echo
echo "### place_order with the history hash chain (0.5.0) vs the build before it"
bench/history_chain.sh || { echo "bench/history_chain.sh FAILED"; rc=1; }

# get KEY FORMAT: a figure a benchmark appended to $results
get() { awk -v k="$1" -v f="$2" '$1 == k { v = $2 } END { if (v == "") print "n/a"; else printf f "\n", v }' "$results"; }
echo
echo "### summary"
printf '  status change (paid<->fulfilling), median C / PL/pgSQL:  %s in tps, %s in CPU per transaction\n' \
	"$(get status_ratio %.2f)" "$(get status_ratio_cpu %.2f)"
printf '  cancel + release of 2 reservations, median C / PL/pgSQL: %s in tps, %s in CPU per transaction\n' \
	"$(get cancel_ratio %.2f)" "$(get cancel_ratio_cpu %.2f)"
printf '  place_order (2 lines, 8 clients), median tps:           %s\n' "$(get place_order_tps %.0f)"
printf '  place_order with / without the history chain, tps:      %s\n' "$(get history_chain_ratio %.2f)"

echo
echo "### flash sale: one hot SKU (buckets) vs 10,000 SKUs vs one naive row"
bench/hot_sku/run.sh || { echo "bench/hot_sku/run.sh FAILED"; rc=1; }
echo "instructions per place_order (callgrind, load-independent), spread over 1,000 SKUs and hot:"
bench/hot_sku/instructions.sh || { echo "bench/hot_sku/instructions.sh FAILED"; rc=1; }

echo
echo "### forecast: ordersync.forecast() vs R (snaive, HoltWinters, ets)"
bench/forecast/run.sh || { echo "bench/forecast/run.sh FAILED"; rc=1; }

echo
echo "### outlook: Croston/SBA/TSB in C vs PL/pgSQL, stock_outlook() vs reading its rollup window"
bench/outlook/run.sh || { echo "bench/outlook/run.sh FAILED"; rc=1; }

echo
echo "### inbound: signed order webhooks to applied orders vs place_order over libpq"
bench/inbound/run.sh || { echo "bench/inbound/run.sh FAILED"; rc=1; }

if [ -x bench/relay/run.sh ]; then
	echo
	echo "### relay"
	bench/relay/run.sh || { echo "bench/relay/run.sh FAILED"; rc=1; }
fi

# delivery sinks, each next to the file sink on the same WAL (own ports 25468-25486)
for s in webhook kafka amqp nats; do
	if [ -x "bench/sinks/$s.sh" ]; then
		echo
		echo "### delivery sink: $s"
		"bench/sinks/$s.sh" || { echo "bench/sinks/$s.sh FAILED"; rc=1; }
	fi
done
echo
echo "### delivery sinks: events/s relative to the file sink on the same WAL"
for k in webhook_ratio_1 webhook_ratio_16 webhook_ratio_256 kafka_ratio amqp_ratio nats_ratio; do
	printf '  %-20s %s\n' "$k" "$(get "$k" %.3f)"
done
echo
echo "### delivery sinks: events/s relative to each reference (end to end / the sink alone, no walsender)"
for k in webhook_wrk_ratio_1:webhook_alone_ratio_1 webhook_wrk_ratio_16:webhook_alone_ratio_16 \
	webhook_wrk_ratio_256:webhook_alone_ratio_256 kafka_ref_ratio:kafka_alone_ratio \
	amqp_ref_ratio_1000:amqp_alone_ratio_1000 amqp_ref_ratio_64:amqp_alone_ratio_64 \
	nats_ref_ratio:nats_alone_ratio; do
	printf '  %-24s %s / %s\n' "${k%%:*}" "$(get "${k%%:*}" %.3f)" "$(get "${k#*:}" %.3f)"
done
printf '  %-24s %s (the Kafka sink end to end / pg_recvlogical on the same WAL)\n' kafka_source_ratio \
	"$(get kafka_source_ratio %.3f)"
printf '  %-24s %s (the Kafka sink end to end / pg_recvlogical piped into kafka_ref, same WAL)\n' \
	kafka_pipe_ratio "$(get kafka_pipe_ratio %.3f)"

# Every ratio with a goal, met or not, in one place: a figure that slips
# below its goal shows here instead of deep in one benchmark's output.
echo
echo "### goals (ratio >= goal)"
met=0
missed=()
for g in relay_ratio_messages:0.9 relay_ratio_orderlike:0.9 inbound_ratio:0.7 \
	webhook_wrk_ratio_1:0.6 webhook_wrk_ratio_16:0.6 webhook_wrk_ratio_256:0.6 webhook_slow_ratio:0.8 \
	kafka_ref_ratio:0.9 amqp_ref_ratio_1000:0.9 amqp_ref_ratio_64:0.9; do
	k=${g%%:*} goal=${g#*:} v=$(get "${g%%:*}" %.3f)
	if [ "$v" != n/a ] && [ "$(echo "$v >= $goal" | bc -l)" = 1 ]; then
		met=$((met + 1))
		printf '  %-24s %6s >= %s  met\n' "$k" "$v" "$goal"
	else
		missed+=("$k")
		printf '  %-24s %6s >= %s  %s\n' "$k" "$v" "$goal" "$([ "$v" = n/a ] && echo "MISSED (no figure)" || echo MISSED)"
	fi
done
echo "  $met goals met, ${#missed[@]} missed${missed[*]:+: ${missed[*]}}"
exit $rc
