-- Security-relevant activity: logins, refreshes, authentication failures,
-- throttling and operator changes. Never a secret, token or signature.
CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,
    client_id  TEXT,
    kind       TEXT NOT NULL,
    code       TEXT,
    reason     TEXT,
    source     TEXT,
    request_id TEXT,
    actor      TEXT NOT NULL
);
CREATE INDEX audit_events_client_at ON audit_events (client_id, at);
CREATE INDEX audit_events_at ON audit_events (at);
