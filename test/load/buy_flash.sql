-- one unit of the flash-sale SKU per order
SELECT try_buy(md5(random()::text), '[{"sku": "FLASH", "qty": 1, "price": "4.99"}]');
