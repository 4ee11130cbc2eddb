-- any client may try any next step of any order; the state machine decides
\set id random(1, 100)
\set step random(1, 5)
SELECT try_status(id, (ARRAY['paid', 'fulfilling', 'shipped', 'cancelled', 'delivered'])[:step::int])
FROM ordersync.orders WHERE channel = 'app' AND external_id = 'L' || :id::int;
