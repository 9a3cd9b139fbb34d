-- Warnings to people (issue 4): the warning records, who they target, per-channel deliveries,
-- acknowledgements and in-person tasks.
--
-- `warnings` are records (logged through Tx). An update is a new row (version + 1) whose
-- `refers_to` names the original (first) version; the superseded row becomes `updated`.
-- Recipients, deliveries, acknowledgements and in-person tasks are operational (not logged):
-- they are many, change often and carry no decision of their own.
-- `area` is JSON in WGS84 ({"polygons": [[[lon, lat], …]], "circles": [{lon, lat, radius_m}],
-- "nodes": [id, …]}); `area_crs` remembers the system it was drawn in.

CREATE TABLE warnings (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL REFERENCES nodes (id),
    grid_id TEXT REFERENCES grids (id),
    level TEXT NOT NULL CHECK (level IN ('blue', 'yellow', 'orange', 'red')),
    category TEXT NOT NULL,
    headline TEXT NOT NULL,
    description TEXT NOT NULL,
    instruction TEXT NOT NULL,
    effective_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    area TEXT NOT NULL,
    area_crs TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'approved', 'issued', 'updated', 'cancelled', 'expired')),
    version BIGINT NOT NULL DEFAULT 1,
    refers_to TEXT REFERENCES warnings (id),
    change_summary TEXT,
    source TEXT NOT NULL CHECK (source IN ('local', 'cap_import')),
    sender TEXT NOT NULL,
    cap_identifier TEXT NOT NULL,
    created_by TEXT,
    approved_by TEXT,
    approved_at TEXT,
    issued_by TEXT,
    issued_at TEXT,
    cancelled_by TEXT,
    cancelled_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX warnings_node ON warnings (node_id, status);
CREATE INDEX warnings_status_expiry ON warnings (status, expires_at);
CREATE INDEX warnings_refers ON warnings (refers_to);
CREATE UNIQUE INDEX warnings_cap_identifier ON warnings (sender, cap_identifier);

-- Who a version targets: residents (target_kind person, target_id a person) and helpers of
-- vulnerable residents (target_kind helper, target_id a user, helper_of the person).
CREATE TABLE warning_recipients (
    warning_id TEXT NOT NULL REFERENCES warnings (id),
    original_id TEXT NOT NULL REFERENCES warnings (id),
    target_kind TEXT NOT NULL CHECK (target_kind IN ('person', 'helper')),
    target_id TEXT NOT NULL,
    household_id TEXT,
    community_id TEXT,
    compound_id TEXT,
    grid_id TEXT,
    vulnerable INTEGER NOT NULL DEFAULT FALSE,
    helper_of TEXT,
    priority BIGINT NOT NULL,
    PRIMARY KEY (warning_id, target_kind, target_id)
);
CREATE INDEX warning_recipients_target ON warning_recipients (target_id);

CREATE TABLE warning_deliveries (
    id TEXT PRIMARY KEY,
    warning_id TEXT NOT NULL REFERENCES warnings (id),
    original_id TEXT NOT NULL REFERENCES warnings (id),
    target_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'delivered', 'failed', 'no_channel')),
    notification_id TEXT,
    task_id TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (warning_id, target_id, channel)
);
CREATE INDEX warning_deliveries_original ON warning_deliveries (original_id, channel, status);

CREATE TABLE warning_acks (
    original_id TEXT NOT NULL REFERENCES warnings (id),
    person_id TEXT NOT NULL REFERENCES people (id),
    answer TEXT NOT NULL CHECK (answer IN ('safe', 'need_help')),
    at TEXT NOT NULL,
    PRIMARY KEY (original_id, person_id)
);

CREATE TABLE inperson_tasks (
    id TEXT PRIMARY KEY,
    warning_id TEXT NOT NULL REFERENCES warnings (id),
    original_id TEXT NOT NULL REFERENCES warnings (id),
    person_id TEXT NOT NULL REFERENCES people (id),
    assignee_user_id TEXT,
    grid_id TEXT,
    community_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'done')),
    created_at TEXT NOT NULL,
    done_at TEXT,
    done_by TEXT
);
CREATE INDEX inperson_tasks_original ON inperson_tasks (original_id, status);
CREATE INDEX inperson_tasks_assignee ON inperson_tasks (assignee_user_id, status);
