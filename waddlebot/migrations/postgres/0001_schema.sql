-- The whole schema for PostgreSQL (SQLite reached the same in five steps).
-- Keys that are listed in order use the "C" collation: byte order, as every backend sorts.
CREATE TABLE communities (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT        NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE entities (
    id           BIGSERIAL PRIMARY KEY,
    community_id BIGINT      NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    platform     TEXT        NOT NULL,
    server_id    TEXT        NOT NULL,
    channel_id   TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (platform, server_id, channel_id)
);

CREATE TABLE custom_commands (
    community_id BIGINT      NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    name         TEXT COLLATE "C" NOT NULL,
    response     TEXT        NOT NULL,
    created_by   TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (community_id, name)
);

CREATE TABLE documents (
    namespace  TEXT COLLATE "C" NOT NULL,
    key        TEXT COLLATE "C" NOT NULL,
    value      JSONB       NOT NULL,
    version    BIGINT      NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (namespace, key)
);

CREATE TABLE counters (
    namespace TEXT COLLATE "C" NOT NULL,
    key       TEXT COLLATE "C" NOT NULL,
    value     BIGINT NOT NULL,
    PRIMARY KEY (namespace, key)
);

CREATE INDEX counters_by_value ON counters (namespace, value DESC, key);

CREATE TABLE role_grants (
    community_id BIGINT      NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    platform     TEXT COLLATE "C" NOT NULL,
    user_id      TEXT COLLATE "C" NOT NULL,
    level        TEXT        NOT NULL,
    granted_by   TEXT        NOT NULL,
    granted_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (community_id, platform, user_id)
);

CREATE TABLE module_installs (
    community_id BIGINT      NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    module       TEXT COLLATE "C" NOT NULL,
    enabled      BOOLEAN     NOT NULL,
    config       JSONB       NOT NULL,
    updated_by   TEXT        NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (community_id, module)
);

CREATE TABLE command_settings (
    community_id         BIGINT  NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    command              TEXT    NOT NULL,
    enabled              BOOLEAN NOT NULL,
    min_level            TEXT,
    global_cooldown_secs BIGINT,
    user_cooldown_secs   BIGINT,
    cooldown_bucket      TEXT,
    PRIMARY KEY (community_id, command)
);

CREATE TABLE aliases (
    community_id BIGINT      NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    name         TEXT COLLATE "C" NOT NULL,
    target       TEXT        NOT NULL,
    created_by   TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (community_id, name)
);

CREATE TABLE string_rules (
    id             BIGSERIAL PRIMARY KEY,
    community_id   BIGINT      NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    pattern        TEXT        NOT NULL,
    match_type     TEXT        NOT NULL,
    case_sensitive BOOLEAN     NOT NULL,
    priority       INTEGER     NOT NULL,
    action         JSONB       NOT NULL,
    enabled        BOOLEAN     NOT NULL,
    match_count    BIGINT      NOT NULL,
    last_matched   TIMESTAMPTZ,
    created_by     TEXT        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL
);

CREATE INDEX string_rules_by_community ON string_rules (community_id, priority, id);

CREATE TABLE remote_modules (
    community_id BIGINT      NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    name         TEXT COLLATE "C" NOT NULL,
    url          TEXT        NOT NULL,
    secret       TEXT        NOT NULL,
    commands     JSONB       NOT NULL,
    events       JSONB       NOT NULL,
    timeout_ms   BIGINT      NOT NULL,
    kind         JSONB       NOT NULL,
    enabled      BOOLEAN     NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (community_id, name)
);
