-- Supervision (红黄牌, issue 6): scoring rounds and each community's score in a round.
-- OWNER: supervision. Both are records (logged through Tx). How the figures are computed is the
-- doc of anxin-store hazards/supervision.rs.

-- One scoring of every community under node_id (NULL: the whole platform, the quarterly job)
-- for one Asia/Shanghai quarter, as of `as_of` (the quarter's end, or the moment an on-demand
-- round ran inside the running quarter). `thresholds` keeps the card rules it was scored with.
CREATE TABLE supervision_rounds (
    id UUID PRIMARY KEY,
    node_id UUID REFERENCES nodes (id),
    quarter TEXT NOT NULL,
    cause TEXT NOT NULL CHECK (cause IN ('quarterly', 'on_demand')),
    as_of TIMESTAMPTZ NOT NULL,
    communities BIGINT NOT NULL DEFAULT 0,
    red BIGINT NOT NULL DEFAULT 0,
    yellow BIGINT NOT NULL DEFAULT 0,
    thresholds TEXT NOT NULL DEFAULT '{}',
    created_by UUID REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
-- The quarterly job scores a quarter once, however many servers run it.
CREATE UNIQUE INDEX supervision_rounds_quarterly ON supervision_rounds (quarter) WHERE cause = 'quarterly';
CREATE INDEX supervision_rounds_quarter ON supervision_rounds (quarter, created_at);

-- A community's figures in a round. card NULL: nothing to score (no hazard due, none overdue,
-- no scheduled inspection), which is not a perfect score. reasons: JSON array of
-- {metric, level, value, threshold}.
CREATE TABLE supervision_scores (
    id UUID PRIMARY KEY,
    round_id UUID NOT NULL REFERENCES supervision_rounds (id),
    node_id UUID NOT NULL REFERENCES nodes (id),
    quarter TEXT NOT NULL,
    as_of TIMESTAMPTZ NOT NULL,
    hazards_due BIGINT NOT NULL,
    closed_on_time BIGINT NOT NULL,
    overdue BIGINT NOT NULL,
    plan_late BIGINT NOT NULL,
    inspections_expected BIGINT NOT NULL,
    inspections_done BIGINT NOT NULL,
    card TEXT CHECK (card IN ('none', 'yellow', 'red')),
    reasons TEXT NOT NULL DEFAULT '[]',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX supervision_scores_node ON supervision_scores (node_id, quarter, created_at);
CREATE INDEX supervision_scores_round ON supervision_scores (round_id);

-- Scoring reads four ranges of the ledger, each from an index that covers what it counts, so a
-- quarter's table costs that quarter's rows, not a scan of years of ledger (hazards/supervision.rs):
-- deadlines in the quarter (for everyone, and per community), open hazards past their deadline,
-- hazards closed only after the as-of time, plan deadlines in the quarter.
CREATE INDEX hazards_due_cover ON hazards (fix_due_at, node_id, state, closed_at, closed_on_time);
CREATE INDEX hazards_node_due_cover ON hazards (node_id, fix_due_at, state, closed_at, closed_on_time);
CREATE INDEX hazards_open_due ON hazards (state, fix_due_at, node_id);
CREATE INDEX hazards_closed_due ON hazards (closed_at, fix_due_at, state, node_id);
CREATE INDEX hazards_plan_due ON hazards (plan_due_at, grade, plan_started_at, node_id);
