-- Providers (服务商端, issue 7): providers and the accounts that speak for them, offers, orders
-- and their lines; receiving books stock into a depot through the reserves ledger.
-- OWNER: providers.
--
-- Records (logged through Tx): providers, provider_nodes, provider_accounts, supply_offers,
-- supply_orders, supply_order_events. See anxin_store::supplies::providers for the rules.

-- A provider organisation (supermarket, farm, pharmacy, logistics firm): registered at node_id by
-- staff with manage_supplies there; credit_code is the 18-character 统一社会信用代码 (GB
-- 32100-2015, check digit verified). The contact person's name and phone are personal data:
-- sealed under the provider's data key (key_id), kept masked beside.
CREATE TABLE providers (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    node_id TEXT NOT NULL REFERENCES nodes (id),
    name TEXT NOT NULL,
    credit_code TEXT NOT NULL,
    contact_name_ct BLOB,
    contact_name_mask TEXT NOT NULL DEFAULT '',
    contact_phone_ct BLOB,
    contact_phone_mask TEXT NOT NULL DEFAULT '',
    address TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    created_by TEXT REFERENCES users (id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX providers_credit_code ON providers (credit_code);
CREATE INDEX providers_node ON providers (node_id);

-- The nodes a provider serves (a community, or a street or district for everything below):
-- communities there see its offers and may order from them.
CREATE TABLE provider_nodes (
    id TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL REFERENCES providers (id),
    node_id TEXT NOT NULL REFERENCES nodes (id),
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX provider_nodes_unique ON provider_nodes (provider_id, node_id);
CREATE INDEX provider_nodes_node ON provider_nodes (node_id);

-- Which accounts speak for a provider: an account (created by the security administrator, with a
-- provider grant) speaks for at most one provider. node_id is the provider's node (for scope).
CREATE TABLE provider_accounts (
    id TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL REFERENCES providers (id),
    account_id TEXT NOT NULL REFERENCES users (id),
    node_id TEXT NOT NULL REFERENCES nodes (id),
    created_by TEXT REFERENCES users (id),
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX provider_accounts_account ON provider_accounts (account_id);
CREATE INDEX provider_accounts_provider ON provider_accounts (provider_id);

-- What a provider can supply: a catalogue item, how much is still available (lowered when an
-- order is placed, restored when it is cancelled or declined), the unit price in fen, the lead
-- time in hours and the last day the offer holds. node_id is the provider's node (for scope).
CREATE TABLE supply_offers (
    id TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL REFERENCES providers (id),
    node_id TEXT NOT NULL REFERENCES nodes (id),
    item_id TEXT NOT NULL REFERENCES supply_items (id),
    quantity_available BIGINT NOT NULL CHECK (quantity_available >= 0),
    unit_price_fen BIGINT NOT NULL CHECK (unit_price_fen >= 0),
    lead_time_hours BIGINT NOT NULL CHECK (lead_time_hours >= 0),
    valid_until TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('active', 'withdrawn')),
    created_by TEXT REFERENCES users (id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX supply_offers_provider ON supply_offers (provider_id, status);

-- An order of a community from an offer, to be delivered to one of its depots (a facility) by
-- wanted_by. node_id is the depot's node. Quantities: received <= delivered <= ordered.
CREATE TABLE supply_orders (
    id TEXT PRIMARY KEY,
    offer_id TEXT NOT NULL REFERENCES supply_offers (id),
    provider_id TEXT NOT NULL REFERENCES providers (id),
    node_id TEXT NOT NULL REFERENCES nodes (id),
    depot_id TEXT NOT NULL REFERENCES facilities (id),
    item_id TEXT NOT NULL REFERENCES supply_items (id),
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_fen BIGINT NOT NULL CHECK (unit_price_fen >= 0),
    delivered_quantity BIGINT NOT NULL DEFAULT 0,
    received_quantity BIGINT NOT NULL DEFAULT 0,
    wanted_by TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('placed', 'confirmed', 'declined', 'cancelled', 'partially_delivered', 'delivered', 'received', 'closed')),
    note TEXT NOT NULL DEFAULT '',
    created_by TEXT REFERENCES users (id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CHECK (received_quantity >= 0 AND received_quantity <= delivered_quantity AND delivered_quantity <= quantity)
);
CREATE INDEX supply_orders_node ON supply_orders (node_id, status);
CREATE INDEX supply_orders_provider ON supply_orders (provider_id, status);

-- Every step of an order: its number in the order (seq, from 1: two steps racing on one order
-- cannot both land), who (actor), when, what (action), how much (for deliveries and receipts)
-- and the note given.
CREATE TABLE supply_order_events (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES supply_orders (id),
    seq BIGINT NOT NULL,
    node_id TEXT NOT NULL REFERENCES nodes (id),
    action TEXT NOT NULL CHECK (action IN ('place', 'confirm', 'decline', 'cancel', 'deliver', 'receive', 'close')),
    quantity BIGINT,
    note TEXT NOT NULL DEFAULT '',
    actor TEXT REFERENCES users (id),
    at TEXT NOT NULL
);
CREATE UNIQUE INDEX supply_order_events_seq ON supply_order_events (order_id, seq);
