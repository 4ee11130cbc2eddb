-- compliance: the history hash chain, erasure (forget_customer), export
-- (customer_data), legal holds, retention by market and the compliance
-- report.  Runs last: every history row the other tests wrote is checked.
\set VERBOSITY terse

-- every row written so far, by every path (orders, stock, hot SKUs, inbox,
-- expiry), is sealed and the chains are intact
SELECT count(*) > 100 AS many_rows, count(*) FILTER (WHERE hash IS NULL) AS unsealed,
	   count(*) FILTER (WHERE octet_length(hash) <> 32) AS bad_length
  FROM ordersync.history;
SELECT * FROM ordersync.verify_history();
SELECT sealed_from FROM ordersync.history_seal;
-- each order's rows link to the row before them in that order
SELECT count(*) AS misordered FROM (
	SELECT prev_id, lag(id) OVER (PARTITION BY order_id ORDER BY id) AS before
	  FROM ordersync.history WHERE order_id IS NOT NULL) x
 WHERE prev_id IS DISTINCT FROM before;

SELECT 'init' FROM pg_create_logical_replication_slot('regress_compliance', 'wal2json');

-- a market, its channel, and two customers
SELECT ordersync.add_channel('eu-shop');
UPDATE ordersync.channel SET market = 'eu' WHERE id = 'eu-shop';
UPDATE ordersync.channel SET market = 'EU!' WHERE id = 'eu-shop';	-- format
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.receive_stock('GDPR-1', 'main', 100);
SELECT ordersync.place_order('eu-shop', 'ADA-1', '[{"sku": "GDPR-1", "qty": 1, "price": "10.00"}]',
	'{"email": "ada@example.com", "name": "Ada Lovelace", "address": {"city": "London"}}') AS ada1 \gset
SELECT ordersync.place_order('eu-shop', 'ADA-2', '[{"sku": "GDPR-1", "qty": 2, "price": "10.00"}]',
	'{"email": "ada@example.com", "name": "Ada Lovelace"}') AS ada2 \gset
SELECT ordersync.place_order('eu-shop', 'BOB-1', '[{"sku": "GDPR-1", "qty": 1, "price": "10.00"}]',
	'{"email": "bob@example.com", "name": "Bob"}') AS bob1 \gset
SELECT ordersync.place_order('eu-shop', 'EVE-1', '[{"sku": "GDPR-1", "qty": 1, "price": "10.00"}]',
	'{"email": ["ada@example.com"], "name": "Eve"}') AS eve1 \gset
-- ada's first order and bob's run to completion; ada's second stays open
SELECT ordersync.set_status(:ada1, s) FROM unnest(ARRAY['paid', 'fulfilling', 'shipped', 'delivered', 'completed']) s;
SELECT ordersync.set_status(:bob1, s) FROM unnest(ARRAY['paid', 'fulfilling', 'shipped', 'delivered', 'completed']) s;
SELECT ordersync.set_status(:eve1, 'cancelled');
SELECT ordersync.set_status(:eve1, 'refunded');
SELECT count(*) AS events FROM slot_events('regress_compliance');

-- export: exactly one customer's orders, by value, not by pattern
SELECT jsonb_array_length(d->'orders') AS orders, d->'orders'->0->'customer'->>'name' AS name,
	   jsonb_array_length(d->'history') AS history_rows,
	   d->'history'->0 ? 'actor' AS shows_staff
  FROM ordersync.customer_data('{"customer": {"email": "bob@example.com"}}') d;
SELECT jsonb_array_length(ordersync.customer_data('{"customer": {"email": "ada@example.com"}}')->'orders') AS ada_orders;
SELECT jsonb_array_length(ordersync.customer_data('{"customer": {"email": "%"}}')->'orders') AS pattern_matches;
SELECT jsonb_array_length(ordersync.customer_data('{"customer": {"email": "ADA@example.com"}}')->'orders') AS case_matches;

-- every refusal has its own SQLSTATE and changes nothing
SELECT count(*) AS history_before FROM ordersync.history \gset
CREATE TEMP TABLE orders_before AS SELECT * FROM ordersync.orders;
SELECT ordersync.forget_customer(NULL, 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.forget_customer('[]', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.forget_customer('{}', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.forget_customer('{"orders": [], "customer": {"email": "a"}}', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.forget_customer('{"orders": []}', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.forget_customer('{"orders": "1"}', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.forget_customer('{"orders": [1.5]}', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.forget_customer('{"orders": [-1]}', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.forget_customer('{"customer": {}}', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.forget_customer('{"customer": {"email": ""}}', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.forget_customer('{"customer": {"email": {"$ne": ""}}}', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.forget_customer('{"customer": {"email": "ada@example.com", "name": "Bob"}}', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.customer_data('{"customer": {}}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.forget_customer('{"orders": [999999999]}', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.forget_customer(format('{"orders": [%s, 999999999]}', :ada1)::jsonb, 'x');
\echo :LAST_ERROR_SQLSTATE
-- ada's second order is open
\set VERBOSITY sqlstate
SELECT ordersync.forget_customer('{"customer": {"email": "ada@example.com"}}', 'GDPR request 17');
\set VERBOSITY terse
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.forget_customer('{"customer": {"email": "ada@example.com"}}', NULL, true);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.forget_customer('{"customer": {"email": "ada@example.com"}}', ' ', true);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.forget_customer('{"customer": {"email": "ada@example.com"}}', 'x', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.legal_hold(:bob1, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.legal_hold(999999999, 'case 1');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.legal_hold(NULL, 'case 1');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY sqlstate
SELECT ordersync.release_legal_hold(:bob1, 'over');
\set VERBOSITY terse
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.release_legal_hold(:bob1, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_retention('EU', '30 days', '10 years');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_retention(NULL, '30 days', '10 years');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_retention('eu', '-1 day', '10 years');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_retention('eu', '30 days', '-1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_retention('eu', '10 years', '30 days');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.apply_retention(0);
\echo :LAST_ERROR_SQLSTATE
SELECT (SELECT count(*) FROM ordersync.history) - :history_before AS new_history_rows,
	   (SELECT count(*) FROM ordersync.orders o JOIN orders_before b USING (id)
		 WHERE o IS DISTINCT FROM b) AS changed_orders,
	   (SELECT count(*) FROM ordersync.retention) AS rules,
	   (SELECT count(*) FROM ordersync.order_hold) AS holds;
SELECT count(*) AS events FROM slot_events('regress_compliance');

-- a dead letter of ada's order holds her data too
SELECT ordersync.record_dead_letter('warehouse',
	format('{"id": "0/1/0", "type": "ordersync.order.created", "subject": "order/%s", "data": {"order_id": %s, "customer": {"email": "ada@example.com"}}}',
		   :ada1, :ada1)::jsonb, 'gave up', 3) IS NOT NULL AS recorded;

-- erasure of a customer with open and closed orders: forced, with a reason
SELECT ordersync.forget_customer('{"customer": {"email": "ada@example.com"}}', 'GDPR request 17', force => true) AS erased;
SELECT id = :ada1 AS first, customer, erased_at IS NOT NULL AS erased, status, total, lines->0->>'sku' AS sku
  FROM ordersync.orders WHERE id IN (:ada1, :ada2, :bob1, :eve1) ORDER BY id;
SELECT event #> '{data,customer}' AS dead_letter_customer, event #>> '{data,order_id}' = :'ada1' AS kept_the_rest
  FROM ordersync.dead_letter WHERE subject = 'order/' || :ada1;
SELECT action, reason, to_status FROM ordersync.history WHERE order_id = :ada2 ORDER BY id;
-- one event per order, with no personal data
SELECT type, subject = 'order/' || (data->>'order_id') AS subject_ok,
	   (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(data) k) AS keys,
	   data::text LIKE '%ada%' OR data::text LIKE '%Lovelace%' AS personal
  FROM slot_events('regress_compliance');
-- again: nothing left to erase, no event
SELECT ordersync.forget_customer(format('{"orders": [%s, %s]}', :ada1, :ada2)::jsonb, 'again', true) AS erased_again;
SELECT count(*) AS events FROM slot_events('regress_compliance');
SELECT jsonb_array_length(ordersync.customer_data('{"customer": {"email": "ada@example.com"}}')->'orders') AS ada_orders_left;
SELECT d->'orders'->0->'customer' AS customer, d->'orders'->0->>'erased_at' IS NOT NULL AS erased
  FROM ordersync.customer_data(format('{"orders": [%s]}', :ada1)::jsonb) d;
SELECT * FROM ordersync.verify_history();

-- tamper evidence: a superuser's edits with triggers disabled are caught
SET session_replication_role = replica;
UPDATE ordersync.history SET qty = qty + 1 WHERE order_id = :bob1 AND action = 'reserve';
RESET session_replication_role;
SELECT h.action, v.problem FROM ordersync.verify_history() v JOIN ordersync.history h ON h.id = v.history_id;
SET session_replication_role = replica;
UPDATE ordersync.history SET qty = qty - 1 WHERE order_id = :bob1 AND action = 'reserve';
RESET session_replication_role;
SELECT * FROM ordersync.verify_history();
-- a row removed from the middle of a chain
CREATE TEMP TABLE removed AS
	SELECT * FROM ordersync.history WHERE order_id = :bob1 AND to_status = 'shipped';
SET session_replication_role = replica;
DELETE FROM ordersync.history WHERE id = (SELECT id FROM removed);
RESET session_replication_role;
SELECT h.to_status, regexp_replace(v.problem, '[0-9]+', 'N', 'g') AS problem
  FROM ordersync.verify_history() v JOIN ordersync.history h ON h.id = v.history_id;
SET session_replication_role = replica;
INSERT INTO ordersync.history OVERRIDING SYSTEM VALUE SELECT * FROM removed;
RESET session_replication_role;
SELECT * FROM ordersync.verify_history();
-- a row slipped in around the trigger
SET session_replication_role = replica;
INSERT INTO ordersync.history (action, order_id, actor, role) VALUES ('status', :bob1, 'mallory', 'postgres');
RESET session_replication_role;
SELECT v.problem FROM ordersync.verify_history() v;
SET session_replication_role = replica;
DELETE FROM ordersync.history WHERE actor = 'mallory';
RESET session_replication_role;
SELECT * FROM ordersync.verify_history();

-- legal hold: refuses erasure, even forced; held once, with an event
SELECT ordersync.legal_hold(:bob1, 'tax audit 2026');
SELECT ordersync.legal_hold(:bob1, 'tax audit 2026');	-- the same hold: nothing new
\set VERBOSITY sqlstate
SELECT ordersync.forget_customer('{"customer": {"email": "bob@example.com"}}', 'GDPR request 18', true);
\set VERBOSITY terse
\echo :LAST_ERROR_SQLSTATE
SELECT customer->>'name' AS still_there FROM ordersync.orders WHERE id = :bob1;
SELECT type, data - 'order_id' AS data, data->>'order_id' = :'bob1' AS bob FROM slot_events('regress_compliance');

-- retention: eu keeps personal data 0 s after an order closes (so every
-- closed order is due), and order records for ever
SELECT ordersync.set_retention('eu', '0 s', NULL);
SELECT market, personal_data, order_records, personal_data_to_sinks FROM ordersync.retention;
-- in batches: held bob and open orders are skipped
SELECT ordersync.apply_retention(1) AS batch1;
SELECT ordersync.apply_retention(1) AS batch2_nothing_left;
SELECT id = :eve1 AS eve, customer, erased_at IS NOT NULL AS erased FROM ordersync.orders
 WHERE id IN (:bob1, :eve1) ORDER BY id;
SELECT count(*) AS events, count(DISTINCT subject) AS orders, min(type) AS type,
	   bool_and(data->>'erased_by' = 'retention') AS by_retention
  FROM slot_events('regress_compliance');
SELECT action, reason FROM ordersync.history WHERE order_id = :eve1 ORDER BY id DESC LIMIT 1;

-- an order flagged stuck (analytics: ordersync.order_stuck) is removed all the same
SELECT ordersync.set_sla(status, '1 microsecond') FROM ordersync.orders WHERE id = :eve1;
SELECT ordersync.flag_stuck_orders() > 0 AS flagged;
SELECT ordersync.set_sla(status, NULL) FROM ordersync.orders WHERE id = :eve1;
SELECT count(*) AS eve_stuck FROM ordersync.order_stuck WHERE order_id = :eve1;

-- order records: eve's order is removed, its history stays and verifies
SELECT ordersync.release_legal_hold(:bob1, 'audit closed');
SELECT ordersync.set_retention('eu', '0 s', '0 s');
SELECT ordersync.apply_retention(100) AS handled;
SELECT id = :ada2 AS ada2_open FROM ordersync.orders WHERE channel = 'eu-shop';
SELECT count(*) AS lines_left FROM ordersync.order_line WHERE order_id IN (:ada1, :bob1, :eve1);
SELECT count(*) AS stuck_left FROM ordersync.order_stuck WHERE order_id = :eve1;
SELECT order_id = :bob1 AS bob, action FROM ordersync.history
 WHERE order_id IN (:bob1, :eve1) AND action IN ('purged', 'personal_data_expired', 'legal_hold_released')
 ORDER BY id;
SELECT type, count(*) FROM slot_events('regress_compliance') GROUP BY type ORDER BY type;
SELECT * FROM ordersync.verify_history();

-- the compliance report
SELECT ordersync.add_channel('cn-shop');
UPDATE ordersync.channel SET market = 'cn' WHERE id = 'cn-shop';
SELECT ordersync.add_sink('crm', 'http://crm.example.com/hook');
SELECT ordersync.add_sink('crm-local', 'http://127.0.0.1:8080/hook');
SELECT ordersync.add_sink('crm-safe', 'http://crm.example.com/hook2', '{"drop_personal_data": true}');
-- (only what this test made: earlier tests left channels and sinks of their own)
CREATE TEMP VIEW report AS
	SELECT problem, subject, detail FROM ordersync.compliance_report()
	 WHERE subject IN ('channel/cn-shop', 'channel/eu-shop', 'market/eu', 'market/cn',
					   'sink/crm', 'sink/crm-local', 'sink/crm-safe')
		OR subject LIKE 'history/%';
SELECT problem, subject, detail FROM report ORDER BY 1, 2;
SELECT problem, subject FROM ordersync.compliance_report() WHERE subject = 'channel/web';
SELECT ordersync.set_retention('cn', '1 day', '3 years', personal_data_to_sinks => false);
SELECT problem, subject FROM report ORDER BY 1, 2;
-- personal data past retention that the worker has not erased yet
SELECT ordersync.place_order('eu-shop', 'LATE-1', '[{"sku": "GDPR-1", "qty": 1, "price": "10.00"}]',
	'{"email": "late@example.com"}') AS late \gset
SELECT ordersync.set_status(:late, 'expired');
SELECT problem, subject, detail LIKE '1 closed order(s)%' AS one FROM report WHERE subject = 'market/eu';
CREATE TEMP TABLE last_row AS SELECT id, reason FROM ordersync.history ORDER BY id DESC LIMIT 1;
SET session_replication_role = replica;
UPDATE ordersync.history h SET reason = 'nothing happened' FROM last_row l WHERE h.id = l.id;
RESET session_replication_role;
SELECT problem FROM report WHERE problem = 'history_chain';
SET session_replication_role = replica;
UPDATE ordersync.history h SET reason = l.reason FROM last_row l WHERE h.id = l.id;
RESET session_replication_role;
SELECT count(*) AS chain_problems FROM report WHERE problem = 'history_chain';
SELECT ordersync.drop_sink('crm'), ordersync.drop_sink('crm-local'), ordersync.drop_sink('crm-safe');

-- the application role: erasure and export through the API only
CREATE ROLE regress_compliance_app;
GRANT ordersync_app TO regress_compliance_app;
SET ROLE regress_compliance_app;
SELECT ordersync.compliance_record('forgotten', 1, 'x', 'customer.forgotten', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.erase_orders('{1}', 'request', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.purge_orders('{1}', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.selected_orders('{"orders": [1]}');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.set_retention('eu', NULL, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.legal_hold(1, 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT ordersync.apply_retention(1);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.verify_history();
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ordersync.compliance_report();
\echo :LAST_ERROR_SQLSTATE
UPDATE ordersync.orders SET customer = NULL WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
UPDATE ordersync.orders SET erased_at = now() WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO ordersync.history (action, actor, role) VALUES ('forgotten', 'x', 'x');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM ordersync.order_hold;
\echo :LAST_ERROR_SQLSTATE
UPDATE ordersync.history_seal SET sealed_from = 999999999;
\echo :LAST_ERROR_SQLSTATE
-- what it may do: erase one customer it names, read one customer's data
SELECT ordersync.place_order('eu-shop', 'APP-1', '[{"sku": "GDPR-1", "qty": 1, "price": "10.00"}]',
	'{"email": "carol@example.com"}') AS carol \gset
SELECT ordersync.place_order('eu-shop', 'APP-2', '[{"sku": "GDPR-1", "qty": 1, "price": "10.00"}]',
	'{"email": "dave@example.com"}') AS dave \gset
SELECT jsonb_array_length(ordersync.customer_data('{"customer": {"email": "carol@example.com"}}')->'orders') AS carol_orders;
SELECT ordersync.forget_customer('{"customer": {"email": "carol@example.com"}}', 'request 19', true) AS erased;
RESET ROLE;
SELECT id = :carol AS carol, customer FROM ordersync.orders WHERE id IN (:carol, :dave) ORDER BY id;
SELECT role, action, reason FROM ordersync.history WHERE order_id = :carol AND action = 'forgotten';
SELECT type, count(*) FROM slot_events('regress_compliance') GROUP BY type ORDER BY type;
DROP ROLE regress_compliance_app;

SELECT * FROM ordersync.verify_history();
SELECT pg_drop_replication_slot('regress_compliance');
