-- Platform services: sessions and sign-in, the audit chain, jobs, notifications.
-- These are operational tables, not records: they are not in the change log.

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users (id),
    person_id TEXT,
    csrf TEXT NOT NULL,
    mfa INTEGER NOT NULL DEFAULT FALSE,
    ip TEXT,
    created_at TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE login_state (
    user_id TEXT PRIMARY KEY REFERENCES users (id),
    failed BIGINT NOT NULL DEFAULT 0,
    locked_until TEXT,
    last_login_at TEXT
);

CREATE TABLE login_codes (
    id TEXT PRIMARY KEY,
    phone_bidx BLOB NOT NULL,
    code_hash BLOB NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    used INTEGER NOT NULL DEFAULT FALSE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX login_codes_phone ON login_codes (phone_bidx, created_at);

-- Hash-chained: each entry's hash covers the previous hash and its own fields.
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    at TEXT NOT NULL,
    actor TEXT,
    action TEXT NOT NULL,
    target_kind TEXT,
    target_id TEXT,
    ip TEXT,
    detail TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, at);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    run_at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL DEFAULT 5,
    lease_owner TEXT,
    lease_until TEXT,
    unique_key TEXT UNIQUE,
    last_error TEXT,
    created_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX jobs_due ON jobs (status, run_at);

CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    key_id TEXT,
    channel TEXT NOT NULL,
    template TEXT NOT NULL,
    params_ct BLOB,
    recipient_ct BLOB,
    recipient_mask TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    provider_ref TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
