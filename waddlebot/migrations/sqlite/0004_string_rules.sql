-- String-match rules on plain chat. `action` is JSON ({"type":"warn","message":...}).
CREATE TABLE string_rules (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    community_id   INTEGER NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    pattern        TEXT    NOT NULL,
    match_type     TEXT    NOT NULL,
    case_sensitive INTEGER NOT NULL,
    priority       INTEGER NOT NULL,
    action         TEXT    NOT NULL,
    enabled        INTEGER NOT NULL,
    match_count    INTEGER NOT NULL,
    last_matched   INTEGER,
    created_by     TEXT    NOT NULL,
    created_at     INTEGER NOT NULL
);

CREATE INDEX string_rules_by_community ON string_rules (community_id, priority, id);
