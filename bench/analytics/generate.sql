-- bench/analytics/generate.sql — a shop's month as ordersync would have
-- written it, straight into the tables (psql -v orders=N): N orders over
-- 30 days ending 12 days ago (so every lifecycle has ended), 3 channels,
-- 4 locations, 200 SKUs, 2 or 3 lines each, and their history in time
-- order (ids follow time, as the sequence hands them out):
--   85% created, reserve per line, paid, fulfilling, consume per line,
--       shipped, delivered, completed
--   10% created, reserve per line, release per line, cancelled
--    5% created, reserve per line, release per line, expired
-- plus a receipt per SKU, location and day, about a day's demand, so that
-- some run out for a while.
-- Times in status vary by order, and location "south" ships slowly.
-- INSERTs only: history is append-only, and these are the rows its API
-- would have written (the append-only trigger guards UPDATE, DELETE and
-- TRUNCATE).
\set ON_ERROR_STOP 1
SET synchronous_commit = off;
SET work_mem = '256MB';

CREATE TEMP TABLE p AS
SELECT date_trunc('day', now()) - interval '42 days' AS t0, :orders::bigint AS n;

INSERT INTO ordersync.channel (id) VALUES ('market') ON CONFLICT DO NOTHING;
INSERT INTO ordersync.location (id, priority)
SELECT l, 0 FROM unnest(ARRAY['north', 'south', 'east', 'west']) l ON CONFLICT DO NOTHING;
INSERT INTO ordersync.sku (sku) SELECT 'SKU-' || lpad(s::text, 3, '0') FROM generate_series(1, 200) s
ON CONFLICT DO NOTHING;

-- one row per order: its lifecycle and the times of its steps
CREATE TEMP TABLE o AS
SELECT i AS id,
	   (ARRAY['web', 'app', 'market'])[1 + (hashint4(i::int) & 1023) % 3] AS channel,
	   (ARRAY['north', 'south', 'east', 'west'])[1 + (hashint4(i::int + 7) & 1023) % 4] AS location,
	   CASE WHEN (hashint4(i::int + 11) & 1023) % 100 < 85 THEN 'full'
			WHEN (hashint4(i::int + 11) & 1023) % 100 < 95 THEN 'cancelled' ELSE 'expired' END AS path,
	   2 + (i % 3 = 0)::int AS nlines,
	   p.t0 + (i::float8 / p.n) * interval '30 days' AS created,
	   -- seconds in pending, paid, fulfilling, shipped, delivered
	   60 + (hashint4(i::int + 1) & 65535) % 1800 AS s_pending,
	   300 + (hashint4(i::int + 2) & 65535) % 7200 AS s_paid,
	   3600 + (hashint4(i::int + 3) & 65535) % 14400 AS s_fulfilling,
	   86400 + (hashint4(i::int + 4) & 65535) * 3 AS s_shipped,
	   7 * 86400 AS s_delivered
  FROM generate_series(1, (SELECT n FROM p)) i, p;
-- south ships slowly: the bottleneck the analytics must find
UPDATE o SET s_fulfilling = s_fulfilling * 4 WHERE location = 'south';

INSERT INTO ordersync.orders (id, channel, external_id, status, lines, total, created_at, updated_at)
OVERRIDING SYSTEM VALUE
SELECT id, channel, 'B-' || id,
	   CASE path WHEN 'full' THEN 'completed' ELSE path END,
	   '[]', 10 * nlines, created,
	   created + make_interval(secs => CASE path WHEN 'full'
			THEN s_pending + s_paid + s_fulfilling + s_shipped + s_delivered ELSE s_pending END)
  FROM o;
SELECT setval(pg_get_serial_sequence('ordersync.orders', 'id'), (SELECT n FROM p));

INSERT INTO ordersync.order_line (order_id, line_no, sku, qty, price)
SELECT o.id, l, 'SKU-' || lpad((1 + (o.id * 7 + l * 13) % 200)::text, 3, '0'), 1 + (o.id + l) % 2, 10
  FROM o, generate_series(1, 3) l WHERE l <= o.nlines;

-- every step of every lifecycle, then the stock rows of its lines
CREATE TEMP TABLE st AS
SELECT o.id, o.location, o.path, s.step,
	   o.created + make_interval(secs => (ARRAY[0, o.s_pending, o.s_pending + o.s_paid,
			o.s_pending + o.s_paid + o.s_fulfilling,
			o.s_pending + o.s_paid + o.s_fulfilling + o.s_shipped,
			o.s_pending + o.s_paid + o.s_fulfilling + o.s_shipped + o.s_delivered])[s.step + 1]) AS at,
	   (ARRAY[NULL, 'pending', 'paid', 'fulfilling', 'shipped', 'delivered'])[s.step + 1] AS from_status,
	   CASE WHEN s.step = 1 AND o.path <> 'full' THEN o.path
			ELSE (ARRAY['pending', 'paid', 'fulfilling', 'shipped', 'delivered', 'completed'])[s.step + 1] END AS to_status
  FROM o CROSS JOIN generate_series(0, 5) s(step)
 WHERE o.path = 'full' OR s.step <= 1;

CREATE TEMP TABLE ev AS
SELECT st.at, CASE st.step WHEN 0 THEN 'created' ELSE 'status' END AS action, st.id AS order_id,
	   st.from_status, st.to_status, NULL::text AS sku, NULL::text AS location, NULL::bigint AS qty, 1 AS k
  FROM st
UNION ALL
SELECT st.at, CASE st.step WHEN 0 THEN 'reserve' WHEN 1 THEN 'release' ELSE 'consume' END, st.id,
	   NULL, NULL, ol.sku, st.location, ol.qty, 0
  FROM st JOIN ordersync.order_line ol ON ol.order_id = st.id
 WHERE st.step = 0 OR (st.step = 1 AND st.path <> 'full') OR st.step = 3
UNION ALL
-- receipts: every SKU at every location, each morning
SELECT p.t0 + d * interval '1 day' + interval '6 hours', 'receive', NULL, NULL, NULL,
	   'SKU-' || lpad(s::text, 3, '0'), l,
	   -- about a day's demand (orders a day x 2.33 lines x 1.5 units over
	   -- 800 SKU x location), from half to one and a half of it
	   ceil(p.n / 30.0 * 3.5 / 800 * (0.5 + ((s * 37 + d * 11) % 100) / 100.0))::bigint, 0
  FROM p, generate_series(0, 41) d, generate_series(1, 200) s,
	   unnest(ARRAY['north', 'south', 'east', 'west']) l;

INSERT INTO ordersync.history (at, action, order_id, from_status, to_status, sku, location, qty,
							   actor, role)
SELECT at, action, order_id, from_status, to_status, sku, location, qty, 'bench', 'bench'
  FROM ev ORDER BY at, order_id, k;

INSERT INTO ordersync.stock (sku, location, on_hand)
SELECT h.sku, h.location, greatest(sum(CASE h.action WHEN 'receive' THEN h.qty WHEN 'consume' THEN -h.qty ELSE 0 END), 0)
  FROM ordersync.history h WHERE h.sku IS NOT NULL AND h.location IS NOT NULL GROUP BY 1, 2;
VACUUM ANALYZE ordersync.history;
VACUUM ANALYZE ordersync.orders;
VACUUM ANALYZE ordersync.order_line;
