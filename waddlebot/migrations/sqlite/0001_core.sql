-- Core records, documents and counters. Times are Unix milliseconds.
CREATE TABLE communities (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE entities (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    community_id INTEGER NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    platform     TEXT    NOT NULL,
    server_id    TEXT    NOT NULL,
    channel_id   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (platform, server_id, channel_id)
);

CREATE TABLE custom_commands (
    community_id INTEGER NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    response     TEXT    NOT NULL,
    created_by   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (community_id, name)
);

CREATE TABLE documents (
    namespace  TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, key)
);

CREATE TABLE counters (
    namespace TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    value     INTEGER NOT NULL,
    PRIMARY KEY (namespace, key)
);

CREATE INDEX counters_by_value ON counters (namespace, value DESC, key);
