-- Hazard inspection and the hazard ledger (issue 6), the shared part: checklist templates and
-- their items, inspection schedules, inspections and their answers, attachments (photos and
-- other evidence), hazards and their event trail. The working-day calendar and the risk register
-- (0015) and the supervision rounds (0016) add their own tables.
--
-- Records (logged through Tx): inspection_templates, inspection_items, inspection_schedules,
-- inspections, hazards. Operational (append-only detail of a record): inspection_answers,
-- hazard_events, attachments (blobs, never in the change log).

-- A checklist. Templates the platform ships have node_id NULL and a code (gas_household,
-- fire_exit, elevator, drain, shelter); a node's own templates have its node_id.
CREATE TABLE inspection_templates (
    id UUID PRIMARY KEY,
    node_id UUID REFERENCES nodes (id),
    code TEXT,
    name TEXT NOT NULL,
    -- What it inspects: dwelling, building, facility, node (anxin_domain::hazard::PlaceKind).
    target_kind TEXT NOT NULL CHECK (target_kind IN ('dwelling', 'building', 'facility', 'node')),
    -- For facility templates, the facility kind it applies to (shelter, …), else NULL.
    facility_kind TEXT,
    description TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('active', 'retired')),
    created_by UUID REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX inspection_templates_code ON inspection_templates (code) WHERE code IS NOT NULL;

CREATE TABLE inspection_items (
    id UUID PRIMARY KEY,
    template_id UUID NOT NULL REFERENCES inspection_templates (id),
    position BIGINT NOT NULL,
    -- Stable key within the template (pipe_corrosion, joint_sealing, …).
    code TEXT NOT NULL,
    text TEXT NOT NULL,
    -- What to look for, shown under the item.
    guidance TEXT NOT NULL DEFAULT '',
    answer_type TEXT NOT NULL CHECK (answer_type IN ('pass_fail', 'number', 'choice', 'text')),
    -- choice: {"options": [..], "failing": [..]}; number: {"min": x, "max": y, "unit": ".."}.
    answer_spec TEXT NOT NULL DEFAULT '{}',
    photo TEXT NOT NULL CHECK (photo IN ('none', 'optional', 'on_fail', 'required')),
    -- The grade a failed answer proposes for its hazard (the worker may raise it).
    fail_grade TEXT NOT NULL CHECK (fail_grade IN ('minor', 'major')),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (template_id, code)
);

-- Every target of `target_kind` within node_id's subtree (or the one target_id) is to be
-- inspected once per period. assignee_user_id NULL: the grid worker of the target's grid.
CREATE TABLE inspection_schedules (
    id UUID PRIMARY KEY,
    node_id UUID NOT NULL REFERENCES nodes (id),
    template_id UUID NOT NULL REFERENCES inspection_templates (id),
    name TEXT NOT NULL,
    target_kind TEXT NOT NULL CHECK (target_kind IN ('dwelling', 'building', 'facility', 'node')),
    target_id UUID,
    period TEXT NOT NULL CHECK (period IN ('daily', 'weekly', 'monthly', 'quarterly')),
    assignee_user_id UUID REFERENCES users (id),
    starts_on DATE NOT NULL,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_by UUID REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX inspection_schedules_node ON inspection_schedules (node_id, active);

-- One inspection of one place against one template. node_id is the community (for the place's
-- compound see the place); period_key is the schedule's period it counts for ('2026-W49').
CREATE TABLE inspections (
    id UUID PRIMARY KEY,
    node_id UUID NOT NULL REFERENCES nodes (id),
    grid_id UUID REFERENCES grids (id),
    template_id UUID NOT NULL REFERENCES inspection_templates (id),
    schedule_id UUID REFERENCES inspection_schedules (id),
    period_key TEXT,
    target_kind TEXT NOT NULL CHECK (target_kind IN ('dwelling', 'building', 'facility', 'node')),
    target_id UUID NOT NULL,
    -- The place as a worker reads it (楼栋 3-2-401), no personal data.
    place_label TEXT NOT NULL,
    lon DOUBLE PRECISION,
    lat DOUBLE PRECISION,
    inspector_user_id UUID REFERENCES users (id),
    status TEXT NOT NULL CHECK (status IN ('in_progress', 'done')),
    failed_count BIGINT NOT NULL DEFAULT 0,
    notes TEXT NOT NULL DEFAULT '',
    started_at TIMESTAMPTZ NOT NULL,
    done_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX inspections_node ON inspections (node_id, done_at);
CREATE INDEX inspections_schedule ON inspections (schedule_id, period_key, target_id);
CREATE INDEX inspections_target ON inspections (target_kind, target_id, done_at);

-- The answers, with the item's text copied so a template's later edits do not rewrite history.
CREATE TABLE inspection_answers (
    id UUID PRIMARY KEY,
    inspection_id UUID NOT NULL REFERENCES inspections (id),
    item_id UUID NOT NULL REFERENCES inspection_items (id),
    position BIGINT NOT NULL,
    item_text TEXT NOT NULL,
    answer TEXT NOT NULL,
    passed BOOLEAN,
    note TEXT NOT NULL DEFAULT '',
    hazard_id UUID,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (inspection_id, item_id)
);

-- Photos and other evidence. owner_kind: inspection, answer, hazard, hazard_event (and later
-- capabilities' own kinds); the bytes live here so both stores back them up alike.
CREATE TABLE attachments (
    id UUID PRIMARY KEY,
    node_id UUID NOT NULL REFERENCES nodes (id),
    owner_kind TEXT NOT NULL,
    owner_id UUID NOT NULL,
    filename TEXT NOT NULL,
    mime TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    data BYTEA NOT NULL,
    created_by UUID REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX attachments_owner ON attachments (owner_kind, owner_id);

-- The hazard ledger (隐患台账). node_id: the community; deadlines are computed from the grade's
-- rule when found (fix_due_at, plan_due_at) and kept, so a later change of rules does not move
-- a running deadline. incident_id links the plan's start (a real activation, not a checkbox).
CREATE TABLE hazards (
    id UUID PRIMARY KEY,
    node_id UUID NOT NULL REFERENCES nodes (id),
    grid_id UUID REFERENCES grids (id),
    place_kind TEXT NOT NULL CHECK (place_kind IN ('dwelling', 'building', 'facility', 'node')),
    place_id UUID NOT NULL,
    place_label TEXT NOT NULL,
    lon DOUBLE PRECISION,
    lat DOUBLE PRECISION,
    source TEXT NOT NULL CHECK (source IN ('inspection', 'staff', 'resident')),
    inspection_id UUID REFERENCES inspections (id),
    answer_id UUID,
    category TEXT NOT NULL DEFAULT '',
    finding TEXT NOT NULL,
    grade TEXT NOT NULL CHECK (grade IN ('minor', 'major')),
    state TEXT NOT NULL CHECK (state IN ('reported', 'assigned', 'remediating', 'fixed', 'accepted', 'closed')),
    responsible_party TEXT NOT NULL DEFAULT '',
    assignee_user_id UUID REFERENCES users (id),
    found_at TIMESTAMPTZ NOT NULL,
    plan_due_at TIMESTAMPTZ,
    fix_due_at TIMESTAMPTZ NOT NULL,
    incident_id UUID REFERENCES incidents (id),
    plan_started_at TIMESTAMPTZ,
    fixed_at TIMESTAMPTZ,
    accepted_by UUID REFERENCES users (id),
    accepted_at TIMESTAMPTZ,
    closed_at TIMESTAMPTZ,
    -- Set when closed: fixed_at <= fix_due_at (and, for major, plan started by plan_due_at).
    closed_on_time BOOLEAN,
    -- Escalation for overdue: how many levels up it has gone, and when last.
    escalation_level BIGINT NOT NULL DEFAULT 0,
    escalated_at TIMESTAMPTZ,
    reopened_count BIGINT NOT NULL DEFAULT 0,
    created_by UUID REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX hazards_node ON hazards (node_id, state);
CREATE INDEX hazards_found ON hazards (node_id, found_at);
CREATE INDEX hazards_due ON hazards (state, fix_due_at);
CREATE INDEX hazards_grid ON hazards (grid_id);

-- Every change of a hazard: who, when, from which state to which, and the evidence
-- (attachment ids as a JSON array). seq orders one hazard's events.
CREATE TABLE hazard_events (
    id UUID PRIMARY KEY,
    hazard_id UUID NOT NULL REFERENCES hazards (id),
    seq BIGINT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    actor UUID REFERENCES users (id),
    -- reported, assigned, remediating, fixed, accepted, closed, reopened, plan_started,
    -- escalated, note.
    kind TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT,
    note TEXT NOT NULL DEFAULT '',
    evidence TEXT NOT NULL DEFAULT '[]',
    UNIQUE (hazard_id, seq)
);
