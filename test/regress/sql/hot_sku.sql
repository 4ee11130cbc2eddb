-- hot SKUs: stock split into buckets, exact totals, low/out of stock events
SELECT 'init' FROM pg_create_logical_replication_slot('regress_hot', 'wal2json');
CREATE TEMP VIEW hot AS
SELECT location, bucket, on_hand, reserved, safety FROM ordersync.stock
WHERE sku = 'FLASH' ORDER BY location, bucket;

SELECT ordersync.receive_stock('FLASH', 'main', 10);
SELECT ordersync.receive_stock('FLASH', 'backup', 3);
SELECT ordersync.place_order('web', 'F-1', '[{"sku": "FLASH", "qty": 2, "price": "1.00"}]') AS f1 \gset

-- split: held units stay in bucket 0 with their reservation, free ones spread
SELECT ordersync.set_hot('FLASH', 4);
SELECT * FROM hot;
SELECT buckets FROM ordersync.sku WHERE sku = 'FLASH';
SELECT ordersync.available('FLASH');

-- receiving spreads over the buckets too
SELECT ordersync.receive_stock('FLASH', 'main', 5);
SELECT * FROM hot WHERE location = 'main';
SELECT ordersync.available('FLASH');
SELECT * FROM slot_events('regress_hot') WHERE type = 'inventory.received';

-- an order larger than any bucket takes from several, at one location
SELECT ordersync.place_order('web', 'F-2', '[{"sku": "FLASH", "qty": 7, "price": "1.00"}]') AS f2 \gset
SELECT location, sum(qty) AS qty, count(*) > 1 AS several_buckets
FROM ordersync.reservation WHERE order_id = :f2 GROUP BY location;
SELECT ordersync.available('FLASH');
-- one event per location, with the location's totals
SELECT type, data->>'location' AS location, data->>'qty' AS qty, data->>'on_hand' AS on_hand,
	   data->>'reserved' AS reserved, data->>'available' AS available
FROM slot_events('regress_hot');

-- cancel releases into the buckets it came from
SELECT ordersync.set_status(:f2, 'cancelled');
SELECT sum(reserved) AS reserved FROM ordersync.stock WHERE sku = 'FLASH';
SELECT ordersync.available('FLASH');

-- safety stock is spread over the buckets and never sold
SELECT ordersync.set_safety_stock('FLASH', 'backup', 3);
SELECT ordersync.available('FLASH');
SELECT safety FROM hot WHERE location = 'backup';
SELECT ordersync.set_safety_stock('FLASH', 'backup', 0);
-- even when the bucket holding it has been drained by sales
SELECT ordersync.receive_stock('SAFE', 'main', 10);
SELECT ordersync.set_hot('SAFE', 2);
SELECT ordersync.place_order('web', 'S-' || i, '[{"sku": "SAFE", "qty": 1, "price": "1.00"}]') > 0
FROM generate_series(1, 5) i;
SELECT ordersync.set_safety_stock('SAFE', 'main', 4);
SELECT ordersync.available('SAFE');
SELECT ordersync.place_order('web', 'S-6', '[{"sku": "SAFE", "qty": 2, "price": "1.00"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.receive_stock('SAFE', 'main', 1);
SELECT ordersync.available('SAFE');
SELECT ordersync.set_hot('SAFE', 3);
SELECT ordersync.available('SAFE');
SELECT bucket, on_hand, reserved, safety FROM ordersync.stock WHERE sku = 'SAFE' ORDER BY bucket;

-- low and out of stock: once per crossing
SELECT ordersync.set_low_stock('FLASH', 5);
SELECT ordersync.available('FLASH');
SELECT count(*) > 0 AS drained FROM slot_events('regress_hot');
SELECT ordersync.place_order('web', 'F-3', '[{"sku": "FLASH", "qty": 10, "price": "1.00"}]') AS f3 \gset
SELECT type, data FROM slot_events('regress_hot') WHERE type LIKE 'inventory.%stock';
SELECT ordersync.place_order('web', 'F-4', '[{"sku": "FLASH", "qty": 1, "price": "1.00"}]');
SELECT type, data FROM slot_events('regress_hot') WHERE type LIKE 'inventory.%stock';
SELECT ordersync.place_order('web', 'F-5', '[{"sku": "FLASH", "qty": 3, "price": "1.00"}]', allow_split => true);
SELECT type, data FROM slot_events('regress_hot') WHERE type LIKE 'inventory.%stock';
SELECT ordersync.available('FLASH');
-- the last units, from wherever they are
SELECT ordersync.place_order('web', 'F-6', '[{"sku": "FLASH", "qty": 2, "price": "1.00"}]', allow_split => true);
SELECT type, data FROM slot_events('regress_hot') WHERE type LIKE 'inventory.%stock';
-- sold out is reported only when it is
SELECT ordersync.place_order('web', 'F-7', '[{"sku": "FLASH", "qty": 1, "price": "1.00"}]');
\echo :LAST_ERROR_SQLSTATE

-- merge back: one row per location, reservations follow
SELECT ordersync.set_status(:f3, 'cancelled');
SELECT ordersync.set_hot('FLASH', 1);
SELECT * FROM hot;
SELECT DISTINCT bucket FROM ordersync.reservation WHERE sku = 'FLASH';
SELECT ordersync.available('FLASH');
SELECT ordersync.set_status(:f1, 'paid');
SELECT ordersync.set_status(:f1, 'fulfilling');
SELECT ordersync.set_status(:f1, 'shipped');
SELECT * FROM hot;

-- a plain SKU gets out-of-stock events too; low stock only with a threshold
SELECT ordersync.receive_stock('PLAIN', 'main', 2);
SELECT count(*) > 0 AS drained FROM slot_events('regress_hot');
SELECT ordersync.place_order('web', 'P-2', '[{"sku": "PLAIN", "qty": 2, "price": "1.00"}]');
SELECT type, data FROM slot_events('regress_hot') WHERE type LIKE 'inventory.%stock';

-- bad input
SELECT ordersync.set_hot('FLASH', 0);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_hot('FLASH', 5000);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_hot('NOPE', 2);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_low_stock('FLASH', -1);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_low_stock('NOPE', 1);
\echo :LAST_ERROR_SQLSTATE

-- invariants
SELECT s.sku, s.location, s.bucket FROM ordersync.stock s
WHERE s.reserved <> coalesce((SELECT sum(qty) FROM ordersync.reservation r
	WHERE r.sku = s.sku AND r.location = s.location AND r.bucket = s.bucket AND r.state = 'held'), 0);
SELECT pg_drop_replication_slot('regress_hot');
