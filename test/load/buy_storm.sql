-- one unit of the storm SKU per order (64 clients, 16 buckets)
SELECT try_buy(md5(random()::text), '[{"sku": "STORM", "qty": 1, "price": "2.99"}]');
