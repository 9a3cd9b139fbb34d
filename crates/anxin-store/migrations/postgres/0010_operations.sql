-- Emergency operations (issue 5), the shared part: plans and their versions, incidents (one per
-- activation), the incident log and incident tasks. Volunteers and welfare checks (0011),
-- incident operations (0012) and passes (0013) add their own tables.
--
-- Records (logged through Tx): plans, plan_versions, incidents, incident_tasks.
-- The incident log is operational (append-only, many rows): it is the timeline, not a record.

CREATE TABLE plans (
    id UUID PRIMARY KEY,
    -- The node that owns the plan (a community, or a street for its own plans).
    node_id UUID NOT NULL REFERENCES nodes (id),
    name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'retired')),
    -- The version in force (plan_versions.version), 0 before the first is adopted.
    current_version BIGINT NOT NULL DEFAULT 0,
    review_period_days BIGINT NOT NULL,
    last_reviewed_at TIMESTAMPTZ,
    created_by UUID REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX plans_node_name ON plans (node_id, name);

-- One version of a plan's body (anxin_domain::plan::PlanBody as JSON). A review's lessons
-- propose a new version (status proposed, review_id set); adopting it makes it current.
CREATE TABLE plan_versions (
    id UUID PRIMARY KEY,
    plan_id UUID NOT NULL REFERENCES plans (id),
    node_id UUID NOT NULL REFERENCES nodes (id),
    version BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'proposed', 'current', 'superseded', 'rejected')),
    body TEXT NOT NULL,
    change_summary TEXT NOT NULL DEFAULT '',
    review_id UUID,
    created_by UUID REFERENCES users (id),
    adopted_by UUID REFERENCES users (id),
    adopted_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (plan_id, version)
);

-- One activation of a plan version for a node (or a drill of it: exercise = TRUE).
-- pending: triggered, waiting for a person's confirmation; declined: not confirmed;
-- active: everything the steps create exists; closed: deactivated (steps closed in order);
-- reviewed: the after-action review is done.
CREATE TABLE incidents (
    id UUID PRIMARY KEY,
    node_id UUID NOT NULL REFERENCES nodes (id),
    plan_id UUID NOT NULL REFERENCES plans (id),
    plan_version_id UUID NOT NULL REFERENCES plan_versions (id),
    title TEXT NOT NULL,
    exercise BOOLEAN NOT NULL DEFAULT FALSE,
    status TEXT NOT NULL CHECK (status IN ('pending', 'declined', 'active', 'closed', 'reviewed')),
    trigger_kind TEXT NOT NULL CHECK (trigger_kind IN ('manual', 'warning', 'alarm')),
    trigger_id UUID,
    -- Counts and notes of each activation step, as JSON {"step": {...}}.
    summary TEXT NOT NULL DEFAULT '{}',
    activated_by UUID REFERENCES users (id),
    activated_at TIMESTAMPTZ,
    confirmed_by UUID REFERENCES users (id),
    confirmed_at TIMESTAMPTZ,
    closed_by UUID REFERENCES users (id),
    closed_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX incidents_node ON incidents (node_id, status);
-- A plan runs at most once at a time for a node, and a trigger starts a plan once.
CREATE UNIQUE INDEX incidents_running ON incidents (plan_id, node_id)
    WHERE status IN ('pending', 'active');
CREATE UNIQUE INDEX incidents_trigger ON incidents (plan_id, trigger_kind, trigger_id)
    WHERE trigger_id IS NOT NULL;

-- The timeline: everything that happens in an incident, from every part of the system.
-- seq orders the lines (one write stamps all its lines with the same time).
CREATE TABLE incident_log (
    seq BIGINT NOT NULL,
    id UUID PRIMARY KEY,
    incident_id UUID NOT NULL REFERENCES incidents (id),
    at TIMESTAMPTZ NOT NULL,
    actor UUID,
    -- What happened (activated, task.done, welfare.safe, shelter.check_in, sitrep.published, …).
    kind TEXT NOT NULL,
    -- A short sentence for the timeline, with no personal data in clear.
    summary TEXT NOT NULL,
    ref_kind TEXT,
    ref_id UUID
);
CREATE INDEX incident_log_incident ON incident_log (incident_id, seq);

CREATE TABLE incident_tasks (
    id UUID PRIMARY KEY,
    incident_id UUID NOT NULL REFERENCES incidents (id),
    node_id UUID NOT NULL REFERENCES nodes (id),
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    -- The plan role that owns it (empty for tasks added by hand or from a welfare check).
    role_key TEXT NOT NULL DEFAULT '',
    assignee_user_id UUID REFERENCES users (id),
    due_at TIMESTAMPTZ,
    status TEXT NOT NULL CHECK (status IN ('open', 'in_progress', 'done', 'cancelled')),
    notes TEXT NOT NULL DEFAULT '',
    -- Where it came from: plan (a template), welfare (a person needing help), manual.
    source TEXT NOT NULL CHECK (source IN ('plan', 'welfare', 'manual')),
    source_id UUID,
    done_by UUID REFERENCES users (id),
    done_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX incident_tasks_incident ON incident_tasks (incident_id, status);
CREATE INDEX incident_tasks_assignee ON incident_tasks (assignee_user_id, status);
