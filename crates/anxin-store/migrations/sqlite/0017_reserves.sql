-- Emergency reserves (issue 7): items, depots (facilities), lots with expiry, the append-only
-- movement ledger, reserve norms per 1,000 residents, expiry warnings, dispatch plans and their
-- transfers. OWNER: reserves & dispatch.
--
-- Records (logged through Tx): supply_items, stock_lots, stock_movements, stock_norms,
-- dispatch_plans, dispatch_lines. Operational: stock_balances (the balance of each lot, kept in
-- the same transaction as each movement; the ledger is the truth and can rebuild it),
-- stock_expiry_warnings (which lot was warned about, so each is warned once).

-- An item of the reserve: node_id NULL is the platform's catalogue, else a community's own item.
-- code is unique per node (and in the catalogue); other parts rely on the catalogue's codes.
CREATE TABLE supply_items (
    id TEXT PRIMARY KEY,
    node_id TEXT REFERENCES nodes (id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    unit TEXT NOT NULL,
    category TEXT NOT NULL,
    shelf_life_days BIGINT CHECK (shelf_life_days IS NULL OR shelf_life_days > 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX supply_items_catalogue_code ON supply_items (code) WHERE node_id IS NULL;
CREATE UNIQUE INDEX supply_items_node_code ON supply_items (node_id, code) WHERE node_id IS NOT NULL;

-- A lot: one receipt of an item at a depot (a facility), with its expiry date if it has one.
-- node_id is the depot facility's node (for scope).
CREATE TABLE stock_lots (
    id TEXT PRIMARY KEY,
    item_id TEXT NOT NULL REFERENCES supply_items (id),
    depot_id TEXT NOT NULL REFERENCES facilities (id),
    node_id TEXT NOT NULL REFERENCES nodes (id),
    expires_on TEXT,
    received_at TEXT NOT NULL,
    source_ref TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE INDEX stock_lots_depot_item ON stock_lots (depot_id, item_id, expires_on);
CREATE INDEX stock_lots_expiry ON stock_lots (expires_on);

-- The ledger: append-only (a correction is an adjust movement, never an UPDATE or DELETE).
-- quantity is signed: receive and transfer_in > 0; issue, transfer_out and write_off < 0;
-- adjust either way, never 0.
CREATE TABLE stock_movements (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('receive', 'issue', 'transfer_out', 'transfer_in', 'adjust', 'write_off')),
    item_id TEXT NOT NULL REFERENCES supply_items (id),
    depot_id TEXT NOT NULL REFERENCES facilities (id),
    node_id TEXT NOT NULL REFERENCES nodes (id),
    lot_id TEXT NOT NULL REFERENCES stock_lots (id),
    quantity BIGINT NOT NULL CHECK (quantity <> 0),
    reference_kind TEXT CHECK (reference_kind IS NULL OR reference_kind IN ('order', 'campaign', 'dispatch', 'transfer')),
    reference_id TEXT,
    note TEXT NOT NULL DEFAULT '',
    actor TEXT REFERENCES users (id),
    at TEXT NOT NULL
);
CREATE INDEX stock_movements_depot ON stock_movements (depot_id, at);
CREATE INDEX stock_movements_lot ON stock_movements (lot_id);
CREATE INDEX stock_movements_reference ON stock_movements (reference_kind, reference_id);

-- The balance of each lot: the sum of its movements, kept in the same transaction as each
-- movement (operational; the ledger rebuilds it).
CREATE TABLE stock_balances (
    lot_id TEXT PRIMARY KEY REFERENCES stock_lots (id),
    item_id TEXT NOT NULL REFERENCES supply_items (id),
    depot_id TEXT NOT NULL REFERENCES facilities (id),
    quantity BIGINT NOT NULL CHECK (quantity >= 0)
);
CREATE INDEX stock_balances_depot_item ON stock_balances (depot_id, item_id);

-- A reserve norm: how much of an item per 1,000 residents a node should hold. A norm at a street
-- (or district, city) applies to the communities below unless one sets its own.
CREATE TABLE stock_norms (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL REFERENCES nodes (id),
    item_id TEXT NOT NULL REFERENCES supply_items (id),
    per_thousand BIGINT NOT NULL CHECK (per_thousand >= 0),
    created_by TEXT REFERENCES users (id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX stock_norms_node_item ON stock_norms (node_id, item_id);

-- Which lot the expiry job has warned about (once per lot and expiry date).
CREATE TABLE stock_expiry_warnings (
    lot_id TEXT PRIMARY KEY REFERENCES stock_lots (id),
    expires_on TEXT NOT NULL,
    warned_at TEXT NOT NULL,
    recipients BIGINT NOT NULL
);

-- A dispatch plan over the communities below a street or district: proposed by the minimum-cost
-- flow (anxin_domain::supplies::solve), executed as transfers in one transaction.
CREATE TABLE dispatch_plans (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL REFERENCES nodes (id),
    status TEXT NOT NULL CHECK (status IN ('proposed', 'executed', 'cancelled')),
    total_quantity BIGINT NOT NULL,
    total_need BIGINT NOT NULL,
    cost_km DOUBLE PRECISION NOT NULL,
    created_by TEXT REFERENCES users (id),
    executed_by TEXT REFERENCES users (id),
    executed_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX dispatch_plans_node ON dispatch_plans (node_id, created_at);

-- One transfer of a plan: quantity of an item from a depot to a receiving community's depot.
-- source_balance is the sending depot's balance of the item when planned: executing refuses if
-- it changed meanwhile.
CREATE TABLE dispatch_lines (
    id TEXT PRIMARY KEY,
    plan_id TEXT NOT NULL REFERENCES dispatch_plans (id),
    node_id TEXT NOT NULL REFERENCES nodes (id),
    item_id TEXT NOT NULL REFERENCES supply_items (id),
    from_depot_id TEXT NOT NULL REFERENCES facilities (id),
    from_community_id TEXT NOT NULL REFERENCES nodes (id),
    to_community_id TEXT NOT NULL REFERENCES nodes (id),
    to_depot_id TEXT NOT NULL REFERENCES facilities (id),
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    distance_km DOUBLE PRECISION NOT NULL,
    source_balance BIGINT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX dispatch_lines_plan ON dispatch_lines (plan_id);

-- The platform catalogue of reserve items. After 应急管理部《家庭应急物资储备建议清单》(2021) and
-- the usual community reserve lists (防汛、消防、防疫、安置): code, name, unit, category, shelf
-- life in days where the goods have one.
INSERT INTO supply_items (id, node_id, code, name, unit, category, shelf_life_days, created_at, updated_at) VALUES
    ('01940000-0017-7000-8000-000000000001', NULL, 'mask', '医用外科口罩', '只', 'protection', 1095, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0017-7000-8000-000000000002', NULL, 'water', '饮用水', '瓶', 'food', 365, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0017-7000-8000-000000000003', NULL, 'noodles', '方便面', '箱', 'food', 180, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0017-7000-8000-000000000004', NULL, 'blanket', '棉被', '床', 'shelter', NULL, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0017-7000-8000-000000000005', NULL, 'tent', '帐篷', '顶', 'shelter', NULL, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0017-7000-8000-000000000006', NULL, 'flashlight', '手电筒', '个', 'tools', NULL, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0017-7000-8000-000000000007', NULL, 'first_aid', '急救包', '个', 'medical', 1095, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0017-7000-8000-000000000008', NULL, 'raincoat', '雨衣', '件', 'protection', NULL, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0017-7000-8000-000000000009', NULL, 'sandbag', '沙袋', '个', 'flood', NULL, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0017-7000-8000-000000000010', NULL, 'life_jacket', '救生衣', '件', 'flood', NULL, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0017-7000-8000-000000000011', NULL, 'biscuits', '压缩饼干', '箱', 'food', 730, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0017-7000-8000-000000000012', NULL, 'gloves', '防护手套', '副', 'protection', NULL, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0017-7000-8000-000000000013', NULL, 'disinfectant', '消毒液', '瓶', 'medical', 730, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0017-7000-8000-000000000014', NULL, 'radio', '应急收音机', '台', 'tools', NULL, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0017-7000-8000-000000000015', NULL, 'batteries', '电池', '节', 'tools', 1095, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0017-7000-8000-000000000016', NULL, 'whistle', '救生哨', '个', 'tools', NULL, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0017-7000-8000-000000000017', NULL, 'rope', '安全绳', '根', 'tools', NULL, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0017-7000-8000-000000000018', NULL, 'folding_bed', '折叠床', '张', 'shelter', NULL, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0017-7000-8000-000000000019', NULL, 'fire_extinguisher', '灭火器', '具', 'fire', NULL, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0017-7000-8000-000000000020', NULL, 'fire_blanket', '灭火毯', '条', 'fire', NULL, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');

-- Their change-log entries (the after-image exactly as stored), so the log mirrors every record
-- from the start; positions continue the counter.
INSERT INTO change_log (pos, id, origin, seq, kind, record_id, op, after, after_ct, key_id, actor, request_id, at)
SELECT c.last + r.n, r.entry_id, 'local', c.last + r.n, 'supply_items', r.rid, 'insert', r.image, NULL, NULL, NULL, 'migration-0017', r.created_at
FROM log_counter c, (SELECT replace(id, '-0017-7000-', '-0017-7001-') AS entry_id, id AS rid, created_at, json_object('id', id, 'node_id', node_id, 'code', code, 'name', name, 'unit', unit,
        'category', category, 'shelf_life_days', shelf_life_days, 'created_at', created_at, 'updated_at', updated_at) AS image,
        row_number() OVER (ORDER BY id) AS n
    FROM supply_items WHERE node_id IS NULL) r
WHERE c.id = 1;
UPDATE log_counter SET last = last + (SELECT count(*) FROM supply_items WHERE node_id IS NULL) WHERE id = 1;

-- The ledger is append-only: no statement may change or remove a movement.
CREATE TRIGGER stock_movements_no_update BEFORE UPDATE ON stock_movements
BEGIN
    SELECT RAISE(ABORT, 'stock_movements is append-only');
END;
CREATE TRIGGER stock_movements_no_delete BEFORE DELETE ON stock_movements
BEGIN
    SELECT RAISE(ABORT, 'stock_movements is append-only');
END;
