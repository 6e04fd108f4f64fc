-- API keys: only the SHA-256 of a key is kept; `id` is its public part, shown in lists.
CREATE TABLE api_keys (
    id           TEXT    NOT NULL PRIMARY KEY,
    hash         TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    role         TEXT    NOT NULL,
    community_id INTEGER REFERENCES communities (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
