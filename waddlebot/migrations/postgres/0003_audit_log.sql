-- Every admin change: who, what, on what, in which community (none for bot-wide changes).
CREATE TABLE audit_log (
    id           BIGSERIAL   PRIMARY KEY,
    community_id BIGINT      REFERENCES communities (id) ON DELETE CASCADE,
    actor        TEXT        NOT NULL,
    action       TEXT        NOT NULL,
    target       TEXT        NOT NULL,
    detail       JSONB       NOT NULL,
    at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_log_by_community ON audit_log (community_id, id);
