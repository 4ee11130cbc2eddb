#!/usr/bin/env bash
# test/integration/dashboard.sh — the Grafana dashboard
# (contrib/grafana/ordersyncd.json) queries only what the relay exports:
# every metric name in its PromQL is on a running relay's /metrics (with
# samples, or declared by # TYPE when nothing happened yet, e.g. no dead
# letter), every "by (label)" of a query is a label of that metric, and its
# PostgreSQL panels' SQL runs against a real ordersync database. The relay
# runs with a file sink and a webhook sink (a local receiver), so both kinds
# of sink show up per event type.
# Ports 26074 (PostgreSQL), 26075 (metrics), 26076 (webhook receiver).
set -uo pipefail

. "$(dirname "$0")/lib.sh"
it_init dashboard 26074
dash="$root/contrib/grafana/ordersyncd.json"

t_dashboard() {
	local name=dashboard_queries_exported_metrics res
	psql -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION ordersync" >/dev/null && it_producer >/dev/null ||
		{ fail $name "setup: extension and producer"; return; }
	new_slot dash
	recv_start hook 26076 "" || { fail $name "webhook receiver on 26076"; return; }
	start_relay relay --slot=dash --sink=file:"$work/all.jsonl" --sink=http://127.0.0.1:26076/hook \
		--metrics-addr=127.0.0.1:26075 --status-interval=1
	sql "CALL public.it_orders('D', 3)"
	wait_confirmed dash "$(cur_lsn)" 30 || { fail $name "relay did not confirm: $(tail -3 "$work/relay.log")"; return; }
	curl -s -m 5 http://127.0.0.1:26075/metrics >"$work/metrics.txt"
	# the SQL panels, with Grafana's macros as a real time range
	python3 - "$dash" >"$work/panels.sql" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
for p in d["panels"]:
    for t in p.get("targets", []):
        if "rawSql" in t:
            sql = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 BETWEEN now() - interval '6 hours' AND now()", t["rawSql"])
            print(f"-- {p['title']}\n{sql};")
PY
	if ! psql -X -q -v ON_ERROR_STOP=1 -f "$work/panels.sql" >"$work/panels.out" 2>&1; then
		fail $name "a PostgreSQL panel's SQL fails: $(tail -3 "$work/panels.out")"
		return
	fi
	res=$(python3 - "$dash" "$work/metrics.txt" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
text = open(sys.argv[2]).read()
declared = set(re.findall(r"^# TYPE (\S+) \S+", text, re.M))
labels = {}                       # metric -> labels on its samples
for name, lab in re.findall(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})? ", text, re.M):
    labels.setdefault(name, set()).update(re.findall(r"(\w+)=\"", lab))
exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", []) if "expr" in t]
exprs += [v["query"]["query"] for v in d["templating"]["list"] if isinstance(v.get("query"), dict)]
bad, names = [], set()
for e in exprs:
    found = re.findall(r"\bordersyncd_\w+", e)
    if not found:
        bad.append(f"no ordersyncd metric in {e!r}")
    for n in found:
        names.add(n)
        base = re.sub(r"_(bucket|sum|count)$", "", n)
        if n not in labels and n not in declared and base not in declared:
            bad.append(f"{n} is not exported (query {e!r})")
            continue
        for by in re.findall(r"by \(([^)]*)\)", e):
            for l in (x.strip() for x in by.split(",")):
                if l in ("instance", "job", "le") or n not in labels:
                    continue     # target labels come from Prometheus; le from the histogram
                if l not in labels[n]:
                    bad.append(f"{n} has no label {l!r} (query {e!r})")
# the dashboard shows what the issue asks for
for want in ("ordersyncd_lag_bytes", "ordersyncd_lag_seconds", "ordersyncd_events_total",
             "ordersyncd_delivery_retries_total", "ordersyncd_dead_letters_total",
             "ordersyncd_reconnects_total", "ordersyncd_active", "ordersyncd_standby"):
    if want not in names:
        bad.append(f"the dashboard does not query {want}")
# events per sink and type: both the file sink and the webhook sink
sinks = set(re.findall(r'^ordersyncd_events_total\{sink="([^"]*)",type="ordersync\.order\.created"\}', text, re.M))
if len(sinks) < 2:
    bad.append(f"ordersyncd_events_total has order.created for sinks {sorted(sinks)}, want the file and the webhook sink")
print("\n".join(bad) if bad else f"ok {len(names)} metrics in {len(exprs)} queries, all exported")
PY
	)
	if [[ "$res" == ok* ]]; then
		pass $name
		echo "  $res; $(grep -c '^--' "$work/panels.sql") SQL panels run"
	else
		fail $name "$res"
	fi
	kill -TERM "$RELAY"; wait_exit "$RELAY" 20
}

t_dashboard
[ $failures = 0 ]
