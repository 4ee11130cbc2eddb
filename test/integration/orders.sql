-- test/integration/orders.sql — the one event producer of the sink tests
-- (sink_webhook.sh, sink_kafka.sh, sink_amqp.sh, attack.sh): a shop with
-- ten SKUs and a procedure that places orders and moves them along, one
-- transaction per step, so that the events of many subjects interleave in
-- the WAL. Loaded by it_producer (lib.sh) after CREATE EXTENSION.

SELECT ordersync.add_location('main', 1);
SELECT ordersync.receive_stock('SKU-' || k, 'main', 100000) FROM generate_series(0, 9) k;

-- n orders PREFIX-i, each placed in its own transaction (pause_ms after each
-- commit); then each one paid, or cancelled when i % cancel_every = 0 (no
-- status change at all when pay is false); then every ship_every-th one not
-- cancelled fulfilled and shipped. Customers carry personal data (name,
-- email, city) for the drop_personal_data checks.
CREATE PROCEDURE public.it_orders(prefix text, n int, ship_every int DEFAULT 0,
								  cancel_every int DEFAULT 0, pause_ms int DEFAULT 0,
								  pay boolean DEFAULT true)
LANGUAGE plpgsql AS $$
DECLARE
	ids bigint[] := '{}';
BEGIN
	FOR i IN 1..n LOOP
		ids := ids || ordersync.place_order('web', prefix || '-' || i,
			jsonb_build_array(jsonb_build_object('sku', 'SKU-' || (i % 10), 'qty', 1, 'price', '9.99')),
			jsonb_build_object('name', 'Secret Customer ' || i, 'email', 'c' || i || '@example.com',
							   'city', 'Hiddenville'));
		COMMIT;
		PERFORM pg_sleep(pause_ms / 1000.0);
	END LOOP;
	FOR i IN 1..n LOOP
		IF cancel_every > 0 AND i % cancel_every = 0 THEN
			UPDATE ordersync.orders SET status = 'cancelled' WHERE id = ids[i];
		ELSIF pay THEN
			UPDATE ordersync.orders SET status = 'paid' WHERE id = ids[i];
		END IF;
		COMMIT;
		PERFORM pg_sleep(pause_ms / 1000.0);
	END LOOP;
	IF ship_every > 0 THEN
		FOR i IN 1..n LOOP
			IF i % ship_every = 0 AND (cancel_every = 0 OR i % cancel_every <> 0) THEN
				UPDATE ordersync.orders SET status = 'fulfilling' WHERE id = ids[i];
				COMMIT;
				UPDATE ordersync.orders SET status = 'shipped' WHERE id = ids[i];
				COMMIT;
				PERFORM pg_sleep(pause_ms / 1000.0);
			END IF;
		END LOOP;
	END IF;
END $$;
