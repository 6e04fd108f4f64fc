-- API keys: only the SHA-256 of a key is kept; `id` is its public part, shown in lists.
CREATE TABLE api_keys (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    hash         TEXT        NOT NULL,
    name         TEXT        NOT NULL,
    role         TEXT        NOT NULL,
    community_id BIGINT      REFERENCES communities (id) ON DELETE CASCADE,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);
