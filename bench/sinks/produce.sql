-- bench/sinks/produce.sql — the events every delivery-sink benchmark relays:
-- CALL bench_produce(total, per_txn, nsubj) emits total order.paid messages,
-- per_txn to a transaction, over nsubj subjects (order/0 .. order/nsubj-1),
-- each about as large as a real order event.
CREATE PROCEDURE bench_produce(total int, per_txn int, nsubj int) LANGUAGE plpgsql AS $$
BEGIN
	FOR t IN 0..(total / per_txn) - 1 LOOP
		PERFORM pg_logical_emit_message(true, 'ordersync',
			'{"type":"order.paid","subject":"order/' || ((t * per_txn + g) % nsubj) ||
			'","data":{"order_id":' || ((t * per_txn + g) % nsubj) ||
			',"status":"paid","previous_status":"pending","total":"39.80",' ||
			'"lines":[{"line_no":1,"sku":"A-1","qty":2,"price":"19.90"}],"customer":{"name":"Ada"}}}')
		FROM generate_series(1, per_txn) g;
		COMMIT;
	END LOOP;
END
$$;
