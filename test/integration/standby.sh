#!/usr/bin/env bash
# test/integration/standby.sh — two ordersyncd on one slot: the second
# stands by (logs it once, no error loop), /metrics and /healthz say which
# one is active, and when the active one dies by kill -9 the standby takes
# over within 2 s; three takeovers while a producer writes, then every
# event is there and repeats come only from the unconfirmed tail.
#
# The takeover time is measured from just before the kill to the moment the
# standby logs that it streams from the slot (its /healthz answering 200 is
# printed too; that adds this script's curl latency). Ports 26060 (PostgreSQL),
# 26061-26062 (metrics). Must run as root (the cluster runs as postgres).
set -uo pipefail

. "$(dirname "$0")/lib.sh"
it_init standby 26060
if ! psql -X -q -f "$here/setup.sql" >"$work/setup.log" 2>&1; then
	cat "$work/setup.log"
	echo "FAIL: integration/standby-setup (schema)"
	exit 1
fi
LIMIT_MS=2000
total=6000

# run K: incarnation K of a relay, file $work/fK.jsonl, metrics on 26061 or 26062
declare -A rpid_of port_of
run() {
	local k=$1
	port_of[$k]=$((26061 + k % 2))
	start_relay "r$k" --slot=it_sb --sink=file:"$work/f$k.jsonl" \
		--metrics-addr=127.0.0.1:${port_of[$k]} --fsync-interval=20 --status-interval=1
	rpid_of[$k]=$RELAY
	: >>"$work/f$k.jsonl"
}
# http K PATH: "<status> <X-Ordersyncd-Role>" of relay K's PATH
http() {
	curl -s -m 2 -o /dev/null -D - "http://127.0.0.1:${port_of[$1]}$2" 2>/dev/null |
		awk 'NR == 1 { s = $2 } tolower($1) == "x-ordersyncd-role:" { r = $2 } END { sub("\r", "", r); print s, r }'
}
metric() { # metric K NAME: its value in relay K's /metrics
	local out
	out=$(curl -s -m 2 "http://127.0.0.1:${port_of[$1]}/metrics")
	awk -v n="$2" '$1 == n { print $2 }' <<<"$out"
}
# wait_role K ROLE SECS: until relay K's /healthz says ROLE
wait_role() {
	local i
	for ((i = 0; i < $3 * 50; i++)); do
		[ "$(http "$1" /healthz)" = "$([ "$2" = active ] && echo 200 || echo 503) $2" ] && return 0
		sleep 0.02
	done
	return 1
}
lines() { local n=0 k; for ((k = 0; k <= $1; k++)); do n=$((n + $(wc -l <"$work/f$k.jsonl"))); done; echo $n; }

t_standby() {
	local name=standby_takes_over bad=() k prod t0 t1 took times=() res rc ts streamed
	reset_seq
	new_slot it_sb
	: >"$work/kills.txt"
	run 0
	wait_role 0 active 10 || bad+=("relay 0 never became active: $(tail -3 "$work/r0.log")")
	run 1
	wait_role 1 standby 10 || bad+=("relay 1 never stood by: $(http 1 /healthz) $(tail -3 "$work/r1.log")")
	# both say which they are: /metrics, /healthz (and /livez 200 for both)
	[ "$(metric 0 ordersyncd_active) $(metric 0 ordersyncd_standby)" = "1 0" ] ||
		bad+=("active relay's metrics: active=$(metric 0 ordersyncd_active) standby=$(metric 0 ordersyncd_standby)")
	[ "$(metric 1 ordersyncd_active) $(metric 1 ordersyncd_standby)" = "0 1" ] ||
		bad+=("standby's metrics: active=$(metric 1 ordersyncd_active) standby=$(metric 1 ordersyncd_standby)")
	[ "$(http 0 /livez)" = "200 active" ] && [ "$(http 1 /livez)" = "200 standby" ] ||
		bad+=("/livez: $(http 0 /livez) / $(http 1 /livez)")
	psql -X -q -c "CALL public.it_produce($total, 3, 0, 3)" >"$work/prod.log" 2>&1 &
	prod=$!
	pids+=("$prod")
	for k in 0 1 2; do
		sleep 1.5
		# a standby stood by quietly: one line saying so, no warning or error
		[ "$(grep -c 'standing by' "$work/r$((k + 1)).log")" = 1 ] &&
			! grep -q -E 'WARNING|ERROR' "$work/r$((k + 1)).log" ||
			bad+=("standby r$((k + 1)) log: $(grep -E 'standing|WARNING|ERROR' "$work/r$((k + 1)).log" | head -3)")
		# stopped, it can confirm no more: what the slot has is exactly what it
		# confirmed at its death (read after the kill, the standby may have moved it)
		kill -STOP "${rpid_of[$k]}"
		echo "$(lines "$k") $(confirmed it_sb)" >>"$work/kills.txt"
		disown "${rpid_of[$k]}"
		# t0 just before the kill, without a fork: the times below are upper bounds
		t0=${EPOCHREALTIME/./}
		t0=$((t0 / 1000))
		kill -9 "${rpid_of[$k]}"
		echo "$(date -u +%T.%3N) kill -9 r$k" >>"$work/takeover-log.txt"
		if wait_role $((k + 1)) active 10; then
			t1=${EPOCHREALTIME/./}
			took=$((t1 / 1000 - t0))
			# the takeover: from the kill to the standby streaming, by its log's
			# clock; /healthz answering 200 adds the latency of this loop's curl
			# forks (up to a second when the machine is loaded)
			ts=$(grep -m1 'streaming from slot' "$work/r$((k + 1)).log" | cut -c1-23)
			streamed=$(($(date -u -d "${ts/T/ } UTC" +%s%3N) - t0))
			times+=("${streamed}ms (/healthz 200 after ${took}ms)")
			grep -h -E 'released|streaming from' "$work/r$((k + 1)).log" | sed -E 's/^[0-9-]+T([0-9:.]+)Z ordersyncd [A-Z]+: /\1 /' | cut -c1-90 >>"$work/takeover-log.txt"
			echo "$(date -u +%T.%3N) r$((k + 1)) /healthz 200" >>"$work/takeover-log.txt"
			[ "$streamed" -le $LIMIT_MS ] || bad+=("takeover $((k + 1)) took ${streamed} ms (limit $LIMIT_MS)")
		else
			bad+=("relay $((k + 1)) did not take over: $(tail -3 "$work/r$((k + 1)).log")")
		fi
		run $((k + 2))
		wait_role $((k + 2)) standby 10 || bad+=("relay $((k + 2)) never stood by: $(tail -3 "$work/r$((k + 2)).log")")
	done
	wait "$prod" || bad+=("producer: $(tail -3 "$work/prod.log")")
	# the last active relay (3) delivers the rest; then both stop on SIGTERM with 0
	wait_confirmed it_sb "$(cur_lsn)" 60 || bad+=("relay 3 did not confirm the end")
	kill -TERM "${rpid_of[4]}" "${rpid_of[3]}"
	wait_exit "${rpid_of[4]}" 20; rc=$WRC
	wait_exit "${rpid_of[3]}" 20; rc="$rc/$WRC"
	[ "$rc" = 0/0 ] || bad+=("exit codes standby/active on SIGTERM: $rc")
	cat "$work"/f{0,1,2,3,4}.jsonl >"$work/all.jsonl"
	res=$(check seq "$work/all.jsonl" "$total" "$work/kills.txt" 2>&1) || bad+=("$res")
	if [ ${#bad[@]} = 0 ]; then
		pass $name
		echo "  takeover after kill -9 (to streaming): ${times[*]} (limit ${LIMIT_MS} ms)"
		echo "  $res"
		sed 's/^/    /' "$work/takeover-log.txt"
	else
		fail $name "takeovers: ${times[*]}" "${bad[@]}" "$(cat "$work/takeover-log.txt")"
	fi
	drop_slot it_sb
}

t_standby
[ $failures = 0 ]
