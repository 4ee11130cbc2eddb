-- two or three lines over hot and plain SKUs, in a random order
\set a random(1, 4)
\set b random(1, 3)
\set c random(1, 4)
SELECT try_buy(md5(random()::text), jsonb_build_array(
	jsonb_build_object('sku', 'X-' || :a::int, 'qty', 1, 'price', '1'),
	jsonb_build_object('sku', 'X-' || (1 + (:a::int + :b::int) % 4), 'qty', 2, 'price', '1'),
	jsonb_build_object('sku', 'X-' || :c::int, 'qty', 1, 'price', '1')));
