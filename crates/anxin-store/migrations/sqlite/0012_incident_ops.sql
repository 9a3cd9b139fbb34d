-- Incident operations (issue 5): situation reports, shelter stays, after-action reviews.
--
-- Records (logged through Tx): incident_sitreps, shelter_stays, incident_reviews. A stay carries
-- a data key (key_id): a walk-in's name and phone are sealed under it, and its change-log images
-- are sealed too; only masks are in clear.

-- 情况报告: draft (run_incidents) → approved (approve_reports, not the author) → published.
CREATE TABLE incident_sitreps (
    id TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    node_id TEXT NOT NULL REFERENCES nodes (id),
    seq BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'approved', 'published')),
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    -- The figures at drafting time, as JSON (tasks, shelters, the activation's counts, …).
    figures TEXT NOT NULL DEFAULT '{}',
    created_by TEXT REFERENCES users (id),
    approved_by TEXT REFERENCES users (id),
    approved_at TEXT,
    published_by TEXT REFERENCES users (id),
    published_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (incident_id, seq)
);

-- A person's stay in an open shelter during an incident: a resident (person_id) or a walk-in.
CREATE TABLE shelter_stays (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    node_id TEXT NOT NULL REFERENCES nodes (id),
    facility_id TEXT NOT NULL REFERENCES facilities (id),
    person_id TEXT REFERENCES people (id),
    name_ct BLOB,
    name_mask TEXT NOT NULL,
    phone_ct BLOB,
    phone_mask TEXT,
    checked_in_at TEXT NOT NULL,
    checked_in_by TEXT REFERENCES users (id),
    checked_out_at TEXT,
    checked_out_by TEXT REFERENCES users (id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX shelter_stays_facility ON shelter_stays (facility_id, checked_out_at);
CREATE INDEX shelter_stays_incident ON shelter_stays (incident_id, checked_out_at);
-- A resident is in one shelter at a time.
CREATE UNIQUE INDEX shelter_stays_person_open ON shelter_stays (person_id)
    WHERE person_id IS NOT NULL AND checked_out_at IS NULL;

-- 复盘: one per incident; lessons as JSON [{"text", "plan_version_id"}].
CREATE TABLE incident_reviews (
    id TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL UNIQUE REFERENCES incidents (id),
    node_id TEXT NOT NULL REFERENCES nodes (id),
    went_well TEXT NOT NULL,
    went_badly TEXT NOT NULL,
    lessons TEXT NOT NULL DEFAULT '[]',
    created_by TEXT REFERENCES users (id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
