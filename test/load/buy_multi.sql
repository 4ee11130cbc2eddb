-- two or three SKUs in a random order per order
\set a random(1, 4)
\set b random(1, 4)
\set c random(1, 4)
SELECT try_buy(md5(random()::text), jsonb_build_array(
	jsonb_build_object('sku', 'M-' || :a::int, 'qty', 1, 'price', '1'),
	jsonb_build_object('sku', 'M-' || (1 + (:a::int + :b::int) % 4), 'qty', 2, 'price', '1'),
	jsonb_build_object('sku', 'M-' || :c::int, 'qty', 1, 'price', '1')));
