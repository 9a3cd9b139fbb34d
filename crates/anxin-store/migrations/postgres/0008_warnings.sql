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
    id UUID PRIMARY KEY,
    node_id UUID NOT NULL REFERENCES nodes (id),
    grid_id UUID REFERENCES grids (id),
    level TEXT NOT NULL CHECK (level IN ('blue', 'yellow', 'orange', 'red')),
    category TEXT NOT NULL,
    headline TEXT NOT NULL,
    description TEXT NOT NULL,
    instruction TEXT NOT NULL,
    effective_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    area TEXT NOT NULL,
    area_crs TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'approved', 'issued', 'updated', 'cancelled', 'expired')),
    version BIGINT NOT NULL DEFAULT 1,
    refers_to UUID REFERENCES warnings (id),
    change_summary TEXT,
    source TEXT NOT NULL CHECK (source IN ('local', 'cap_import')),
    sender TEXT NOT NULL,
    cap_identifier TEXT NOT NULL,
    created_by UUID,
    approved_by UUID,
    approved_at TIMESTAMPTZ,
    issued_by UUID,
    issued_at TIMESTAMPTZ,
    cancelled_by UUID,
    cancelled_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX warnings_node ON warnings (node_id, status);
CREATE INDEX warnings_status_expiry ON warnings (status, expires_at);
CREATE INDEX warnings_refers ON warnings (refers_to);
CREATE UNIQUE INDEX warnings_cap_identifier ON warnings (sender, cap_identifier);

-- Who a version targets: residents (target_kind person, target_id a person) and helpers of
-- vulnerable residents (target_kind helper, target_id a user, helper_of the person).
CREATE TABLE warning_recipients (
    warning_id UUID NOT NULL REFERENCES warnings (id),
    original_id UUID NOT NULL REFERENCES warnings (id),
    target_kind TEXT NOT NULL CHECK (target_kind IN ('person', 'helper')),
    target_id UUID NOT NULL,
    household_id UUID,
    community_id UUID,
    compound_id UUID,
    grid_id UUID,
    vulnerable BOOLEAN NOT NULL DEFAULT FALSE,
    helper_of UUID,
    priority BIGINT NOT NULL,
    PRIMARY KEY (warning_id, target_kind, target_id)
);
CREATE INDEX warning_recipients_target ON warning_recipients (target_id);

CREATE TABLE warning_deliveries (
    id UUID PRIMARY KEY,
    warning_id UUID NOT NULL REFERENCES warnings (id),
    original_id UUID NOT NULL REFERENCES warnings (id),
    target_id UUID NOT NULL,
    channel TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'delivered', 'failed', 'no_channel')),
    notification_id UUID,
    task_id UUID,
    attempts BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (warning_id, target_id, channel)
);
CREATE INDEX warning_deliveries_original ON warning_deliveries (original_id, channel, status);

CREATE TABLE warning_acks (
    original_id UUID NOT NULL REFERENCES warnings (id),
    person_id UUID NOT NULL REFERENCES people (id),
    answer TEXT NOT NULL CHECK (answer IN ('safe', 'need_help')),
    at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (original_id, person_id)
);

CREATE TABLE inperson_tasks (
    id UUID PRIMARY KEY,
    warning_id UUID NOT NULL REFERENCES warnings (id),
    original_id UUID NOT NULL REFERENCES warnings (id),
    person_id UUID NOT NULL REFERENCES people (id),
    assignee_user_id UUID,
    grid_id UUID,
    community_id UUID NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'done')),
    created_at TIMESTAMPTZ NOT NULL,
    done_at TIMESTAMPTZ,
    done_by UUID
);
CREATE INDEX inperson_tasks_original ON inperson_tasks (original_id, status);
CREATE INDEX inperson_tasks_assignee ON inperson_tasks (assignee_user_id, status);
