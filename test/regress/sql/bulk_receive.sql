--
-- One transaction receives 20,000 SKUs. Each SKU's history chain stays
-- locked until commit; since 0.7.0 that is a row of
-- ordersync.history_chain_lock, which takes no room in PostgreSQL's shared
-- lock table. Earlier releases took a transaction advisory lock per SKU,
-- and a transaction like this one ended in "out of shared memory" after
-- some thousands (6,400 at default settings). Last in the schedule: it
-- leaves 20,000 SKUs behind.
--
SELECT count(*) AS received
  FROM (SELECT ordersync.receive_stock('BULK-' || g, 'main', 1)
		  FROM generate_series(1, 20000) g) r;
SELECT count(*) AS chain_rows, count(*) FILTER (WHERE prev_id IS NULL) AS chain_starts
  FROM ordersync.history WHERE action = 'receive' AND sku LIKE 'BULK-%';
SELECT count(*) AS lock_rows FROM ordersync.history_chain_lock WHERE chain LIKE 'BULK-%';
SELECT count(*) AS problems
  FROM ordersync.verify_history() v JOIN ordersync.history h ON h.id = v.history_id
 WHERE h.sku LIKE 'BULK-%';
-- a second receipt of one of them links to the first
SELECT ordersync.receive_stock('BULK-7', 'main', 2);
SELECT h.qty, h.prev_id = (SELECT min(id) FROM ordersync.history WHERE sku = 'BULK-7') AS linked
  FROM ordersync.history h WHERE h.sku = 'BULK-7' ORDER BY h.id DESC LIMIT 1;
