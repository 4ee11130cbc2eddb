-- bench/analytics/demo_history.sql — four weeks of a shop's hourly orders
-- for the demo's forecast (scripts/demo.sh, psql -v channel=... ): about
-- 12 orders an hour on a daily cycle (quiet at night, a peak in the
-- evening), busier at weekends, with noise, up to the current hour; each
-- order goes pending -> paid -> fulfilling -> shipped -> delivered as far
-- as its times have passed, from berlin or hamburg (hamburg ships slowly).
-- Written straight into the tables, as ordersync would have (INSERTs
-- only: history is append-only).
\set ON_ERROR_STOP 1
CREATE TEMP TABLE syn AS
SELECT h, k, t,
	   (ARRAY['berlin', 'hamburg'])[1 + (hashint4(h * 97 + k) & 1)] AS loc,
	   t + make_interval(secs => 300 + (hashint4(h * 31 + k) & 1023)) AS t_paid,
	   t + make_interval(secs => 600 + (hashint4(h * 31 + k) & 1023) + 3600 + (hashint4(h * 37 + k) & 4095)) AS t_fulfil
  FROM (SELECT h, date_trunc('hour', now()) - interval '28 days' + h * interval '1 hour' AS t0,
			   -- orders this hour: a daily cycle, weekends x1.3, noise
			   greatest(0, round((12 + 9 * sin(2 * pi() * ((h % 24) - 11) / 24.0))
							* CASE WHEN extract(isodow FROM date_trunc('hour', now()) - interval '28 days'
												 + h * interval '1 hour') >= 6 THEN 1.3 ELSE 1 END
							+ ((hashint4(h) & 255) / 255.0 - 0.5) * 6))::int AS n
		  FROM generate_series(0, 28 * 24) h) hh
 CROSS JOIN LATERAL generate_series(1, hh.n) k
 CROSS JOIN LATERAL (SELECT hh.t0 + make_interval(secs => ((hashint4(h * 1009 + k) & 65535) / 65536.0) * 3600) AS t) tt
 WHERE tt.t < now();
ALTER TABLE syn ADD COLUMN t_ship timestamptz, ADD COLUMN t_deliv timestamptz;
UPDATE syn SET t_ship = t_fulfil + make_interval(secs => (7200 + (hashint4(h * 41 + k) & 16383))
											   * CASE loc WHEN 'hamburg' THEN 3 ELSE 1 END);
UPDATE syn SET t_deliv = t_ship + make_interval(secs => 86400 + (hashint4(h * 43 + k) & 65535));

CREATE TEMP TABLE syn_o AS
WITH ins AS (
	INSERT INTO ordersync.orders (channel, external_id, status, lines, total, created_at, updated_at)
	SELECT :'channel', 'SYN-' || h || '-' || k,
		   CASE WHEN t_deliv <= now() THEN 'delivered' WHEN t_ship <= now() THEN 'shipped'
				WHEN t_fulfil <= now() THEN 'fulfilling' WHEN t_paid <= now() THEN 'paid' ELSE 'pending' END,
		   '[]', 49.00, t,
		   CASE WHEN t_deliv <= now() THEN t_deliv WHEN t_ship <= now() THEN t_ship
				WHEN t_fulfil <= now() THEN t_fulfil WHEN t_paid <= now() THEN t_paid ELSE t END
	  FROM syn
	RETURNING id, external_id
)
SELECT ins.id, syn.* FROM ins JOIN syn ON ins.external_id = 'SYN-' || syn.h || '-' || syn.k;

INSERT INTO ordersync.history (at, action, order_id, from_status, to_status, sku, location, qty, actor, role)
SELECT e.* FROM syn_o o
CROSS JOIN LATERAL (VALUES
	(o.t, 'created', o.id, NULL, 'pending', NULL, NULL, NULL::bigint, 'demo', 'demo'),
	(o.t, 'reserve', o.id, NULL, NULL, 'DEMO-TEE', o.loc, 1, 'demo', 'demo'),
	(o.t_paid, 'status', o.id, 'pending', 'paid', NULL, NULL, NULL, 'demo', 'demo'),
	(o.t_fulfil, 'status', o.id, 'paid', 'fulfilling', NULL, NULL, NULL, 'demo', 'demo'),
	(o.t_ship, 'status', o.id, 'fulfilling', 'shipped', NULL, NULL, NULL, 'demo', 'demo'),
	(o.t_deliv, 'status', o.id, 'shipped', 'delivered', NULL, NULL, NULL, 'demo', 'demo')
) e(at, action, order_id, from_status, to_status, sku, location, qty, actor, role)
WHERE e.at <= now()
ORDER BY e.at, e.order_id, e.action DESC;
