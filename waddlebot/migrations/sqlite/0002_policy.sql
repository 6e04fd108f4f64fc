-- Per-community policy: role grants, module installs, command overrides.
CREATE TABLE role_grants (
    community_id INTEGER NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    platform     TEXT    NOT NULL,
    user_id      TEXT    NOT NULL,
    level        TEXT    NOT NULL,
    granted_by   TEXT    NOT NULL,
    granted_at   INTEGER NOT NULL,
    PRIMARY KEY (community_id, platform, user_id)
);

CREATE TABLE module_installs (
    community_id INTEGER NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    module       TEXT    NOT NULL,
    enabled      INTEGER NOT NULL,
    config       TEXT    NOT NULL,
    updated_by   TEXT    NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (community_id, module)
);

CREATE TABLE command_settings (
    community_id         INTEGER NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    command              TEXT    NOT NULL,
    enabled              INTEGER NOT NULL,
    min_level            TEXT,
    global_cooldown_secs INTEGER,
    user_cooldown_secs   INTEGER,
    cooldown_bucket      TEXT,
    PRIMARY KEY (community_id, command)
);
