-- The working-day calendar (holidays and adjusted working weekends, as data an administrator
-- updates) and the risk register (issue 6). OWNER: calendar & risks.
--
-- Records (logged through Tx): calendar_days, risks, risk_reviews. Operational: risk_reminders
-- (which reminder went to whom, so each goes once).

-- What administrators changed of the working-day calendar (anxin_domain::calendar). The shipped
-- years (2025: 国办发明电〔2024〕12号; 2026: 国办发明电〔2025〕7号) are anxin_domain::calendar::SHIPPED,
-- in the code; a row here overrides the shipped entry of its date or adds one: holiday (a day
-- off on a weekday), workday (a working weekend day, 调休), or normal (the weekday rule applies:
-- a shipped exception withdrawn). The calendar deadlines use is SHIPPED with these rows applied
-- (anxin_store::hazards::calendar::load). Nothing is seeded here, so every stored row has its
-- change-log entry and a freshly migrated database stays empty for a restore.
CREATE TABLE calendar_days (
    id TEXT PRIMARY KEY,
    day TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('holiday', 'workday', 'normal')),
    name TEXT NOT NULL,
    created_by TEXT REFERENCES users (id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- A risk of a node (a community, or a street for its own): what could happen, how likely (1–5)
-- and how bad (1–5); score = likelihood × consequence and level by the banding of
-- anxin_store::hazards::risks (1–4 low, 5–9 medium, 10–16 high, 20–25 extreme). next_review_on
-- is at most risks.max_review_months after the last review (or creation).
CREATE TABLE risks (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL REFERENCES nodes (id),
    risk_type TEXT NOT NULL CHECK (risk_type IN ('flood', 'fire', 'gas', 'structural', 'public_health', 'geological', 'traffic', 'other')),
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    likelihood BIGINT NOT NULL CHECK (likelihood BETWEEN 1 AND 5),
    consequence BIGINT NOT NULL CHECK (consequence BETWEEN 1 AND 5),
    score BIGINT NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('low', 'medium', 'high', 'extreme')),
    controls TEXT NOT NULL DEFAULT '',
    owner_user_id TEXT NOT NULL REFERENCES users (id),
    lon DOUBLE PRECISION,
    lat DOUBLE PRECISION,
    place_label TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('active', 'retired')),
    last_reviewed_at TEXT,
    next_review_on TEXT NOT NULL,
    created_by TEXT REFERENCES users (id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX risks_node ON risks (node_id, status);
CREATE INDEX risks_review ON risks (status, next_review_on);

-- A review of a risk: who, when, the scores then, the note, and the next review it set.
CREATE TABLE risk_reviews (
    id TEXT PRIMARY KEY,
    risk_id TEXT NOT NULL REFERENCES risks (id),
    node_id TEXT NOT NULL REFERENCES nodes (id),
    reviewed_by TEXT REFERENCES users (id),
    reviewed_at TEXT NOT NULL,
    likelihood BIGINT NOT NULL,
    consequence BIGINT NOT NULL,
    score BIGINT NOT NULL,
    level TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    next_review_on TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX risk_reviews_risk ON risk_reviews (risk_id, reviewed_at);

-- Reminders sent to a risk's owner: due_soon (remind_days_before the review) and overdue, once
-- each per review date.
CREATE TABLE risk_reminders (
    id TEXT PRIMARY KEY,
    risk_id TEXT NOT NULL REFERENCES risks (id),
    kind TEXT NOT NULL CHECK (kind IN ('due_soon', 'overdue')),
    due_on TEXT NOT NULL,
    owner_user_id TEXT NOT NULL REFERENCES users (id),
    sent_at TEXT NOT NULL,
    UNIQUE (risk_id, kind, due_on)
);
