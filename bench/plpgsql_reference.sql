/*
 * bench/plpgsql_reference.sql — the order status trigger of ordersync
 * (src/extension/state_machine.c, ordersync_orders_status_trigger) written
 * again in PL/pgSQL, only so bench/status.sh can measure what the C version
 * buys.  Not part of the extension; never install it in a real database.
 *
 * Same behaviour as the C trigger: the (from, to) pair must be in
 * ordersync.transition, else OS002 with the same message, detail and hint;
 * the effect moves the order's reservations in (sku, location, bucket)
 * order, updating ordersync.stock, with one history row and one inventory.*
 * logical message per (sku, location); updated_at is set, expires_at cleared
 * for firm/release/consume; one history row and one order.<status> message
 * for the status change.  Messages are byte-for-byte the C ones
 * (doc/events.md).  Written against the schema with stock buckets (hot
 * SKUs): keep it in step with state_machine.c and stock.c.
 *
 * One difference: set_status() hands its reason to the C trigger through a
 * C variable this function cannot see, so reason is always NULL here.  The
 * benchmark changes status with a plain UPDATE, where it is NULL in both.
 *
 * Load it with psql after CREATE EXTENSION ordersync; the trigger is created
 * disabled.  Switch with
 *   ALTER TABLE ordersync.orders DISABLE TRIGGER orders_status,
 *                                ENABLE TRIGGER orders_status_plpgsql;
 */
CREATE SCHEMA IF NOT EXISTS ordersync_bench;

/* a JSON string literal, escaped the way the C writer (escape_json) does */
CREATE FUNCTION ordersync_bench.js(t text) RETURNS text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN pg_catalog.to_json(t)::text;

CREATE FUNCTION ordersync_bench.orders_status_plpgsql() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	eff			text;
	next		text;
	from_state	text;
	to_state	text;
	act			text;
	ev			text;
	d_on_hand	integer;
	d_reserved	integer;
	moved		boolean := false;
	group_qty	bigint := 0;
	r			record;
	s			record;
	-- the outer role, as GetOuterUserId() in the C code: SET ROLE or session
	who			text := CASE WHEN current_setting('role') = 'none'
						THEN session_user::text ELSE current_setting('role') END;
	actor		text := coalesce(nullif(current_setting('ordersync.actor', true), ''), who);
BEGIN
	IF NEW.status IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'OS004',
			MESSAGE = 'status must not be null',
			DETAIL = format('An UPDATE set the status of order %s to NULL.', OLD.id),
			HINT = 'Set one of the statuses in ordersync.status.';
	END IF;

	SELECT t.effect INTO eff FROM ordersync.transition t
	 WHERE t.from_status = OLD.status AND t.to_status = NEW.status;
	IF NOT FOUND THEN
		SELECT string_agg(t.to_status, ', ' ORDER BY t.to_status) INTO next
		  FROM ordersync.transition t WHERE t.from_status = OLD.status;
		RAISE EXCEPTION USING ERRCODE = 'OS002',
			MESSAGE = format('illegal status transition from "%s" to "%s"', OLD.status, NEW.status),
			DETAIL = format('Order %s is "%s"; ordersync.transition has no transition (%s, %s).',
							OLD.id, OLD.status, OLD.status, NEW.status),
			HINT = CASE WHEN next IS NOT NULL
					THEN format('From "%s" the order may move to: %s.', OLD.status, next)
					ELSE format('"%s" is a final status: the order cannot change any more.', OLD.status) END;
	END IF;

	-- the row as it will be stored: touched now, no expiry once firm
	NEW.updated_at := now();
	IF eff NOT IN ('none', 'restock') THEN
		NEW.expires_at := NULL;
	END IF;

	-- the order event first, then the stock events it causes
	PERFORM pg_logical_emit_message(true, 'ordersync',
		'{"type":' || ordersync_bench.js('order.' || NEW.status)
		|| ',"subject":' || ordersync_bench.js('order/' || NEW.id)
		|| ',"data":{"order_id":' || NEW.id
		|| ',"channel":' || ordersync_bench.js(NEW.channel)
		|| ',"external_id":' || ordersync_bench.js(NEW.external_id)
		|| ',"status":' || ordersync_bench.js(NEW.status)
		|| ',"previous_status":' || coalesce(ordersync_bench.js(OLD.status), 'null')
		|| ',"reason":null'
		|| ',"total":' || ordersync_bench.js(NEW.total::text)
		|| ',"lines":' || NEW.lines::text
		|| ',"customer":' || coalesce(NEW.customer::text, 'null')
		|| ',"created_at":' || coalesce(to_json(NEW.created_at)::text, 'null')
		|| ',"expires_at":' || coalesce(to_json(NEW.expires_at)::text, 'null')
		|| '}}');

	CASE eff
		WHEN 'release' THEN
			from_state := 'held'; to_state := 'released'; act := 'release';
			ev := 'inventory.released'; d_on_hand := 0; d_reserved := -1;
		WHEN 'consume' THEN
			from_state := 'held'; to_state := 'consumed'; act := 'consume';
			ev := 'inventory.consumed'; d_on_hand := -1; d_reserved := -1;
		WHEN 'restock' THEN
			from_state := 'consumed'; to_state := 'restocked'; act := 'restock';
			ev := 'inventory.restocked'; d_on_hand := 1; d_reserved := 0;
		ELSE
			from_state := NULL;		-- none, firm: no stock moves
	END CASE;

	IF from_state IS NOT NULL THEN
		-- rows in the global lock order (sku, location, bucket) as place_order
		-- takes them: no deadlock between orders.  A hot SKU's stock at a
		-- location is split in buckets; history and event are written once per
		-- (sku, location), after its last bucket row.
		FOR r IN SELECT v.sku, v.location, v.bucket, v.qty, k.buckets,
						lead(v.sku) OVER w IS DISTINCT FROM v.sku
						OR lead(v.location) OVER w IS DISTINCT FROM v.location AS last_of_group
				   FROM ordersync.reservation v JOIN ordersync.sku k ON k.sku = v.sku
				  WHERE v.order_id = NEW.id AND v.state = from_state
				 WINDOW w AS (ORDER BY v.sku COLLATE "C", v.location COLLATE "C", v.bucket, v.line_no)
				  ORDER BY v.sku COLLATE "C", v.location COLLATE "C", v.bucket, v.line_no
		LOOP
			UPDATE ordersync.stock k
			   SET on_hand = k.on_hand + d_on_hand * r.qty, reserved = k.reserved + d_reserved * r.qty
			 WHERE k.sku = r.sku AND k.location = r.location AND k.bucket = r.bucket
			RETURNING k.on_hand, k.reserved, greatest(k.on_hand - k.reserved - k.safety, 0) AS available
			INTO s;
			IF NOT FOUND THEN
				RAISE EXCEPTION 'ordersync: no stock row for SKU "%" at "%" bucket %',
					r.sku, r.location, r.bucket;
			END IF;
			group_qty := group_qty + r.qty;
			moved := true;
			CONTINUE WHEN NOT r.last_of_group;

			IF r.buckets > 1 THEN
				SELECT sum(k.on_hand)::bigint AS on_hand, sum(k.reserved)::bigint AS reserved,
					   sum(greatest(k.on_hand - k.reserved - k.safety, 0))::bigint AS available
				  INTO s FROM ordersync.stock k WHERE k.sku = r.sku AND k.location = r.location;
			END IF;
			INSERT INTO ordersync.history (action, order_id, sku, location, qty, actor, role, reason)
			VALUES (act, NEW.id, r.sku, r.location, group_qty, actor, who, NULL);
			PERFORM pg_logical_emit_message(true, 'ordersync',
				'{"type":' || ordersync_bench.js(ev)
				|| ',"subject":' || ordersync_bench.js('sku/' || r.sku)
				|| ',"data":{"sku":' || ordersync_bench.js(r.sku)
				|| ',"location":' || ordersync_bench.js(r.location)
				|| ',"qty":' || group_qty
				|| ',"order_id":' || NEW.id
				|| ',"on_hand":' || s.on_hand
				|| ',"reserved":' || s.reserved
				|| ',"available":' || s.available
				|| '}}');
			group_qty := 0;
		END LOOP;
		IF moved THEN
			UPDATE ordersync.reservation v SET state = to_state
			 WHERE v.order_id = NEW.id AND v.state = from_state;
		END IF;
	END IF;

	INSERT INTO ordersync.history (action, order_id, from_status, to_status, actor, role, reason)
	VALUES ('status', NEW.id, OLD.status, NEW.status, actor, who, NULL);
	RETURN NEW;
END
$fn$;

CREATE TRIGGER orders_status_plpgsql
	BEFORE UPDATE OF status ON ordersync.orders
	FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
	EXECUTE FUNCTION ordersync_bench.orders_status_plpgsql();
ALTER TABLE ordersync.orders DISABLE TRIGGER orders_status_plpgsql;
