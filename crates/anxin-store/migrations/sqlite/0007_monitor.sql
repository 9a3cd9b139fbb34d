-- Monitoring (issue 4): device profiles (rules), devices, alarms and their notes.
--
-- Readings, rollups and per-device rule state live in the readings store (readings.rs): for
-- SQLite a separate file, for PostgreSQL its own tables created by that module.

CREATE TABLE device_profiles (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL REFERENCES nodes (id),
    name TEXT NOT NULL,
    -- anxin_domain::rules::ProfileSpec as JSON.
    rules TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX device_profiles_node ON device_profiles (node_id, name);

CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL REFERENCES nodes (id),
    grid_id TEXT REFERENCES grids (id),
    building_id TEXT REFERENCES buildings (id),
    kind TEXT NOT NULL CHECK (kind IN ('smoke', 'gas', 'water_level', 'manhole', 'tilt', 'elevator', 'generic')),
    -- The device key in its MQTT topic: anxin/v1/devices/{code}/readings.
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    lon REAL,
    lat REAL,
    profile_id TEXT REFERENCES device_profiles (id),
    -- SHA-256 (hex) of the device token; the token is shown once, at creation.
    token_hash TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT TRUE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX devices_code ON devices (code);
CREATE UNIQUE INDEX devices_token ON devices (token_hash);
CREATE INDEX devices_node ON devices (node_id, name);
CREATE INDEX devices_profile ON devices (profile_id);

CREATE TABLE alarms (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices (id),
    -- The device's node when raised (the board and reach filter on it).
    node_id TEXT NOT NULL REFERENCES nodes (id),
    rule_id TEXT NOT NULL,
    alarm_type TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('minor', 'major', 'critical')),
    active INTEGER NOT NULL,
    acknowledged INTEGER NOT NULL DEFAULT FALSE,
    raised_at TEXT NOT NULL,
    last_at TEXT NOT NULL,
    last_value REAL,
    updates INTEGER NOT NULL DEFAULT 0,
    acked_at TEXT,
    acked_by TEXT REFERENCES users (id),
    cleared_at TEXT,
    assignee TEXT REFERENCES users (id),
    escalated_level INTEGER NOT NULL DEFAULT 0,
    escalated_at TEXT,
    -- The device's rule-event number last applied to this alarm: replaying events after a crash
    -- skips those already applied (see docs/MONITORING.md).
    last_event_no INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX alarms_board ON alarms (node_id, active, raised_at);
CREATE INDEX alarms_device_rule ON alarms (device_id, rule_id, active);
CREATE INDEX alarms_unacked ON alarms (acknowledged, raised_at);

CREATE TABLE alarm_notes (
    id TEXT PRIMARY KEY,
    alarm_id TEXT NOT NULL REFERENCES alarms (id),
    author TEXT REFERENCES users (id),
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX alarm_notes_alarm ON alarm_notes (alarm_id, created_at);
