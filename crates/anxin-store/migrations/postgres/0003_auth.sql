-- Sign-in and audit additions.

-- The head of the audit chain: one row that every append locks, so concurrent writers take
-- turns and the chain never forks. `first_seq`/`first_prev_hash` anchor the chain where it now
-- starts (retention deletes the oldest entries). Seeded from any entries already written.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY,
    last_seq BIGINT NOT NULL,
    last_hash BYTEA NOT NULL,
    first_seq BIGINT NOT NULL,
    first_prev_hash BYTEA NOT NULL
);
INSERT INTO audit_head (id, last_seq, last_hash, first_seq, first_prev_hash)
SELECT 1,
       COALESCE((SELECT max(seq) FROM audit_log), 0),
       COALESCE((SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1), decode(repeat('00', 32), 'hex')),
       COALESCE((SELECT min(seq) FROM audit_log), 1),
       COALESCE((SELECT prev_hash FROM audit_log ORDER BY seq LIMIT 1), decode(repeat('00', 32), 'hex'));
CREATE INDEX audit_log_action ON audit_log (action, at);

-- A TOTP secret shown to its owner but not yet confirmed with a code (sealed with the user's
-- data key under the same field as users.totp_secret_ct, so confirming only moves it).
CREATE TABLE totp_enrolments (
    user_id UUID PRIMARY KEY REFERENCES users (id),
    secret_ct BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- The last TOTP step accepted per account: a code is never accepted twice.
ALTER TABLE login_state ADD COLUMN totp_last_step BIGINT;

CREATE INDEX api_tokens_user ON api_tokens (user_id);
CREATE INDEX grants_source_ref ON grants (source_ref);
CREATE INDEX user_people_person ON user_people (person_id);
