-- ordersync.forecast(): every refusal (OS004, with the position of a bad
-- value), the notices of short histories, results that can be worked out by
-- hand, and accuracy on five public series against R's snaive(),
-- HoltWinters() and ets(), whose figures bench/forecast/reference.R computed
-- and bench/forecast/reference/ keeps.  Figures are rounded so the output
-- does not depend on the platform's last bits.

-- the contract
SELECT pg_get_function_arguments('ordersync.forecast'::regproc) AS arguments,
	   pg_get_function_result('ordersync.forecast'::regproc) AS result;
SELECT provolatile, proisstrict, proparallel, prosecdef, proretset
FROM pg_proc WHERE oid = 'ordersync.forecast'::regproc;

-- ---------------------------------------------------------------------------
-- refusals
-- ---------------------------------------------------------------------------
SELECT * FROM ordersync.forecast(NULL, 12, 3);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast('{1,2,3,4,5}', NULL, 3);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast('{1,2,3,4,5}', 0, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast('{1,2,3,4,5}', 0, 3, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast('{1,2,NULL,4,5}', 0, 3);
\echo :LAST_ERROR_SQLSTATE
-- positions are the array's own subscripts, and the count from the start
SELECT * FROM ordersync.forecast('[0:4]={1,2,3,NaN,5}', 0, 3);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast('{1,2,3,4,Infinity}', 0, 3);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast('{-Infinity,2,3,4,5}', 0, 3);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast('{{1,2},{3,4}}', 0, 3);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast('{1,2}', 0, 3);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast('{}', 0, 3);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast('{1,2,3,4,5}', -1, 3);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast('{1,2,3,4,5}', 100001, 3);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast('{1,2,3,4,5}', 0, 0);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast('{1,2,3,4,5}', 0, 100001);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast('{1,2,3,4,5}', 0, 3, 0);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast('{1,2,3,4,5}', 0, 3, 1);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.forecast('{1,2,3,4,5}', 0, 3, 'NaN');
\echo :LAST_ERROR_SQLSTATE

-- ---------------------------------------------------------------------------
-- results that can be worked out by hand
-- ---------------------------------------------------------------------------
-- a constant: the constant, without uncertainty
SELECT * FROM ordersync.forecast('{7,7,7,7,7,7}', 0, 3);
-- a straight line goes on (and a fit that exact leaves almost no doubt)
SELECT step, round(value::numeric, 3) AS value, round((upper - lower)::numeric, 3) AS width
FROM ordersync.forecast(ARRAY(SELECT 2.0 * t + 1 FROM generate_series(1, 20) t), 0, 3);
-- three values: no model can be fitted; the last value, with the spread of
-- the steps so far growing with the square root of the horizon
SELECT step, value, round(lower::numeric, 4) AS lower, round(upper::numeric, 4) AS upper
FROM ordersync.forecast('{10,12,11}', 0, 4);
-- four values of a season of two: the last season, repeated
SELECT step, value FROM ordersync.forecast('{10,20,12,22}', 2, 4);
-- a season needs two seasons of history: without one, a notice, and a
-- forecast without the season
SELECT count(*) AS steps, bool_and(lower <= value AND value <= upper) AS ordered
FROM ordersync.forecast(ARRAY(SELECT 100 + t + 10 * (t % 12) FROM generate_series(1, 18) t), 12, 6);

-- a season repeated exactly, with noise: the season comes back
CREATE TEMP TABLE fc_weekly AS
SELECT t, 50 + 0.05 * t + (ARRAY[10, 4, 0, -2, 1, 14, 20])[t % 7 + 1] + ((t * 7919) % 11 - 5) / 5.0 AS v
FROM generate_series(1, 140) t;
SELECT step, round(value::numeric) AS value
FROM ordersync.forecast(ARRAY(SELECT v FROM fc_weekly ORDER BY t), 7, 7);
-- season 0 and season 1 both mean none
SELECT count(*) AS differences FROM (
	(SELECT * FROM ordersync.forecast(ARRAY(SELECT v FROM fc_weekly ORDER BY t), 0, 10)
	 EXCEPT SELECT * FROM ordersync.forecast(ARRAY(SELECT v FROM fc_weekly ORDER BY t), 1, 10))
	UNION ALL
	(SELECT * FROM ordersync.forecast(ARRAY(SELECT v FROM fc_weekly ORDER BY t), 1, 10)
	 EXCEPT SELECT * FROM ordersync.forecast(ARRAY(SELECT v FROM fc_weekly ORDER BY t), 0, 10))) d;
-- the same arguments give the same rows (the simulated intervals too)
SELECT count(*) AS differences FROM (
	SELECT * FROM ordersync.forecast(ARRAY(SELECT v * (1 + t / 50.0) FROM fc_weekly ORDER BY t), 7, 30)
	EXCEPT SELECT * FROM ordersync.forecast(ARRAY(SELECT v * (1 + t / 50.0) FROM fc_weekly ORDER BY t), 7, 30)) d;
-- steps are numbered from 1, every interval holds its forecast, and a lower
-- level gives narrower intervals
SELECT min(a.step) AS first, max(a.step) AS last, count(*) AS steps,
	   bool_and(a.lower <= a.value AND a.value <= a.upper) AS ordered,
	   bool_and(b.upper - b.lower < a.upper - a.lower) AS narrower_at_80
FROM ordersync.forecast(ARRAY(SELECT v FROM fc_weekly ORDER BY t), 7, 21) a
JOIN ordersync.forecast(ARRAY(SELECT v FROM fc_weekly ORDER BY t), 7, 21, 0.8) b USING (step);
-- values at or below zero: only additive models, and still a forecast
SELECT count(*) AS steps, bool_and(lower <= value AND value <= upper) AS ordered,
	   round(avg(value)::numeric) AS mean
FROM ordersync.forecast(ARRAY(SELECT v - 60 FROM fc_weekly ORDER BY t), 7, 14);
-- the longest horizon
SELECT count(*) AS steps, max(step) AS last
FROM ordersync.forecast(ARRAY(SELECT v - 60 FROM fc_weekly ORDER BY t), 7, 100000);
-- a very long history: the models see its last 100,000 values, and say so
SELECT count(*) AS steps
FROM ordersync.forecast(ARRAY(SELECT sin(t) + t % 7 FROM generate_series(1, 100001) t), 0, 2);

-- ---------------------------------------------------------------------------
-- accuracy against R (bench/forecast/reference.R): each series forecast
-- one season ahead from all but its last season; MASE is the mean absolute
-- error over that season divided by the in-sample mean absolute error of
-- the seasonal naive forecast.  Ours must be within 15% of the best of R's
-- snaive(), HoltWinters() and ets(), and the 95% intervals must hold at
-- least 80% of the season.
-- ---------------------------------------------------------------------------
\getenv abs_srcdir PG_ABS_SRCDIR
\set bench :abs_srcdir '/../../bench/forecast'
CREATE TEMP TABLE fc_reference (series text, enforced boolean, season int, n_train int,
								horizon int, method text, model text, mase float8, coverage float8);
\set file :bench '/reference/summary.csv'
\set csv `cat :'file'`
INSERT INTO fc_reference
SELECT f[1], f[2]::boolean, f[3]::int, f[4]::int, f[5]::int, f[6], f[7], f[8]::float8, f[9]::float8
FROM regexp_split_to_table(:'csv', E'\n') WITH ORDINALITY AS r(line, n),
	 LATERAL string_to_array(line, ',') AS f
WHERE n > 1 AND line <> '';
SELECT series, season, n_train, count(*) AS methods FROM fc_reference
WHERE enforced GROUP BY series, season, n_train ORDER BY series;

CREATE TEMP TABLE fc_series (series text, t int, v float8);
\set file :bench '/data/airpassengers.csv'
\set csv `cat :'file'`
INSERT INTO fc_series SELECT 'airpassengers', n - 1, v::float8
FROM regexp_split_to_table(:'csv', E'\n') WITH ORDINALITY AS r(v, n) WHERE n > 1 AND v <> '';
\set file :bench '/data/taylor.csv'
\set csv `cat :'file'`
INSERT INTO fc_series SELECT 'taylor', n - 1, v::float8
FROM regexp_split_to_table(:'csv', E'\n') WITH ORDINALITY AS r(v, n) WHERE n > 1 AND v <> '';
\set file :bench '/data/wineind.csv'
\set csv `cat :'file'`
INSERT INTO fc_series SELECT 'wineind', n - 1, v::float8
FROM regexp_split_to_table(:'csv', E'\n') WITH ORDINALITY AS r(v, n) WHERE n > 1 AND v <> '';
\set file :bench '/data/nottem.csv'
\set csv `cat :'file'`
INSERT INTO fc_series SELECT 'nottem', n - 1, v::float8
FROM regexp_split_to_table(:'csv', E'\n') WITH ORDINALITY AS r(v, n) WHERE n > 1 AND v <> '';
\set file :bench '/data/usaccdeaths.csv'
\set csv `cat :'file'`
INSERT INTO fc_series SELECT 'usaccdeaths', n - 1, v::float8
FROM regexp_split_to_table(:'csv', E'\n') WITH ORDINALITY AS r(v, n) WHERE n > 1 AND v <> '';
SELECT series, count(*) AS n FROM fc_series GROUP BY series ORDER BY series;

CREATE TEMP TABLE fc_meta AS
SELECT series, season, n_train, min(mase) FILTER (WHERE method = 'snaive') AS r_snaive,
	   min(mase) AS r_best
FROM fc_reference WHERE enforced GROUP BY series, season, n_train;
-- the in-sample error of the seasonal naive forecast, the MASE scale
CREATE TEMP TABLE fc_scale AS
SELECT a.series, avg(abs(a.v - b.v)) AS scale
FROM fc_series a JOIN fc_meta USING (series)
JOIN fc_series b ON b.series = a.series AND b.t = a.t - fc_meta.season
WHERE a.t <= fc_meta.n_train GROUP BY a.series;
-- the scale is R's: the seasonal naive forecast's MASE computed here is R's
SELECT m.series, abs(avg(abs(a.v - b.v)) / s.scale - m.r_snaive) < 1e-5 AS same_as_r
FROM fc_meta m JOIN fc_scale s USING (series)
JOIN fc_series a ON a.series = m.series AND a.t > m.n_train
JOIN fc_series b ON b.series = m.series AND b.t = a.t - m.season
GROUP BY m.series, s.scale, m.r_snaive ORDER BY m.series;

CREATE TEMP TABLE fc_ours AS
SELECT m.series, f.step, f.value, f.lower, f.upper, a.v AS actual
FROM fc_meta m
CROSS JOIN LATERAL ordersync.forecast(ARRAY(SELECT v FROM fc_series s WHERE s.series = m.series
												AND s.t <= m.n_train ORDER BY t), m.season, m.season) f
JOIN fc_series a ON a.series = m.series AND a.t = m.n_train + f.step;
SELECT o.series, round((avg(abs(o.actual - o.value)) / s.scale)::numeric, 2) AS mase,
	   round(m.r_best::numeric, 2) AS r_best,
	   avg(abs(o.actual - o.value)) / s.scale <= 1.15 * m.r_best AS within_15_percent,
	   round(avg((o.actual BETWEEN o.lower AND o.upper)::int), 2) AS coverage,
	   avg((o.actual BETWEEN o.lower AND o.upper)::int) >= 0.8 AS coverage_ok
FROM fc_ours o JOIN fc_meta m USING (series) JOIN fc_scale s USING (series)
GROUP BY o.series, s.scale, m.r_best ORDER BY o.series;
