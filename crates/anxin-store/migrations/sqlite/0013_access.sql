-- Passes and access records (issue 5, 出入管理): gates, entry passes and gate records.
--
-- Records (logged through Tx): gates, passes, gate_records. A pass's code and a gate record's
-- subject (the household or person who passed, any ID number typed) are sealed with the row's
-- own data key (`key_id`), so their change-log images are sealed too, and found through blind
-- indexes. Gate records are whereabouts: the retention registry deletes them (and their
-- change-log entries) after `retention.gate_records_days` and shreds their keys.

-- A gate of a compound or of a community (东门, 北门). `grid_id`: the grid whose workers staff it.
CREATE TABLE gates (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL REFERENCES nodes (id),
    community_id TEXT NOT NULL REFERENCES nodes (id),
    grid_id TEXT REFERENCES grids (id),
    name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX gates_node_name ON gates (node_id, name);

-- An entry pass of one household during one incident. Valid while the incident is active, not
-- revoked and (when set) before `valid_until`.
CREATE TABLE passes (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    node_id TEXT NOT NULL REFERENCES nodes (id),
    community_id TEXT NOT NULL REFERENCES nodes (id),
    grid_id TEXT REFERENCES grids (id),
    household_id TEXT NOT NULL REFERENCES households (id),
    code_bidx BLOB NOT NULL,
    code_ct BLOB NOT NULL,
    valid_until TEXT,
    status TEXT NOT NULL CHECK (status IN ('valid', 'revoked')),
    issued_by TEXT,
    revoked_by TEXT,
    revoked_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX passes_code ON passes (code_bidx);
-- One valid pass per household and incident.
CREATE UNIQUE INDEX passes_one_per_household ON passes (incident_id, household_id)
    WHERE status = 'valid';
CREATE INDEX passes_household ON passes (household_id, status);

-- One passage (or refused attempt) at a gate. Who passed is sealed (`subject_ct`); look-ups go
-- through the blind indexes of the household, the person and the ID number.
CREATE TABLE gate_records (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    gate_id TEXT NOT NULL REFERENCES gates (id),
    node_id TEXT NOT NULL REFERENCES nodes (id),
    community_id TEXT NOT NULL REFERENCES nodes (id),
    grid_id TEXT REFERENCES grids (id),
    incident_id TEXT REFERENCES incidents (id),
    at TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    method TEXT NOT NULL CHECK (method IN ('code', 'id_card')),
    outcome TEXT NOT NULL CHECK (outcome IN ('allowed', 'refused')),
    reason TEXT,
    subject_ct BLOB,
    household_bidx BLOB,
    person_bidx BLOB,
    doc_bidx BLOB,
    recorded_by TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX gate_records_gate_at ON gate_records (gate_id, at);
CREATE INDEX gate_records_at ON gate_records (at);
CREATE INDEX gate_records_household ON gate_records (household_bidx);
CREATE INDEX gate_records_person ON gate_records (person_bidx);
CREATE INDEX gate_records_doc ON gate_records (doc_bidx);
