/*
 * ordersync--0.1.0.sql — install script of the ordersync extension.
 *
 * Tables for channels, locations, SKUs, stock, orders, lines, reservations and
 * an append-only history; the order state machine as data; the API functions
 * (most in C, see src/extension/); and two roles, ordersync_app and
 * ordersync_admin.  Every name is schema-qualified; SECURITY DEFINER functions
 * pin search_path.
 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION ordersync" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Roles.  Cluster-wide, so created only when missing and never dropped by
-- DROP EXTENSION.  Grant them to your login roles.
-- ---------------------------------------------------------------------------
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'ordersync_app') THEN
		CREATE ROLE ordersync_app NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'ordersync_admin') THEN
		CREATE ROLE ordersync_admin NOLOGIN;
	END IF;
END
$roles$;

-- ---------------------------------------------------------------------------
-- Reference data
-- ---------------------------------------------------------------------------
CREATE TABLE ordersync.channel (
	id			text PRIMARY KEY
				CONSTRAINT channel_id_format CHECK (id ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
	-- the channel's own status names mapped to ours: {"PAID": "paid", ...}
	status_map	jsonb NOT NULL DEFAULT '{}'
				CONSTRAINT channel_status_map_object CHECK (pg_catalog.jsonb_typeof(status_map) = 'object'),
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE ordersync.channel IS 'sales channels (web shop, app, marketplaces) orders are imported from';

CREATE TABLE ordersync.location (
	id			text PRIMARY KEY
				CONSTRAINT location_id_format CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$'),
	-- higher priority locations are allocated first
	priority	integer NOT NULL DEFAULT 0,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE ordersync.location IS 'warehouses and stores that hold stock';

CREATE TABLE ordersync.sku (
	sku			text PRIMARY KEY
				CONSTRAINT sku_format CHECK (sku <> '' AND pg_catalog.length(sku) <= 100),
	/*
	 * A hot SKU's stock at each location is split into this many rows
	 * (buckets), so concurrent buyers do not queue on one row lock; see
	 * ordersync.set_hot().
	 */
	buckets		integer NOT NULL DEFAULT 1
				CONSTRAINT sku_buckets_range CHECK (buckets BETWEEN 1 AND 1024),
	-- inventory.low_stock when available() falls to this or below; NULL: never
	low_stock_threshold bigint
				CONSTRAINT sku_low_stock_threshold_nonnegative CHECK (low_stock_threshold >= 0),
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE ordersync.sku IS 'stock keeping units; created by receive_stock';

CREATE TABLE ordersync.stock (
	sku			text NOT NULL REFERENCES ordersync.sku,
	location	text NOT NULL REFERENCES ordersync.location,
	-- 0 .. sku.buckets - 1; the stock at a location is the sum of its buckets
	bucket		integer NOT NULL DEFAULT 0 CONSTRAINT stock_bucket_nonnegative CHECK (bucket >= 0),
	on_hand		bigint NOT NULL DEFAULT 0 CONSTRAINT stock_on_hand_nonnegative CHECK (on_hand >= 0),
	reserved	bigint NOT NULL DEFAULT 0 CONSTRAINT stock_reserved_nonnegative CHECK (reserved >= 0),
	safety		bigint NOT NULL DEFAULT 0 CONSTRAINT stock_safety_nonnegative CHECK (safety >= 0),
	CONSTRAINT stock_reserved_within_on_hand CHECK (reserved <= on_hand),
	PRIMARY KEY (sku, location, bucket)
);
COMMENT ON TABLE ordersync.stock IS 'stock per SKU, location and bucket; available to sell = on_hand - reserved - safety';

-- ---------------------------------------------------------------------------
-- The state machine as data
-- ---------------------------------------------------------------------------
CREATE TABLE ordersync.status (
	name		text PRIMARY KEY
				CONSTRAINT status_name_format CHECK (name ~ '^[a-z][a-z_]{0,30}$'),
	-- false for statuses an order never leaves in normal operation
	open		boolean NOT NULL DEFAULT true,
	builtin		boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE ordersync.status IS 'order statuses; extend it together with ordersync.transition';

CREATE TABLE ordersync.transition (
	from_status	text NOT NULL REFERENCES ordersync.status,
	to_status	text NOT NULL REFERENCES ordersync.status,
	/*
	 * What the transition does to the order's reservations, in the same
	 * transaction: none; firm (the reservation stops expiring); release (held
	 * stock goes back to available); consume (held stock leaves on hand:
	 * shipped); restock (consumed stock comes back on hand: returned).
	 */
	effect		text NOT NULL DEFAULT 'none'
				CONSTRAINT transition_effect_known
				CHECK (effect IN ('none', 'firm', 'release', 'consume', 'restock')),
	builtin		boolean NOT NULL DEFAULT false,
	PRIMARY KEY (from_status, to_status),
	CONSTRAINT transition_not_to_self CHECK (from_status <> to_status)
);
COMMENT ON TABLE ordersync.transition IS 'allowed order status changes and their stock effect; enforced by a C trigger on ordersync.orders';

INSERT INTO ordersync.status (name, open, builtin) VALUES
	('pending', true, true),
	('paid', true, true),
	('fulfilling', true, true),
	('shipped', true, true),
	('delivered', true, true),
	('completed', false, true),
	('cancelled', true, true),
	('expired', false, true),
	('returned', true, true),
	('refunded', false, true);

INSERT INTO ordersync.transition (from_status, to_status, effect, builtin) VALUES
	('pending', 'paid', 'firm', true),
	('pending', 'cancelled', 'release', true),
	('pending', 'expired', 'release', true),
	('paid', 'fulfilling', 'none', true),
	('paid', 'cancelled', 'release', true),
	('fulfilling', 'shipped', 'consume', true),
	('fulfilling', 'cancelled', 'release', true),
	('shipped', 'delivered', 'none', true),
	('delivered', 'completed', 'none', true),
	('delivered', 'returned', 'restock', true),
	('returned', 'refunded', 'none', true),
	('cancelled', 'refunded', 'none', true);

INSERT INTO ordersync.channel (id) VALUES ('web'), ('app');

-- ---------------------------------------------------------------------------
-- Orders
-- ---------------------------------------------------------------------------
CREATE TABLE ordersync.orders (
	id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	channel		text NOT NULL REFERENCES ordersync.channel,
	external_id	text NOT NULL
				CONSTRAINT orders_external_id_format CHECK (external_id <> '' AND pg_catalog.length(external_id) <= 200),
	-- checked against ordersync.transition by the C trigger on every change
	status		text NOT NULL DEFAULT 'pending',
	-- the lines as placed, normalized: [{"line_no":1,"sku":..,"qty":..,"price":"9.90"}]
	lines		jsonb NOT NULL,
	customer	jsonb CONSTRAINT orders_customer_object CHECK (pg_catalog.jsonb_typeof(customer) = 'object'),
	total		numeric(14, 2) NOT NULL CONSTRAINT orders_total_nonnegative CHECK (total >= 0),
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	-- while pending: when the reservation runs out
	expires_at	timestamptz,
	CONSTRAINT orders_channel_external_id_key UNIQUE (channel, external_id)
);
CREATE INDEX orders_expiry_idx ON ordersync.orders (expires_at) WHERE expires_at IS NOT NULL;
COMMENT ON TABLE ordersync.orders IS 'orders; status changes only along ordersync.transition';

CREATE TABLE ordersync.order_line (
	order_id	bigint NOT NULL REFERENCES ordersync.orders,
	line_no		integer NOT NULL,
	/*
	 * No foreign key to ordersync.sku: place_order() checks the SKU, and a
	 * key check would make every buyer of a flash-sale SKU share-lock its
	 * one sku row, the queue that buckets exist to avoid.  SKUs are never
	 * deleted through the API.
	 */
	sku			text NOT NULL,
	qty			bigint NOT NULL CONSTRAINT order_line_qty_positive CHECK (qty > 0),
	price		numeric(14, 2) NOT NULL CONSTRAINT order_line_price_nonnegative CHECK (price >= 0),
	PRIMARY KEY (order_id, line_no)
);

CREATE TABLE ordersync.reservation (
	order_id	bigint NOT NULL,
	line_no		integer NOT NULL,
	sku			text NOT NULL,
	location	text NOT NULL,
	bucket		integer NOT NULL DEFAULT 0,
	qty			bigint NOT NULL CONSTRAINT reservation_qty_positive CHECK (qty > 0),
	-- held counts in stock.reserved; consumed left with the parcel;
	-- released went back to available; restocked came back on hand
	state		text NOT NULL DEFAULT 'held'
				CONSTRAINT reservation_state_known
				CHECK (state IN ('held', 'consumed', 'released', 'restocked')),
	PRIMARY KEY (order_id, line_no, location, bucket),
	FOREIGN KEY (order_id, line_no) REFERENCES ordersync.order_line
);
CREATE INDEX reservation_held_idx ON ordersync.reservation (sku, location) WHERE state = 'held';
COMMENT ON TABLE ordersync.reservation IS 'stock allocated to order lines, per location';

-- ---------------------------------------------------------------------------
-- Append-only history
-- ---------------------------------------------------------------------------
CREATE TABLE ordersync.history (
	id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at			timestamptz NOT NULL DEFAULT pg_catalog.now(),
	-- created, status: order lifecycle; reserve, release, consume, restock,
	-- receive: stock movements; safety, set_hot: stock settings
	action		text NOT NULL,
	order_id	bigint,
	from_status	text,
	to_status	text,
	sku			text,
	location	text,
	qty			bigint,
	-- who: ordersync.actor when the application sets it, else the role
	actor		text NOT NULL,
	-- the database role that made the change; cannot be set by the caller
	role		text NOT NULL,
	reason		text
);
CREATE INDEX history_order_idx ON ordersync.history (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX history_sku_idx ON ordersync.history (sku) WHERE sku IS NOT NULL;
COMMENT ON TABLE ordersync.history IS 'append-only: every status change and stock movement';

-- ---------------------------------------------------------------------------
-- Triggers (C, src/extension/)
-- ---------------------------------------------------------------------------
CREATE FUNCTION ordersync.orders_status_trigger() RETURNS trigger
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_orders_status_trigger';

CREATE TRIGGER orders_status
	BEFORE UPDATE OF status ON ordersync.orders
	FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
	EXECUTE FUNCTION ordersync.orders_status_trigger();

CREATE FUNCTION ordersync.append_only_trigger() RETURNS trigger
	LANGUAGE c AS 'MODULE_PATHNAME', 'ordersync_append_only_trigger';

CREATE TRIGGER history_append_only
	BEFORE UPDATE OR DELETE ON ordersync.history
	FOR EACH ROW EXECUTE FUNCTION ordersync.append_only_trigger();
CREATE TRIGGER history_no_truncate
	BEFORE TRUNCATE ON ordersync.history
	FOR EACH STATEMENT EXECUTE FUNCTION ordersync.append_only_trigger();

-- a status that orders have cannot disappear from under them
CREATE FUNCTION ordersync.status_in_use_trigger() RETURNS trigger
	LANGUAGE c SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_status_in_use_trigger';

CREATE TRIGGER status_in_use
	BEFORE DELETE OR UPDATE OF name ON ordersync.status
	FOR EACH ROW EXECUTE FUNCTION ordersync.status_in_use_trigger();

-- tells every backend to reload its cached copy of the state machine
CREATE FUNCTION ordersync.transition_changed_trigger() RETURNS trigger
	LANGUAGE c AS 'MODULE_PATHNAME', 'ordersync_transition_changed_trigger';

CREATE TRIGGER transition_changed
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ordersync.transition
	FOR EACH STATEMENT EXECUTE FUNCTION ordersync.transition_changed_trigger();

-- ---------------------------------------------------------------------------
-- API
-- ---------------------------------------------------------------------------
CREATE FUNCTION ordersync.add_location(id text, priority integer DEFAULT 0)
	RETURNS void
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_add_location';
COMMENT ON FUNCTION ordersync.add_location(text, integer) IS 'adds a location, or sets the priority of an existing one';

CREATE FUNCTION ordersync.add_channel(id text, status_map jsonb DEFAULT '{}')
	RETURNS void
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_add_channel';
COMMENT ON FUNCTION ordersync.add_channel(text, jsonb) IS 'adds a sales channel, or replaces the status map of an existing one';

CREATE FUNCTION ordersync.receive_stock(sku text, location text, qty bigint)
	RETURNS bigint
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_receive_stock';
COMMENT ON FUNCTION ordersync.receive_stock(text, text, bigint) IS 'adds qty on hand at a location (creating the SKU when new); returns the new on-hand quantity there';

CREATE FUNCTION ordersync.set_safety_stock(sku text, location text, qty bigint)
	RETURNS void
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_set_safety_stock';
COMMENT ON FUNCTION ordersync.set_safety_stock(text, text, bigint) IS 'units at a location that are never sold';

CREATE FUNCTION ordersync.available(sku text)
	RETURNS bigint
	LANGUAGE c STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_available';
COMMENT ON FUNCTION ordersync.available(text) IS 'units of a SKU that can be sold now, over all locations';

CREATE FUNCTION ordersync.place_order(channel text, external_id text, lines jsonb,
									  customer jsonb DEFAULT NULL, allow_split boolean DEFAULT false)
	RETURNS bigint
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_place_order';
COMMENT ON FUNCTION ordersync.place_order(text, text, jsonb, jsonb, boolean) IS 'places an order and reserves every line, or nothing, at the highest-priority location that has it all (or over several locations when allow_split); idempotent per (channel, external_id)';

CREATE FUNCTION ordersync.set_hot(sku text, buckets integer)
	RETURNS void
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_set_hot';
COMMENT ON FUNCTION ordersync.set_hot(text, integer) IS 'splits a SKU''s stock at each location into buckets so buyers do not queue on one row (1 merges it back)';

CREATE FUNCTION ordersync.set_low_stock(sku text, threshold bigint)
	RETURNS void
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_set_low_stock';
COMMENT ON FUNCTION ordersync.set_low_stock(text, bigint) IS 'emit inventory.low_stock when available() falls to threshold or below (NULL: never)';

CREATE FUNCTION ordersync.set_status(order_id bigint, status text, reason text DEFAULT NULL)
	RETURNS void
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_set_status';
COMMENT ON FUNCTION ordersync.set_status(bigint, text, text) IS 'moves an order to a new status along ordersync.transition; a no-op when it already has it';

CREATE FUNCTION ordersync.set_channel_status(channel text, external_id text, channel_status text, reason text DEFAULT NULL)
	RETURNS bigint
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_set_channel_status';
COMMENT ON FUNCTION ordersync.set_channel_status(text, text, text, text) IS 'applies a status reported by a channel in its own words, through the channel''s status map; returns the order id';

CREATE FUNCTION ordersync.expire_reservations()
	RETURNS integer
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'ordersync_expire_reservations';
COMMENT ON FUNCTION ordersync.expire_reservations() IS 'expires pending orders whose reservation ran out; returns how many';

-- ---------------------------------------------------------------------------
-- Privileges.  The application reads everything and changes data only
-- through the API (and a plain UPDATE of orders.status, which the trigger
-- checks); the admin also manages reference data and the state machine.
-- Nobody writes stock, reservations or history directly.
-- ---------------------------------------------------------------------------
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ordersync FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA ordersync FROM PUBLIC;

GRANT USAGE ON SCHEMA ordersync TO ordersync_app, ordersync_admin;
GRANT SELECT ON ALL TABLES IN SCHEMA ordersync TO ordersync_app, ordersync_admin;
GRANT UPDATE (status) ON ordersync.orders TO ordersync_app, ordersync_admin;
GRANT EXECUTE ON FUNCTION
	ordersync.receive_stock(text, text, bigint),
	ordersync.available(text),
	ordersync.place_order(text, text, jsonb, jsonb, boolean),
	ordersync.set_status(bigint, text, text),
	ordersync.set_channel_status(text, text, text, text),
	ordersync.expire_reservations()
	TO ordersync_app, ordersync_admin;
GRANT EXECUTE ON FUNCTION
	ordersync.add_location(text, integer),
	ordersync.add_channel(text, jsonb),
	ordersync.set_safety_stock(text, text, bigint),
	ordersync.set_hot(text, integer),
	ordersync.set_low_stock(text, bigint)
	TO ordersync_admin;
GRANT INSERT, UPDATE, DELETE ON ordersync.channel, ordersync.location,
	ordersync.status, ordersync.transition TO ordersync_admin;

-- ---------------------------------------------------------------------------
-- pg_dump: the data are the user's, not the extension's
-- ---------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('ordersync.channel', $$WHERE id NOT IN ('web', 'app')$$);
SELECT pg_catalog.pg_extension_config_dump('ordersync.location', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.sku', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.stock', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.status', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('ordersync.transition', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('ordersync.orders', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.order_line', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.reservation', '');
SELECT pg_catalog.pg_extension_config_dump('ordersync.history', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('ordersync.orders', 'id'), '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('ordersync.history', 'id'), '');
