\set qty random(1, 3)
SELECT try_buy(md5(random()::text), jsonb_build_array(jsonb_build_object('sku', 'HOT', 'qty', :qty::int, 'price', '9.99')));
