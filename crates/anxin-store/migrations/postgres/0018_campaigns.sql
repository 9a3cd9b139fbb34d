-- Distribution campaigns (issue 7): campaigns, pickup places and slots, reservations with
-- single-use codes, delivery orders for vulnerable households. OWNER: campaigns.
--
-- Records (logged through Tx): campaigns, campaign_slots, campaign_reservations. Operational:
-- campaign_counters (how much of a campaign's stock and of each slot's capacity is taken; the
-- guarded `UPDATE … SET used = used + n WHERE used + n <= cap` that makes overselling impossible,
-- also with several servers on one PostgreSQL; derivable from the reservations).

-- A campaign of one node (a community, or a street/district for all below it), optionally narrowed
-- to some compounds (`compounds`: a JSON list of compound node ids, `[]` = the whole subtree).
-- item_id names a supply_items row (0017); stock is in the item's units, quantity per household
-- too. mode fcfs (first come first served) or lottery (applications, then a draw at draw_at or by
-- a worker; the seed is recorded). States: draft → open → closed, draft/open → cancelled.
CREATE TABLE campaigns (
    id UUID PRIMARY KEY,
    node_id UUID NOT NULL REFERENCES nodes (id),
    title TEXT NOT NULL,
    item_id UUID NOT NULL REFERENCES supply_items (id),
    item_code TEXT NOT NULL,
    quantity_per_household BIGINT NOT NULL CHECK (quantity_per_household > 0),
    fulfilment TEXT NOT NULL CHECK (fulfilment IN ('pickup', 'delivery')),
    eligibility TEXT NOT NULL CHECK (eligibility IN ('all', 'vulnerable')),
    mode TEXT NOT NULL CHECK (mode IN ('fcfs', 'lottery')),
    draw_at TIMESTAMPTZ,
    stock BIGINT NOT NULL CHECK (stock >= 0),
    compounds TEXT NOT NULL DEFAULT '[]',
    depot_id UUID REFERENCES facilities (id),
    status TEXT NOT NULL CHECK (status IN ('draft', 'open', 'closed', 'cancelled')),
    incident_id UUID REFERENCES incidents (id),
    lottery_seed TEXT,
    drawn_at TIMESTAMPTZ,
    opened_at TIMESTAMPTZ,
    closed_at TIMESTAMPTZ,
    note TEXT NOT NULL DEFAULT '',
    created_by UUID REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX campaigns_node ON campaigns (node_id, status);
CREATE INDEX campaigns_incident ON campaigns (incident_id);
CREATE INDEX campaigns_draw ON campaigns (status, mode, draw_at);

-- A pickup slot: a place (a facility, or a label such as 社区居委会) and a time window, with the
-- number of households it can serve.
CREATE TABLE campaign_slots (
    id UUID PRIMARY KEY,
    campaign_id UUID NOT NULL REFERENCES campaigns (id),
    node_id UUID NOT NULL REFERENCES nodes (id),
    facility_id UUID REFERENCES facilities (id),
    place_label TEXT NOT NULL,
    starts_at TIMESTAMPTZ NOT NULL,
    ends_at TIMESTAMPTZ NOT NULL,
    capacity BIGINT NOT NULL CHECK (capacity > 0),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX campaign_slots_campaign ON campaign_slots (campaign_id, starts_at);

-- A household's reservation (kind reservation) or delivery order (kind delivery), one per
-- household per campaign. status: reserved (holds stock; a code when picked up), applied
-- (lottery, before the draw), lost (not drawn), redeemed, delivered, cancelled. The pickup code
-- is never stored: it is derived from the id with the blind-index key (so the resident can be
-- shown it again) and only its keyed hash (code_bidx) is kept, for redemption.
CREATE TABLE campaign_reservations (
    id UUID PRIMARY KEY,
    campaign_id UUID NOT NULL REFERENCES campaigns (id),
    node_id UUID NOT NULL REFERENCES nodes (id),
    household_id UUID NOT NULL REFERENCES households (id),
    community_id UUID NOT NULL REFERENCES nodes (id),
    slot_id UUID REFERENCES campaign_slots (id),
    kind TEXT NOT NULL CHECK (kind IN ('reservation', 'delivery')),
    status TEXT NOT NULL CHECK (status IN ('reserved', 'applied', 'lost', 'redeemed', 'delivered', 'cancelled')),
    quantity BIGINT NOT NULL,
    code_bidx BYTEA,
    on_behalf BOOLEAN NOT NULL DEFAULT FALSE,
    actor UUID REFERENCES users (id),
    request_key TEXT,
    assignee_user_id UUID REFERENCES users (id),
    redeemed_at TIMESTAMPTZ,
    redeemed_by UUID REFERENCES users (id),
    delivered_at TIMESTAMPTZ,
    delivered_by UUID REFERENCES users (id),
    note TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX campaign_reservations_household ON campaign_reservations (campaign_id, household_id);
CREATE UNIQUE INDEX campaign_reservations_code ON campaign_reservations (campaign_id, code_bidx);
CREATE INDEX campaign_reservations_slot ON campaign_reservations (slot_id, status);
CREATE INDEX campaign_reservations_assignee ON campaign_reservations (assignee_user_id, status);
CREATE INDEX campaign_reservations_hh ON campaign_reservations (household_id);

-- Counters: one row per campaign (id = campaign id; cap = stock, used = units held) and one per
-- slot (id = slot id; cap = capacity, used = households).
CREATE TABLE campaign_counters (
    id UUID PRIMARY KEY,
    campaign_id UUID NOT NULL REFERENCES campaigns (id),
    cap BIGINT NOT NULL,
    used BIGINT NOT NULL DEFAULT 0,
    CHECK (used >= 0 AND used <= cap)
);
CREATE INDEX campaign_counters_campaign ON campaign_counters (campaign_id);
