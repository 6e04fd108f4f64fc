-- Every admin change: who, what, on what, in which community (none for bot-wide changes).
CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    community_id INTEGER REFERENCES communities (id) ON DELETE CASCADE,
    actor        TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    target       TEXT    NOT NULL,
    detail       TEXT    NOT NULL,
    at           INTEGER NOT NULL
);
CREATE INDEX audit_log_by_community ON audit_log (community_id, id);
