-- Anxin base schema: change log, keys, the community tree, places, people, accounts.
-- Identifiers are UUIDv7; division codes are dated attributes of nodes, never keys.

CREATE TABLE log_counter (id INTEGER PRIMARY KEY, last BIGINT NOT NULL);
INSERT INTO log_counter (id, last) VALUES (1, 0);

CREATE TABLE change_log (
    pos BIGINT PRIMARY KEY,
    id UUID NOT NULL UNIQUE,
    origin TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    record_id UUID NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    after JSONB,
    after_ct BYTEA,
    key_id UUID,
    actor UUID,
    request_id TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    UNIQUE (origin, seq)
);
CREATE INDEX change_log_record ON change_log (kind, record_id, pos);
CREATE INDEX change_log_key ON change_log (key_id);

CREATE TABLE keyring (
    name TEXT PRIMARY KEY,
    key_id UUID NOT NULL,
    kek_id TEXT NOT NULL,
    wrapped BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE data_keys (
    id UUID PRIMARY KEY,
    kek_id TEXT NOT NULL,
    wrapped BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX data_keys_kek ON data_keys (kek_id);

CREATE TABLE nodes (
    id UUID PRIMARY KEY,
    parent_id UUID REFERENCES nodes (id),
    level TEXT NOT NULL CHECK (level IN ('city', 'district', 'street', 'community', 'compound')),
    name TEXT NOT NULL,
    rural BOOLEAN NOT NULL DEFAULT FALSE,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired')),
    merged_into UUID REFERENCES nodes (id),
    lon DOUBLE PRECISION,
    lat DOUBLE PRECISION,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX nodes_parent ON nodes (parent_id);
CREATE INDEX nodes_name ON nodes (name);

CREATE TABLE node_codes (
    id UUID PRIMARY KEY,
    node_id UUID NOT NULL REFERENCES nodes (id),
    scheme TEXT NOT NULL CHECK (scheme IN ('stats12', 'gbt2260')),
    code TEXT NOT NULL,
    valid_from TIMESTAMPTZ NOT NULL,
    valid_to TIMESTAMPTZ,
    source TEXT NOT NULL
);
CREATE UNIQUE INDEX node_codes_active_code ON node_codes (code) WHERE valid_to IS NULL;
CREATE INDEX node_codes_node ON node_codes (node_id);

CREATE TABLE grids (
    id UUID PRIMARY KEY,
    community_id UUID NOT NULL REFERENCES nodes (id),
    name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (community_id, name)
);

CREATE TABLE buildings (
    id UUID PRIMARY KEY,
    node_id UUID NOT NULL REFERENCES nodes (id),
    community_id UUID NOT NULL REFERENCES nodes (id),
    grid_id UUID REFERENCES grids (id),
    name TEXT NOT NULL,
    address TEXT,
    lon DOUBLE PRECISION,
    lat DOUBLE PRECISION,
    source_crs TEXT NOT NULL DEFAULT 'wgs84',
    floors BIGINT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX buildings_community ON buildings (community_id, name);
CREATE INDEX buildings_grid ON buildings (grid_id);

CREATE TABLE units (
    id UUID PRIMARY KEY,
    building_id UUID NOT NULL REFERENCES buildings (id),
    name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX units_building ON units (building_id);

CREATE TABLE dwellings (
    id UUID PRIMARY KEY,
    building_id UUID NOT NULL REFERENCES buildings (id),
    unit_id UUID REFERENCES units (id),
    number TEXT NOT NULL,
    floor BIGINT,
    area_m2 DOUBLE PRECISION,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX dwellings_building ON dwellings (building_id);

CREATE TABLE households (
    id UUID PRIMARY KEY,
    community_id UUID NOT NULL REFERENCES nodes (id),
    grid_id UUID REFERENCES grids (id),
    dwelling_id UUID REFERENCES dwellings (id),
    label TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX households_community ON households (community_id);
CREATE INDEX households_grid ON households (grid_id);

-- 实有人口. doc_* and phone_* hold ciphertext, a keyed blind index for exact search and the
-- mask that lists show; the name stays searchable by substring.
CREATE TABLE people (
    id UUID PRIMARY KEY,
    key_id UUID NOT NULL,
    community_id UUID NOT NULL REFERENCES nodes (id),
    grid_id UUID REFERENCES grids (id),
    household_id UUID REFERENCES households (id),
    name TEXT NOT NULL,
    sex TEXT CHECK (sex IN ('male', 'female')),
    birth_date DATE,
    population_type TEXT NOT NULL CHECK (population_type IN ('registered', 'resident', 'floating', 'foreign')),
    doc_type TEXT NOT NULL,
    doc_ct BYTEA,
    doc_bidx BYTEA,
    doc_mask TEXT,
    phone_ct BYTEA,
    phone_bidx BYTEA,
    phone_mask TEXT,
    nationality TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX people_community_name ON people (community_id, name);
CREATE INDEX people_grid ON people (grid_id);
CREATE INDEX people_household ON people (household_id);
CREATE INDEX people_doc_bidx ON people (doc_bidx);
CREATE INDEX people_phone_bidx ON people (phone_bidx);

CREATE TABLE memberships (
    id UUID PRIMARY KEY,
    key_id UUID NOT NULL,
    household_id UUID NOT NULL REFERENCES households (id),
    person_id UUID NOT NULL REFERENCES people (id),
    role TEXT NOT NULL,
    valid_from DATE NOT NULL,
    valid_to DATE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX memberships_open ON memberships (person_id, household_id) WHERE valid_to IS NULL;
CREATE INDEX memberships_household ON memberships (household_id);

CREATE TABLE users (
    id UUID PRIMARY KEY,
    key_id UUID NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('staff', 'resident', 'integration')),
    username TEXT UNIQUE,
    display_name TEXT NOT NULL,
    password_hash TEXT,
    totp_secret_ct BYTEA,
    phone_bidx BYTEA,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX users_phone_bidx ON users (phone_bidx);

-- The people a resident account may act as (several people can share one phone).
CREATE TABLE user_people (
    user_id UUID NOT NULL REFERENCES users (id),
    person_id UUID NOT NULL REFERENCES people (id),
    PRIMARY KEY (user_id, person_id)
);

CREATE TABLE vulnerable (
    id UUID PRIMARY KEY,
    key_id UUID NOT NULL,
    person_id UUID NOT NULL REFERENCES people (id),
    community_id UUID NOT NULL REFERENCES nodes (id),
    grid_id UUID REFERENCES grids (id),
    category_ct BYTEA NOT NULL,
    category_bidx BYTEA NOT NULL,
    helper_user_id UUID REFERENCES users (id),
    contact_channel TEXT NOT NULL,
    notes_ct BYTEA,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX vulnerable_person_category ON vulnerable (person_id, category_bidx);
CREATE INDEX vulnerable_community ON vulnerable (community_id);
CREATE INDEX vulnerable_helper ON vulnerable (helper_user_id);

CREATE TABLE facilities (
    id UUID PRIMARY KEY,
    node_id UUID NOT NULL REFERENCES nodes (id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    lon DOUBLE PRECISION,
    lat DOUBLE PRECISION,
    source_crs TEXT NOT NULL DEFAULT 'wgs84',
    capacity BIGINT,
    area_m2 DOUBLE PRECISION,
    status TEXT NOT NULL,
    attrs JSONB,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX facilities_node ON facilities (node_id, kind);

-- 职责清单: who is responsible for what at a node.
CREATE TABLE duties (
    id UUID PRIMARY KEY,
    key_id UUID NOT NULL,
    node_id UUID NOT NULL REFERENCES nodes (id),
    duty TEXT NOT NULL,
    responsible TEXT NOT NULL,
    user_id UUID REFERENCES users (id),
    phone_ct BYTEA,
    phone_mask TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX duties_node ON duties (node_id);

CREATE TABLE grants (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users (id),
    role TEXT NOT NULL,
    scope_kind TEXT NOT NULL CHECK (scope_kind IN ('node', 'grid', 'household')),
    scope_id UUID NOT NULL,
    valid_from TIMESTAMPTZ NOT NULL,
    valid_to TIMESTAMPTZ,
    source TEXT NOT NULL CHECK (source IN ('manual', 'assignment')),
    source_ref TEXT,
    created_by UUID,
    revoked_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX grants_user ON grants (user_id);

CREATE TABLE api_tokens (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE,
    expires_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
