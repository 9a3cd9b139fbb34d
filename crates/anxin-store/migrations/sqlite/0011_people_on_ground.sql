-- Volunteers, call-outs, attendance and welfare checks (issue 5, people on the ground).
--
-- Records (logged through Tx): volunteers, callouts, callout_attendance, welfare_checks.
-- A volunteer's name, phone and certificates are personal data: the record has its own data key
-- (its change-log images are sealed), the phone is ciphertext + blind index + mask.
-- Welfare checks carry no name in clear (the masked name only), so their images stay readable.

CREATE TABLE volunteers (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    -- volunteer, or a cadre deployed to the community (下沉干部).
    kind TEXT NOT NULL CHECK (kind IN ('volunteer', 'cadre')),
    -- The home community.
    community_id TEXT NOT NULL REFERENCES nodes (id),
    -- The account they answer call-outs with (a resident or staff user with a Volunteer grant).
    user_id TEXT REFERENCES users (id),
    name TEXT NOT NULL,
    name_mask TEXT NOT NULL,
    phone_ct BLOB,
    phone_bidx BLOB,
    phone_mask TEXT,
    -- JSON arrays: skills ["first_aid", …]; certificates [{"name","number","valid_until"}].
    skills TEXT NOT NULL DEFAULT '[]',
    certificates TEXT NOT NULL DEFAULT '[]',
    availability TEXT NOT NULL CHECK (availability IN ('available', 'limited', 'unavailable')),
    notes TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX volunteers_community ON volunteers (community_id, availability);
CREATE INDEX volunteers_user ON volunteers (user_id);
CREATE INDEX volunteers_phone_bidx ON volunteers (phone_bidx);

-- A volunteer called out for an incident. minutes: the attended time, totalled at check-out.
CREATE TABLE callouts (
    id TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    volunteer_id TEXT NOT NULL REFERENCES volunteers (id),
    community_id TEXT NOT NULL REFERENCES nodes (id),
    user_id TEXT REFERENCES users (id),
    status TEXT NOT NULL CHECK (status IN ('called', 'accepted', 'declined', 'ended')),
    -- plan (activation) or manual (a staff member during the incident).
    source TEXT NOT NULL CHECK (source IN ('plan', 'manual')),
    called_by TEXT REFERENCES users (id),
    called_at TEXT NOT NULL,
    responded_at TEXT,
    ended_at TEXT,
    minutes BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (incident_id, volunteer_id)
);
CREATE INDEX callouts_incident ON callouts (incident_id, status);
CREATE INDEX callouts_volunteer ON callouts (volunteer_id);
CREATE INDEX callouts_user ON callouts (user_id, status);

-- One stretch of attendance: checked in at a place (an open shelter or a free-text place).
CREATE TABLE callout_attendance (
    id TEXT PRIMARY KEY,
    callout_id TEXT NOT NULL REFERENCES callouts (id),
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    volunteer_id TEXT NOT NULL REFERENCES volunteers (id),
    community_id TEXT NOT NULL REFERENCES nodes (id),
    facility_id TEXT REFERENCES facilities (id),
    place TEXT NOT NULL DEFAULT '',
    checked_in_at TEXT NOT NULL,
    checked_out_at TEXT,
    minutes BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX callout_attendance_callout ON callout_attendance (callout_id, checked_out_at);
CREATE INDEX callout_attendance_incident ON callout_attendance (incident_id);

-- 不漏一人: one check per vulnerable person in the activated scope.
-- level: 0 the person's helper, 1 grid workers, 2 community workers, 3 street officers.
CREATE TABLE welfare_checks (
    id TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    person_id TEXT NOT NULL REFERENCES people (id),
    community_id TEXT NOT NULL REFERENCES nodes (id),
    grid_id TEXT REFERENCES grids (id),
    compound_id TEXT REFERENCES nodes (id),
    name_mask TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'safe', 'need_help', 'moved', 'closed_unchecked')),
    level BIGINT NOT NULL DEFAULT 0,
    -- How many times it went up a level for want of an answer (0: where activation put it).
    escalations BIGINT NOT NULL DEFAULT 0,
    assignee_user_id TEXT REFERENCES users (id),
    due_at TEXT NOT NULL,
    recorded_by TEXT REFERENCES users (id),
    recorded_at TEXT,
    moved_facility_id TEXT REFERENCES facilities (id),
    moved_place TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    task_id TEXT REFERENCES incident_tasks (id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (incident_id, person_id)
);
CREATE INDEX welfare_checks_incident ON welfare_checks (incident_id, status, compound_id);
CREATE INDEX welfare_checks_due ON welfare_checks (status, due_at);
CREATE INDEX welfare_checks_assignee ON welfare_checks (assignee_user_id, status);
CREATE INDEX welfare_checks_grid ON welfare_checks (grid_id, status);
