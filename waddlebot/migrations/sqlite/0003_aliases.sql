-- Aliases: `!name` runs another command line.
CREATE TABLE aliases (
    community_id INTEGER NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    target       TEXT    NOT NULL,
    created_by   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (community_id, name)
);
