-- Remote modules: #commands and event handlers that run elsewhere. JSON in commands/events/kind.
CREATE TABLE remote_modules (
    community_id INTEGER NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    url          TEXT    NOT NULL,
    secret       TEXT    NOT NULL,
    commands     TEXT    NOT NULL,
    events       TEXT    NOT NULL,
    timeout_ms   INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    enabled      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (community_id, name)
);
