-- expiry: pending orders whose reservation ran out release their stock
SELECT ordersync.receive_stock('E-1', 'main', 5);
SELECT ordersync.place_order('web', 'EX-1', '[{"sku": "E-1", "qty": 2, "price": "1.00"}]') AS e1 \gset
SELECT ordersync.place_order('web', 'EX-2', '[{"sku": "E-1", "qty": 1, "price": "1.00"}]') AS e2 \gset
SELECT ordersync.place_order('web', 'EX-3', '[{"sku": "E-1", "qty": 1, "price": "1.00"}]') AS e3 \gset
SELECT ordersync.set_status(:e3, 'paid');
SELECT ordersync.available('E-1');

-- nothing is due yet
SELECT ordersync.expire_reservations();

-- e1 runs out; e2 not yet; e3 is paid, so even a past expires_at does not expire it
UPDATE ordersync.orders SET expires_at = now() - interval '1 second' WHERE id = :e1;
UPDATE ordersync.orders SET expires_at = now() - interval '1 second' WHERE id = :e3;
SELECT ordersync.expire_reservations();
SELECT id = :e1 AS is_e1, status, expires_at IS NULL AS no_expiry
FROM ordersync.orders WHERE id IN (:e1, :e2, :e3) ORDER BY id;
SELECT ordersync.available('E-1');
SELECT reason FROM ordersync.history WHERE order_id = :e1 AND action = 'status';
SELECT ordersync.expire_reservations();

-- an expired order cannot be paid any more
SELECT ordersync.set_status(:e1, 'paid');
\echo :LAST_ERROR_SQLSTATE
