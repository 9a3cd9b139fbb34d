-- Platform services: sessions and sign-in, the audit chain, jobs, notifications.
-- These are operational tables, not records: they are not in the change log.

CREATE TABLE sessions (
    id UUID PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
    user_id UUID NOT NULL REFERENCES users (id),
    person_id UUID,
    csrf TEXT NOT NULL,
    mfa BOOLEAN NOT NULL DEFAULT FALSE,
    ip TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE login_state (
    user_id UUID PRIMARY KEY REFERENCES users (id),
    failed BIGINT NOT NULL DEFAULT 0,
    locked_until TIMESTAMPTZ,
    last_login_at TIMESTAMPTZ
);

CREATE TABLE login_codes (
    id UUID PRIMARY KEY,
    phone_bidx BYTEA NOT NULL,
    code_hash BYTEA NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    used BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_codes_phone ON login_codes (phone_bidx, created_at);

-- Hash-chained: each entry's hash covers the previous hash and its own fields.
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    id UUID NOT NULL UNIQUE,
    at TIMESTAMPTZ NOT NULL,
    actor UUID,
    action TEXT NOT NULL,
    target_kind TEXT,
    target_id UUID,
    ip TEXT,
    detail TEXT NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, at);

CREATE TABLE jobs (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    run_at TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL DEFAULT 5,
    lease_owner TEXT,
    lease_until TIMESTAMPTZ,
    unique_key TEXT UNIQUE,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ
);
CREATE INDEX jobs_due ON jobs (status, run_at);

CREATE TABLE notifications (
    id UUID PRIMARY KEY,
    key_id UUID,
    channel TEXT NOT NULL,
    template TEXT NOT NULL,
    params_ct BYTEA,
    recipient_ct BYTEA,
    recipient_mask TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error TEXT,
    provider_ref TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    sent_at TIMESTAMPTZ
);
CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
