-- Issue 4: the channels a resident account adds to be reached by warnings besides the in-app
-- banner and SMS to the person's phone: an e-mail address (verified by a code sent to it) and a
-- WeChat service-account openid (bound through WeChat's OAuth, so verified at binding).
-- Personal data: the address is sealed with the row's own data key (key_id), shown masked; the
-- change-log images of the row are sealed with the same key.
CREATE TABLE resident_channels (
    id UUID PRIMARY KEY,
    key_id UUID NOT NULL,
    user_id UUID NOT NULL REFERENCES users (id),
    kind TEXT NOT NULL CHECK (kind IN ('email', 'wechat')),
    address_ct BYTEA NOT NULL,
    address_mask TEXT NOT NULL,
    -- NULL while an e-mail address waits for its code.
    verified_at TIMESTAMPTZ,
    -- The pending code's keyed hash, its expiry and the wrong attempts against it.
    code_hash BYTEA,
    code_expires_at TIMESTAMPTZ,
    code_attempts BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, kind)
);
