-- test/load/setup.sql: data and helpers for the load tests
CREATE EXTENSION ordersync;
SELECT ordersync.add_location('main', 1);
SELECT ordersync.add_location('store', 0);
SELECT ordersync.receive_stock('HOT', 'main', 60);
SELECT ordersync.receive_stock('HOT', 'store', 40);
SELECT ordersync.receive_stock('M-' || i, 'main', 1000000) FROM generate_series(1, 4) i;
SELECT ordersync.receive_stock('L-' || i, 'main', 50000) FROM generate_series(1, 2) i;
SELECT ordersync.receive_stock('FLASH', 'main', 640);
SELECT ordersync.set_hot('FLASH', 16);
SELECT ordersync.receive_stock('STORM', 'main', 1280);
SELECT ordersync.set_hot('STORM', 16);
-- X-1 and X-3 hot (4 and 2 buckets), X-2 and X-4 plain; X-3 runs out
SELECT ordersync.receive_stock('X-' || i, 'main', CASE i WHEN 3 THEN 300 ELSE 100000 END)
FROM generate_series(1, 4) i;
SELECT ordersync.set_hot('X-1', 4);
SELECT ordersync.set_hot('X-3', 2);

-- refusals are expected under load: count them instead of aborting the client
CREATE TABLE load_refused (at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION try_buy(ext text, lines jsonb) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
	RETURN ordersync.place_order('web', ext, lines);
EXCEPTION WHEN SQLSTATE 'OS001' THEN
	INSERT INTO load_refused DEFAULT VALUES;
	RETURN NULL;
END $$;

-- 100 orders to push through their lifecycle concurrently
SELECT ordersync.place_order('app', 'L' || i,
	jsonb_build_array(jsonb_build_object('sku', 'L-' || (1 + i % 2), 'qty', 1 + i % 3, 'price', '1.00')))
FROM generate_series(1, 100) i;
CREATE FUNCTION try_status(id bigint, status text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM ordersync.set_status(id, status);
EXCEPTION WHEN SQLSTATE 'OS002' THEN
	NULL;	-- another client moved it first: refused, as it must be
END $$;
