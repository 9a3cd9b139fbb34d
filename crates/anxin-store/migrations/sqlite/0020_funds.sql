-- The emergency fund ledger (应急资金, issue 7): sources and spending with attachments.
-- OWNER: fund ledger.
--
-- Records (logged through Tx): fund_accounts, fund_entries, fund_attachments. The ledger is
-- append-only: an entry is never updated or deleted; a mistake is corrected by a reversal (an
-- entry of the same direction and kind, amount negated, reverses_id naming the one it reverses).
-- Totals and the balance are sums over the entries (anxin_domain::fund).

-- One account per community (or street). published: shown on the public page (居务公开).
-- last_seq numbers the account's entries (凭证号) and is bumped by every entry, which also
-- serialises writes to one account (the balance check sees every earlier entry).
CREATE TABLE fund_accounts (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL UNIQUE REFERENCES nodes (id),
    name TEXT NOT NULL,
    published INTEGER NOT NULL DEFAULT FALSE,
    last_seq BIGINT NOT NULL DEFAULT 0,
    created_by TEXT REFERENCES users (id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- An entry: income by source kind or spending by category, amount in fen (signed: a reversal
-- is the negation of the entry it reverses). counterparty: the payer (income) or payee
-- (spending); anonymous: a donor who asked not to be named (never shown publicly). The donor's
-- contact phone is personal data: sealed under the entry's own data key (key_id), with a mask.
-- recorder_role: the role the recorder acted in, which is what the public page shows.
CREATE TABLE fund_entries (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES fund_accounts (id),
    node_id TEXT NOT NULL REFERENCES nodes (id),
    seq BIGINT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('income', 'spending')),
    kind TEXT NOT NULL CHECK (kind IN ('fiscal', 'donation', 'property_fees', 'recycling', 'other',
        'purchase', 'maintenance', 'drills', 'volunteers')),
    amount_fen BIGINT NOT NULL CHECK (amount_fen <> 0),
    occurred_on TEXT NOT NULL,
    description TEXT NOT NULL,
    counterparty TEXT NOT NULL DEFAULT '',
    anonymous INTEGER NOT NULL DEFAULT FALSE,
    key_id TEXT,
    contact_ct BLOB,
    contact_mask TEXT,
    incident_id TEXT REFERENCES incidents (id),
    order_id TEXT REFERENCES supply_orders (id),
    reverses_id TEXT UNIQUE REFERENCES fund_entries (id),
    reason TEXT NOT NULL DEFAULT '',
    recorded_by TEXT REFERENCES users (id),
    recorder_role TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    UNIQUE (account_id, seq)
);
CREATE INDEX fund_entries_account ON fund_entries (account_id, occurred_on);
CREATE INDEX fund_entries_node ON fund_entries (node_id);

-- A receipt or invoice of an entry: the bytes are in attachments (owner_kind 'fund_entry');
-- is_public: shown on the public page (default for spending receipts).
CREATE TABLE fund_attachments (
    id TEXT PRIMARY KEY,
    entry_id TEXT NOT NULL REFERENCES fund_entries (id),
    attachment_id TEXT NOT NULL UNIQUE REFERENCES attachments (id),
    node_id TEXT NOT NULL REFERENCES nodes (id),
    is_public INTEGER NOT NULL DEFAULT TRUE,
    created_by TEXT REFERENCES users (id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX fund_attachments_entry ON fund_attachments (entry_id);
