-- history: append-only, with the actor the application names
SELECT count(*) > 0 AS has_rows FROM ordersync.history;
UPDATE ordersync.history SET reason = 'rewritten' WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM ordersync.history WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE ordersync.history;
\echo :LAST_ERROR_SQLSTATE

-- the actor is the role unless the application says who acts
SELECT ordersync.receive_stock('H-1', 'main', 1);
SET ordersync.actor = 'user:42';
SELECT ordersync.receive_stock('H-1', 'main', 1);
RESET ordersync.actor;
SELECT actor, role, action, qty FROM ordersync.history WHERE sku = 'H-1' ORDER BY id;

-- the role is the caller's, even through SECURITY DEFINER functions
CREATE ROLE regress_ordersync_clerk;
GRANT ordersync_app TO regress_ordersync_clerk;
SET ROLE regress_ordersync_clerk;
SELECT ordersync.place_order('web', 'H-1', '[{"sku": "H-1", "qty": 1, "price": "1.00"}]') AS h1 \gset
UPDATE ordersync.orders SET status = 'paid' WHERE id = :h1;
RESET ROLE;
SELECT actor, role, action, to_status FROM ordersync.history WHERE order_id = :h1 ORDER BY id;
DROP ROLE regress_ordersync_clerk;

-- every stock movement is in history: on hand = received - consumed + restocked
-- (per location, whatever the buckets)
WITH stock AS (
	SELECT sku, location, sum(on_hand) AS on_hand FROM ordersync.stock GROUP BY 1, 2
), moved AS (
	SELECT sku, location,
		   sum(qty) FILTER (WHERE action IN ('receive', 'restock'))
		   - coalesce(sum(qty) FILTER (WHERE action = 'consume'), 0) AS from_history
	FROM ordersync.history WHERE sku IS NOT NULL AND location IS NOT NULL GROUP BY 1, 2
)
SELECT s.sku, s.location, s.on_hand, m.from_history
FROM stock s LEFT JOIN moved m USING (sku, location)
WHERE s.on_hand IS DISTINCT FROM coalesce(m.from_history, 0);
