#!/usr/bin/env bash
# bench/forecast/run.sh — ordersync.forecast() next to R (package forecast):
#
#   speed:    the CPU time of one forecast of the 4,032 half-hourly values of
#             forecast::taylor (season 336, one season ahead, with 95%
#             intervals) against R's HoltWinters() on the same series: its
#             fit alone, and its fit with predict() of one season and its
#             intervals.  Rounds run side by side; the ratios are medians.
#   accuracy: every series of bench/forecast/data forecast one season ahead
#             from all but its last season: MASE (mean absolute error over
#             that season / in-sample mean absolute error of the seasonal
#             naive forecast), ours against R's snaive(), HoltWinters() and
#             ets(), and the share of the season inside the 95% intervals.
#             The first five series are those the regression test holds to
#             MASE <= 1.15 x the best of R's and coverage >= 80%.
#
# R's figures are computed afresh by bench/forecast/reference.R and compared
# with the ones kept in bench/forecast/reference (what make test uses).
# R and its forecast package come from Debian (r-cran-forecast), installed
# here when missing (as root).  Uses its own throwaway cluster and the
# ordersync installed in the server scripts/cluster.sh runs (make install,
# or ORDERSYNC_PGBIN for a private copy, see scripts/private_pg.sh).
#
#   BENCH_ROUNDS (default 5), FORECAST_CALLS per round (default 20),
#   ORDERSYNC_BENCH_FORECAST_PORT (default 25463)
# Prints "forecast_speed_ratio R" and "forecast_accuracy_ok N/M" to
# $BENCH_RESULTS when set (see bench/run.sh).  Exits non-zero when a step
# fails, or when an enforced series misses its target.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
PORT=${ORDERSYNC_BENCH_FORECAST_PORT:-25463}
ROUNDS=${BENCH_ROUNDS:-5}
CALLS=${FORECAST_CALLS:-20}
CLUSTER=$top/scripts/cluster.sh
dir=$(mktemp -d /tmp/ordersync-bench-forecast.XXXXXX)
chmod 0755 "$dir"
trap '"$CLUSTER" stop "$dir/pg" >/dev/null 2>&1; rm -rf "$dir"' EXIT

psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) exit 1
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# --- R and its forecast package --------------------------------------------
have_r() { Rscript -e 'suppressPackageStartupMessages(library(forecast))' >/dev/null 2>&1; }
if ! have_r; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "bench/forecast: R's forecast package is missing; as root: apt-get install r-cran-forecast" >&2
		exit 1
	fi
	echo "installing r-cran-forecast (Debian) ..."
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y --no-install-recommends r-cran-forecast >"$dir/apt.log" 2>&1; then
		apt-get update >>"$dir/apt.log" 2>&1
		apt-get install -y --no-install-recommends r-cran-forecast >>"$dir/apt.log" 2>&1
	fi
	have_r || { echo "bench/forecast: cannot install r-cran-forecast:" >&2; tail -5 "$dir/apt.log" >&2; exit 1; }
fi
echo "R $(Rscript -e 'cat(format(getRversion()), "forecast", format(packageVersion("forecast")))' 2>/dev/null)"

# --- R's figures, afresh ---------------------------------------------------
if ! (cd "$top" && Rscript bench/forecast/reference.R "$dir/r" >"$dir/r.log" 2>&1); then
	echo "bench/forecast: reference.R failed:" >&2
	tail -20 "$dir/r.log" >&2
	exit 1
fi
if cmp -s "$dir/r/reference/summary.csv" "$here/reference/summary.csv"; then
	echo "R's figures: the same as the ones kept in bench/forecast/reference"
else
	echo "R's figures differ from the ones kept in bench/forecast/reference (another R or forecast version?):"
	diff "$here/reference/summary.csv" "$dir/r/reference/summary.csv" | sed 's/^/  /' | head -20
fi

# --- the cluster and the series ----------------------------------------------
"$CLUSTER" start "$dir/pg" "$PORT" >/dev/null || exit 1
eval "$("$CLUSTER" env "$dir/pg" "$PORT")"
export PGHOST PGPORT PGUSER PGDATABASE
psql_q -c "CREATE EXTENSION ordersync" -c "CREATE TABLE series (name text, t int, v float8)" || exit 1
for f in "$dir"/r/data/*.csv; do
	name=$(basename "$f" .csv)
	psql_q <<SQL || exit 1
CREATE TEMP TABLE one (v float8);
\copy one FROM '$f' CSV HEADER
INSERT INTO series SELECT '$name', row_number() OVER (), v FROM one;
SQL
done
psql_q -c "CREATE TABLE reference (series text, enforced boolean, season int, n_train int,
	horizon int, method text, model text, mase float8, coverage float8)" \
	-c "\\copy reference FROM '$dir/r/reference/summary.csv' CSV HEADER" || exit 1

# --- speed ---------------------------------------------------------------------
echo
echo "### speed: one forecast of forecast::taylor (4,032 values, season 336, 336 steps), CPU seconds per call"
# the backend's CPU (user + system clock ticks) around CALLS forecasts
ours_cpu() {
	psql_q -At <<SQL
SELECT pg_backend_pid() AS pid \gset
\setenv BPID :pid
\! sed 's/^.*) //' /proc/\$BPID/stat | awk '{ print \$12 + \$13 }' > $dir/cpu0
DO \$\$
DECLARE a float8[] := ARRAY(SELECT v FROM series WHERE name = 'taylor' ORDER BY t);
BEGIN
	FOR i IN 1..$CALLS LOOP
		PERFORM count(*) FROM ordersync.forecast(a, 336, 336);
	END LOOP;
END \$\$;
\! sed 's/^.*) //' /proc/\$BPID/stat | awk '{ print \$12 + \$13 }' > $dir/cpu1
SQL
	awk -v c="$CALLS" -v tck="$(getconf CLK_TCK)" 'NR == FNR { a = $1; next } { printf "%.6f\n", ($1 - a) / tck / c }' \
		"$dir/cpu0" "$dir/cpu1"
}
# warm up: the library loaded, the plan cached
psql_q -c "SELECT count(*) FROM ordersync.forecast(ARRAY(SELECT v FROM series WHERE name = 'taylor' ORDER BY t), 336, 336)" >/dev/null || exit 1
printf '  %-6s %12s %12s %16s %10s %12s\n' round ours R_HW_fit R_HW+predict ours/fit ours/fit+pred
: >"$dir/ratios"
for r in $(seq 1 "$ROUNDS"); do
	ours=$(ours_cpu) || exit 1
	read -r hw hwp < <(Rscript "$here/time_hw.R" "$dir/r/data/taylor.csv" 336 "$CALLS") || exit 1
	ratio=$(awk -v a="$ours" -v b="$hw" 'BEGIN { printf "%.3f", a / b }')
	ratio2=$(awk -v a="$ours" -v b="$hwp" 'BEGIN { printf "%.4f", a / b }')
	echo "$ratio $ratio2" >>"$dir/ratios"
	printf '  %-6s %12.4f %12.4f %16.4f %10s %12s\n' "$r" "$ours" "$hw" "$hwp" "$ratio" "$ratio2"
done
speed=$(awk '{ print $1 }' "$dir/ratios" | median)
speed2=$(awk '{ print $2 }' "$dir/ratios" | median)
echo "  median ours / HoltWinters() fit:            $speed   (target <= 1)"
echo "  median ours / HoltWinters() + predict():    $speed2"

# --- accuracy ------------------------------------------------------------------
echo
echo "### accuracy: one season ahead from all but the last season (MASE; coverage of the 95% intervals)"
psql_q -P footer=off <<'SQL' | tee "$dir/accuracy" || exit 1
CREATE TEMP TABLE meta AS
SELECT series, bool_or(enforced) AS enforced, season, n_train,
	   min(mase) FILTER (WHERE method = 'snaive') AS snaive,
	   min(mase) FILTER (WHERE method = 'hw') AS hw,
	   min(mase) FILTER (WHERE method = 'ets') AS ets,
	   min(model) FILTER (WHERE method = 'ets') AS ets_model,
	   min(coverage) FILTER (WHERE method = 'ets') AS ets_coverage
FROM reference GROUP BY series, season, n_train;
CREATE TEMP TABLE scale AS
SELECT a.name AS series, avg(abs(a.v - b.v)) AS scale
FROM series a JOIN meta m ON m.series = a.name
JOIN series b ON b.name = a.name AND b.t = a.t - m.season
WHERE a.t <= m.n_train GROUP BY a.name;
CREATE TEMP TABLE ours AS
SELECT m.series, f.*, a.v AS actual
FROM meta m
CROSS JOIN LATERAL ordersync.forecast(ARRAY(SELECT v FROM series s WHERE s.name = m.series
											AND s.t <= m.n_train ORDER BY t), m.season, m.season) f
JOIN series a ON a.name = m.series AND a.t = m.n_train + f.step;
CREATE TEMP TABLE result AS
SELECT m.series, m.enforced, m.season, m.n_train,
	   avg(abs(o.actual - o.value)) / s.scale AS ours, m.snaive, m.hw, m.ets, m.ets_model,
	   least(m.snaive, m.hw, m.ets) AS best,
	   avg((o.actual BETWEEN o.lower AND o.upper)::int) AS coverage, m.ets_coverage
FROM ours o JOIN meta m USING (series) JOIN scale s USING (series)
GROUP BY m.series, m.enforced, m.season, m.n_train, s.scale, m.snaive, m.hw, m.ets, m.ets_model, m.ets_coverage;
SELECT series, CASE WHEN enforced THEN 'yes' ELSE '' END AS held, season, n_train AS n,
	   round(ours::numeric, 3) AS ours, round(snaive::numeric, 3) AS snaive,
	   round(hw::numeric, 3) AS hw, round(ets::numeric, 3) AS ets, ets_model,
	   round(best::numeric, 3) AS best_r, round((ours / best)::numeric, 2) AS ratio,
	   round(coverage::numeric, 2) AS coverage, round(ets_coverage::numeric, 2) AS ets_coverage,
	   CASE WHEN ours <= 1.15 * best AND coverage >= 0.8 THEN 'ok' ELSE 'MISS' END AS target
FROM result ORDER BY NOT enforced, series;
SELECT count(*) FILTER (WHERE enforced AND ours <= 1.15 * best AND coverage >= 0.8) || '/' ||
	   count(*) FILTER (WHERE enforced) AS held_series_on_target,
	   count(*) FILTER (WHERE ours <= 1.15 * best AND coverage >= 0.8) || '/' || count(*) AS all_series_on_target,
	   round(exp(avg(ln(ours / best)))::numeric, 3) AS ours_vs_best,
	   round(exp(avg(ln(snaive / best)))::numeric, 3) AS snaive_vs_best,
	   round(exp(avg(ln(hw / best)))::numeric, 3) AS hw_vs_best,
	   round(exp(avg(ln(ets / best)))::numeric, 3) AS ets_vs_best
FROM result;
\echo (the *_vs_best columns: the geometric mean over all series of the MASE of each method divided by the best of R)
SQL
held=$(awk -F'|' '/\// && NF >= 3 { gsub(/ /, "", $1); print $1 }' "$dir/accuracy" | tail -1)
echo
echo "ordersync.forecast: speed ours/HoltWinters() $speed (ours/HoltWinters()+predict() $speed2), held series on target $held"
if [ -n "${BENCH_RESULTS:-}" ]; then
	echo "forecast_speed_ratio $speed" >>"$BENCH_RESULTS"
	echo "forecast_accuracy_ok $held" >>"$BENCH_RESULTS"
fi
[ "${held%/*}" = "${held#*/}" ]
