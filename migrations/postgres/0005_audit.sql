-- Security-relevant activity: logins, refreshes, authentication failures,
-- throttling and operator changes. Never a secret, token or signature.
CREATE TABLE audit_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL,
    client_id  text,
    kind       text NOT NULL,
    code       text,
    reason     text,
    source     text,
    request_id text,
    actor      text NOT NULL
);
CREATE INDEX audit_events_client_at ON audit_events (client_id, at);
CREATE INDEX audit_events_at ON audit_events (at);
